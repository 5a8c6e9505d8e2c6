"""queue at scale: each review's searchable text, indexed for substring search; indexes for
the queue's first page, its count, its deadline order and its `decidable` filter

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01

`reviews.search` holds the case-folded text values of a review's output, its prompt and its
task's input (`hitl.store.search`); existing reviews get theirs here. PostgreSQL indexes it
with `pg_trgm` (a GIN index of trigrams). SQLite indexes it with an FTS5 table using the
`trigram` tokenizer (SQLite 3.34 or later), whose rows are keyed by `reviews.search_id` (the
implicit rowid would not do: VACUUM may renumber it) and kept in step by triggers. See
docs/design.md, "The reviewers' queue at scale"."""

from __future__ import annotations

import sqlite3
from typing import Any

import sqlalchemy as sa
from alembic import op

from hitl.store.search import searchable

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

CHUNK = 1000

SQLITE_TRIGGERS = (
    # A row without a key (none is written so) is not indexed.
    """CREATE TRIGGER reviews_search_insert AFTER INSERT ON reviews
    WHEN new.search_id IS NOT NULL BEGIN
        INSERT INTO review_search (rowid, search) VALUES (new.search_id, new.search);
    END""",
    """CREATE TRIGGER reviews_search_update AFTER UPDATE OF search, search_id ON reviews
    BEGIN
        INSERT INTO review_search (review_search, rowid, search)
            SELECT 'delete', old.search_id, old.search WHERE old.search_id IS NOT NULL;
        INSERT INTO review_search (rowid, search)
            SELECT new.search_id, new.search WHERE new.search_id IS NOT NULL;
    END""",
    """CREATE TRIGGER reviews_search_delete AFTER DELETE ON reviews
    WHEN old.search_id IS NOT NULL BEGIN
        INSERT INTO review_search (review_search, rowid, search)
            VALUES ('delete', old.search_id, old.search);
    END""",
)
TRIGGER_NAMES = ("reviews_search_insert", "reviews_search_update", "reviews_search_delete")


def upgrade() -> None:
    bind = op.get_bind()
    sqlite = bind.dialect.name == "sqlite"
    op.add_column("reviews", sa.Column("search", sa.Text, nullable=True))
    if sqlite:
        _fts5_trigram()
        op.add_column("reviews", sa.Column("search_id", sa.Integer, nullable=True))
    else:
        _pg_trgm(bind)
    _backfill(bind, sqlite)
    if sqlite:
        # Covering: the queue's filters and its oldest / newest orders, for each match, read
        # this index only (`queries.QUEUE_MATCHES`).
        columns = ["search_id", "status", "created_at", "id", "assignee"]
        op.create_index("ix_reviews_search_id", "reviews", columns)
        op.execute(
            "CREATE VIRTUAL TABLE review_search USING fts5(search, content='reviews', "
            "content_rowid='search_id', tokenize='trigram case_sensitive 1')"
        )
        op.execute("INSERT INTO review_search (review_search) VALUES ('rebuild')")
        for trigger in SQLITE_TRIGGERS:
            op.execute(trigger)
    else:
        op.execute("CREATE INDEX ix_reviews_search ON reviews USING gin (search gin_trgm_ops)")
    # The queue's first page and count from the index alone: with the review's id (the
    # `decidable` filter's own reviews) and, on SQLite, its assignees (PostgreSQL limits an
    # index entry to 2.7 kB, which fifty long assignee names would pass).
    op.drop_index("ix_reviews_status_created", "reviews")
    queue = ["status", "created_at", "id", *(["assignee"] if sqlite else [])]
    op.create_index("ix_reviews_status_created", "reviews", queue)
    # The queue's "nearest deadline first" (`queries.QUEUE_ORDER`), in the index's order.
    op.create_index(
        "ix_reviews_queue_deadline",
        "reviews",
        ["status", sa.text("(deadline IS NULL)"), "deadline", "created_at", "id"],
    )
    # A decider's own tasks, whose reviews the queue's `decidable` leaves out.
    op.create_index("ix_tasks_created_by", "tasks", ["created_by", "id"])


def _pg_trgm(bind: Any) -> None:
    """`pg_trgm` ships with PostgreSQL (Debian: in `postgresql-15`; elsewhere, often a
    `contrib` package). It is a trusted extension: the database's owner may create it."""
    if bind.exec_driver_sql("SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm'").first():
        return
    try:
        bind.exec_driver_sql("CREATE EXTENSION pg_trgm")
    except sa.exc.DBAPIError as exc:
        reason = str(exc.orig).strip().splitlines()[0]
        raise RuntimeError(
            f"the queue's text search needs PostgreSQL's pg_trgm extension ({reason}): "
            "install the server's contrib modules, or have a superuser run "
            "CREATE EXTENSION pg_trgm in this database; then run hitl db upgrade again"
        ) from exc


def _fts5_trigram() -> None:
    if sqlite3.sqlite_version_info < (3, 34):
        raise RuntimeError(
            f"the queue's text search needs SQLite 3.34 or later (its FTS5 trigram "
            f"tokenizer); this Python has SQLite {sqlite3.sqlite_version}"
        )


def _backfill(bind: Any, sqlite: bool) -> None:
    """Every review's searchable text, a chunk at a time in id order (UUIDv7: oldest first);
    on SQLite its key in the FTS5 index too (new reviews take the next:
    `queries.insert_review`)."""
    read = sa.text(
        "SELECT r.id, r.request, t.input FROM reviews r JOIN tasks t ON t.id = r.task_id "
        "WHERE r.id > :after ORDER BY r.id LIMIT :limit"
    )
    sets = "search = :search" + (", search_id = :search_id" if sqlite else "")
    write = sa.text(f"UPDATE reviews SET {sets} WHERE id = :id")
    after, key = "", 0
    while True:
        rows = bind.execute(read, {"after": after, "limit": CHUNK}).all()
        if not rows:
            return
        values = []
        for review_id, request, task_input in rows:
            key += 1
            values.append(
                {"id": review_id, "search": searchable(request, task_input), "search_id": key}
            )
        after = rows[-1][0]
        bind.execute(write, values)


def downgrade() -> None:
    op.drop_index("ix_tasks_created_by", "tasks")
    op.drop_index("ix_reviews_queue_deadline", "reviews")
    op.drop_index("ix_reviews_status_created", "reviews")
    op.create_index("ix_reviews_status_created", "reviews", ["status", "created_at"])
    if op.get_bind().dialect.name == "sqlite":
        for name in TRIGGER_NAMES:
            op.execute(f"DROP TRIGGER {name}")
        op.execute("DROP TABLE review_search")
        op.drop_index("ix_reviews_search_id", "reviews")
        with op.batch_alter_table("reviews") as batch:
            batch.drop_column("search_id")
            batch.drop_column("search")
    else:
        op.drop_index("ix_reviews_search", "reviews")
        op.drop_column("reviews", "search")
