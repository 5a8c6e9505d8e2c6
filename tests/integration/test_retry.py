"""Retrying a failed task, as a client watching its event stream sees it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from hitl.client import Client
from tests.conftest import Server
from tests.integration.helpers import (
    Stream,
    client,
    decide,
    open_review,
    read_stream,
    wait_status,
)


@pytest.fixture(scope="module")
def server(start_module_server: Callable[..., Server]) -> Server:
    # A review nobody decides within a second fails the task (there is no default decision).
    return start_module_server(process_delay=0, review_deadline_seconds=1)


async def test_a_retried_task_streams_past_its_old_failure(server: Server) -> None:
    async with client(server) as c:
        created = await c.post("/api/v1/tasks", json={"input": "retry me"})
        task_id = created.json()["id"]
        failed = await wait_status(c, task_id, "failed")
        assert "deadline" in failed["error"]
        retried = await c.post(f"/api/v1/tasks/{task_id}/retry")
        assert retried.status_code == 200 and retried.json()["status"] == "queued", retried.text
        again = await c.post(f"/api/v1/tasks/{task_id}/retry")
        assert again.status_code == 409, again.text
        # The review that expired is asked again, in a new round; decide it in time.
        review = await open_review(c, task_id, round=2)

        # A stream from the start replays the old failure and goes on past it.
        url = f"/api/v1/tasks/{task_id}/events"

        def at_round_two(stream: Stream) -> bool:
            last = stream.events[-1] if stream.events else None
            return last is not None and last.type == "review.requested" and last.data["round"] == 2

        seen = await read_stream(c, url, params={"after": 0}, until=at_round_two)
        types = [e.type for e in seen.events]
        assert types.index("task.failed") < types.index("task.retried"), types
        await decide(c, review["id"], "approve")
        done = await read_stream(c, url, params={"after": 0})
        assert done.ended and done.events[-1].type == "task.completed"

    # The Python client, too, reads past the old failure to the end.
    def watch() -> list[str]:
        with Client(server.url) as sync:
            return [e["type"] for e in sync.events(task_id)]

    types = await asyncio.to_thread(watch)
    assert types.count("task.failed") == 1 and types[-1] == "task.completed", types
