"""tasks, review rounds and the event log

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tasks",
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
    )
    op.create_index("ix_tasks_status_lease", "tasks", ["status", "lease_expires_at"])
    op.create_index("ix_tasks_status_created", "tasks", ["status", "created_at"])
    op.create_index("ix_tasks_created_at", "tasks", ["created_at"])
    op.create_table(
        "reviews",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("task_id", sa.String(36), sa.ForeignKey("tasks.id"), nullable=False),
        sa.Column("round", sa.Integer, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("node", sa.String(500), nullable=False),
        sa.Column("request", sa.Text, nullable=False),
        sa.Column("assignee", sa.String(200), nullable=True),
        sa.Column("deadline", sa.Float, nullable=True),
        sa.Column("decision", sa.String(50), nullable=True),
        sa.Column("comment", sa.Text, nullable=True),
        sa.Column("edited_output", sa.Text, nullable=True),
        sa.Column("decided_by", sa.String(200), nullable=True),
        sa.Column("decided_at", sa.Float, nullable=True),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.UniqueConstraint("task_id", "round", name="uq_reviews_task_round"),
    )
    op.create_index("ix_reviews_status_created", "reviews", ["status", "created_at"])
    op.create_table(
        "events",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("task_id", sa.String(36), nullable=False),
        sa.Column("type", sa.String(40), nullable=False),
        sa.Column("data", sa.Text, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_events_task_id", "events", ["task_id", "id"])


def downgrade() -> None:
    op.drop_table("events")
    op.drop_table("reviews")
    op.drop_table("tasks")
