"""Where a flow stands, in a form that survives a process: JSON all the way down."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

Shared = dict[str, Any]

# What is stored: compact JSON, NaN and Infinity refused (JSON has neither). One encoder,
# made once (`json.dumps` with these arguments makes a new one at every call).
compact = json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode


class SharedNotJSON(TypeError):
    """The shared store holds a value that is not JSON."""

    def __init__(self, key: str, value: Any) -> None:
        self.key = key
        super().__init__(
            f"shared[{key!r}] holds a {type(value).__name__}, which is not JSON; "
            "keep only JSON values (str, int, float, bool, None, lists and dicts) in shared"
        )


@dataclass(frozen=True)
class Frame:
    """One flow level on the way down to the current node.

    `node` is the id of this flow inside its parent ("" for the root flow), `prep` what the
    flow's own `prep` returned (the parameter list of a batch flow), `batch` the batch item
    being run.
    """

    node: str
    prep: Any = None
    batch: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"node": self.node, "prep": self.prep, "batch": self.batch}


@dataclass(frozen=True)
class Position:
    """The node that last finished (with its action), or the review node a flow waits at."""

    frames: tuple[Frame, ...]
    node: str
    action: str | None = None
    waiting: bool = False
    request: dict[str, Any] | None = None

    @property
    def path(self) -> list[str]:
        """The node ids from the root flow's child down to the current node."""
        return [f.node for f in self.frames[1:]] + [self.node]

    def to_json(self) -> dict[str, Any]:
        return {
            "frames": [f.to_json() for f in self.frames],
            "node": self.node,
            "action": self.action,
            "waiting": self.waiting,
            "request": self.request,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Position:
        return cls(
            frames=tuple(
                Frame(f["node"], f.get("prep"), f.get("batch", 0)) for f in data["frames"]
            ),
            node=data["node"],
            action=data.get("action"),
            waiting=bool(data.get("waiting")),
            request=data.get("request"),
        )


@dataclass(frozen=True)
class Checkpoint:
    position: Position
    shared: Shared = field(default_factory=dict)


def dump_shared(shared: Shared) -> str:
    """Serialise the shared store, naming the first key whose value is not JSON."""
    try:
        return compact(shared)
    except (TypeError, ValueError):
        pass
    for key, value in shared.items():
        try:
            json.dumps(value, allow_nan=False)
        except (TypeError, ValueError):
            raise SharedNotJSON(str(key), value) from None
    raise SharedNotJSON("<keys>", next(k for k in shared if not isinstance(k, str)))
