"""The use cases: submit, run, review, decide, cancel, list. Knows nothing of HTTP.

The rows it hands up (`TaskRow`, `ReviewRow`) are its read model, and `Graph` a flow's nodes
and edges; the layers above import them from here, never from the store.
"""

from __future__ import annotations

from hitl.flow import Graph, GraphEdge, GraphNode
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
from hitl.service.notify import CHANNEL_NAME, CHANNEL_NAME_RULE, shown_url
from hitl.service.service import DatabaseNotReady, Service
from hitl.store import (
    AuditRow,
    ChannelRow,
    DeliveryRow,
    QueueRow,
    ReviewRow,
    TaskRow,
    Unavailable,
    VoteRow,
)

__all__ = [
    "CHANNEL_NAME",
    "CHANNEL_NAME_RULE",
    "AuditRow",
    "ChannelRow",
    "DeliveryRow",
    "shown_url",
    "FINAL",
    "FINAL_EVENTS",
    "Conflict",
    "DatabaseNotReady",
    "Event",
    "Forbidden",
    "Graph",
    "GraphEdge",
    "GraphNode",
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
