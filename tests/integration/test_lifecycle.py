"""A task's whole life through the real server: the v1 API, and the cookbook's API."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import Server, user_token
from tests.integration.flows import GATE_FLOW
from tests.integration.helpers import (
    Event,
    Stream,
    client,
    create_task,
    decide,
    event_log,
    open_review,
    read_stream,
    types,
    wait_status,
)


@pytest.fixture(scope="module")
def server(start_module_server: Callable[..., Server]) -> Server:
    # One worker slot, and a flow whose task holds it until a test opens the gate (see
    # test_cookbook_stream_reject_then_approve); the other tests run one task at a time.
    return start_module_server(concurrency=1, args=["--flow", GATE_FLOW])


async def open_review_ids(c: httpx.AsyncClient) -> set[str]:
    response = await c.get("/api/v1/reviews", params={"status": "open", "limit": 500})
    assert response.status_code == 200, response.text
    return {r["id"] for r in response.json()["data"]}


# -- the v1 API ---------------------------------------------------------------------------


async def test_reject_with_comments_then_approve(server: Server) -> None:
    async with client(server) as c:
        task = await create_task(c, "  a short note on durable review queues ")
        assert task["status"] == "queued" and task["flow"] == "feedback"
        tid = task["id"]

        r1 = await open_review(c, tid, round=1)
        assert r1["output"].startswith("Revision 1: A short note on durable review queues")
        assert r1["decisions"] == ["approve", "edit", "reject"]
        assert r1["id"] in await open_review_ids(c)
        decided = await decide(c, r1["id"], "reject", comment="Mention SQLite explicitly")
        assert decided["status"] == "decided" and decided["decision"] == "reject"
        assert r1["id"] not in await open_review_ids(c)

        r2 = await open_review(c, tid, round=2)
        assert r2["output"] != r1["output"]
        assert r2["output"].startswith("Revision 2:")
        assert "Mention SQLite explicitly" in r2["output"]
        await decide(c, r2["id"], "reject", comment="And say why leases matter")

        r3 = await open_review(c, tid, round=3)
        assert r3["output"].startswith("Revision 3:")
        # every comment so far, not only the last one
        assert "Mention SQLite explicitly" in r3["output"]
        assert "And say why leases matter" in r3["output"]
        await decide(c, r3["id"], "approve", comment="Ship it")

        done = await wait_status(c, tid, "completed")
        assert done["result"] == r3["output"]
        assert done["error"] is None
        rounds = done["reviews"]
        assert [r["round"] for r in rounds] == [1, 2, 3]
        assert [r["status"] for r in rounds] == ["decided"] * 3
        assert [r["decision"] for r in rounds] == ["reject", "reject", "approve"]
        assert [r["comment"] for r in rounds] == [
            "Mention SQLite explicitly",
            "And say why leases matter",
            "Ship it",
        ]
        assert [r["output"] for r in rounds] == [r1["output"], r2["output"], r3["output"]]
        assert all(r["decided_at"] is not None for r in rounds)

        log = await event_log(c, tid)
        counts = Counter(types(log))
        assert counts["task.created"] == 1 and counts["task.completed"] == 1
        assert counts["review.requested"] == 3 and counts["review.decided"] == 3
        assert types(log)[0] == "task.created" and types(log)[-1] == "task.completed"
        assert log[-1].data["result"] == r3["output"]
        decided_events = [e.data for e in log if e.type == "review.decided"]
        assert [(d["decision"], d["comment"]) for d in decided_events] == [
            ("reject", "Mention SQLite explicitly"),
            ("reject", "And say why leases matter"),
            ("approve", "Ship it"),
        ]

        listed = await c.get("/api/v1/tasks", params={"status": "completed", "limit": 500})
        assert tid in {t["id"] for t in listed.json()["data"]}


@pytest.mark.parametrize(
    "edited",
    ["A reviewer's own wording.", {"title": "Edited", "body": ["structured", "output"], "n": 2}],
    ids=["text", "json"],
)
async def test_edit_makes_the_edited_output_the_result(server: Server, edited: Any) -> None:
    async with client(server) as c:
        task = await create_task(c, {"topic": "edits"})
        r1 = await open_review(c, task["id"])
        review = await decide(c, r1["id"], "edit", edited_output=edited, comment="tightened")
        assert review["decision"] == "edit" and review["edited_output"] == edited

        done = await wait_status(c, task["id"], "completed")
        assert done["result"] == edited
        assert done["result"] != r1["output"]
        [round1] = done["reviews"]
        assert round1["output"] == r1["output"]  # what the reviewer saw is kept as it was
        assert round1["edited_output"] == edited
        log = await event_log(c, task["id"])
        assert log[-1].type == "task.completed" and log[-1].data["result"] == edited


# -- the cookbook API ---------------------------------------------------------------------


def statuses(stream: Stream) -> list[str]:
    return [e.data["status"] for e in stream.events]


async def submit(c: httpx.AsyncClient, data: str) -> str:
    response = await c.post("/submit", json={"data": data})
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["message"] == "Task submitted"
    task_id: str = body["task_id"]
    return task_id


async def feedback(c: httpx.AsyncClient, task_id: str, value: str) -> None:
    response = await c.post(f"/feedback/{task_id}", json={"feedback": value})
    assert response.status_code == 200, response.text
    assert response.json() == {"message": f"Feedback '{value}' received"}


async def test_cookbook_stream_reject_then_approve(server: Server, tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    async with client(server) as c:
        # The blocker holds the only worker slot until the gate opens, so the cookbook task
        # stays queued until our subscriber has seen `pending`.
        blocker = await create_task(c, {"gate": str(gate)}, flow="gate")
        await wait_status(c, blocker["id"], "running")

        tid = await submit(c, "cookbook flow input")
        answers = iter(["rejected", "approved"])

        async def on_event(event: Event) -> None:
            if event.data["status"] == "pending":
                gate.touch()
            if event.data["status"] == "waiting_for_review":
                await feedback(c, tid, next(answers))

        try:
            stream = await read_stream(c, f"/stream/{tid}", on_event=on_event, timeout=20)
        finally:
            gate.touch()  # a failure here must not hold the only worker slot for later tests
        blocked = await wait_status(c, blocker["id"], "completed")
        assert blocked["result"] == {"gate": "open"}

    assert stream.ended
    assert statuses(stream) == [
        "pending",
        "running",
        "waiting_for_review",
        "processing_feedback",
        "running",
        "waiting_for_review",
        "processing_feedback",
        "running",
        "completed",
        "stream_closed",
    ]
    messages = [e.data for e in stream.events]
    assert messages[0] == {"status": "pending", "task_id": tid}
    first, second = messages[2]["output_to_review"], messages[5]["output_to_review"]
    assert first.startswith("Revision 1: Cookbook flow input")
    assert second.startswith("Revision 2: Cookbook flow input")
    assert first != second
    # Each review message names its round, so a client can tell round 2 from a repeat of 1.
    assert [m.get("round") for m in messages if m["status"] == "waiting_for_review"] == [1, 2]
    assert messages[3] == {
        "status": "processing_feedback",
        "feedback_value": "rejected",
        "round": 1,
    }
    assert messages[6] == {
        "status": "processing_feedback",
        "feedback_value": "approved",
        "round": 2,
    }
    assert messages[8] == {"status": "completed", "final_result": second}
    assert messages[9] == {"status": "stream_closed"}


async def test_cookbook_late_subscribers(server: Server) -> None:
    async with client(server) as c:
        tid = await submit(c, "late subscriber")
        review = await open_review(c, tid)

        # Subscribing to a task that already waits: the current state comes first.
        async def on_event(event: Event) -> None:
            if event.data["status"] == "waiting_for_review":
                await feedback(c, tid, "approved")

        live = await read_stream(c, f"/stream/{tid}", on_event=on_event, timeout=20)
        assert live.ended
        assert statuses(live) == [
            "waiting_for_review",
            "processing_feedback",
            "running",
            "completed",
            "stream_closed",
        ]
        assert live.events[0].data["output_to_review"] == review["output"]
        assert live.events[1].data["feedback_value"] == "approved"
        assert live.events[3].data["final_result"] == review["output"]

        # Subscribing to a finished task: its result, then the end of the stream.
        done = await read_stream(c, f"/stream/{tid}", timeout=5)
        assert done.ended
        assert [e.data for e in done.events] == [
            {"status": "completed", "final_result": review["output"]},
            {"status": "stream_closed"},
        ]

        # Feedback on a finished task is refused, and says why.
        response = await c.post(f"/feedback/{tid}", json={"feedback": "rejected"})
        assert response.status_code == 409, response.text
        assert "already decided" in response.json()["detail"]


async def test_cookbook_requests_record_who_made_them(server: Server) -> None:
    """Who is recorded is who signed in: a name in a request header counts for nothing."""
    alice = {"Authorization": f"Bearer {user_token(server.db_url, 'alice', 'submitter')}"}
    bob = {"Authorization": f"Bearer {user_token(server.db_url, 'bob', 'reviewer')}"}
    async with client(server) as c:
        response = await c.post(
            "/submit", json={"data": "who"}, headers={**alice, "X-HITL-User": "mallory"}
        )
        assert response.status_code == 202, response.text
        tid = response.json()["task_id"]
        await wait_status(c, tid, "waiting_for_review")
        response = await c.post(
            f"/feedback/{tid}", json={"feedback": "approved"}, headers={**bob, "X-HITL-User": "eve"}
        )
        assert response.status_code == 200, response.text
        task = await wait_status(c, tid, "completed")
        assert task["created_by"] == "alice"
        assert [r["decided_by"] for r in task["reviews"]] == ["bob"]
        async with c.stream("GET", f"/stream/{tid}") as stream:
            assert stream.status_code == 200
            assert stream.headers["content-type"] == "text/event-stream; charset=utf-8"
            assert stream.headers["cache-control"] == "no-cache"
            body = (await stream.aread()).decode()
        assert body.endswith('data: {"status": "stream_closed"}\n\n'), body
