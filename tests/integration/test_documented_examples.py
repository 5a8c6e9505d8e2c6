"""The flows the documentation shows run as written: the README's "write a flow" example, and
docs/flows.md's review node with a form, each served by a real `hitl serve --flow FILE:create_flow`
and reviewed over the API by someone other than the submitter. (docs/client.md's examples run
in test_client_docs.py.)"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import httpx

from tests.conftest import ROOT, Server, user_token
from tests.integration.helpers import client, create_task, decide, open_review, wait_status


def block_after(doc: Path, heading: str, index: int = 0) -> str:
    """The `index`-th Python block after `heading` in `doc`."""
    text = doc.read_text()
    return re.findall(r"```python\n(.*?)```", text[text.index(heading) :], re.DOTALL)[index]


README_FLOW = block_after(ROOT / "README.md", "## Write a flow with a human in it")
LEGAL_REVIEW = block_after(ROOT / "docs" / "flows.md", "## Human review")


def serve(start_server: Callable[..., Server], tmp_path: Path, source: str) -> Server:
    module = tmp_path / "documented.py"
    module.write_text(source)
    return start_server(args=["--flow", f"documented={module}:create_flow"])


def reviewer(server: Server) -> httpx.AsyncClient:
    token = user_token(server.db_url, "rita", "reviewer")
    return httpx.AsyncClient(base_url=server.url, headers={"Authorization": f"Bearer {token}"})


async def test_the_readme_flow_drafts_revises_and_returns_the_approved_text(
    start_server: Callable[..., Server], tmp_path: Path
) -> None:
    server = serve(start_server, tmp_path, README_FLOW)
    async with client(server) as c, reviewer(server) as rita:
        task = await create_task(c, "durable queues", flow="documented")
        first = await open_review(c, task["id"])
        assert first["output"] == "A short note on durable queues."
        await decide(rita, first["id"], "reject", comment="mention leases")
        second = await open_review(c, task["id"], round=2)
        assert second["output"] == "A short note on durable queues. (mention leases)"
        await decide(rita, second["id"], "approve")
        done = await wait_status(c, task["id"], "completed")
        assert done["result"] == second["output"]

        edited = await create_task(c, "SQLite", flow="documented")
        review = await open_review(c, edited["id"])
        await decide(rita, review["id"], "edit", edited_output="SQLite, briefly.")
        assert (await wait_status(c, edited["id"], "completed"))["result"] == "SQLite, briefly."
    server.stop()
    assert server.log is not None
    assert "Flow ends" not in server.log.read_text()  # every action has somewhere to go


async def test_the_review_node_with_a_form_in_docs_flows_works_in_a_flow(
    start_server: Callable[..., Server], tmp_path: Path
) -> None:
    # The README's draft and publish nodes around docs/flows.md's LegalReview.
    flow = (
        README_FLOW.split("def create_flow")[0]
        + LEGAL_REVIEW
        + (
            "\n\ndef create_flow():\n"
            "    draft, check, publish = Draft(), LegalReview(), Publish()\n"
            "    draft >> check\n"
            '    check - "approve" >> publish\n'
            '    check - "reject" >> draft\n'
            "    return AsyncFlow(start=draft)\n"
        )
    )
    server = serve(start_server, tmp_path, flow)
    async with client(server) as c, reviewer(server) as rita:
        task = await create_task(c, "a risky letter", flow="documented")
        review = await open_review(c, task["id"])
        assert review["prompt"] == "Is this safe to send?"
        assert review["assignees"] == ["role:admin", "rita"]
        assert review["dangerous"] == ["approve"] and review["comment_required"] == ["reject"]
        refused = await rita.post(
            f"/api/v1/reviews/{review['id']}/decision", json={"decision": "approve"}
        )
        assert refused.status_code == 422 and "form.risk" in refused.text
        await decide(rita, review["id"], "approve", form={"risk": "low"})
        done = await wait_status(c, task["id"], "completed")
        assert done["result"] == "A short note on a risky letter."


async def test_the_progress_example_in_docs_flows_streams_its_text(
    start_server: Callable[..., Server], tmp_path: Path
) -> None:
    example = block_after(ROOT / "docs" / "flows.md", "## Progress")
    flow = example + (
        "\n\nfrom pocketflow import AsyncFlow\n\n"
        "class Summarised(Summarise):\n"
        "    def post(self, shared, prep_res, exec_res):\n"
        '        shared["final_result"] = exec_res\n\n'
        "def create_flow():\n"
        "    return AsyncFlow(start=Summarised())\n"
    )
    server = serve(start_server, tmp_path, flow)
    chapters = ["It was a dark and stormy night.", "The end."]
    async with client(server) as c:
        task = await create_task(c, {"chapters": chapters}, flow="documented")
        done = await wait_status(c, task["id"], "completed")
        events = (await c.get(f"/api/v1/tasks/{task['id']}/events?after=0", timeout=30)).text
    assert done["result"] == "It was a dark and stormy night. The end."
    assert "node.progress" in events and "chapter 2 of 2" in events
