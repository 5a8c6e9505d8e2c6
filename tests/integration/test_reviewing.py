"""Deciding safely through the real server: what a review asks for, stale decisions refused
with 409, and claims — over /api/v1, the cookbook API and the event stream."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from hitl.client import Client, HitlAPIError
from tests.conftest import Server, user_token
from tests.integration.helpers import (
    client,
    create_task,
    open_review,
    read_stream,
    wait_status,
)

CAREFUL = "careful=tests.unit.service.flows_for_tests:create_careful_flow"
BULK = "bulk=tests.unit.service.flows_for_tests:create_bulk_flow"
STRICT = "strict=tests.unit.service.flows_for_tests:create_strict_flow"


@pytest.fixture(scope="module")
def server(start_module_server: Callable[..., Server]) -> Server:
    exploding = "exploding=tests.unit.service.flows_for_tests:create_exploding_flow"
    flows = [CAREFUL, exploding, BULK, STRICT]
    return start_module_server(args=[arg for flow in flows for arg in ("--flow", flow)])


def sha256_of(output: Any) -> str:
    text = json.dumps(output, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def as_user(server: Server, name: str, *roles: str) -> httpx.AsyncClient:
    token = user_token(server.db_url, name, *roles)
    return httpx.AsyncClient(
        base_url=server.url, timeout=15, headers={"Authorization": f"Bearer {token}"}
    )


async def test_a_review_says_what_it_asks_for_and_the_server_holds_to_it(server: Server) -> None:
    async with client(server) as c:
        task = await create_task(c, "the memo", flow="careful")
        review = await open_review(c, task["id"])
        assert review["content_hash"] == sha256_of(review["output"])
        assert review["comment_required"] == ["reject"] and review["dangerous"] == ["reject"]
        assert [f["name"] for f in review["form"]] == ["score", "reason", "note"]
        url = f"/api/v1/reviews/{review['id']}/decision"

        missing = await c.post(url, json={"decision": "approve"})
        assert missing.status_code == 422
        assert missing.json()["detail"] == "form.score: required to approve"
        no_comment = await c.post(url, json={"decision": "reject"})
        assert no_comment.status_code == 422
        assert "comment" in no_comment.json()["detail"]

        other = await c.post(url, json={"decision": "approve", "content_hash": "0" * 64})
        assert other.status_code == 409
        assert "other content than this review shows" in other.json()["detail"]
        late = await c.post(url, json={"decision": "approve", "round": 3})
        assert late.status_code == 409 and late.json()["round"] == 1

        body = {
            "decision": "approve",
            "round": 1,
            "content_hash": review["content_hash"],
            "form": {"score": 5},
        }
        decided = await c.post(url, json=body)
        assert decided.status_code == 200, decided.text
        assert decided.json()["form_values"] == {"score": 5}
        done = await wait_status(c, task["id"], "completed")
        assert done["result"] == {"action": "approve", "form": {"score": 5}}


async def test_the_cookbook_stream_names_the_content_and_feedback_can_name_it(
    server: Server,
) -> None:
    async with client(server) as c:
        submitted = await c.post("/submit", json={"data": "hello"})
        task_id = submitted.json()["task_id"]
        review = await open_review(c, task_id)
        stream = await read_stream(
            c, f"/stream/{task_id}", until=lambda s: len(s.events) >= 1, timeout=10
        )
        [waiting] = [e.data for e in stream.events if e.data["status"] == "waiting_for_review"]
        assert waiting["round"] == 1 and waiting["content_hash"] == review["content_hash"]

        stale = await c.post(f"/feedback/{task_id}", json={"feedback": "approved", "round": 2})
        assert stale.status_code == 409
        assert "made on round 2, but the review open now is round 1" in stale.json()["detail"]
        seen = {"feedback": "approved", "round": 1, "content_hash": waiting["content_hash"]}
        assert (await c.post(f"/feedback/{task_id}", json=seen)).status_code == 200


async def test_a_claim_keeps_others_off_until_they_take_it_over(server: Server) -> None:
    ann, bob = as_user(server, "ann-claims", "reviewer"), as_user(server, "bob-claims", "reviewer")
    async with client(server) as c, ann, bob:
        task = await create_task(c, "claimed work")
        review = await open_review(c, task["id"])
        claim = f"/api/v1/reviews/{review['id']}/claim"

        held = await ann.post(claim)
        assert held.status_code == 200 and held.json()["claimed_by"] == "ann-claims"
        refused = await bob.post(claim, json={"take_over": False})
        assert refused.status_code == 409
        assert refused.json()["detail"].startswith("ann-claims is reviewing this")
        blocked = await bob.post(
            f"/api/v1/reviews/{review['id']}/decision", json={"decision": "approve"}
        )
        assert blocked.status_code == 409 and blocked.json()["claimed_by"] == "ann-claims"
        listed = await c.get(f"/api/v1/reviews/{review['id']}")
        assert listed.json()["claimed_by"] == "ann-claims"

        taken = await bob.post(claim, json={"take_over": True})
        assert taken.status_code == 200 and taken.json()["claimed_by"] == "bob-claims"
        released = await bob.delete(claim)
        assert released.status_code == 200 and released.json()["claimed_by"] is None

        log = await read_stream(
            c,
            f"/api/v1/tasks/{task['id']}/events",
            params={"after": 0},
            until=lambda s: sum(e.type == "review.released" for e in s.events) >= 1,
            timeout=10,
        )
        claims = [e.data for e in log.events if e.type == "review.claimed"]
        assert [d["claimed_by"] for d in claims] == ["ann-claims", "bob-claims"]
        assert claims[1]["taken_from"] == "ann-claims"
        decided = await ann.post(
            f"/api/v1/reviews/{review['id']}/decision", json={"decision": "approve"}
        )
        assert decided.status_code == 200, decided.text


async def test_a_failure_s_traceback_is_shown_to_admins_only(server: Server) -> None:
    sam = as_user(server, "sam-fails", "submitter")
    async with client(server) as admin, sam:
        created = await sam.post("/api/v1/tasks", json={"input": "x", "flow": "exploding"})
        assert created.status_code == 201, created.text
        task_id = created.json()["id"]
        failed = await wait_status(admin, task_id, "failed")
        assert failed["node"] == "Explodes" and "raise ValueError" in failed["traceback"]
        own = (await sam.get(f"/api/v1/tasks/{task_id}")).json()
        assert own["error"] == failed["error"] and own["traceback"] is None


async def test_the_queue_counts_what_you_may_decide_and_bulk_decides_what_was_shown(
    server: Server,
) -> None:
    mark = f"queue-{uuid.uuid4().hex[:8]}"  # this test's reviews, on a shared server
    max_ = as_user(server, "max-queue", "submitter", "reviewer")
    rita = as_user(server, "rita-queue", "reviewer")
    async with client(server) as admin, max_, rita:
        anyones = await create_task(admin, f"{mark} anyone's", flow="bulk")
        ritas = await create_task(admin, f"{mark} rita's", flow="bulk", assignees=["rita-queue"])
        created = await max_.post(
            "/api/v1/tasks", json={"input": f"{mark} max's own", "flow": "strict"}
        )
        assert created.status_code == 201, created.text
        owns = created.json()
        reviews = [await open_review(admin, t["id"]) for t in (anyones, ritas, owns)]

        async def listed(who: httpx.AsyncClient, **params: Any) -> tuple[list[str], int]:
            response = await who.get("/api/v1/reviews", params={"q": mark, **params})
            assert response.status_code == 200, response.text
            body = response.json()
            return [r["task_id"] for r in body["data"]], body["count"]

        everyone = [anyones["id"], ritas["id"], owns["id"]]
        assert await listed(max_) == (everyone, 3)
        assert await listed(max_, decidable="true") == ([anyones["id"]], 1)
        assert await listed(rita, decidable="true") == (everyone, 3)
        assert await listed(rita, decidable="true", limit=1, offset=1) == ([ritas["id"]], 3)
        assert await listed(rita, decidable="true", status="decided") == ([], 0)
        full = (await max_.get("/api/v1/reviews", params={"q": mark})).json()["data"]
        assert [r["may_decide"] for r in full] == [True, False, False]  # the same rule
        assert [r["bulk"] for r in full] == [True, True, False]

        # Each item is checked against what was shown of it; each gets its own result.
        first, second, third = (r["id"] for r in reviews)
        body = {
            "review_ids": [first, second, third],
            "decision": "approve",
            "seen": {
                first: {"round": 1, "content_hash": reviews[0]["content_hash"]},
                second: {"round": 1, "content_hash": "0" * 64},
            },
        }
        answer = await rita.post("/api/v1/reviews/decisions", json=body)
        assert answer.status_code == 200, answer.text
        results = answer.json()["results"]
        assert [r["status"] for r in results] == [200, 409, 409]
        assert "other content" in results[1]["detail"]
        assert "not decided in bulk" in results[2]["detail"]
        assert (await listed(rita, decidable="true"))[1] == 2
        audit = (await admin.get(f"/api/v1/tasks/{anyones['id']}/audit")).json()["data"]
        assert [(e["action"], e["actor"]) for e in audit] == [("review.decide", "rita-queue")]

        unknown = {"review_ids": [second], "decision": "approve", "seen": {first: {"round": 1}}}
        refused = await rita.post("/api/v1/reviews/decisions", json=unknown)
        assert refused.status_code == 422
        assert refused.json()["detail"] == f"seen: {first!r} is not one of review_ids"
        assert (await listed(rita, decidable="true"))[1] == 2


def test_the_python_client_decides_safely(server: Server) -> None:
    """The client's calls for the same rules: stale decisions, forms, claims, the audit."""
    with Client(server.url, token=server.token) as hitl:
        task = hitl.create_task("client memo", flow="careful", assignees=["role:admin"])
        opened = hitl.wait_for_review(task.id, timeout=60)  # once its worker has asked for it
        [review] = hitl.list_reviews(flow="careful", q="client memo", mine=True).data
        assert review.id == opened.id and review.task_id == task.id and review.flow == "careful"
        assert hitl.claim(review.id).claimed_by is not None
        with pytest.raises(HitlAPIError) as stale:
            hitl.decide(review.id, "approve", round=2, form={"score": 3})
        assert stale.value.status_code == 409
        with pytest.raises(HitlAPIError) as invalid:
            hitl.decide(review.id, "approve", form={"score": 0})
        assert invalid.value.status_code == 422 and "form.score" in str(invalid.value.detail)
        decided = hitl.decide(
            review.id, "approve", round=1, content_hash=review.content_hash, form={"score": 3}
        )
        assert decided.form_values == {"score": 3}
        [entry] = hitl.audit(task.id).data
        assert isinstance(entry.detail, dict)
        assert entry.detail["form"] == {"score": 3} and entry.detail["claimed_by"]
        other = hitl.create_task("to stop")
        cancelled = hitl.cancel(other.id, reason="not needed")
        assert cancelled.status == "cancelled"
        assert hitl.audit(other.id).data[0].detail == {"reason": "not needed"}
