"""reviewing: a decision's form values, claims on reviews, assignees (at submission; queryable)

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
    op.create_index("ix_audit_target", "audit", ["target"])  # a task's entries


def downgrade() -> None:
    op.drop_index("ix_audit_target", "audit")
    with op.batch_alter_table("tasks") as batch:
        batch.drop_column("assignees")
    with op.batch_alter_table("reviews") as batch:
        batch.drop_column("claimed_until")
        batch.drop_column("claimed_by")
        batch.drop_column("form_values")
        batch.alter_column("assignee", type_=sa.String(200), existing_type=sa.Text)
