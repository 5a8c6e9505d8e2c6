"""The human review node: what a reviewer sees, and what they decided."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from pocketflow import AsyncNode

DEFAULT_DECISIONS = ("approve", "edit", "reject")


@dataclass(frozen=True)
class ReviewRequest:
    """What a `HumanReview` node asks a person to look at.

    With `deadline_seconds`, a review nobody decides in time is decided for them: with the
    decision `on_deadline` (one of `decisions`, not `edit`), or, if that is None, by failing the
    task. The deadline fires once, whichever process notices it.
    """

    output: Any
    decisions: tuple[str, ...] = DEFAULT_DECISIONS
    prompt: str = ""
    deadline_seconds: float | None = None
    on_deadline: str | None = None
    allow_self_review: bool = False  # may the task's submitter decide it?

    def __post_init__(self) -> None:
        if self.deadline_seconds is not None and not self.deadline_seconds > 0:
            raise ValueError(f"deadline_seconds must be > 0, not {self.deadline_seconds!r}")
        if self.on_deadline is not None:
            if self.deadline_seconds is None:
                raise ValueError("on_deadline needs deadline_seconds")
            if self.on_deadline not in self.decisions or self.on_deadline == "edit":
                raise ValueError(
                    f"on_deadline must be one of the decisions {list(self.decisions)} other "
                    f"than 'edit', not {self.on_deadline!r}"
                )

    def to_json(self) -> dict[str, Any]:
        return {
            "output": self.output,
            "decisions": list(self.decisions),
            "prompt": self.prompt,
            "deadline_seconds": self.deadline_seconds,
            "on_deadline": self.on_deadline,
            "allow_self_review": self.allow_self_review,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ReviewRequest:
        return cls(
            output=data.get("output"),
            decisions=tuple(data.get("decisions") or DEFAULT_DECISIONS),
            prompt=data.get("prompt") or "",
            deadline_seconds=data.get("deadline_seconds"),
            on_deadline=data.get("on_deadline"),
            allow_self_review=bool(data.get("allow_self_review")),
        )

    @classmethod
    def coerce(cls, value: Any, node: HumanReview | None = None) -> ReviewRequest:
        """Accept what a review node's `prep` returned: a request, a dict, or the output; the
        node's `decisions` and deadline fill in what it did not say."""
        decisions = tuple(node.decisions) if node is not None else DEFAULT_DECISIONS
        if isinstance(value, ReviewRequest):
            request = value
        elif isinstance(value, dict) and "output" in value:
            request = cls(
                output=value["output"],
                decisions=tuple(value.get("decisions") or decisions),
                prompt=value.get("prompt") or "",
                deadline_seconds=value.get("deadline_seconds"),
                on_deadline=value.get("on_deadline"),
                allow_self_review=bool(value.get("allow_self_review")),
            )
        else:
            request = cls(output=value, decisions=decisions)
        if request.deadline_seconds is None and node is not None and node.deadline_seconds:
            request = replace(
                request, deadline_seconds=node.deadline_seconds, on_deadline=node.on_deadline
            )
        if node is not None and node.allow_self_review and not request.allow_self_review:
            request = replace(request, allow_self_review=True)
        return request


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

    `deadline_seconds` and `on_deadline` (class attributes, or set on an instance) give every
    request of this node a deadline, unless its `prep` set one: see `ReviewRequest`. By
    default nobody decides a review of a task they submitted; `allow_self_review = True`
    lets them, for this node.
    """

    decisions: tuple[str, ...] = DEFAULT_DECISIONS
    deadline_seconds: float | None = None
    on_deadline: str | None = None
    allow_self_review: bool = False

    def prep(self, shared: dict[str, Any]) -> Any:
        return ReviewRequest(output=None, decisions=self.decisions)

    def post(self, shared: dict[str, Any], prep_res: Any, exec_res: Any) -> Any:
        decision: Decision = exec_res
        return decision.action

    async def prep_async(self, shared: dict[str, Any]) -> Any:
        return self.prep(shared)

    async def post_async(self, shared: dict[str, Any], prep_res: Any, exec_res: Any) -> Any:
        return self.post(shared, prep_res, exec_res)
