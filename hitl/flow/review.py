"""The human review node: what a reviewer sees, and what they decided."""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal, get_args

from pocketflow import AsyncNode

DEFAULT_DECISIONS = ("approve", "edit", "reject")
DEADLINE_COMMENT = "no decision by the deadline: {} by default"  # a deadline's own comment
ESCALATE = "escalate"  # an `on_deadline` or `on_max_rounds`: ask `escalate_to` instead


FieldType = Literal["text", "number", "integer", "boolean", "choice"]
FIELD_TYPES: tuple[str, ...] = get_args(FieldType)


class FieldError(ValueError):
    """A `ReviewRequest` or form `Field` that cannot be: the message says why, and `field`
    names the attribute at fault (`on_deadline`, `form`, ...), for an API to point at."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class Field:
    """One field of a review's form: what a decision carries besides its comment.

    `decisions` names the decisions it belongs to (empty: every decision); `required` means
    those decisions must give it. `choices` is for `choice` fields; `min`/`max` bound numbers,
    `max_length` text.
    """

    name: str
    type: str = "text"
    label: str = ""
    required: bool = False
    choices: tuple[str, ...] = ()
    min: float | None = None
    max: float | None = None
    max_length: int | None = None
    decisions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.name or not self.name.replace("_", "").isalnum():
            raise FieldError(
                "name", f"a form field's name must be letters, digits or _: {self.name!r}"
            )
        if self.type not in FIELD_TYPES:
            raise FieldError(
                "type", f"field {self.name!r}: type must be one of {list(FIELD_TYPES)}"
            )
        if self.type == "choice" and not self.choices:
            raise FieldError("choices", f"field {self.name!r}: a choice field needs choices")

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type,
            "label": self.label,
            "required": self.required,
            "choices": list(self.choices),
            "min": self.min,
            "max": self.max,
            "max_length": self.max_length,
            "decisions": list(self.decisions),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Field:
        return cls(
            name=data["name"],
            type=data.get("type") or "text",
            label=data.get("label") or "",
            required=bool(data.get("required")),
            choices=tuple(data.get("choices") or ()),
            min=data.get("min"),
            max=data.get("max"),
            max_length=data.get("max_length"),
            decisions=tuple(data.get("decisions") or ()),
        )

    def check(self, value: Any) -> Any:
        """The value, as stored; ValueError saying what is wrong with it."""
        where = f"form.{self.name}"
        if self.type == "text":
            if not isinstance(value, str):
                raise ValueError(f"{where}: must be text")
            if self.max_length is not None and len(value) > self.max_length:
                raise ValueError(f"{where}: at most {self.max_length} characters")
            return value
        if self.type == "boolean":
            if not isinstance(value, bool):
                raise ValueError(f"{where}: must be true or false")
            return value
        if self.type == "choice":
            if value not in self.choices:
                raise ValueError(f"{where}: must be one of {list(self.choices)}")
            return value
        # (A whole number of any size is finite; math.isfinite cannot take one past a float.)
        number = isinstance(value, int) or isinstance(value, float) and math.isfinite(value)
        if not number or isinstance(value, bool):
            raise ValueError(f"{where}: must be a number")
        if self.type == "integer" and value != int(value):
            raise ValueError(f"{where}: must be a whole number")
        if self.min is not None and value < self.min:
            raise ValueError(f"{where}: must be at least {bound(self.min)}")
        if self.max is not None and value > self.max:
            raise ValueError(f"{where}: must be at most {bound(self.max)}")
        return int(value) if self.type == "integer" else value


def bound(number: float) -> str:
    """A field's bound as a person reads it: 1234567, not 1.23457e+06; 2.5 as 2.5."""
    return str(int(number)) if float(number).is_integer() else repr(number)


def content_hash(output: Any) -> str:
    """The SHA-256 of the output a reviewer is shown (as canonical JSON): a decision names it,
    so that a decision made on other content is refused."""
    text = json.dumps(output, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def comment_asked(request: Mapping[str, Any]) -> list[str]:
    """The decisions that a person deciding a review through a page or the CLI must explain:
    those its `comment_required` names, and a rejection, whose comment the next revision is
    given (what to change). `request` is the review's request as stored (`to_json`).

    The pages and the CLI read this from the API (`comment_asked` of a review) and ask for the
    comment before they send. The API itself refuses only what `comment_required` names
    (`ReviewRequest.check`): the cookbook's `/feedback` carries no comment, and a program may
    reject without one."""
    named = request.get("comment_required") or ()
    decisions = request.get("decisions") or DEFAULT_DECISIONS  # as `from_json` reads them
    return [d for d in decisions if d == "reject" or d in named]


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
    comment_required: tuple[str, ...] = ()  # decisions that need a comment
    dangerous: tuple[str, ...] = ()  # decisions the page asks to confirm
    form: tuple[Field, ...] = ()
    assignees: tuple[str, ...] = ()  # user names, and roles as "role:NAME"; empty: any reviewer
    quorum: int = 1  # approvals (from different people) that decide it
    reject_ends_round: bool = True  # one rejection decides it; else `quorum` of them
    max_rounds: int | None = None  # a review past this many rounds fails, or escalates
    on_max_rounds: str = "fail"  # "fail" | "escalate" (to `escalate_to`)
    escalate_to: tuple[str, ...] = ()  # who is asked when it escalates (names, role:NAME)
    bulk: bool = False  # may it be decided with others at once, from the queue?

    def __post_init__(self) -> None:
        if self.max_rounds is not None and (
            not isinstance(self.max_rounds, int) or self.max_rounds < 1
        ):
            raise FieldError(
                "max_rounds",
                f"max_rounds must be a whole number of at least 1: {self.max_rounds!r}",
            )
        if self.on_max_rounds not in ("fail", ESCALATE):
            raise FieldError(
                "on_max_rounds",
                f"on_max_rounds must be 'fail' or 'escalate': {self.on_max_rounds!r}",
            )
        if self.on_max_rounds == ESCALATE and not self.escalate_to:
            raise FieldError(
                "escalate_to", "on_max_rounds 'escalate' needs escalate_to: who to ask next"
            )
        if not isinstance(self.quorum, int) or not 1 <= self.quorum <= 50:
            raise FieldError(
                "quorum", f"quorum must be a whole number from 1 to 50, not {self.quorum!r}"
            )
        for what in ("comment_required", "dangerous"):
            unknown = [d for d in getattr(self, what) if d not in self.decisions]
            if unknown:
                raise FieldError(what, f"{what} names decisions this review lacks: {unknown}")
        if any("," in a or not a.strip() for a in self.assignees):
            raise FieldError(
                "assignees", f"assignees must be names without commas: {list(self.assignees)}"
            )
        names = [f.name for f in self.form]
        if len(set(names)) != len(names):
            raise FieldError("form", f"the form names a field twice: {names}")
        for f in self.form:
            if any(d not in self.decisions for d in f.decisions):
                raise FieldError("form", f"field {f.name!r} names decisions this review lacks")
        if self.deadline_seconds is not None and not self.deadline_seconds > 0:
            raise FieldError(
                "deadline_seconds", f"deadline_seconds must be > 0, not {self.deadline_seconds!r}"
            )
        if self.on_deadline is not None:
            if self.deadline_seconds is None:
                raise FieldError("on_deadline", "on_deadline needs deadline_seconds")
            if self.on_deadline == ESCALATE:
                if not self.escalate_to:
                    raise FieldError(
                        "escalate_to", "on_deadline 'escalate' needs escalate_to: who to ask next"
                    )
            elif self.on_deadline not in self.decisions or self.on_deadline == "edit":
                raise FieldError(
                    "on_deadline",
                    f"on_deadline must be one of the decisions {list(self.decisions)} other "
                    f"than 'edit', not {self.on_deadline!r}",
                )

    def check_deadline(self) -> ReviewRequest:
        """This request, if its deadline's default can be made: when the deadline passes, with
        a comment that says so and no form. Checked where a request is asked for (a node's,
        a standalone review's), not where one is read back: one stored before stays readable,
        and its deadline fails its task instead."""
        if self.on_deadline is None or self.on_deadline == ESCALATE:
            return self
        try:
            self.check(self.on_deadline, DEADLINE_COMMENT, None)
        except ValueError as exc:
            raise FieldError(
                "on_deadline",
                f"on_deadline {self.on_deadline!r} could never be applied: nobody fills in the "
                f"form when the deadline passes ({exc}); make that field optional, or choose "
                "another on_deadline",
            ) from None
        return self

    def to_json(self) -> dict[str, Any]:
        return {
            "output": self.output,
            "decisions": list(self.decisions),
            "prompt": self.prompt,
            "deadline_seconds": self.deadline_seconds,
            "on_deadline": self.on_deadline,
            "allow_self_review": self.allow_self_review,
            "comment_required": list(self.comment_required),
            "dangerous": list(self.dangerous),
            "form": [f.to_json() for f in self.form],
            "assignees": list(self.assignees),
            "quorum": self.quorum,
            "reject_ends_round": self.reject_ends_round,
            "max_rounds": self.max_rounds,
            "on_max_rounds": self.on_max_rounds,
            "escalate_to": list(self.escalate_to),
            "bulk": self.bulk,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ReviewRequest:
        """A request from its JSON (`to_json`), or from the dict a review node's `prep`
        returned (whose form may hold `Field`s)."""
        return cls(
            output=data.get("output"),
            decisions=tuple(data.get("decisions") or DEFAULT_DECISIONS),
            prompt=data.get("prompt") or "",
            deadline_seconds=data.get("deadline_seconds"),
            on_deadline=data.get("on_deadline"),
            allow_self_review=bool(data.get("allow_self_review")),
            comment_required=tuple(data.get("comment_required") or ()),
            dangerous=tuple(data.get("dangerous") or ()),
            form=tuple(
                f if isinstance(f, Field) else Field.from_json(f) for f in data.get("form") or ()
            ),
            assignees=tuple(data.get("assignees") or ()),
            quorum=data.get("quorum") or 1,
            reject_ends_round=data.get("reject_ends_round", True) is not False,
            max_rounds=data.get("max_rounds"),
            on_max_rounds=data.get("on_max_rounds") or "fail",
            escalate_to=tuple(data.get("escalate_to") or ()),
            bulk=bool(data.get("bulk")),
        )

    def check(
        self, action: str, comment: str | None, form: dict[str, Any] | None
    ) -> dict[str, Any] | None:
        """The form's values for a decision `action`, checked; ValueError naming what is
        missing or wrong. (That `action` is allowed at all is the caller's check.)"""
        if action in self.comment_required and not (comment or "").strip():
            raise ValueError(f"comment: this review needs a comment to {action}")
        fields = {f.name: f for f in self.form if not f.decisions or action in f.decisions}
        given = dict(form or {})
        unknown = sorted(set(given) - set(fields))
        if unknown:
            known = ", ".join(fields) or "none"
            raise ValueError(f"form.{unknown[0]}: no such field for {action} (fields: {known})")
        values: dict[str, Any] = {}
        for name, f in fields.items():
            if given.get(name) is None:
                if f.required:
                    raise ValueError(f"form.{name}: required to {action}")
                continue
            values[name] = f.check(given[name])
        return values or None

    @classmethod
    def coerce(cls, value: Any, node: HumanReview | None = None) -> ReviewRequest:
        """Accept what a review node's `prep` returned: a request, a dict, or the output; the
        node's `decisions` and deadline fill in what it did not say."""
        decisions = tuple(node.decisions) if node is not None else DEFAULT_DECISIONS
        if isinstance(value, ReviewRequest):
            request = value
        elif isinstance(value, dict) and "output" in value:
            request = cls.from_json({**value, "decisions": value.get("decisions") or decisions})
        else:
            request = cls(output=value, decisions=decisions)
        if node is None:
            return request.check_deadline()
        # What the node declares, where its prep said nothing: in one step, since the fields
        # are checked together (an escalating deadline needs someone to escalate to).
        own = request.deadline_seconds is not None or not node.deadline_seconds
        return replace(
            request,
            deadline_seconds=request.deadline_seconds if own else node.deadline_seconds,
            on_deadline=request.on_deadline if own else node.on_deadline,
            allow_self_review=request.allow_self_review or node.allow_self_review,
            comment_required=request.comment_required or tuple(node.comment_required),
            dangerous=request.dangerous or tuple(node.dangerous),
            form=request.form or tuple(node.form),
            assignees=request.assignees or tuple(node.assignees),
            quorum=request.quorum if request.quorum != 1 else node.quorum,
            reject_ends_round=request.reject_ends_round and node.reject_ends_round,
            max_rounds=request.max_rounds or node.max_rounds,
            on_max_rounds=(request.on_max_rounds if request.max_rounds else node.on_max_rounds),
            escalate_to=request.escalate_to or tuple(node.escalate_to),
            bulk=request.bulk or node.bulk,
        ).check_deadline()
        return request


@dataclass(frozen=True)
class Decision:
    """A person's answer to a `ReviewRequest`."""

    action: str
    comment: str | None = None
    edited_output: Any = None
    decided_by: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    form: dict[str, Any] = field(default_factory=dict)  # the review form's values

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
    lets them, for this node. `comment_required` and `dangerous` name decisions that need a
    comment, or a confirmation on the page; `form` is a tuple of `Field`s that decisions carry
    (checked by the server, handed to `post` as `Decision.form`); `assignees` names who may
    decide (user names, and roles as "role:NAME"; admins always may). With `quorum = k`,
    k different people must approve; one rejection decides it at once, unless
    `reject_ends_round = False` (then k rejections do). `max_rounds` caps the rounds: past it
    the task fails, or (`on_max_rounds = "escalate"`) the review goes to `escalate_to`; a
    deadline can escalate too (`on_deadline = "escalate"`). `bulk = True` lets reviewers
    approve or reject several of its reviews at once (each is still its own decision).
    """

    decisions: tuple[str, ...] = DEFAULT_DECISIONS
    deadline_seconds: float | None = None
    on_deadline: str | None = None
    allow_self_review: bool = False
    comment_required: tuple[str, ...] = ()
    dangerous: tuple[str, ...] = ()
    form: tuple[Field, ...] = ()
    assignees: tuple[str, ...] = ()
    quorum: int = 1
    reject_ends_round: bool = True
    max_rounds: int | None = None
    on_max_rounds: str = "fail"
    escalate_to: tuple[str, ...] = ()
    bulk: bool = False

    def prep(self, shared: dict[str, Any]) -> Any:
        return ReviewRequest(output=None, decisions=self.decisions)

    def post(self, shared: dict[str, Any], prep_res: Any, exec_res: Any) -> Any:
        decision: Decision = exec_res
        return decision.action

    async def prep_async(self, shared: dict[str, Any]) -> Any:
        return self.prep(shared)

    async def post_async(self, shared: dict[str, Any], prep_res: Any, exec_res: Any) -> Any:
        return self.post(shared, prep_res, exec_res)
