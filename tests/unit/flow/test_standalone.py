"""The built-in `review` flow: it asks what its input says, and its result is the decision."""

from __future__ import annotations

from typing import Any

import pytest

from hitl.flow import Completed, Decision, Runner, Suspended
from hitl.flow.review import FieldError, comment_asked
from hitl.flow.standalone import create_review_flow, review_request, standalone_request


async def test_it_asks_what_the_input_says_and_returns_the_decision() -> None:
    spec = {
        "output": {"to": "all"},
        "prompt": "Send?",
        "decisions": ["approve", "edit", "reject"],
        "form": [{"name": "risk", "type": "choice", "choices": ["low", "high"]}],
        "assignees": ["role:legal"],
    }
    shared: dict[str, Any] = {"task_input": spec}
    asked = await Runner(create_review_flow()).run(shared)
    assert isinstance(asked, Suspended)
    assert asked.request.output == {"to": "all"} and asked.request.prompt == "Send?"
    assert asked.request.assignees == ("role:legal",) and not asked.request.allow_self_review
    assert [f.name for f in asked.request.form] == ["risk"]

    edit = Decision("edit", "to ops only", {"to": "ops"}, "rita", form={"risk": "low"})
    done = await Runner(create_review_flow()).run(shared, asked.position, edit)
    assert done == Completed("edit")
    assert shared["final_result"] == {
        "decision": "edit",
        "approved": True,
        "comment": "to ops only",
        "edited_output": {"to": "ops"},
        "form": {"risk": "low"},
        "decided_by": "rita",
        "output": {"to": "ops"},
    }


async def test_a_rejection_lets_nothing_through_but_says_what_was_asked() -> None:
    shared: dict[str, Any] = {"task_input": "plain text"}  # submitted by name: the output
    asked = await Runner(create_review_flow()).run(shared)
    assert isinstance(asked, Suspended) and asked.request.output == "plain text"
    no = Decision("reject", "no", decided_by="deadline")
    await Runner(create_review_flow()).run(shared, asked.position, no)
    result = shared["final_result"]
    assert result["approved"] is False and result["output"] == "plain text"


@pytest.mark.parametrize(
    "spec,field,message",
    [
        ({"output": None}, "output", "output: required"),
        ({"output": 1, "allow_self_review": True}, "allow_self_review", "takes only"),
        ({"output": 1, "max_rounds": 3}, "max_rounds", "takes only"),
        ({"output": 1, "on_deadline": "approve"}, "on_deadline", "needs deadline_seconds"),
        ({"output": 1, "form": ["score"]}, "form", "each field is an object"),
        ({"output": 1, "form": [{"name": "a b"}]}, "name", "letters, digits or _"),
        ({"output": 1, "quorum": 99}, "quorum", "from 1 to 50"),
    ],
)
def test_a_bad_request_names_its_field(spec: dict[str, Any], field: str, message: str) -> None:
    with pytest.raises(FieldError, match=message) as bad:
        review_request(spec)
    assert bad.value.field == field
    if "output" in spec and spec["output"] is not None:
        with pytest.raises(FieldError):
            standalone_request(spec)  # a dict with an output is read as a request, always


@pytest.mark.parametrize(
    ("spec", "asked"),
    [
        ({"output": 1}, ["reject"]),  # the default decisions: approve, edit, reject
        ({"output": 1, "comment_required": ["approve"]}, ["approve", "reject"]),
        ({"output": 1, "decisions": ["approve", "edit"], "comment_required": ["edit"]}, ["edit"]),
        ({"output": 1, "decisions": ["approve"]}, []),
    ],
)
def test_the_decisions_a_person_is_asked_to_explain(spec: dict[str, Any], asked: list[str]) -> None:
    """`comment_asked`, the one rule the pages and the CLI follow: what `comment_required`
    names, and a rejection, among the review's decisions; the API refuses only the former."""
    request = review_request(spec)
    assert comment_asked(request.to_json()) == asked
    for decision in asked:
        if decision not in request.comment_required:
            assert request.check(decision, None, None) is None  # the API takes it without one
        else:
            with pytest.raises(ValueError, match=f"needs a comment to {decision}"):
                request.check(decision, " ", None)
