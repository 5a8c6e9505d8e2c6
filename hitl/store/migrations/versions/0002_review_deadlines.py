"""an index to find the open reviews whose deadline has passed

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_reviews_status_deadline", "reviews", ["status", "deadline"])


def downgrade() -> None:
    op.drop_index("ix_reviews_status_deadline", table_name="reviews")
