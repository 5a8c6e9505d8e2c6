"""A model drafts, a person reviews, a rejection's comment goes into the next draft.

    draft ──> review ──approve/edit──> publish
      ^          │
      └─reject───┘

Serve it, with the model's OpenAI-compatible API in the environment:

    HITL_LLM_BASE_URL=http://127.0.0.1:11434/v1 HITL_LLM_MODEL=llama3.2 \\
        hitl serve --flow examples/llm_review.py:create_llm_review_flow --default-flow llm_review

(`HITL_LLM_API_KEY` too, if the API needs one.) Submit a request ("a haiku about queues"); its
task page shows the draft as the model writes it, and the tokens it took. Approve it, edit it,
or reject it with a comment: the model then sees its draft and the comment, and writes again.
The task's result is the approved text.
"""

from __future__ import annotations

from typing import Any

from pocketflow import AsyncFlow, AsyncNode

from hitl.flow import Decision, HumanReview, ReviewRequest
from hitl.llm import ChatNode


class Draft(ChatNode):
    name = "draft"
    system_prompt = (
        "You are a careful writer. Write what the user asks for, plainly and briefly. "
        "Reply with that text only."
    )


class Review(HumanReview):
    name = "review"
    decisions = ("approve", "edit", "reject")
    comment_required = ("reject",)  # the next draft needs to know what to change
    # A demo: one person submits and reviews. A team's flow leaves this False, so that
    # nobody approves their own request.
    allow_self_review = True

    async def prep_async(self, shared: dict[str, Any]) -> ReviewRequest:
        return ReviewRequest(
            output=shared.get("draft"),
            prompt="Approve the draft, edit it, or reject it with a comment for the next draft.",
        )

    async def post_async(
        self, shared: dict[str, Any], prep_res: ReviewRequest, exec_res: Decision
    ) -> str:
        if exec_res.action == "reject":
            rejected = {"draft": shared.get("draft"), "comment": exec_res.comment}
            shared.setdefault("feedback", []).append(rejected)
            return "reject"
        if exec_res.action == "edit":
            shared["draft"] = exec_res.edited_output
        return "approve"


class Publish(AsyncNode):  # type: ignore[misc]
    """The approved text is the task's result. (No successors: the flow ends here.)"""

    name = "publish"

    async def prep_async(self, shared: dict[str, Any]) -> Any:
        return shared.get("draft")

    async def post_async(self, shared: dict[str, Any], prep_res: Any, exec_res: Any) -> None:
        shared["final_result"] = prep_res


def create_llm_review_flow() -> AsyncFlow:
    draft, review, publish = Draft(), Review(), Publish()
    draft >> review
    review - "approve" >> publish
    review - "reject" >> draft
    return AsyncFlow(start=draft)
