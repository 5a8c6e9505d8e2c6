"""Every Python example of docs/client.md runs, as it is, against a real `hitl serve`.

The examples find the server and the token in HITL_SERVER and HITL_TOKEN, as a user's would:
a submitter's token, or an admin's for the one that reviews. Meanwhile a reviewer (an admin
reading every task's events) approves each review that the submitter's examples open, filling
in what their forms require.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Callable
from typing import Any

import pytest

from hitl.client import Client, Review
from tests.conftest import ROOT, Server, user_token
from tests.integration.helpers import Event, client, read_stream

DOC = ROOT / "docs" / "client.md"
EXAMPLES = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.DOTALL)
ASKER = "bot"


@pytest.fixture(scope="module")
def server(start_module_server: Callable[..., Server]) -> Server:
    return start_module_server()


def filled(form: list[dict[str, Any]]) -> dict[str, Any]:
    """Values for the fields an approval must give."""
    values: dict[str, Any] = {}
    for field in form:
        if field["required"] and (not field["decisions"] or "approve" in field["decisions"]):
            kind = field["type"]
            values[field["name"]] = {
                "choice": (field["choices"] or [""])[0],
                "boolean": True,
                "integer": int(field["min"] or 1),
                "number": field["min"] or 1,
            }.get(kind, "ok")
    return values


async def approve_the_asker_s_reviews(server: Server, seen: Callable[[str], Any]) -> None:
    """Approve each review of the asker's tasks: a standalone review's at once (its example
    waits in `ask()`), a flow task's once the example has read it (`seen(review_id)`: it
    waits for the review first, and would find its task already done)."""
    async with client(server) as admin:

        async def decide(event: Event) -> None:
            if event.type != "review.requested":
                return
            task = (await admin.get(f"/api/v1/tasks/{event.data['task_id']}")).json()
            if task["created_by"] != ASKER:
                return
            if task["flow"] != "review":
                await seen(event.data["review_id"])
            body = {"decision": "approve", "form": filled(event.data["form"])}
            url = f"/api/v1/reviews/{event.data['review_id']}/decision"
            answered = await admin.post(url, json=body)
            assert answered.status_code == 200, answered.text

        await read_stream(admin, "/api/v1/events", on_event=decide, timeout=3600)


def run(example: str, number: int) -> None:
    exec(compile(example, f"docs/client.md, example {number}", "exec"), {"__name__": "docs"})


async def test_every_example_runs(server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    assert len(EXAMPLES) >= 7, "the examples were not found"
    asker = user_token(server.db_url, ASKER, "submitter")
    monkeypatch.setenv("HITL_SERVER", server.url)
    loop = asyncio.get_running_loop()
    read: dict[str, asyncio.Event] = {}

    def reading(review_id: str) -> asyncio.Event:
        return read.setdefault(review_id, asyncio.Event())

    async def seen(review_id: str) -> None:
        await reading(review_id).wait()

    waits = Client.wait_for_review

    def wait_for_review(self: Client, task_id: str, timeout: float | None = None) -> Review:
        review = waits(self, task_id, timeout)
        loop.call_soon_threadsafe(lambda: reading(review.id).set())
        return review

    monkeypatch.setattr(Client, "wait_for_review", wait_for_review)
    reviewing = asyncio.create_task(approve_the_asker_s_reviews(server, seen))
    try:
        for number, example in enumerate(EXAMPLES, 1):
            reviews = "hitl.decide(" in example
            monkeypatch.setenv("HITL_TOKEN", (server.token or "") if reviews else asker)
            await asyncio.wait_for(asyncio.to_thread(run, example, number), 120)
            assert not reviewing.done(), reviewing
    finally:
        reviewing.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reviewing
