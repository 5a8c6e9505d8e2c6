"""Flows the test servers load with `--flow`: they run in the server process, not in pytest.

`gate`: one node that holds its worker until a file exists, then completes (no review). A task
of this flow on a server with `concurrency=1` keeps every later task `queued` for exactly as
long as a test wants, without relying on timing.
"""

from __future__ import annotations

import os
import time
from typing import Any

from pocketflow import Flow, Node

from hitl.flow import HumanReview, ReviewRequest
from tests.unit.service.flows_for_tests import FailsOnce

GATE_FLOW = "gate=tests.integration.flows:create_gate_flow"


class Gate(Node):  # type: ignore[misc]
    name = "gate"

    def prep(self, shared: dict[str, Any]) -> str:
        return str(shared["task_input"]["gate"])

    def exec(self, path: str) -> str:
        deadline = time.monotonic() + 60
        while not os.path.exists(path):
            if time.monotonic() > deadline:
                raise TimeoutError(f"gate {path} was never opened")
            time.sleep(0.02)
        return "open"

    def post(self, shared: dict[str, Any], prep_res: str, exec_res: str) -> str:
        shared["final_result"] = {"gate": exec_res}
        return "done"


def create_gate_flow() -> Flow:
    return Flow(start=Gate())


FLAKY_FLOW = "flaky=tests.integration.flows:create_flaky_flow"


class Drafts(FailsOnce):
    """`flaky`'s first node: fails the first time it runs for a task (a model that was down);
    then its draft goes to a person for review."""

    name = "draft"
    message = "the model is down"

    def post(self, shared: dict[str, Any], prep_res: str, exec_res: str) -> str:
        shared["draft"] = exec_res
        return "default"


class Check(HumanReview):
    name = "check"
    allow_self_review = True  # the tests' one client submits and decides

    def prep(self, shared: dict[str, Any]) -> ReviewRequest:
        return ReviewRequest(output=shared["draft"], decisions=("approve", "reject"))

    def post(self, shared: dict[str, Any], request: Any, decision: Any) -> str:
        shared["final_result"] = request.output
        return "done"


def create_flaky_flow() -> Flow:
    draft = Drafts()
    draft >> Check()
    return Flow(start=draft)
