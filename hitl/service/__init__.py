"""The use cases: submit, run, review, decide, cancel, list. Knows nothing of HTTP.

The rows it hands up (`TaskRow`, `ReviewRow`) are its read model; the layers above import
them from here, never from the store.
"""

from __future__ import annotations

from hitl.service.errors import Conflict, HitlError, Invalid, LeaseLost, NotFound
from hitl.service.events import Event, EventBroker
from hitl.service.machine import FINAL, FINAL_EVENTS, EventType, ReviewStatus, TaskStatus
from hitl.service.service import DatabaseNotReady, Service
from hitl.store import ReviewRow, TaskRow, Unavailable

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
    "ReviewRow",
    "ReviewStatus",
    "Service",
    "TaskRow",
    "TaskStatus",
    "Unavailable",
]
