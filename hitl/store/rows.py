"""The rows the store reads and writes, typed: one dataclass per table.

Field order is column order: statements name these columns explicitly (`queries.columns`), so a
driver row becomes a dataclass with one positional call. JSON values stay text, as stored; the
service parses what it needs.
"""

from __future__ import annotations

from dataclasses import dataclass, fields


@dataclass(slots=True)
class TaskRow:
    id: str
    flow: str
    status: str
    input: str  # JSON text
    shared: str  # JSON text: the flow's shared store at the last checkpoint
    created_at: float
    updated_at: float
    position: str | None = None  # JSON text: where the flow stands (`hitl.flow.Position`)
    node: str | None = None
    round: int = 0
    result: str | None = None  # JSON text
    error: str | None = None
    created_by: str | None = None
    lease_owner: str | None = None
    lease_expires_at: float | None = None
    claims: int = 0
    idempotency_key: str | None = None
    request_hash: str | None = None
    assignees: str | None = None  # JSON text: who may decide its reviews, given at submission
    traceback: str | None = None  # a failure's, for admins


@dataclass(slots=True)
class ReviewRow:
    id: str
    task_id: str
    round: int
    status: str
    node: str
    request: str  # JSON text: the `hitl.flow.ReviewRequest`
    created_at: float
    assignee: str | None = None
    deadline: float | None = None
    decision: str | None = None
    comment: str | None = None
    edited_output: str | None = None  # JSON text
    decided_by: str | None = None
    decided_at: float | None = None
    on_behalf_of: str | None = None  # whose decision an admin recorded, if not their own
    form_values: str | None = None  # JSON text: the decision's form
    claimed_by: str | None = None  # who is reviewing it now
    claimed_until: float | None = None


@dataclass(slots=True)
class QueueRow(ReviewRow):
    """A review as the reviewers' queue lists it: with its task's flow and input."""

    flow: str = ""
    task_input: str = "null"  # JSON text
    task_created_by: str | None = None


@dataclass(slots=True)
class EventRow:
    id: int
    task_id: str
    type: str
    data: str  # JSON text, sent to SSE clients as it is
    created_at: float


# -- identity: who may do what. Secrets are stored as SHA-256 hashes, never as sent. ----------


@dataclass(slots=True)
class PrincipalRow:
    """A user, or a service account (which signs in only with its tokens)."""

    id: str
    name: str
    kind: str  # "user" | "service"
    roles: str  # space-separated, sorted: "admin reviewer"
    created_at: float
    email: str | None = None
    disabled_at: float | None = None


@dataclass(slots=True)
class TokenRow:
    id: str
    name: str
    hash: str
    principal_id: str
    roles: str  # what the token may do: its principal's roles, or fewer
    created_at: float
    expires_at: float | None = None
    revoked_at: float | None = None
    last_used_at: float | None = None


@dataclass(slots=True)
class SessionRow:
    id: str
    hash: str
    principal_id: str
    via: str  # "link" | "oidc"
    created_at: float
    expires_at: float
    revoked_at: float | None = None


@dataclass(slots=True)
class LinkRow:
    """A one-time sign-in link."""

    hash: str
    principal_id: str
    created_at: float
    expires_at: float
    used_at: float | None = None


@dataclass(slots=True)
class AuditRow:
    id: int | None
    at: float
    actor: str | None  # the principal's name; None: anonymous
    action: str
    target: str | None = None
    address: str | None = None
    detail: str | None = None  # JSON text


@dataclass(slots=True)
class VoteRow:
    """One person's vote on a review that needs several (`ReviewRequest.quorum`)."""

    review_id: str
    voter: str
    decision: str
    at: float
    comment: str | None = None
    edited_output: str | None = None  # JSON text
    form_values: str | None = None  # JSON text


# -- notifications: where events are sent, and each sending. -----------------------------------


@dataclass(slots=True)
class ChannelRow:
    """Where some kinds of events are sent: a webhook (Standard Webhooks) or an Apprise URL.
    The event log is its outbox: `cursor` is the last event it has looked at."""

    id: str
    name: str
    kind: str  # "webhook" | "apprise"
    url: str
    events: str  # the event types it receives, space-separated
    cursor: int
    created_at: float
    created_by: str | None = None
    secret: str | None = None  # a webhook's signing secret, "whsec_..."
    disabled_at: float | None = None


@dataclass(slots=True)
class DeliveryRow:
    """One event for one channel: sent until it is delivered, or its time is up."""

    id: str  # also its idempotency id ("webhook-id": msg_<id>)
    channel_id: str
    event_id: int
    task_id: str
    type: str
    status: str  # "pending" | "delivered" | "failed"
    attempts: int
    next_at: float
    created_at: float
    lease_until: float | None = None
    lease_owner: str | None = None  # the home (host and port) of the process sending it
    last_code: int | None = None
    last_error: str | None = None
    done_at: float | None = None


Record = (
    PrincipalRow | TokenRow | SessionRow | LinkRow | AuditRow | VoteRow | ChannelRow | DeliveryRow
)

TABLE_OF: dict[type, str] = {
    PrincipalRow: "principals",
    TokenRow: "tokens",
    SessionRow: "sessions",
    LinkRow: "login_links",
    AuditRow: "audit",
    VoteRow: "votes",
    ChannelRow: "channels",
    DeliveryRow: "deliveries",
}


def column_names(row_type: type) -> tuple[str, ...]:
    return tuple(f.name for f in fields(row_type))


TASK_COLUMNS = column_names(TaskRow)
REVIEW_COLUMNS = column_names(ReviewRow)
EVENT_COLUMNS = column_names(EventRow)
