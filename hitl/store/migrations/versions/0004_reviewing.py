"""reviewing: form values, claims, assignees (at submission; queryable), votes for quorums

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("reviews") as batch:
        # `,name,role:NAME,`: who may decide it, for the queue's "assigned to me".
        batch.alter_column("assignee", type_=sa.Text, existing_type=sa.String(200))
        batch.add_column(sa.Column("form_values", sa.Text, nullable=True))
        batch.add_column(sa.Column("claimed_by", sa.String(200), nullable=True))
        batch.add_column(sa.Column("claimed_until", sa.Float, nullable=True))
    with op.batch_alter_table("tasks") as batch:
        batch.add_column(sa.Column("assignees", sa.Text, nullable=True))
        batch.add_column(sa.Column("traceback", sa.Text, nullable=True))  # a failure's
    op.create_index("ix_audit_target", "audit", ["target"])  # a task's entries
    op.create_table(
        "votes",
        sa.Column("review_id", sa.String(36), sa.ForeignKey("reviews.id"), primary_key=True),
        sa.Column("voter", sa.String(200), primary_key=True),
        sa.Column("decision", sa.String(50), nullable=False),
        sa.Column("at", sa.Float, nullable=False),
        sa.Column("comment", sa.Text, nullable=True),
        sa.Column("edited_output", sa.Text, nullable=True),
        sa.Column("form_values", sa.Text, nullable=True),
    )


def downgrade() -> None:
    op.drop_table("votes")
    op.drop_index("ix_audit_target", "audit")
    with op.batch_alter_table("tasks") as batch:
        batch.drop_column("traceback")
        batch.drop_column("assignees")
    with op.batch_alter_table("reviews") as batch:
        batch.drop_column("claimed_until")
        batch.drop_column("claimed_by")
        batch.drop_column("form_values")
        batch.alter_column("assignee", type_=sa.String(200), existing_type=sa.Text)
