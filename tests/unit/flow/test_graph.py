"""A flow read as a graph: its nodes (nested flows' too) and one edge per action, with ids that
are the paths a task's `node` names while it is there."""

from __future__ import annotations

from typing import Any

from pocketflow import AsyncFlow, Flow, Node

from hitl.flow import GraphEdge, GraphNode, Runner, Suspended, graph_of
from hitl.flow.default import create_feedback_flow
from tests.unit.service.flows_for_tests import create_publishing_flow


def edges(*triples: tuple[str, str, str]) -> tuple[GraphEdge, ...]:
    return tuple(GraphEdge(*t) for t in triples)


def test_the_default_flow() -> None:
    graph = graph_of(create_feedback_flow(0))
    assert graph.nodes == (
        GraphNode("process", "process", "Process", "node", None, True),
        GraphNode("review", "review", "Review", "review", None, False),
        GraphNode("result", "result", "Result", "node", None, False),
    )
    assert graph.edges == edges(
        ("process", "review", "default"),
        ("review", "result", "approved"),
        ("review", "process", "rejected"),
    )


def test_a_nested_flow_s_nodes_follow_it_and_name_it() -> None:
    graph = graph_of(create_publishing_flow())
    assert [(n.id, n.kind, n.parent, n.start) for n in graph.nodes] == [
        ("drafting", "flow", None, True),
        ("drafting/draft", "node", "drafting", True),
        ("drafting/approval", "review", "drafting", False),
        ("drafting/ready", "node", "drafting", False),
        ("publish", "node", None, False),
    ]
    assert graph.edges == edges(
        ("drafting", "publish", "approved"),
        ("drafting/draft", "drafting/approval", "default"),
        ("drafting/approval", "drafting/ready", "approved"),
        ("drafting/approval", "drafting/draft", "rejected"),
    )


async def test_a_node_s_id_is_the_path_a_task_is_at() -> None:
    """The runner's position, joined as the worker joins it into a task's `node`, is a node of
    the graph."""
    outcome = await Runner(create_publishing_flow()).run({"task_input": "the report"})
    assert isinstance(outcome, Suspended)
    ids = {n.id: n for n in graph_of(create_publishing_flow()).nodes}
    assert ids["/".join(outcome.position.path)].kind == "review"


class Step(Node):  # type: ignore[misc]
    def post(self, shared: dict[str, Any], prep_res: Any, exec_res: Any) -> str:
        return "default"


def test_ids_of_nodes_of_one_class_are_numbered_and_a_node_may_loop_to_itself() -> None:
    first, second = Step(), Step()
    first >> second
    second - "again" >> second
    graph = graph_of(Flow(start=first))
    assert [n.id for n in graph.nodes] == ["Step", "Step#2"]
    assert graph.edges == edges(("Step", "Step#2", "default"), ("Step#2", "Step#2", "again"))


def test_a_flow_inside_itself_is_read_once() -> None:
    step = Step()
    flow = AsyncFlow(start=step)
    step - "deeper" >> flow  # odd, but a graph: it must not be followed forever
    graph = graph_of(flow)
    assert [(n.id, n.kind) for n in graph.nodes] == [("Step", "node"), ("AsyncFlow", "flow")]
    assert graph.edges == edges(("Step", "AsyncFlow", "deeper"))


def test_a_lone_node_is_a_graph_of_one() -> None:
    graph = graph_of(Step())
    assert graph.nodes == (GraphNode("Step", "Step", "Step", "node", None, True),)
    assert graph.edges == ()
