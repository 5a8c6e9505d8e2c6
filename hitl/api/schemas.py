"""Request and response bodies of the HTTP API."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, ValidationError, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from hitl.flow import Field as FormField
from hitl.flow import comment_asked, content_hash, standalone
from hitl.flow.review import DEFAULT_DECISIONS, FieldError, FieldType
from hitl.service import (
    CHANNEL_NAME,
    CHANNEL_NAME_RULE,
    AuditRow,
    ChannelRow,
    DeliveryRow,
    Graph,
    GraphEdge,
    GraphNode,
    QueueRow,
    ReviewRow,
    TaskRow,
    VoteRow,
    claim_holder,
    shown_url,
)

# What a decision was made on, as its client says: a decision on another round or other
# content is refused (409).
SeenRound = Annotated[
    int | None,
    Field(ge=1, le=2**31 - 1, description="the round that was shown"),
]
SeenHash = Annotated[
    str | None,
    Field(pattern="^[0-9a-f]{64}$", description="the `content_hash` of the review as shown"),
]


def _time(ts: float | None) -> datetime | None:
    return datetime.fromtimestamp(ts, UTC) if ts is not None else None


def _json(text: str | None) -> Any:
    return json.loads(text) if text is not None else None


# A user's name, or role:NAME: it is stored as text of its own (no NUL, which PostgreSQL's
# text cannot hold); the service checks the rest (`_check_assignees`).
Name = Annotated[str, Field(pattern="^[^\x00]*$")]


class TaskCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    input: JsonValue = Field(description="what to process: text, or any JSON value")
    flow: str | None = Field(None, description="a flow this server runs; default if omitted")
    assignees: list[Name] | None = Field(
        None,
        max_length=50,
        description="who decides its reviews where a review node names none: user names, "
        "and roles as role:NAME",
    )


class VotePublic(BaseModel):
    voter: str
    decision: str
    at: datetime
    comment: str | None
    form_values: dict[str, Any] | None

    @classmethod
    def of(cls, row: VoteRow) -> VotePublic:
        return cls(
            voter=row.voter,
            decision=row.decision,
            at=datetime.fromtimestamp(row.at, UTC),
            comment=row.comment,
            form_values=_json(row.form_values),
        )


class ReviewPublic(BaseModel):
    id: str
    task_id: str
    round: int
    status: str
    node: str
    output: Any
    decisions: list[str]
    prompt: str
    decision: str | None
    comment: str | None
    edited_output: Any
    decided_by: str | None
    on_behalf_of: str | None = Field(
        None, description="whose decision an admin recorded, when it was not their own"
    )
    decided_at: datetime | None
    deadline: datetime | None = Field(description="when the review is decided by default")
    on_deadline: str | None = Field(
        description="the decision the deadline makes; null: the deadline fails the task"
    )
    created_at: datetime
    content_hash: str = Field(
        description="SHA-256 of the output as shown (canonical JSON): send it with a decision"
    )
    comment_required: list[str] = Field(
        description="decisions the API refuses without a comment (422)"
    )
    comment_asked: list[str] = Field(
        description="decisions the pages and the CLI ask a comment for: those "
        "`comment_required` names, and a rejection (the next revision is told what to change)",
    )
    dangerous: list[str] = Field(description="decisions a page asks to confirm")
    form: list[dict[str, Any]] = Field(
        description="fields a decision carries: name, type, label, required, choices, min, "
        "max, max_length, decisions (empty: every decision)"
    )
    form_values: dict[str, Any] | None = Field(None, description="the decision's form values")
    assignees: list[str] = Field(
        description="who may decide it (user names, and roles as role:NAME); empty: any reviewer"
    )
    claimed_by: str | None = Field(None, description="who is reviewing it now")
    claimed_until: datetime | None = Field(None, description="when that claim ends")
    quorum: int = Field(description="approvals from different people that decide it")
    bulk: bool = Field(
        False, description="whether it may be decided with others at once (its node allows it)"
    )
    reject_ends_round: bool = Field(description="whether one rejection decides it")
    votes: list[VotePublic] | None = Field(
        None, description="the votes so far, when it needs several (one review's answers)"
    )
    may_decide: bool | None = Field(
        None,
        description="whether you may decide it (open, and you are a reviewer it is assigned "
        "to, not its task's submitter unless the node allows it); false: read-only for you",
    )
    flow: str | None = Field(None, description="its task's flow (in the queue's list)")
    input: Any = Field(None, description="its task's input (in the queue's list)")

    @classmethod
    def of(
        cls,
        row: ReviewRow,
        may_decide: bool | None = None,
        votes: list[VoteRow] | None = None,
    ) -> ReviewPublic:
        request = json.loads(row.request)
        holder = claim_holder(row, time.time())
        return cls(
            id=row.id,
            task_id=row.task_id,
            round=row.round,
            status=row.status,
            node=row.node,
            output=request.get("output"),
            decisions=request.get("decisions") or [],
            prompt=request.get("prompt") or "",
            decision=row.decision,
            comment=row.comment,
            edited_output=_json(row.edited_output),
            decided_by=row.decided_by,
            on_behalf_of=row.on_behalf_of,
            decided_at=_time(row.decided_at),
            deadline=_time(row.deadline),
            on_deadline=request.get("on_deadline"),
            created_at=_time(row.created_at),
            content_hash=content_hash(request.get("output")),
            comment_required=request.get("comment_required") or [],
            comment_asked=comment_asked(request),
            dangerous=request.get("dangerous") or [],
            form=request.get("form") or [],
            form_values=_json(row.form_values),
            assignees=request.get("assignees") or [],
            claimed_by=holder,
            claimed_until=_time(row.claimed_until) if holder else None,
            quorum=request.get("quorum") or 1,
            bulk=request.get("bulk") is True,
            reject_ends_round=request.get("reject_ends_round", True) is not False,
            votes=[VotePublic.of(v) for v in votes] if votes is not None else None,
            may_decide=may_decide,
            flow=row.flow if isinstance(row, QueueRow) else None,
            input=_json(row.task_input) if isinstance(row, QueueRow) else None,
        )


class ReviewsPublic(BaseModel):
    data: list[ReviewPublic]
    count: int


class TaskPublic(BaseModel):
    id: str
    flow: str
    status: str
    input: Any
    node: str | None
    round: int
    result: Any
    error: str | None
    created_by: str | None
    created_at: datetime
    updated_at: datetime
    reviews: list[ReviewPublic] | None = None
    traceback: str | None = Field(
        None, description="admins only: where a failed task's node raised its error"
    )
    may_cancel: bool | None = Field(
        None,
        description="whether you may cancel it now: it is queued, running or waiting, and you "
        "are an admin or the submitter who created it",
    )
    may_retry: bool | None = Field(
        None,
        description="whether you may retry it now: it failed, and you are an admin or the "
        "submitter who created it",
    )

    @classmethod
    def of(
        cls,
        row: TaskRow,
        reviews: list[ReviewRow] | None = None,
        may_decide: Callable[[ReviewRow], bool] | None = None,
        traceback: bool = False,
        may: Callable[[Literal["cancel", "retry"]], bool] | None = None,
        votes: dict[str, list[VoteRow]] | None = None,
    ) -> TaskPublic:
        """`may` says whether the caller may cancel or retry the task; `votes`, by review id,
        the votes on each review that needs several."""
        polls = votes or {}
        return cls(
            id=row.id,
            flow=row.flow,
            status=row.status,
            input=_json(row.input),
            node=row.node,
            round=row.round,
            result=_json(row.result),
            error=row.error,
            created_by=row.created_by,
            created_at=_time(row.created_at),
            updated_at=_time(row.updated_at),
            reviews=[
                ReviewPublic.of(r, may_decide(r) if may_decide else None, polls.get(r.id))
                for r in reviews
            ]
            if reviews is not None
            else None,
            traceback=row.traceback if traceback else None,
            may_cancel=may("cancel") if may else None,
            may_retry=may("retry") if may else None,
        )


class TasksPublic(BaseModel):
    data: list[TaskPublic]
    count: int


class FlowNodePublic(BaseModel):
    id: str = Field(
        description="its path from the flow: node ids joined by /, as a task's `node` says it"
    )
    name: str = Field(description="its id in its own flow")
    type: str = Field(description="its class")
    kind: Literal["node", "review", "flow"] = Field(
        description="review: a person decides there; flow: a flow used as a node, whose "
        "nodes name it as `parent`"
    )
    parent: str | None = Field(description="the nested flow it is in; null: the flow itself")
    start: bool = Field(description="whether its flow starts at it")

    @classmethod
    def of(cls, node: GraphNode) -> FlowNodePublic:
        return cls(
            id=node.id,
            name=node.name,
            type=node.type,
            kind=node.kind,
            parent=node.parent,
            start=node.start,
        )


class FlowEdgePublic(BaseModel):
    source: str = Field(description="the node's `id`")
    target: str = Field(description="where the flow goes on when `source` returns `action`")
    action: str

    @classmethod
    def of(cls, edge: GraphEdge) -> FlowEdgePublic:
        return cls(source=edge.source, target=edge.target, action=edge.action)


class FlowPublic(BaseModel):
    name: str
    default: bool = Field(description="whether a task that names no flow runs this one")
    nodes: list[FlowNodePublic] = Field(description="in the order of a walk from the start")
    edges: list[FlowEdgePublic] = Field(description="one per action of each node")

    @classmethod
    def of(cls, name: str, graph: Graph, default: bool) -> FlowPublic:
        return cls(
            name=name,
            default=default,
            nodes=[FlowNodePublic.of(n) for n in graph.nodes],
            edges=[FlowEdgePublic.of(e) for e in graph.edges],
        )


class DecisionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    decision: Literal["approve", "reject", "edit"]
    comment: str | None = Field(
        None, pattern="^[^\x00]*$", description="at most HITL_MAX_COMMENT_CHARS characters"
    )
    edited_output: JsonValue = Field(None, description="required for edit: the corrected output")
    on_behalf_of: str | None = Field(
        None,
        min_length=1,
        max_length=200,
        pattern="^[^\x00]*$",
        description="admins only: whose decision this is, when it is not the admin's own",
    )
    round: SeenRound = None
    content_hash: SeenHash = None
    form: dict[str, JsonValue] | None = Field(
        None, description="the review form's values, by field name (see the review's `form`)"
    )


class BulkSeen(BaseModel):
    model_config = ConfigDict(extra="forbid")

    round: SeenRound = None
    content_hash: SeenHash = None


class BulkDecisionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    review_ids: list[str] = Field(min_length=1, max_length=100, description="1 to 100 reviews")
    decision: Literal["approve", "reject"]
    comment: str | None = Field(
        None, pattern="^[^\x00]*$", description="the same comment on each decision"
    )
    seen: dict[str, BulkSeen] | None = Field(
        None,
        max_length=100,
        description="what was shown of each review, by review id (each one of `review_ids`): "
        "a review now on another round or other content is refused (409), as alone",
    )


class BulkResultPublic(BaseModel):
    review_id: str
    status: int = Field(description="200, or the status deciding this review alone would give")
    detail: str | None = Field(None, description="why it was not decided")
    review: ReviewPublic | None = None


class BulkDecisionsPublic(BaseModel):
    results: list[BulkResultPublic] = Field(description="one per review, in the order given")


class CancelRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str | None = Field(
        None,
        max_length=1000,
        pattern="^[^\x00]*$",
        description="why: in the task's task.cancelled event and the audit log",
    )


class ClaimCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    take_over: bool = Field(
        False, description="take the claim from whoever holds it now (they are told)"
    )


# -- standalone reviews (POST /api/v1/reviews) ---------------------------------------------------

DecisionName = Literal["approve", "reject", "edit"]
MAX_DEADLINE_SECONDS = 366 * 86_400 * 10  # ten years: a deadline is a date a person can meet


def _located(exc: FieldError, title: str) -> ValidationError:
    """A check of the flow layer's (`FieldError`) as pydantic's error at the field it names."""
    error = PydanticCustomError("value_error", "{message}", {"message": str(exc)})
    return ValidationError.from_exception_data(
        title, [InitErrorDetails(type=error, loc=(exc.field,), input=None)]
    )


class FormFieldCreate(BaseModel):
    """One field of a review's form (`hitl.flow.Field`)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(max_length=100, description="letters, digits or _; unique in the form")
    type: FieldType = "text"
    label: str = Field("", max_length=500, description="what the page shows")
    required: bool = Field(False, description="the decisions it belongs to must give it")
    choices: list[str] = Field(
        default_factory=list, max_length=100, description="a choice field's choices"
    )
    min: float | None = Field(None, allow_inf_nan=False, description="a number's least value")
    max: float | None = Field(None, allow_inf_nan=False, description="a number's greatest value")
    max_length: int | None = Field(None, ge=1, le=1_000_000, description="a text's longest")
    decisions: list[DecisionName] = Field(
        default_factory=list, description="the decisions it belongs to; empty: every decision"
    )

    @model_validator(mode="after")
    def _field(self) -> FormFieldCreate:
        try:
            FormField.from_json(self.model_dump())
        except FieldError as exc:
            raise _located(exc, type(self).__name__) from None
        return self


class ReviewCreate(BaseModel):
    """A review of anything, for a person to decide: what `hitl.flow.ReviewRequest` asks,
    as one request (`hitl.flow.standalone`)."""

    model_config = ConfigDict(extra="forbid")

    output: JsonValue = Field(description="what the person reviews: text, or any JSON value")
    prompt: str = Field("", max_length=10_000, description="what to look for, or the question")
    decisions: list[DecisionName] | None = Field(
        None,
        min_length=1,
        max_length=3,
        description=f"the decisions allowed (default: {', '.join(DEFAULT_DECISIONS)}); edit "
        "approves an edited output",
    )
    form: list[FormFieldCreate] = Field(
        default_factory=list, max_length=50, description="values a decision carries"
    )
    assignees: list[Name] = Field(
        default_factory=list,
        max_length=50,
        description="who may decide it: user names, and roles as role:NAME; empty: any reviewer",
    )
    deadline_seconds: float | None = Field(
        None,
        le=MAX_DEADLINE_SECONDS,
        allow_inf_nan=False,
        description="seconds until `on_deadline` decides it (or, without one, the task fails)",
    )
    on_deadline: str | None = Field(
        None,
        max_length=20,
        description="the decision the deadline makes (one of `decisions` other than edit), or "
        "escalate (to `escalate_to`)",
    )
    escalate_to: list[Name] = Field(
        default_factory=list, max_length=50, description="who is asked when it escalates"
    )
    comment_required: list[DecisionName] = Field(
        default_factory=list, description="decisions that need a comment"
    )
    dangerous: list[DecisionName] = Field(
        default_factory=list, description="decisions a page asks to confirm"
    )
    quorum: int = Field(1, ge=1, le=50, description="approvals from different people")
    reject_ends_round: bool = Field(True, description="whether one rejection decides it")
    bulk: bool = Field(False, description="whether it may be decided with others at once")

    @model_validator(mode="after")
    def _request(self) -> ReviewCreate:
        try:
            standalone.review_request(self.spec())
        except FieldError as exc:
            raise _located(exc, type(self).__name__) from None
        return self

    def spec(self) -> dict[str, Any]:
        """What was asked, without the defaults: the task's input."""
        return self.model_dump(exclude_defaults=True)


class ReviewLinks(BaseModel):
    task: str = Field(description="the task: its `result` is the decision, once made")
    events: str = Field(description="its event stream: `task.completed` carries the decision")
    page: str = Field(description="its web page, where a reviewer decides it")


class ReviewCreated(BaseModel):
    task_id: str = Field(description="the review's task; its review opens when a worker runs it")
    status: str
    links: ReviewLinks

    @classmethod
    def of(cls, row: TaskRow) -> ReviewCreated:
        task = f"/api/v1/tasks/{row.id}"
        links = ReviewLinks(task=task, events=f"{task}/events", page=f"/tasks/{row.id}")
        return cls(task_id=row.id, status=row.status, links=links)


class SubmitRequest(BaseModel):
    data: str = Field(..., min_length=1, description="input data for the task")


class SubmitResponse(BaseModel):
    message: str = "Task submitted"
    task_id: str


class FeedbackRequest(BaseModel):
    feedback: Literal["approved", "rejected"]
    round: SeenRound = None
    content_hash: SeenHash = None


class FeedbackResponse(BaseModel):
    message: str


class ErrorPublic(BaseModel):
    """Every error answer: `detail` says what is wrong and what to do; some answers add context
    (a 409 says the current `status`, say)."""

    model_config = ConfigDict(extra="allow")

    detail: str = Field(description="what is wrong, and what to do about it")


class ValidationProblem(BaseModel):
    loc: list[str | int] = Field(description="where: body, query, path or header, then the field")
    msg: str
    type: str


class ValidationErrorPublic(ErrorPublic):
    """A request that does not match its schema (then `errors` lists each problem), or one the
    service cannot carry out as asked (an unknown flow, an empty input, a bad Last-Event-ID)."""

    detail: str = Field(
        description="what to fix; `invalid request: ` and each problem if the schema was not met"
    )
    errors: list[ValidationProblem] = Field(
        default_factory=list, description="one item per field that does not match its schema"
    )


class ReadinessPublic(BaseModel):
    status: Literal["ok", "unavailable"]
    database: str = Field(description="the database's dialect, or why it does not answer")


class AuditEntryPublic(BaseModel):
    id: int
    at: datetime
    actor: str | None = Field(description="who did it; null: not signed in (a failed sign-in)")
    action: str = Field(description="e.g. sign_in, token.create, review.decide, task.cancel")
    target: str | None
    address: str | None = Field(description="the client's address")
    detail: JsonValue = Field(None, description="what else was recorded")

    @classmethod
    def of(cls, row: AuditRow) -> AuditEntryPublic:
        return cls(
            id=row.id or 0,
            at=datetime.fromtimestamp(row.at, UTC),
            actor=row.actor,
            action=row.action,
            target=row.target,
            address=row.address,
            detail=json.loads(row.detail) if row.detail else None,
        )


class AuditPublic(BaseModel):
    data: list[AuditEntryPublic]
    next_after: int | None = Field(
        description="pass as `after` for the next page; null: this was the last"
    )


# -- notification channels and their deliveries ------------------------------------------------

ChannelEvent = Literal[
    "task.created",
    "review.requested",
    "review.escalated",
    "review.deadline_near",
    "review.decided",
    "task.completed",
    "task.failed",
    "task.cancelled",
]


class ChannelCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(
        pattern=CHANNEL_NAME,
        description=CHANNEL_NAME_RULE,
    )
    kind: Literal["webhook", "apprise"] = Field(
        description="webhook: a JSON POST signed per Standard Webhooks; apprise: a message "
        "through an Apprise URL (Slack, Teams, Discord, mailto:, ...)"
    )
    url: str = Field(min_length=1, max_length=2000, pattern=r"^[^\x00-\x1f\s]+$")
    events: list[ChannelEvent] | None = Field(
        None,
        min_length=1,
        description="what it receives; default: reviews requested, escalated, near their "
        "deadline and decided, tasks completed and failed for a webhook; reviews requested, "
        "escalated and near their deadline for Apprise",
    )


class ChannelPublic(BaseModel):
    id: str
    name: str
    kind: str
    url: str = Field(description="an Apprise URL's passwords and tokens are hidden")
    events: list[str]
    created_at: datetime
    created_by: str | None
    removed_at: datetime | None

    @classmethod
    def of(cls, row: ChannelRow) -> ChannelPublic:
        return cls(
            id=row.id,
            name=row.name,
            kind=row.kind,
            url=shown_url(row),
            events=row.events.split(),
            created_at=datetime.fromtimestamp(row.created_at, UTC),
            created_by=row.created_by,
            removed_at=_time(row.disabled_at),
        )


class ChannelCreated(ChannelPublic):
    secret: str | None = Field(
        description="a webhook's signing secret (Standard Webhooks, whsec_...): shown only now"
    )


class ChannelsPublic(BaseModel):
    data: list[ChannelPublic]


class DeliveryPublic(BaseModel):
    id: str = Field(description="also its idempotency id: the webhook-id header is msg_<id>")
    channel: str
    event_id: int
    task_id: str
    type: str
    status: Literal["pending", "delivered", "failed"]
    attempts: int
    next_attempt_at: datetime | None = Field(description="when it is sent again, if pending")
    last_code: int | None = Field(description="the receiver's last HTTP status (webhooks)")
    last_error: str | None
    created_at: datetime
    done_at: datetime | None

    @classmethod
    def of(cls, row: DeliveryRow, channel: str) -> DeliveryPublic:
        return cls(
            id=row.id,
            channel=channel,
            event_id=row.event_id,
            task_id=row.task_id,
            type=row.type,
            status=row.status,
            attempts=row.attempts,
            next_attempt_at=_time(row.next_at) if row.status == "pending" else None,
            last_code=row.last_code,
            last_error=row.last_error,
            created_at=datetime.fromtimestamp(row.created_at, UTC),
            done_at=_time(row.done_at),
        )


class DeliveriesPublic(BaseModel):
    data: list[DeliveryPublic]
