"""Alembic, driven from code: `hitl db upgrade` and the server's start-up both call `upgrade`.

Alembic is imported only to migrate: importing it cost a server over half a second of its
start-up, and a start-up that finds the schema current needs only `HEAD` and one SELECT
(a unit test keeps `HEAD` equal to the newest migration's revision).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa

from hitl.store.engine import create_sync_engine

MIGRATIONS = Path(__file__).parent / "migrations"
HEAD = "0008"  # the newest revision under migrations/versions


def _config() -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def upgrade(url: str, revision: str = "head") -> None:
    from alembic import command

    engine = create_sync_engine(url)
    try:
        with engine.begin() as connection:
            config = _config()
            config.attributes["connection"] = connection
            command.upgrade(config, revision)
    finally:
        engine.dispose()


def current_revision(url: str) -> str | None:
    """The revision the database's schema is at (Alembic's `alembic_version`), None if none."""
    engine = create_sync_engine(url)
    try:
        with engine.connect() as connection:
            if not sa.inspect(connection).has_table("alembic_version"):
                return None
            rows = connection.exec_driver_sql("SELECT version_num FROM alembic_version").all()
    finally:
        engine.dispose()
    return str(rows[0][0]) if len(rows) == 1 else None


def head_revision() -> str:
    return HEAD


def newest_migration() -> str | None:
    """The head of the migration scripts, as Alembic finds it (slow: it imports Alembic)."""
    from alembic.script import ScriptDirectory

    head: str | None = ScriptDirectory.from_config(_config()).get_current_head()
    return head


def is_empty(url: str) -> bool:
    engine = create_sync_engine(url)
    try:
        with engine.connect() as connection:
            return not sa.inspect(connection).get_table_names()
    finally:
        engine.dispose()


def quick_check(url: str) -> str | None:
    """SQLite's own check of its file, `PRAGMA quick_check`: None if it is sound, else the first
    problem it found. It reads the whole file: 0.3 s for 440 MB already in the page cache."""
    engine = create_sync_engine(url)
    try:
        with engine.connect() as connection:
            rows = connection.exec_driver_sql("PRAGMA quick_check").scalars().all()
    finally:
        engine.dispose()
    return None if rows == ["ok"] else str(rows[0]).strip() if rows else "no answer"
