"""SQLite: new reviews enter the queue's FTS5 index in batches, not one by one

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01

FTS5 writes a new segment of its index at every commit that changed it: a review's insert
cost about 60 µs for its entries, six times the rest of the insert; thirty reviews indexed
together cost about 5 µs each. `search_indexed.upto` is the largest `search_id` in the index;
the reviews above it are the *tail*, which the store indexes, and moves `upto` past, in the
transaction that takes the tail to `SEARCH_BATCH` reviews (`hitl.store.sql`). A search reads
the index and scans the tail, so it finds a review the moment it is committed, as before. The
update and delete triggers change only what the index holds; the insert trigger is gone.
PostgreSQL is unchanged: its GIN index gathers new entries in its own pending list. See
docs/design.md, "The reviewers' queue at scale"."""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

INDEXED = "(SELECT upto FROM search_indexed)"
TRIGGERS = (
    f"""CREATE TRIGGER reviews_search_update AFTER UPDATE OF search, search_id ON reviews
    BEGIN
        INSERT INTO review_search (review_search, rowid, search)
            SELECT 'delete', old.search_id, old.search WHERE old.search_id <= {INDEXED};
        INSERT INTO review_search (rowid, search)
            SELECT new.search_id, new.search WHERE new.search_id <= {INDEXED};
    END""",
    f"""CREATE TRIGGER reviews_search_delete AFTER DELETE ON reviews
    WHEN old.search_id <= {INDEXED} BEGIN
        INSERT INTO review_search (review_search, rowid, search)
            VALUES ('delete', old.search_id, old.search);
    END""",
)


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    op.execute("CREATE TABLE search_indexed (upto INTEGER NOT NULL)")
    op.execute("INSERT INTO search_indexed (upto) SELECT coalesce(max(search_id), 0) FROM reviews")
    for name in ("reviews_search_insert", "reviews_search_update", "reviews_search_delete"):
        op.execute(f"DROP TRIGGER {name}")
    for trigger in TRIGGERS:
        op.execute(trigger)


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    from importlib import import_module

    before = import_module("hitl.store.migrations.versions.0006_queue_search")
    op.execute(  # the tail, so that the index holds every review again
        "INSERT INTO review_search (rowid, search) SELECT search_id, search FROM reviews "
        f"WHERE search_id > {INDEXED} ORDER BY search_id"
    )
    op.execute("DROP TRIGGER reviews_search_update")
    op.execute("DROP TRIGGER reviews_search_delete")
    for trigger in before.SQLITE_TRIGGERS:
        op.execute(trigger)
    op.execute("DROP TABLE search_indexed")
