"""What the command line may do to a database, without reaching into the store itself."""

from __future__ import annotations

from sqlalchemy.exc import ArgumentError

from hitl.store import BadDatabaseURL, migrate, safe_url
from hitl.store.engine import sync_url

__all__ = ["BadDatabaseURL", "check_url", "database_revision", "safe_url", "upgrade_database"]


def check_url(url: str) -> None:
    """Raise `BadDatabaseURL` unless `url` names a database hitl supports."""
    try:
        sync_url(url)
    except ArgumentError as exc:  # not a URL at all
        raise BadDatabaseURL(str(exc)) from None


def upgrade_database(url: str, revision: str = "head") -> None:
    """Create or migrate the schema to `revision` (the newest by default)."""
    migrate.upgrade(url, revision)


def database_revision(url: str) -> str | None:
    return migrate.current_revision(url)
