"""reviews.self_review: whether a review's task's submitter may decide it, as a column

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01

The queue's `decidable` filter leaves out the reviews of a person's own tasks unless the
review allows self-review (`ReviewRequest.allow_self_review`). It read that from the review's
request, parsing its JSON in every row it looked at; on PostgreSQL, a request holding an
escaped NUL (`\\u0000`, which JSON allows and PostgreSQL's text does not) made the parse, and
the whole page, fail. The store now writes the flag with the review (`SqlTx.insert_review`),
and existing reviews get theirs here, parsed by Python."""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

CHUNK = 1000


def upgrade() -> None:
    op.add_column(
        "reviews",
        sa.Column("self_review", sa.Boolean, nullable=False, server_default=sa.false()),
    )
    _backfill(op.get_bind())


def _backfill(bind: Any) -> None:
    """The reviews whose request allows self-review, a chunk at a time in id order. Only a
    request that names the flag can set it; Python's parser reads what PostgreSQL's refuses."""
    after = ""
    while True:
        rows = bind.execute(
            sa.text(
                "SELECT id, request FROM reviews WHERE id > :after "
                "AND request LIKE '%allow_self_review%' ORDER BY id LIMIT :limit"
            ),
            {"after": after, "limit": CHUNK},
        ).all()
        if not rows:
            return
        allowed = [{"id": id} for id, request in rows if _allows(request)]
        if allowed:
            bind.execute(sa.text("UPDATE reviews SET self_review = TRUE WHERE id = :id"), allowed)
        after = rows[-1][0]


def _allows(request: str) -> bool:
    try:
        shown = json.loads(request)
    except ValueError:
        return False
    return isinstance(shown, dict) and bool(shown.get("allow_self_review"))


def downgrade() -> None:
    # Not a batch copy of the table on SQLite: that would drop the search triggers (0007).
    op.execute("ALTER TABLE reviews DROP COLUMN self_review")
