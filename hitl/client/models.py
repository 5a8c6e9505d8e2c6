"""What the client returns: the server's answers as typed, read-only models (pydantic).

Each mirrors a body of the HTTP API (docs/api.md). Fields the server adds later are kept
(`model_extra`), so an older client reads a newer server's answers.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue
from typing_extensions import TypedDict

__all__ = [
    "Answer",
    "AuditEntry",
    "AuditLog",
    "Channel",
    "ChannelCreated",
    "Channels",
    "Deliveries",
    "Delivery",
    "DecisionName",
    "Event",
    "FormField",
    "ReviewCreated",
    "ReviewLinks",
    "ReviewOptions",
    "ReviewPage",
    "Review",
    "Task",
    "TaskPage",
    "Vote",
]

DecisionName = Literal["approve", "reject", "edit"]
FINAL_STATUSES = ("completed", "failed", "cancelled")


class Model(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)


class FormField(Model):
    """One field of a review's form: a value a decision carries. `type` is text, number,
    integer, boolean or choice; `decisions` names the decisions it belongs to (empty: all)."""

    name: str
    type: Literal["text", "number", "integer", "boolean", "choice"] = "text"
    label: str = ""
    required: bool = False
    choices: list[str] = Field(default_factory=list)
    min: float | None = None
    max: float | None = None
    max_length: int | None = None
    decisions: list[str] = Field(default_factory=list)

    def asked_for(self, decision: str) -> bool:
        """Whether a `decision` carries this field (`decisions` empty: every one does)."""
        return not self.decisions or decision in self.decisions

    def typed(self, text: str) -> JsonValue:
        """The value a person typed as `text`, as the task page sends what is typed into the
        field: without the spaces around it (as JavaScript trims them), a number field's as a
        number (as JavaScript's Number reads it, but a whole number exactly), a yes-or-no
        field's `yes`/`true` or `no`/`false` (any case) as true or false, text as typed; None
        for nothing typed. What cannot be read as its type goes as typed, for the server to
        say what is wrong with it."""
        trimmed = text.strip(_TRIMMED)
        if not trimmed:
            return None
        if self.type == "boolean":
            return {"true": True, "yes": True, "false": False, "no": False}.get(
                trimmed.lower(), text
            )
        if self.type in ("number", "integer"):
            return _number(trimmed, text)
        return trimmed if self.type == "choice" else text


# What JavaScript's String.prototype.trim takes off both ends (the task page trims so).
_TRIMMED = "\t\n\v\f\r \xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
_TRIMMED += "\u2028\u2029\u202f\u205f\u3000\ufeff"
# The numbers JavaScript's Number reads (ASCII digits only; no `_`): decimal, and 0x, 0o, 0b.
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_WHOLE = re.compile(r"[+-]?[0-9]+")
_PREFIXED = re.compile(r"0(?:[xX][0-9a-fA-F]+|[oO][0-7]+|[bB][01]+)")


def _number(trimmed: str, text: str) -> JsonValue:
    """`trimmed` as JavaScript's Number reads it, a whole number exact (JavaScript rounds one
    past 2**53); `text` if it is not a finite number."""
    try:
        if _PREFIXED.fullmatch(trimmed):
            return int(trimmed, 0)
        if _WHOLE.fullmatch(trimmed):
            return int(trimmed)
    except ValueError:  # over Python's 4,300 digits: read as a float, past its range
        pass
    if _DECIMAL.fullmatch(trimmed):
        number = float(trimmed)
        if math.isfinite(number):
            # JSON.stringify writes a whole number below 1e21 without a point: so the page
            # sends 1e3 as 1000, and the server stores that, not 1000.0.
            return int(number) if number.is_integer() and abs(number) < 1e21 else number
    return text


class Vote(Model):
    voter: str
    decision: str
    at: datetime
    comment: str | None = None
    form_values: dict[str, JsonValue] | None = None


class Review(Model):
    """One review round: what a person is asked, and what they decided."""

    id: str
    task_id: str
    round: int
    status: str  # open, decided, expired, cancelled
    node: str
    output: JsonValue = None
    decisions: list[str] = Field(default_factory=list)
    prompt: str = ""
    decision: str | None = None
    comment: str | None = None
    edited_output: JsonValue = None
    decided_by: str | None = None
    on_behalf_of: str | None = None
    decided_at: datetime | None = None
    deadline: datetime | None = None
    on_deadline: str | None = None
    created_at: datetime
    content_hash: str
    comment_required: list[str] = Field(default_factory=list)
    comment_asked: list[str] = Field(default_factory=list)
    dangerous: list[str] = Field(default_factory=list)
    form: list[FormField] = Field(default_factory=list)
    form_values: dict[str, JsonValue] | None = None
    assignees: list[str] = Field(default_factory=list)
    claimed_by: str | None = None
    claimed_until: datetime | None = None
    quorum: int = 1
    bulk: bool = False
    reject_ends_round: bool = True
    votes: list[Vote] | None = None
    may_decide: bool | None = None
    flow: str | None = None  # the task's, in the queue's list
    input: JsonValue = None  # the task's, in the queue's list

    def form_for(self, decision: str, typed: Mapping[str, str]) -> dict[str, JsonValue]:
        """The form values a `decision` sends, from the text typed for fields by name, as the
        task page sends its form: each as its field takes it (`FormField.typed`), the empty
        ones left out, and a yes-or-no field false unless given (the page's unticked box). A
        name that is no field of the decision goes as typed, for the server to refuse."""
        fields = {f.name: f for f in self.form if f.asked_for(decision)}
        values: dict[str, JsonValue] = {}
        for name, field in fields.items():
            value = field.typed(typed.get(name, ""))
            if value is not None:
                values[name] = value
            elif field.type == "boolean":
                values[name] = False
        values.update({name: text for name, text in typed.items() if name not in fields})
        return values


class Task(Model):
    """A task, with its review rounds when read alone (`get_task`)."""

    id: str
    flow: str
    status: str  # queued, running, waiting_for_review, completed, failed, cancelled
    input: JsonValue = None
    node: str | None = None
    round: int = 0
    result: JsonValue = None
    error: str | None = None
    created_by: str | None = None
    created_at: datetime
    updated_at: datetime
    reviews: list[Review] | None = None
    traceback: str | None = None
    may_cancel: bool | None = None
    may_retry: bool | None = None

    @property
    def finished(self) -> bool:
        """Whether it is completed, failed or cancelled."""
        return self.status in FINAL_STATUSES

    @property
    def open_review(self) -> Review | None:
        """Its open review round, if it is waiting for one (read alone: `get_task`)."""
        return next((r for r in reversed(self.reviews or []) if r.status == "open"), None)


class TaskPage(Model):
    data: list[Task]
    count: int


class ReviewPage(Model):
    data: list[Review]
    count: int


class ReviewLinks(Model):
    task: str
    events: str
    page: str


class ReviewCreated(Model):
    """A standalone review, just made: its task, which asks for the review when it runs."""

    task_id: str
    status: str
    links: ReviewLinks


class Answer(Model):
    """A person's decision on a standalone review (`ask`): the task's result."""

    task_id: str
    decision: str
    approved: bool = Field(description="approve or edit: the work may go ahead")
    comment: str | None = None
    edited_output: JsonValue = None
    form: dict[str, JsonValue] = Field(default_factory=dict)
    decided_by: str | None = None
    output: JsonValue = Field(None, description="what was let through: the edit, else as asked")


class Event(Model):
    """One event of a task's stream: `type` is task.created, review.requested, ...,
    task.completed (docs/api.md, "Event streams"); `id` its place in the log."""

    id: int | None
    type: str
    data: dict[str, JsonValue]


class AuditEntry(Model):
    id: int
    at: datetime
    actor: str | None = None
    action: str
    target: str | None = None
    address: str | None = None
    detail: JsonValue = None


class AuditLog(Model):
    data: list[AuditEntry]
    next_after: int | None = None


class Channel(Model):
    id: str
    name: str
    kind: str
    url: str
    events: list[str]
    created_at: datetime
    created_by: str | None = None
    removed_at: datetime | None = None


class ChannelCreated(Channel):
    secret: str | None = None


class Channels(Model):
    data: list[Channel]


class Delivery(Model):
    id: str
    channel: str
    event_id: int
    task_id: str
    type: str
    status: str
    attempts: int
    next_attempt_at: datetime | None = None
    last_code: int | None = None
    last_error: str | None = None
    created_at: datetime
    done_at: datetime | None = None


class Deliveries(Model):
    data: list[Delivery]


class ReviewOptions(TypedDict, total=False):
    """What a standalone review asks besides its output (`create_review`, `ask`,
    `require_approval`); each is as in docs/flows.md, "Human review"."""

    prompt: str
    decisions: Sequence[DecisionName]
    form: Sequence[FormField]
    assignees: Sequence[str]
    deadline_seconds: float
    on_deadline: str
    escalate_to: Sequence[str]
    comment_required: Sequence[DecisionName]
    dangerous: Sequence[DecisionName]
    quorum: int
    reject_ends_round: bool
    bulk: bool
