"""Flows that tests register by import path, as users do with --flow."""

from __future__ import annotations

from typing import Any

from pocketflow import AsyncFlow, Node


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
