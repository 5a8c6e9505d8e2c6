"""What the task page reads, through a real server on SQLite and on PostgreSQL: a flow's graph
(`GET /api/v1/flows/{name}`), whether the caller may cancel or retry a task (`may_cancel`,
`may_retry`: the server's rule, per caller and per status), and each vote of a review that
several people decide, with who and when."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import httpx
import pytest

from tests.conftest import Server, user_token
from tests.integration.helpers import client, create_task, decide, open_review, wait_status

FLOWS = "tests.unit.service.flows_for_tests"


@pytest.fixture(scope="module")
def server(start_module_server: Callable[..., Server]) -> Server:
    flows = [f"panel={FLOWS}:create_panel_flow", f"publishing={FLOWS}:create_publishing_flow"]
    return start_module_server(args=[arg for flow in flows for arg in ("--flow", flow)])


def as_user(server: Server, name: str, *roles: str) -> httpx.AsyncClient:
    token = user_token(server.db_url, name, *roles)
    return httpx.AsyncClient(
        base_url=server.url, timeout=15, headers={"Authorization": f"Bearer {token}"}
    )


async def test_a_flow_is_read_as_nodes_and_edges(server: Server) -> None:
    reviewer = as_user(server, "rex-flows", "reviewer")
    async with reviewer:
        response = await reviewer.get("/api/v1/flows/publishing")
        assert response.status_code == 200, response.text
        flow = response.json()
        assert flow["name"] == "publishing" and flow["default"] is False
        assert [(n["id"], n["kind"], n["parent"]) for n in flow["nodes"]] == [
            ("drafting", "flow", None),
            ("drafting/draft", "node", "drafting"),
            ("drafting/approval", "review", "drafting"),
            ("drafting/ready", "node", "drafting"),
            ("publish", "node", None),
        ]
        assert {
            "source": "drafting/approval",
            "target": "drafting/draft",
            "action": "rejected",
        } in (flow["edges"])
        default = (await reviewer.get("/api/v1/flows/feedback")).json()
        assert default["default"] is True and default["nodes"][0]["start"] is True
        missing = await reviewer.get("/api/v1/flows/nope")
        assert missing.status_code == 404
        assert missing.json()["detail"].startswith("no flow 'nope'; this server runs: feedback")
    async with httpx.AsyncClient(base_url=server.url, timeout=15) as anonymous:
        assert (await anonymous.get("/api/v1/flows/feedback")).status_code == 401


async def test_may_cancel_and_may_retry_follow_the_caller_and_the_status(server: Server) -> None:
    sam = as_user(server, "sam-view", "submitter")
    eve = as_user(server, "eve-view", "submitter")
    ann = as_user(server, "ann-view", "reviewer")
    async with client(server) as admin, sam, eve, ann:

        async def may(who: httpx.AsyncClient, task_id: str) -> tuple[bool, bool] | int:
            response = await who.get(f"/api/v1/tasks/{task_id}")
            if response.status_code != 200:
                return response.status_code
            task = response.json()
            return task["may_cancel"], task["may_retry"]

        task = await create_task(sam, "the annual report", flow="publishing")
        assert (task["may_cancel"], task["may_retry"]) == (True, False)
        review = await open_review(admin, task["id"])
        assert await may(admin, task["id"]) == (True, False)
        assert await may(sam, task["id"]) == (True, False)
        assert await may(ann, task["id"]) == (False, False)  # sees it, may not change it
        assert await may(eve, task["id"]) == 404  # not hers to see
        listed = (await sam.get("/api/v1/tasks")).json()["data"]
        assert [(t["may_cancel"], t["may_retry"]) for t in listed if t["id"] == task["id"]] == [
            (True, False)
        ]
        await decide(ann, review["id"], "approve")
        failed = await wait_status(admin, task["id"], "failed")
        assert failed["node"] == "publish" and "the printer is jammed" in failed["error"]
        assert "RuntimeError" in failed["traceback"]
        assert await may(admin, task["id"]) == (False, True)
        assert await may(sam, task["id"]) == (False, True)
        assert await may(ann, task["id"]) == (False, False)
        refused = await ann.post(f"/api/v1/tasks/{task['id']}/retry")
        assert refused.status_code == 403  # what may_retry said
        retried = await sam.post(f"/api/v1/tasks/{task['id']}/retry")
        assert retried.status_code == 200, retried.text
        assert (retried.json()["may_cancel"], retried.json()["may_retry"]) == (True, False)
        await wait_status(admin, task["id"], "completed")
        assert await may(sam, task["id"]) == (False, False)


async def test_each_vote_is_in_the_task_with_who_and_when(server: Server) -> None:
    ann = as_user(server, "ann-votes", "reviewer")
    bob = as_user(server, "bob-votes", "reviewer")
    async with client(server) as admin, ann, bob:
        task = await create_task(admin, "the panel's memo", flow="panel")
        review = await open_review(admin, task["id"])
        assert review["quorum"] == 2 and review["votes"] == []
        await decide(ann, review["id"], "approve", comment="fine by me")
        [vote] = (await open_review(admin, task["id"]))["votes"]
        assert (vote["voter"], vote["decision"], vote["comment"]) == (
            "ann-votes",
            "approve",
            "fine by me",
        )
        await decide(bob, review["id"], "approve")
        done = await wait_status(admin, task["id"], "completed")
        [decided] = done["reviews"]
        assert decided["decided_by"] == "bob-votes"
        votes = decided["votes"]
        assert [(v["voter"], v["decision"]) for v in votes] == [
            ("ann-votes", "approve"),
            ("bob-votes", "approve"),
        ]
        first, second = (datetime.fromisoformat(v["at"]) for v in votes)
        assert first <= second <= datetime.fromisoformat(decided["decided_at"])
        alone = await create_task(admin, "one reviewer will do", flow="publishing")
        assert (await open_review(admin, alone["id"]))["votes"] is None  # not a quorum review
