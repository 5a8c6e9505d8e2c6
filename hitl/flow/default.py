"""The default flow, as in the cookbook: process → review → result, rejected → process.

Its processor is simulated: it sleeps `delay` seconds and returns a draft that names its
revision and every reviewer comment so far, so a rejection visibly changes the next output.
The nodes are async (the sleep is `asyncio.sleep`), so the default flow needs no threads; sync
nodes in users' flows run in worker threads.
"""

from __future__ import annotations

import asyncio
from typing import Any

from pocketflow import AsyncFlow, AsyncNode

from hitl.flow.review import Decision, HumanReview, ReviewRequest


class Process(AsyncNode):  # type: ignore[misc]
    name = "process"

    def __init__(self, delay: float) -> None:
        super().__init__()
        self.delay = delay

    async def prep_async(self, shared: dict[str, Any]) -> tuple[str, list[str], int]:
        return (
            str(shared.get("task_input", "")),
            list(shared.get("comments", [])),
            int(shared.get("revision", 0)),
        )

    async def exec_async(self, prep_res: tuple[str, list[str], int]) -> str:
        text, comments, revision = prep_res
        if self.delay > 0:
            await asyncio.sleep(self.delay)
        return draft(text, comments, revision + 1)

    async def post_async(self, shared: dict[str, Any], prep_res: Any, exec_res: str) -> str:
        shared["processed_output"] = exec_res
        shared["revision"] = int(shared.get("revision", 0)) + 1
        return "default"


def draft(text: str, comments: list[str], revision: int) -> str:
    """The simulated processor's output for one revision."""
    body = " ".join(text.split())
    lines = [f"Revision {revision}: {body[:1].upper()}{body[1:]}"]
    if comments:
        lines.append("Changes requested by reviewers:")
        lines.extend(f"- {c}" for c in comments)
        lines.append(f"Addressed {len(comments)} comment(s): {comments[-1]}")
    return "\n".join(lines)


class Review(HumanReview):
    name = "review"
    # The cookbook's demo: one person submits and reviews. Flows of real teams leave this
    # False, so that nobody approves their own work.
    allow_self_review = True

    def __init__(self, deadline_seconds: float | None = None, on_deadline: str | None = None):
        super().__init__()
        self.deadline_seconds = deadline_seconds
        self.on_deadline = on_deadline

    async def prep_async(self, shared: dict[str, Any]) -> ReviewRequest:
        return ReviewRequest(
            output=shared.get("processed_output"),
            decisions=("approve", "edit", "reject"),
            prompt="Approve the output, edit it, or reject it with a comment for the next "
            "revision.",
        )

    async def post_async(
        self, shared: dict[str, Any], prep_res: ReviewRequest, exec_res: Decision
    ) -> str:
        if exec_res.action == "reject":
            if exec_res.comment:
                shared.setdefault("comments", []).append(exec_res.comment)
            return "rejected"
        if exec_res.action == "edit":
            shared["processed_output"] = exec_res.edited_output
        return "approved"


class Result(AsyncNode):  # type: ignore[misc]
    name = "result"

    async def prep_async(self, shared: dict[str, Any]) -> Any:
        return shared.get("processed_output")

    async def post_async(self, shared: dict[str, Any], prep_res: Any, exec_res: Any) -> str:
        shared["final_result"] = prep_res
        return "done"


def create_feedback_flow(
    delay: float = 1.0, deadline_seconds: float | None = None, on_deadline: str | None = None
) -> AsyncFlow:
    """The cookbook's flow; `deadline_seconds`/`on_deadline` give its reviews a deadline."""
    process, review, result = Process(delay), Review(deadline_seconds, on_deadline), Result()
    process >> review
    review - "approved" >> result
    review - "rejected" >> process
    return AsyncFlow(start=process)
