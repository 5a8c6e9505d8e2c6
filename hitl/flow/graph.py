"""Stable identifiers for the nodes of a PocketFlow graph.

A checkpoint names a position by node ids, so the ids must be the same every time the same
flow factory builds the graph: they come from a depth-first walk from the start node in the
order successors were added. A node may set `name` to choose its own id.
"""

from __future__ import annotations

from typing import Any

from pocketflow import BaseNode


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
