"""The human review node: what a reviewer sees, and what they decided."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from pocketflow import AsyncNode

DEFAULT_DECISIONS = ("approve", "edit", "reject")


@dataclass(frozen=True)
class ReviewRequest:
    """What a `HumanReview` node asks a person to look at."""

    output: Any
    decisions: tuple[str, ...] = DEFAULT_DECISIONS
    prompt: str = ""

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["decisions"] = list(self.decisions)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ReviewRequest:
        return cls(
            output=data.get("output"),
            decisions=tuple(data.get("decisions") or DEFAULT_DECISIONS),
            prompt=data.get("prompt") or "",
        )

    @classmethod
    def coerce(cls, value: Any, decisions: tuple[str, ...] = DEFAULT_DECISIONS) -> ReviewRequest:
        """Accept what a review node's `prep` returned: a request, a dict, or the output."""
        if isinstance(value, ReviewRequest):
            return value
        if isinstance(value, dict) and "output" in value:
            return cls(
                output=value["output"],
                decisions=tuple(value.get("decisions") or decisions),
                prompt=value.get("prompt") or "",
            )
        return cls(output=value, decisions=decisions)


@dataclass(frozen=True)
class Decision:
    """A person's answer to a `ReviewRequest`."""

    action: str
    comment: str | None = None
    edited_output: Any = None
    decided_by: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def output(self) -> Any:
        """The edited output, for reviewers who changed it."""
        return self.edited_output


class HumanReview(AsyncNode):  # type: ignore[misc]
    """A node that suspends the flow until a person decides.

    Override `prep(shared)` to return what the reviewer sees (a `ReviewRequest`, a dict with an
    `output` key, or any JSON value), and `post(shared, request, decision)` to act on the
    `Decision` and return the next action. The async twins `prep_async` / `post_async` may be
    overridden instead. Nothing waits in memory: the runner suspends at this node and resumes
    it when the decision arrives, possibly in another process, days later.
    """

    decisions: tuple[str, ...] = DEFAULT_DECISIONS

    def prep(self, shared: dict[str, Any]) -> Any:
        return ReviewRequest(output=None, decisions=self.decisions)

    def post(self, shared: dict[str, Any], prep_res: Any, exec_res: Any) -> Any:
        decision: Decision = exec_res
        return decision.action

    async def prep_async(self, shared: dict[str, Any]) -> Any:
        return self.prep(shared)

    async def post_async(self, shared: dict[str, Any], prep_res: Any, exec_res: Any) -> Any:
        return self.post(shared, prep_res, exec_res)
