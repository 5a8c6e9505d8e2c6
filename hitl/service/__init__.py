"""The use cases: submit, run, review, decide, cancel, list. Knows nothing of HTTP.

The rows it hands up (`TaskRow`, `ReviewRow`) are its read model; the layers above import
them from here, never from the store.
"""

from __future__ import annotations

from hitl.service.errors import (
    Conflict,
    Forbidden,
    HitlError,
    Invalid,
    LeaseLost,
    NotFound,
    Unauthenticated,
)
from hitl.service.events import Event, EventBroker
from hitl.service.machine import (
    FINAL,
    FINAL_EVENTS,
    EventType,
    ReviewStatus,
    Seen,
    TaskStatus,
    claim_holder,
)
from hitl.service.service import DatabaseNotReady, Service
from hitl.store import AuditRow, QueueRow, ReviewRow, TaskRow, Unavailable, VoteRow

__all__ = [
    "AuditRow",
    "FINAL",
    "FINAL_EVENTS",
    "Conflict",
    "DatabaseNotReady",
    "Event",
    "Forbidden",
    "EventBroker",
    "EventType",
    "HitlError",
    "Invalid",
    "LeaseLost",
    "NotFound",
    "QueueRow",
    "ReviewRow",
    "ReviewStatus",
    "Seen",
    "Service",
    "TaskRow",
    "TaskStatus",
    "Unauthenticated",
    "Unavailable",
    "VoteRow",
    "claim_holder",
]
