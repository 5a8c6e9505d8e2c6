"""Alembic, driven from code: `hitl db upgrade` and the server's start-up both call `upgrade`."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from hitl.store.engine import create_sync_engine

MIGRATIONS = Path(__file__).parent / "migrations"


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def upgrade(url: str, revision: str = "head") -> None:
    engine = create_sync_engine(url)
    try:
        with engine.begin() as connection:
            config = _config()
            config.attributes["connection"] = connection
            command.upgrade(config, revision)
    finally:
        engine.dispose()


def current_revision(url: str) -> str | None:
    engine = create_sync_engine(url)
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()


def head_revision() -> str | None:
    return ScriptDirectory.from_config(_config()).get_current_head()


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
