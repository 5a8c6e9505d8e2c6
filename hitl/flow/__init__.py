"""The workflow engine: PocketFlow graphs, run durably one node at a time."""

from __future__ import annotations

import asyncio
from typing import Any

from pocketflow import BaseNode

from hitl.flow.checkpoint import Checkpoint, Frame, Position, Shared, SharedNotJSON, dump_shared
from hitl.flow.graph import Graph, GraphEdge, GraphNode, graph_of
from hitl.flow.reporting import ProgressSink, Reporting, Update, progress
from hitl.flow.review import (
    Decision,
    Field,
    HumanReview,
    ReviewRequest,
    comment_asked,
    content_hash,
)
from hitl.flow.runner import Completed, Outcome, Runner, Suspended

__all__ = [
    "Checkpoint",
    "Completed",
    "Decision",
    "Field",
    "Frame",
    "Graph",
    "GraphEdge",
    "GraphNode",
    "HumanReview",
    "Outcome",
    "Position",
    "ProgressSink",
    "Reporting",
    "ReviewRequest",
    "Runner",
    "SharedNotJSON",
    "Suspended",
    "Update",
    "comment_asked",
    "content_hash",
    "dump_shared",
    "graph_of",
    "progress",
    "run_flow",
    "run_flow_async",
]


class FlowSuspended(RuntimeError):
    """The flow reached a HumanReview node; run it through the service to get a decision."""


async def run_flow_async(flow: BaseNode, shared: Shared) -> Any:
    """Run a flow that has no review node to completion; return its last action."""
    outcome = await Runner(flow).run(shared)
    if isinstance(outcome, Suspended):
        raise FlowSuspended(
            f"the flow reached review node {outcome.position.node!r}; "
            "run_flow cannot wait for a person: submit the task to the hitl service instead"
        )
    return outcome.action


def run_flow(flow: BaseNode, shared: Shared) -> Any:
    """Synchronous `run_flow_async`, like PocketFlow's own `flow.run(shared)`."""
    return asyncio.run(run_flow_async(flow, shared))
