"""The built-in `review` flow: a review for code that has no flow of its own.

`POST /api/v1/reviews` (and the client's `ask()`) submits a task of this flow whose input is
the review to ask for: `{"output": ..., "prompt": ..., "decisions": [...], "form": [...], ...}`.
Its one node asks exactly that, and the decision is the task's result (`final_result`):

    {"decision": "edit", "approved": true, "comment": "...", "edited_output": ...,
     "form": {...}, "decided_by": "rita", "output": <the edit, else the output shown>}

Being an ordinary task, it has the queue, claims, deadlines, audit, events and pages of any.
"""

from __future__ import annotations

from typing import Any

from pocketflow import AsyncFlow

from hitl.flow.review import Decision, FieldError, HumanReview, ReviewRequest

FLOW = "review"

# What whoever creates a standalone review may ask of it: a `ReviewRequest`'s fields that
# make sense for one request from its submitter. Not `allow_self_review` (nobody waives the
# separation of duties for their own request), nor `max_rounds`/`on_max_rounds` (it has one
# round: nothing loops back to it).
FIELDS = (
    "output",
    "prompt",
    "decisions",
    "form",
    "assignees",
    "deadline_seconds",
    "on_deadline",
    "escalate_to",
    "comment_required",
    "dangerous",
    "quorum",
    "reject_ends_round",
    "bulk",
)

APPROVALS = ("approve", "edit")  # the decisions that let the work go ahead


def review_request(spec: dict[str, Any]) -> ReviewRequest:
    """The review that `spec` asks for: an `output` (not null) and any of FIELDS, checked as
    every review request is; FieldError (a ValueError) names the field at fault."""
    if spec.get("output") is None:
        raise FieldError("output", "output: required: the text or JSON value to review")
    unknown = sorted(set(spec) - set(FIELDS))
    if unknown:
        raise FieldError(
            unknown[0], f"{unknown[0]}: a review takes only these fields: {', '.join(FIELDS)}"
        )
    try:
        return ReviewRequest.from_json(spec).check_deadline()
    except FieldError:
        raise
    except (KeyError, TypeError, AttributeError) as exc:  # a form field given as text, say
        raise FieldError("form", f"form: each field is an object with a name ({exc!r})") from None


def standalone_request(value: Any) -> ReviewRequest:
    """What a task of this flow asks: its input, as `review_request` reads it if it is a dict
    with an `output`; else the input itself is the output, with the default decisions (a task
    submitted to this flow by name)."""
    if isinstance(value, dict) and "output" in value:
        return review_request(value)
    return ReviewRequest(output=value)


def answer(request: ReviewRequest, decision: Decision) -> dict[str, Any]:
    """The task's result: the decision, and the output as it was let through."""
    edited = decision.action == "edit"
    return {
        "decision": decision.action,
        "approved": decision.action in APPROVALS,
        "comment": decision.comment,
        "edited_output": decision.edited_output,
        "form": dict(decision.form),
        "decided_by": decision.decided_by,
        "output": decision.edited_output if edited else request.output,
    }


class Ask(HumanReview):
    """Asks what the task's input says (`standalone_request`); its decision is the result."""

    name = "review"

    async def prep_async(self, shared: dict[str, Any]) -> ReviewRequest:
        return standalone_request(shared.get("task_input"))

    async def post_async(
        self, shared: dict[str, Any], prep_res: ReviewRequest, exec_res: Decision
    ) -> str:
        shared["final_result"] = answer(prep_res, exec_res)
        return exec_res.action


def create_review_flow() -> AsyncFlow:
    """The `review` flow: one `Ask` node."""
    return AsyncFlow(start=Ask())
