"""The schema, in SQLAlchemy Core. Alembic migrations under `migrations/` create it.

JSON values are kept as text that the service serialises once: the shared store is checked for
JSON on the way in, and an event's text goes to SSE clients as it is, never re-encoded.
Timestamps are seconds since the epoch, as floats, on every backend.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

EventId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

tasks = sa.Table(
    "tasks",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("flow", sa.String(200), nullable=False),
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("input", sa.Text, nullable=False),
    sa.Column("shared", sa.Text, nullable=False),
    sa.Column("position", sa.Text, nullable=True),
    sa.Column("node", sa.String(500), nullable=True),
    sa.Column("round", sa.Integer, nullable=False, server_default="0"),
    sa.Column("result", sa.Text, nullable=True),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("created_by", sa.String(200), nullable=True),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
    sa.Column("lease_owner", sa.String(100), nullable=True),
    sa.Column("lease_expires_at", sa.Float, nullable=True),
    sa.Column("claims", sa.Integer, nullable=False, server_default="0"),
    sa.Column("idempotency_key", sa.String(200), nullable=True, unique=True),
    sa.Column("request_hash", sa.String(64), nullable=True),
    sa.Column("assignees", sa.Text, nullable=True),
    sa.Column("traceback", sa.Text, nullable=True),
    sa.Index("ix_tasks_status_lease", "status", "lease_expires_at"),
    sa.Index("ix_tasks_status_created", "status", "created_at"),
    sa.Index("ix_tasks_created_at", "created_at"),
    sa.Index("ix_tasks_created_by", "created_by", "id"),
)

reviews = sa.Table(
    "reviews",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("task_id", sa.String(36), sa.ForeignKey("tasks.id"), nullable=False),
    sa.Column("round", sa.Integer, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("node", sa.String(500), nullable=False),
    sa.Column("request", sa.Text, nullable=False),
    sa.Column("assignee", sa.Text, nullable=True),  # `,name,role:NAME,`: who may decide it
    sa.Column("deadline", sa.Float, nullable=True),
    sa.Column("decision", sa.String(50), nullable=True),
    sa.Column("comment", sa.Text, nullable=True),
    sa.Column("edited_output", sa.Text, nullable=True),
    sa.Column("decided_by", sa.String(200), nullable=True),
    sa.Column("decided_at", sa.Float, nullable=True),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("on_behalf_of", sa.String(200), nullable=True),
    sa.Column("form_values", sa.Text, nullable=True),
    sa.Column("claimed_by", sa.String(200), nullable=True),
    sa.Column("claimed_until", sa.Float, nullable=True),
    sa.Column("warned_at", sa.Float, nullable=True),  # when "its deadline is near" was said
    # What the queue's text filter searches (`search.py`), indexed by dialect (migration 0006):
    # PostgreSQL, `ix_reviews_search` (pg_trgm GIN); SQLite, the FTS5 table `review_search`,
    # keyed by a `search_id` column that only SQLite has, filled in batches and kept in step
    # by triggers (migration 0007, its table `search_indexed`).
    sa.Column("search", sa.Text, nullable=True),
    # Whether the task's submitter may decide it: its request's `allow_self_review`, for the
    # queue's `decidable` filter, which must not parse every request (migration 0008).
    sa.Column("self_review", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.UniqueConstraint("task_id", "round", name="uq_reviews_task_round"),
    # (SQLite's also holds the assignee: migration 0006.)
    sa.Index("ix_reviews_status_created", "status", "created_at", "id"),
    sa.Index("ix_reviews_status_deadline", "status", "deadline"),
    sa.Index(
        "ix_reviews_queue_deadline",
        "status",
        sa.text("(deadline IS NULL)"),
        "deadline",
        "created_at",
        "id",
    ),
)

events = sa.Table(
    "events",
    metadata,
    sa.Column("id", EventId, primary_key=True, autoincrement=True),
    sa.Column("task_id", sa.String(36), nullable=False),
    sa.Column("type", sa.String(40), nullable=False),
    sa.Column("data", sa.Text, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Index("ix_events_task_id", "task_id", "id"),
    sqlite_autoincrement=True,
)

principals = sa.Table(
    "principals",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False, unique=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("roles", sa.String(100), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("email", sa.String(320), nullable=True),
    sa.Column("disabled_at", sa.Float, nullable=True),
)

tokens = sa.Table(
    "tokens",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False, unique=True),
    sa.Column("hash", sa.String(64), nullable=False, unique=True),
    sa.Column("principal_id", sa.String(36), sa.ForeignKey("principals.id"), nullable=False),
    sa.Column("roles", sa.String(100), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("expires_at", sa.Float, nullable=True),
    sa.Column("revoked_at", sa.Float, nullable=True),
    sa.Column("last_used_at", sa.Float, nullable=True),
)

sessions = sa.Table(
    "sessions",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("hash", sa.String(64), nullable=False, unique=True),
    sa.Column("principal_id", sa.String(36), sa.ForeignKey("principals.id"), nullable=False),
    sa.Column("via", sa.String(16), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("expires_at", sa.Float, nullable=False),
    sa.Column("revoked_at", sa.Float, nullable=True),
)

login_links = sa.Table(
    "login_links",
    metadata,
    sa.Column("hash", sa.String(64), primary_key=True),
    sa.Column("principal_id", sa.String(36), sa.ForeignKey("principals.id"), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("expires_at", sa.Float, nullable=False),
    sa.Column("used_at", sa.Float, nullable=True),
)

audit = sa.Table(
    "audit",
    metadata,
    sa.Column("id", EventId, primary_key=True, autoincrement=True),
    sa.Column("at", sa.Float, nullable=False),
    sa.Column("actor", sa.String(200), nullable=True),
    sa.Column("action", sa.String(40), nullable=False),
    sa.Column("target", sa.String(200), nullable=True),
    sa.Column("address", sa.String(100), nullable=True),
    sa.Column("detail", sa.Text, nullable=True),
    sa.Index("ix_audit_at", "at"),
    sa.Index("ix_audit_target", "target"),
    sqlite_autoincrement=True,
)

votes = sa.Table(
    "votes",
    metadata,
    sa.Column("review_id", sa.String(36), sa.ForeignKey("reviews.id"), primary_key=True),
    sa.Column("voter", sa.String(200), primary_key=True),
    sa.Column("decision", sa.String(50), nullable=False),
    sa.Column("at", sa.Float, nullable=False),
    sa.Column("comment", sa.Text, nullable=True),
    sa.Column("edited_output", sa.Text, nullable=True),
    sa.Column("form_values", sa.Text, nullable=True),
)

channels = sa.Table(
    "channels",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False, unique=True),
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("url", sa.Text, nullable=False),
    sa.Column("events", sa.Text, nullable=False),
    sa.Column("cursor", EventId, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("created_by", sa.String(200), nullable=True),
    sa.Column("secret", sa.Text, nullable=True),
    sa.Column("disabled_at", sa.Float, nullable=True),
)

deliveries = sa.Table(
    "deliveries",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("channel_id", sa.String(36), sa.ForeignKey("channels.id"), nullable=False),
    sa.Column("event_id", EventId, nullable=False),
    sa.Column("task_id", sa.String(36), nullable=False),
    sa.Column("type", sa.String(50), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("next_at", sa.Float, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("lease_until", sa.Float, nullable=True),
    sa.Column("lease_owner", sa.String(200), nullable=True),
    sa.Column("last_code", sa.Integer, nullable=True),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Column("done_at", sa.Float, nullable=True),
    sa.UniqueConstraint("channel_id", "event_id", name="uq_deliveries_event"),
    sa.Index("ix_deliveries_due", "status", "next_at"),
    sa.Index("ix_deliveries_channel", "channel_id", "created_at"),
)
