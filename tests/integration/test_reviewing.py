"""Deciding safely through the real server: what a review asks for, stale decisions refused
with 409, and claims — over /api/v1, the cookbook API and the event stream."""

from __future__ import annotations

import hashlib
import json
import time
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


@pytest.fixture(scope="module")
def server(start_module_server: Callable[..., Server]) -> Server:
    exploding = "exploding=tests.unit.service.flows_for_tests:create_exploding_flow"
    return start_module_server(args=["--flow", CAREFUL, "--flow", exploding])


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


def test_the_python_client_decides_safely(server: Server) -> None:
    """The client's calls for the same rules: stale decisions, forms, claims, the audit."""
    with Client(server.url, token=server.token) as hitl:
        task = hitl.create_task("client memo", flow="careful", assignees=["role:admin"])
        for _ in range(500):
            found = hitl.list_reviews(flow="careful", q="client memo", mine=True)["data"]
            if found:
                break
            time.sleep(0.02)  # until its worker has asked for the review
        [review] = found
        assert review["task_id"] == task["id"] and review["flow"] == "careful"
        assert hitl.claim(review["id"])["claimed_by"] is not None
        with pytest.raises(HitlAPIError) as stale:
            hitl.decide(review["id"], "approve", round=2, form={"score": 3})
        assert stale.value.status_code == 409
        with pytest.raises(HitlAPIError) as invalid:
            hitl.decide(review["id"], "approve", form={"score": 0})
        assert invalid.value.status_code == 422 and "form.score" in str(invalid.value.detail)
        decided = hitl.decide(
            review["id"], "approve", round=1, content_hash=review["content_hash"], form={"score": 3}
        )
        assert decided["form_values"] == {"score": 3}
        [entry] = hitl.audit(task["id"])["data"]
        assert entry["detail"]["form"] == {"score": 3} and entry["detail"]["claimed_by"]
        other = hitl.create_task("to stop")
        cancelled = hitl.cancel(other["id"], reason="not needed")
        assert cancelled["status"] == "cancelled"
        assert hitl.audit(other["id"])["data"][0]["detail"] == {"reason": "not needed"}
