"""Retrying a failed task, as a client watching its event stream sees it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from hitl.client import Client
from tests.conftest import Server
from tests.integration.flows import FLAKY_FLOW
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
    # `flaky` fails the first time it runs for a task, then asks for a review.
    return start_module_server(process_delay=0, args=["--flow", FLAKY_FLOW])


async def test_a_retried_task_streams_past_its_old_failure(server: Server) -> None:
    async with client(server) as c:
        created = await c.post("/api/v1/tasks", json={"input": "retry me", "flow": "flaky"})
        task_id = created.json()["id"]
        failed = await wait_status(c, task_id, "failed")
        assert failed["error"] == "RuntimeError: the model is down"
        retried = await c.post(f"/api/v1/tasks/{task_id}/retry")
        assert retried.status_code == 200 and retried.json()["status"] == "queued", retried.text
        again = await c.post(f"/api/v1/tasks/{task_id}/retry")
        assert again.status_code == 409, again.text
        # The node that failed runs again, and this time asks for a review.
        review = await open_review(c, task_id, round=1)

        # A stream from the start replays the old failure and goes on past it.
        url = f"/api/v1/tasks/{task_id}/events"

        def at_the_review(stream: Stream) -> bool:
            last = stream.events[-1] if stream.events else None
            return last is not None and last.type == "review.requested"

        seen = await read_stream(c, url, params={"after": 0}, until=at_the_review)
        types = [e.type for e in seen.events]
        assert types.index("task.failed") < types.index("task.retried"), types
        await decide(c, review["id"], "approve")
        done = await read_stream(c, url, params={"after": 0})
        assert done.ended and done.events[-1].type == "task.completed"

    # The Python client, too, reads past the old failure to the end.
    def watch() -> list[str]:
        with Client(server.url, token=server.token) as sync:
            return [e.type for e in sync.events(task_id)]

    types = await asyncio.to_thread(watch)
    assert types.count("task.failed") == 1 and types[-1] == "task.completed", types
