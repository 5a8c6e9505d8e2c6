"""Persistence: one store over SQLite or PostgreSQL, schema migrated by Alembic."""

from __future__ import annotations

from hitl.store.engine import BadDatabaseURL
from hitl.store.migrate import upgrade
from hitl.store.sql import ANY_OWNER, ConstraintError, Row, Store, Tx, Unavailable

__all__ = [
    "ANY_OWNER",
    "BadDatabaseURL",
    "ConstraintError",
    "Row",
    "Store",
    "Tx",
    "Unavailable",
    "upgrade",
]
