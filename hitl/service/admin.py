"""What the command line may do to a database, without reaching into the store itself."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.exc import ArgumentError

from hitl.service.identity import Identity
from hitl.service.service import (
    DatabaseMissing,
    DatabaseNotReady,
    DatabaseUnreachable,
    prepare_database,
    wait_for_database,
)
from hitl.store import (
    AuditRow,
    BadDatabaseURL,
    ConstraintError,
    SqlStore,
    Unavailable,
    guard,
    migrate,
    safe_url,
)
from hitl.store.engine import sync_url

__all__ = [
    "AuditRow",
    "BadDatabaseURL",
    "ConstraintError",
    "DatabaseNotReady",
    "DatabaseUnreachable",
    "Unavailable",
    "check_url",
    "database_revision",
    "identity_at",
    "safe_url",
    "upgrade_database",
]


def check_url(url: str) -> None:
    """Raise `BadDatabaseURL` unless `url` names a database hitl supports."""
    example = "sqlite:///hitl.db or postgresql://user@host/hitl"
    if not url.strip():
        raise BadDatabaseURL(f"the database URL is empty: give one, such as {example}")
    try:
        sync_url(url)
    except ArgumentError as exc:  # not a URL at all
        raise BadDatabaseURL(f"{exc}: give a database URL such as {example}") from None


def upgrade_database(url: str, revision: str = "head") -> None:
    """Create or migrate the schema to `revision` (the newest by default)."""
    migrate.upgrade(url, revision)


def database_revision(url: str) -> str | None:
    return migrate.current_revision(url)


@asynccontextmanager
async def identity_at(
    url: str, wait_seconds: float = 0.0, create: bool = True, must_exist: bool = False
) -> AsyncIterator[Identity]:
    """The identity service on the database at `url`, for one command of the command line.

    The database is prepared as `hitl serve` prepares it (`prepare_database`: waited for, its
    schema created if it is new and `create`, refused if it needs a migration). With
    `must_exist`, a database that does not exist yet is refused rather than created: a command
    that only reads has nothing to read there, and a mistyped `--db` should not leave a file.
    """
    await asyncio.to_thread(_ready, url, wait_seconds, create, must_exist)
    store = SqlStore(url)
    try:
        yield Identity(store)
    finally:
        await store.close()


def _ready(url: str, wait_seconds: float, create: bool, must_exist: bool) -> None:
    if must_exist:
        path = guard.sqlite_path(url)
        # Short-circuits: opening a SQLite file that is not there would create it.
        if (path is not None and not path.exists()) or wait_for_database(url, wait_seconds):
            raise DatabaseMissing(
                f"there is no hitl database at {safe_url(url)}: check --db (HITL_DATABASE_URL); "
                "`hitl db upgrade` or `hitl serve` creates one"
            )
    prepare_database(url, wait_seconds, create)
