"""Persistence: one store over SQLite or PostgreSQL, schema migrated by Alembic."""

from __future__ import annotations

from hitl.store.base import Decider, Reader, Store, Tx
from hitl.store.engine import BadDatabaseURL, safe_url
from hitl.store.migrate import upgrade
from hitl.store.rows import (
    AuditRow,
    ChannelRow,
    DeliveryRow,
    EventRow,
    LinkRow,
    PrincipalRow,
    QueueRow,
    ReviewRow,
    SessionRow,
    TaskRow,
    TokenRow,
    VoteRow,
)
from hitl.store.sql import ANY_OWNER, ConstraintError, SqlStore, SqlTx, Unavailable

__all__ = [
    "ANY_OWNER",
    "AuditRow",
    "ChannelRow",
    "DeliveryRow",
    "LinkRow",
    "PrincipalRow",
    "Reader",
    "SessionRow",
    "TokenRow",
    "VoteRow",
    "BadDatabaseURL",
    "ConstraintError",
    "Decider",
    "EventRow",
    "QueueRow",
    "ReviewRow",
    "SqlStore",
    "SqlTx",
    "Store",
    "TaskRow",
    "Tx",
    "Unavailable",
    "safe_url",
    "upgrade",
]
