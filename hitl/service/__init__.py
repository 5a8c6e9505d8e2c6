"""The use cases: submit, run, review, decide, cancel, list. Knows nothing of HTTP."""

from __future__ import annotations

from hitl.service.errors import Conflict, HitlError, Invalid, LeaseLost, NotFound
from hitl.service.events import Event, EventBroker
from hitl.service.service import DatabaseNotReady, Service
from hitl.service.states import FINAL, FINAL_EVENTS, EventType, ReviewStatus, TaskStatus
from hitl.store import Unavailable

__all__ = [
    "FINAL",
    "FINAL_EVENTS",
    "Conflict",
    "DatabaseNotReady",
    "Event",
    "EventBroker",
    "EventType",
    "HitlError",
    "Invalid",
    "LeaseLost",
    "NotFound",
    "ReviewStatus",
    "Service",
    "TaskStatus",
    "Unavailable",
]
