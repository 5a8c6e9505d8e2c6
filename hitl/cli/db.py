"""`hitl db upgrade`: create or migrate the database schema."""

from __future__ import annotations

from typing import Annotated

import typer

from hitl.cli._common import USAGE, DbOption, fail, server_settings
from hitl.config import Settings


def upgrade(
    database: DbOption = None,
    revision: Annotated[str, typer.Option(help="the revision to migrate to")] = "head",
) -> None:
    """Create or migrate the schema to the newest revision."""
    settings = server_settings(database_url=database)
    run_upgrade(settings, revision)


def run_upgrade(settings: Settings, revision: str) -> None:
    from alembic.util import CommandError

    from hitl.service.admin import database_revision, upgrade_database
    from hitl.service.service import DatabaseUnreachable, wait_for_database

    try:
        wait_for_database(settings.database_url, settings.database_wait_seconds)
    except DatabaseUnreachable as exc:
        fail(str(exc))
    try:
        upgrade_database(settings.database_url, revision)
    except CommandError as exc:
        fail(f"{exc}: leave out --revision to migrate to the newest", USAGE)
    typer.echo(f"database at revision {database_revision(settings.database_url)}")
