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


@dataclass(slots=True)
class EventRow:
    id: int
    task_id: str
    type: str
    data: str  # JSON text, sent to SSE clients as it is
    created_at: float


def column_names(row_type: type) -> tuple[str, ...]:
    return tuple(f.name for f in fields(row_type))


TASK_COLUMNS = column_names(TaskRow)
REVIEW_COLUMNS = column_names(ReviewRow)
EVENT_COLUMNS = column_names(EventRow)
