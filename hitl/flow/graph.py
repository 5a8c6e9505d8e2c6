"""Stable identifiers for the nodes of a PocketFlow graph, and the graph as data.

A checkpoint names a position by node ids, so the ids must be the same every time the same
flow factory builds the graph: they come from a depth-first walk from the start node in the
order successors were added. A node may set `name` to choose its own id.

`graph_of` reads a whole flow, nested flows included, into nodes and edges (one per action)
for people to look at; a node's `id` there is its path of ids, as a task's `node` names it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pocketflow import BaseNode, Flow

from hitl.flow.review import HumanReview


class NodeIds:
    """Both directions between the nodes reachable in one flow and their ids."""

    def __init__(self, start: BaseNode | None) -> None:
        self.by_id: dict[str, BaseNode] = {}
        self._by_node: dict[int, str] = {}
        seen: dict[str, int] = {}
        stack = [start] if start is not None else []
        while stack:
            node = stack.pop()
            if id(node) in self._by_node:
                continue
            base = _base_name(node)
            seen[base] = seen.get(base, 0) + 1
            node_id = base if seen[base] == 1 else f"{base}#{seen[base]}"
            self.by_id[node_id] = node
            self._by_node[id(node)] = node_id
            stack.extend(reversed(list(node.successors.values())))

    def id_of(self, node: BaseNode) -> str:
        return self._by_node[id(node)]

    def node(self, node_id: str) -> BaseNode:
        try:
            return self.by_id[node_id]
        except KeyError:
            raise LookupError(
                f"node {node_id!r} is not in this flow; known nodes: {sorted(self.by_id)}"
            ) from None


def _base_name(node: Any) -> str:
    name = getattr(node, "name", None)
    return name if isinstance(name, str) and name else type(node).__name__


NodeKind = Literal["node", "review", "flow"]


@dataclass(frozen=True)
class GraphNode:
    """One node. `id` is its path from the root flow, ids joined by "/" (what a task's `node`
    says while it is there); `name` its id in its own flow; `parent` the path of the nested
    flow it is in (None: the root flow); `start` whether its flow starts at it."""

    id: str
    name: str
    type: str
    kind: NodeKind
    parent: str | None
    start: bool


@dataclass(frozen=True)
class GraphEdge:
    """`source` goes on to `target` when it returns `action`; both are in the same flow."""

    source: str
    target: str
    action: str


@dataclass(frozen=True)
class Graph:
    nodes: tuple[GraphNode, ...]
    edges: tuple[GraphEdge, ...]


def graph_of(flow: BaseNode) -> Graph:
    """Every node reachable in `flow` and in the flows nested in it, in the order of their
    ids' walk (each nested flow's nodes right after it), and every edge between them."""
    nodes: list[GraphNode] = []
    edges: list[GraphEdge] = []

    def walk(start: BaseNode | None, parent: str | None, within: frozenset[int]) -> None:
        ids = NodeIds(start)
        prefix = f"{parent}/" if parent is not None else ""
        for name, node in ids.by_id.items():
            path = prefix + name
            nodes.append(
                GraphNode(path, name, type(node).__name__, _kind(node), parent, node is start)
            )
            for action, successor in node.successors.items():
                edges.append(GraphEdge(path, prefix + ids.id_of(successor), str(action)))
            # A flow that (oddly) holds itself is drawn once, not followed forever.
            if isinstance(node, Flow) and id(node) not in within:
                walk(node.start_node, path, within | {id(node)})

    if isinstance(flow, Flow):
        walk(flow.start_node, None, frozenset({id(flow)}))
    else:
        walk(flow, None, frozenset())
    return Graph(tuple(nodes), tuple(edges))


def _kind(node: BaseNode) -> NodeKind:
    if isinstance(node, HumanReview):
        return "review"
    return "flow" if isinstance(node, Flow) else "node"
