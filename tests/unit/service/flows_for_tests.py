"""Flows that tests register by import path, as users do with --flow."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

from pocketflow import AsyncFlow, Node

from hitl.flow import Field, HumanReview, ReviewRequest
from hitl.flow.default import Process, Result, Review


class PutsASet(Node):  # type: ignore[misc]
    def post(self, shared: dict[str, Any], prep_res: Any, exec_res: Any) -> str:
        shared["bad"] = {1, 2}
        return "default"


class Explodes(Node):  # type: ignore[misc]
    def exec(self, prep_res: Any) -> Any:
        raise ValueError("the model is down")


class Echo(Node):  # type: ignore[misc]
    def post(self, shared: dict[str, Any], prep_res: Any, exec_res: Any) -> str:
        shared["final_result"] = {"echo": shared["task_input"]}
        return "done"


def create_bad_flow() -> AsyncFlow:
    return AsyncFlow(start=PutsASet())


def create_exploding_flow() -> AsyncFlow:
    return AsyncFlow(start=Explodes())


def create_echo_flow() -> AsyncFlow:
    return AsyncFlow(start=Echo())


FAILED_ONCE: set[str] = set()


class FailsOnce(Node):  # type: ignore[misc]
    """Fails the first time it runs for a task, then succeeds: a flaky model, say."""

    message = "flaky"

    def prep(self, shared: dict[str, Any]) -> str:
        return str(shared["task_id"])

    def exec(self, task_id: str) -> str:
        if task_id not in FAILED_ONCE:
            FAILED_ONCE.add(task_id)
            raise RuntimeError(self.message)
        return "fine"

    def post(self, shared: dict[str, Any], prep_res: Any, exec_res: Any) -> str:
        shared["final_result"] = exec_res
        return "done"


def create_flaky_flow() -> AsyncFlow:
    return AsyncFlow(start=FailsOnce())


class Strict(HumanReview):  # type: ignore[misc]
    """A review its task's submitter may not decide (separation of duties, the default)."""

    def prep(self, shared: dict[str, Any]) -> ReviewRequest:
        return ReviewRequest(output=shared["task_input"], decisions=("approve", "reject"))

    def post(self, shared: dict[str, Any], request: Any, decision: Any) -> str:
        shared["final_result"] = request.output
        return "done"


def create_strict_flow() -> AsyncFlow:
    return AsyncFlow(start=Strict())


class CarefulReview(HumanReview):
    """A review that asks for a comment to reject, confirms a rejection, and carries a form."""

    decisions = ("approve", "reject")
    comment_required = ("reject",)
    dangerous = ("reject",)
    form = (
        Field("score", "integer", required=True, min=1, max=5, decisions=("approve",)),
        Field("reason", "choice", choices=("tone", "facts"), decisions=("reject",)),
        Field("note", "text", max_length=20),
    )
    allow_self_review = True

    def prep(self, shared: dict[str, Any]) -> Any:
        return {"output": f"draft of {shared['task_input']}", "prompt": "Score it."}

    def post(self, shared: dict[str, Any], prep_res: Any, exec_res: Any) -> str:
        shared["final_result"] = {"action": exec_res.action, "form": exec_res.form}
        return "done"


def create_careful_flow() -> AsyncFlow:
    return AsyncFlow(start=CarefulReview())


class RitasReview(HumanReview):
    """A review only rita (or an admin) may decide."""

    assignees = ("rita",)
    allow_self_review = True

    def prep(self, shared: dict[str, Any]) -> Any:
        return {"output": shared["task_input"]}


def create_ritas_flow() -> AsyncFlow:
    return AsyncFlow(start=RitasReview())


class PanelReview(HumanReview):
    """Two people must approve; one rejection decides it."""

    decisions = ("approve", "reject")
    quorum = 2
    allow_self_review = True

    def prep(self, shared: dict[str, Any]) -> Any:
        return {"output": shared["task_input"]}

    def post(self, shared: dict[str, Any], prep_res: Any, exec_res: Any) -> str:
        shared["final_result"] = {"action": exec_res.action, "by": exec_res.decided_by}
        return "done"


class PatientPanelReview(PanelReview):
    """Two people must approve, or two reject."""

    reject_ends_round = False


def create_panel_flow() -> AsyncFlow:
    return AsyncFlow(start=PanelReview())


def create_patient_panel_flow() -> AsyncFlow:
    return AsyncFlow(start=PatientPanelReview())


class Redraft(Node):  # type: ignore[misc]
    def post(self, shared: dict[str, Any], prep_res: Any, exec_res: Any) -> str:
        shared["drafts"] = int(shared.get("drafts", 0)) + 1
        return "default"


class CappedReview(HumanReview):
    """Two rounds at most: a third fails the task."""

    allow_self_review = True
    max_rounds = 2

    def prep(self, shared: dict[str, Any]) -> Any:
        return {"output": f"draft {shared.get('drafts')}"}


class EscalatingReview(CappedReview):
    """Past one round, or past its deadline, the review goes to the boss."""

    max_rounds = 1
    on_max_rounds = "escalate"
    escalate_to = ("boss",)
    deadline_seconds = 600
    on_deadline = "escalate"


def _looping(review: HumanReview) -> AsyncFlow:
    draft = Redraft()
    draft >> review
    review - "reject" >> draft
    return AsyncFlow(start=draft)


def create_capped_flow() -> AsyncFlow:
    return _looping(CappedReview())


def create_escalating_flow() -> AsyncFlow:
    return _looping(EscalatingReview())


class BulkReview(HumanReview):
    """Simple yes/no reviews that a reviewer may clear several at a time."""

    decisions = ("approve", "reject")
    bulk = True
    allow_self_review = True

    def prep(self, shared: dict[str, Any]) -> Any:
        return {"output": shared["task_input"]}


def create_bulk_flow() -> AsyncFlow:
    return AsyncFlow(start=BulkReview())


class Draft(Node):  # type: ignore[misc]
    """Writes a draft of the input, with every note a reviewer sent back."""

    name = "draft"

    def prep(self, shared: dict[str, Any]) -> tuple[str, list[str]]:
        return str(shared["task_input"]), list(shared.get("notes", []))

    def exec(self, prep_res: tuple[str, list[str]]) -> str:
        text, notes = prep_res
        return "\n".join([f"A draft of {text}.", *(f"Fixed: {n}." for n in notes)])

    def post(self, shared: dict[str, Any], prep_res: Any, exec_res: str) -> str:
        shared["draft"] = exec_res
        return "default"


class Approval(HumanReview):
    name = "approval"
    decisions = ("approve", "reject")
    allow_self_review = True

    def prep(self, shared: dict[str, Any]) -> Any:
        return {"output": shared["draft"], "prompt": "Approve the draft for publishing."}

    def post(self, shared: dict[str, Any], prep_res: Any, exec_res: Any) -> str:
        if exec_res.action == "reject":
            shared.setdefault("notes", []).append(exec_res.comment or "")
            return "rejected"
        return "approved"


class Ready(Node):  # type: ignore[misc]
    """The approved draft leaves its flow (PocketFlow warns of an action with no edge)."""

    name = "ready"

    def post(self, shared: dict[str, Any], prep_res: Any, exec_res: Any) -> str:
        return "approved"


class Drafting(AsyncFlow):  # type: ignore[misc]
    """A flow used as a node: draft, and ask for approval until it is given."""

    name = "drafting"


class Publish(FailsOnce):
    """Fails the first time (a jammed printer), then publishes the draft."""

    name = "publish"
    message = "the printer is jammed"

    def post(self, shared: dict[str, Any], prep_res: Any, exec_res: Any) -> str:
        shared["final_result"] = shared["draft"]
        return "done"


def create_publishing_flow() -> AsyncFlow:
    """drafting (draft → approval → ready, rejected → draft) → approved → publish."""
    draft, approval = Draft(), Approval()
    draft >> approval
    approval - "approved" >> Ready()
    approval - "rejected" >> draft
    drafting = Drafting(start=draft)
    drafting - "approved" >> Publish()
    return AsyncFlow(start=drafting)


class Gated(Process):
    """The default flow's processor, held until a test opens its gate: revision N waits for
    the file `N` in the directory that HITL_TEST_GATE names. So a test sees a task queued or
    running for as long as it looks, and no timer decides what it sees."""

    async def exec_async(self, prep_res: tuple[str, list[str], int]) -> str:
        gate = Path(os.environ["HITL_TEST_GATE"]) / str(prep_res[2] + 1)
        while not gate.exists():
            await asyncio.sleep(0.02)
        result: str = await super().exec_async(prep_res)
        return result


def create_gated_flow() -> AsyncFlow:
    """The default flow (`feedback`), with `Gated` for its processor."""
    process, review, result = Gated(0), Review(None, None), Result()
    process >> review
    review - "approved" >> result
    review - "rejected" >> process
    return AsyncFlow(start=process)
