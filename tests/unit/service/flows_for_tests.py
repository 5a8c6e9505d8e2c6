"""Flows that tests register by import path, as users do with --flow."""

from __future__ import annotations

from typing import Any

from pocketflow import AsyncFlow, Node

from hitl.flow import HumanReview, ReviewRequest


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
