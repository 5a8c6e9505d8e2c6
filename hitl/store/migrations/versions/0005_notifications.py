"""notifications: channels (webhooks, Apprise URLs), their deliveries, deadline warnings

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

EventId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("reviews") as batch:
        batch.add_column(sa.Column("warned_at", sa.Float, nullable=True))
    op.create_table(
        "channels",
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
    op.create_table(
        "deliveries",
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
    )
    op.create_index("ix_deliveries_due", "deliveries", ["status", "next_at"])
    op.create_index("ix_deliveries_channel", "deliveries", ["channel_id", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_deliveries_channel", "deliveries")
    op.drop_index("ix_deliveries_due", "deliveries")
    op.drop_table("deliveries")
    op.drop_table("channels")
    with op.batch_alter_table("reviews") as batch:
        batch.drop_column("warned_at")
