"""Engines for the two backends, chosen by the URL scheme."""

from __future__ import annotations

import select
import time
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
    # Last in, first out: the connections in use are the few most recently used, and so are
    # their server processes; the rest sit idle. (First in, first out spread the load evenly
    # over every connection the pool ever opened, a server process each.)
    engine = sa.create_engine(
        target, pool_size=pool_size, max_overflow=pool_size, pool_use_lifo=True
    )
    sa.event.listen(engine, "checkin", _returned)
    sa.event.listen(engine, "checkout", _alive)
    return engine


# A pooled connection idle longer than this is pinged before use, whatever its socket says: a
# firewall's or a load balancer's idle timeout, or a server host that vanished, ends it
# without a word.
QUIET_SECONDS = 30.0


def _returned(_dbapi_connection: Any, record: Any) -> None:
    record.info["returned"] = time.monotonic()


def _alive(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
    """A pooled PostgreSQL connection is checked before use, without a round trip on the way
    to every read and write (which `pool_pre_ping` costs): one that was back in the pool for
    a moment and that the server has said nothing to is alive. One the server has written to
    (a restart or `pg_terminate_backend` sends a last message before it closes it), or that
    sat idle for `QUIET_SECONDS`, is pinged, and if that fails the pool replaces it
    (`DisconnectionError` makes it take another)."""
    try:
        poll = select.poll()
        poll.register(dbapi_connection.fileno(), select.POLLIN)
        said = poll.poll(0)
    except Exception as exc:  # closed already
        raise sa.exc.DisconnectionError(str(exc)) from exc
    quiet = time.monotonic() - record.info.get("returned", time.monotonic())
    if not said and quiet < QUIET_SECONDS:
        return
    try:
        dbapi_connection.execute(";")
        dbapi_connection.rollback()  # (the ping began a transaction; the next user begins its own)
    except Exception as exc:
        raise sa.exc.DisconnectionError(str(exc)) from exc
