"""Request and response bodies of the HTTP API."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from hitl.flow import content_hash
from hitl.service import AuditRow, QueueRow, ReviewRow, TaskRow, VoteRow, claim_holder

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


class TaskCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    input: JsonValue = Field(description="what to process: text, or any JSON value")
    flow: str | None = Field(None, description="a flow this server runs; default if omitted")
    assignees: list[str] | None = Field(
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
    comment_required: list[str] = Field(description="decisions that need a comment")
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
            dangerous=request.get("dangerous") or [],
            form=request.get("form") or [],
            form_values=_json(row.form_values),
            assignees=request.get("assignees") or [],
            claimed_by=claim_holder(row, time.time()),
            claimed_until=_time(row.claimed_until) if claim_holder(row, time.time()) else None,
            quorum=request.get("quorum") or 1,
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

    @classmethod
    def of(
        cls,
        row: TaskRow,
        reviews: list[ReviewRow] | None = None,
        may_decide: Callable[[ReviewRow], bool] | None = None,
        traceback: bool = False,
    ) -> TaskPublic:
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
            reviews=[ReviewPublic.of(r, may_decide(r) if may_decide else None) for r in reviews]
            if reviews is not None
            else None,
            traceback=row.traceback if traceback else None,
        )


class TasksPublic(BaseModel):
    data: list[TaskPublic]
    count: int


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


class BulkDecisionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    review_ids: list[str] = Field(min_length=1, max_length=100, description="1 to 100 reviews")
    decision: Literal["approve", "reject"]
    comment: str | None = Field(
        None, pattern="^[^\x00]*$", description="the same comment on each decision"
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
