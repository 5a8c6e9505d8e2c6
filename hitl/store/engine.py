"""Engines for the two backends, chosen by the URL scheme."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import make_url

SYNC_DRIVERS = {"sqlite": "sqlite", "postgresql": "postgresql+psycopg"}


class BadDatabaseURL(ValueError):
    """The database URL names no backend hitl supports."""


def _with_driver(url: str, drivers: dict[str, str]) -> sa.URL:
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "postgres":
        backend = "postgresql"
    if backend not in drivers:
        raise BadDatabaseURL(
            f"unsupported database URL {url!r}: use sqlite:///path/to/file.db or "
            "postgresql://user:password@host:port/dbname"
        )
    return parsed.set(drivername=drivers[backend])


def sync_url(url: str) -> sa.URL:
    return _with_driver(url, SYNC_DRIVERS)


def safe_url(url: str) -> str:
    """The URL without its password, for messages and logs."""
    return make_url(url).render_as_string(hide_password=True)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    # NORMAL in WAL mode survives a killed process; only a power loss may drop the last commits.
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def create_sync_engine(url: str, pool_size: int = 5) -> sa.Engine:
    target = sync_url(url)
    if target.get_backend_name() == "sqlite":
        engine = sa.create_engine(
            target,
            pool_size=pool_size,
            max_overflow=pool_size,
            connect_args={"check_same_thread": False},
        )
        sa.event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return sa.create_engine(target, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True)
