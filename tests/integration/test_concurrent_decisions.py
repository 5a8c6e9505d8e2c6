"""Many reviewers deciding the same review at once, over real HTTP: exactly one wins."""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from tests.conftest import Server, user_token
from tests.integration.helpers import (
    TIMEOUT,
    client,
    create_task,
    db_rows,
    event_log,
    get_task,
    open_review,
    types,
    wait_status,
)

N = 20


@pytest.fixture(scope="module")
def server(start_module_server: Callable[..., Server]) -> Server:
    server = start_module_server()
    # N reviewers, r0 to r19, each racing with a token of their own.
    server.reviewers = [user_token(server.db_url, f"r{i}", "reviewer") for i in range(N)]  # type: ignore[attr-defined]
    return server


def race(server: Server, requests: list[tuple[str, dict[str, Any]]]) -> list[httpx.Response]:
    """POST every (path, body) at once: one thread and one open connection each, then a barrier
    so that all requests leave together."""
    barrier = threading.Barrier(len(requests))
    tokens = iter(server.reviewers)  # type: ignore[attr-defined]

    def one(path: str, body: dict[str, Any], token: str) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=server.url, timeout=TIMEOUT, headers=headers) as http:
            assert http.get("/healthz").status_code == 200  # connect before the barrier
            barrier.wait(timeout=30)
            response = http.post(path, json=body)
            response.read()
            return response

    with ThreadPoolExecutor(len(requests)) as pool:
        futures = [pool.submit(one, path, body, next(tokens)) for path, body in requests]
        return [f.result() for f in futures]


def check_one_winner(responses: list[httpx.Response]) -> httpx.Response:
    codes = Counter(r.status_code for r in responses)
    assert codes == {200: 1, 409: N - 1}, codes
    for r in responses:
        if r.status_code == 409:
            detail = r.json()["detail"]
            assert "already decided" in detail or "won first" in detail, detail
    [winner] = [r for r in responses if r.status_code == 200]
    return winner


async def test_twenty_concurrent_approvals(server: Server) -> None:
    async with client(server) as c:
        task = await create_task(c, "race me")
        review = await open_review(c, task["id"])

        path = f"/api/v1/reviews/{review['id']}/decision"
        responses = await asyncio.to_thread(
            race, server, [(path, {"decision": "approve"}) for i in range(N)]
        )
        winner = check_one_winner(responses).json()
        assert winner["status"] == "decided" and winner["decision"] == "approve"

        done = await wait_status(c, task["id"], "completed")
        assert done["result"] == review["output"]
        [only] = done["reviews"]
        assert only["decision"] == "approve" and only["decided_by"] == winner["decided_by"]

        log = await event_log(c, task["id"])
        counts = Counter(types(log))
        assert counts["review.decided"] == 1, types(log)
        assert counts["task.completed"] == 1, types(log)
        assert counts["review.requested"] == 1, types(log)
        # Nothing happens after the task completed: it holds no lease, so no worker can write
        # for it any more, and the database holds exactly the events that were streamed.
        assert db_rows(
            server, f"SELECT status, lease_owner FROM tasks WHERE id = '{task['id']}'"
        ) == [("completed", None)]
        stored = db_rows(
            server, f"SELECT id FROM events WHERE task_id = '{task['id']}' ORDER BY id"
        )
        assert [int(i) for (i,) in stored] == [e.id for e in log]
        assert await event_log(c, task["id"]) == log


async def test_concurrent_mixed_decisions_apply_only_the_winner(server: Server) -> None:
    async with client(server) as c:
        task = await create_task(c, "approve or reject, not both")
        review = await open_review(c, task["id"])

        path = f"/api/v1/reviews/{review['id']}/decision"
        bodies: list[dict[str, Any]] = [
            {"decision": "reject", "comment": f"comment {i}"} if i % 2 else {"decision": "approve"}
            for i in range(N)
        ]
        responses = await asyncio.to_thread(race, server, [(path, b) for b in bodies])
        winner = check_one_winner(responses).json()

        current = await get_task(c, task["id"])
        [decided] = [r for r in current["reviews"] if r["round"] == 1]
        assert (decided["decision"], decided["comment"], decided["decided_by"]) == (
            winner["decision"],
            winner["comment"],
            winner["decided_by"],
        )
        if winner["decision"] == "reject":
            # only the winning comment reaches the next revision
            r2 = await open_review(c, task["id"], round=2)
            assert winner["comment"] in r2["output"]
            losers = {b["comment"] for b in bodies if "comment" in b} - {winner["comment"]}
            assert not any(f"- {comment}\n" in r2["output"] + "\n" for comment in losers)
            response = await c.post(f"/api/v1/tasks/{task['id']}/cancel")
            assert response.status_code == 200, response.text
        else:
            done = await wait_status(c, task["id"], "completed")
            assert done["result"] == review["output"]
        log = await event_log(c, task["id"])
        assert Counter(types(log))["review.decided"] == 1


async def test_twenty_concurrent_cookbook_feedbacks(server: Server) -> None:
    async with client(server) as c:
        task = await create_task(c, "cookbook race")
        await open_review(c, task["id"])

        path = f"/feedback/{task['id']}"
        responses = await asyncio.to_thread(race, server, [(path, {"feedback": "approved"})] * N)
        assert check_one_winner(responses).json() == {"message": "Feedback 'approved' received"}

        await wait_status(c, task["id"], "completed")
        log = await event_log(c, task["id"])
        counts = Counter(types(log))
        assert counts["review.decided"] == 1 and counts["task.completed"] == 1, types(log)
