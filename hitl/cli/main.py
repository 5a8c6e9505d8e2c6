"""The command line: `hitl serve`, `hitl db upgrade`, and client commands for the API."""

from __future__ import annotations

import json
import logging
import sys
from typing import Annotated, Any

import typer
from pydantic import ValidationError

from hitl.config import Settings
from hitl.store.engine import safe_url

app = typer.Typer(help="hitl: a durable human-in-the-loop review service.", no_args_is_help=True)
db = typer.Typer(help="Database schema.", no_args_is_help=True)
app.add_typer(db, name="db")

DbOption = Annotated[
    str | None, typer.Option("--db", help="database URL (HITL_DATABASE_URL)", show_default=False)
]
ServerOption = Annotated[
    str, typer.Option("--server", envvar="HITL_SERVER", help="base URL of a hitl server")
]


def _settings(**overrides: Any) -> Settings:
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        for error in exc.errors():
            where = "_".join(str(part) for part in error["loc"]).upper()
            name = f"HITL_{where}: " if where else ""
            message = str(error["msg"]).removeprefix("Value error, ")
            typer.echo(f"hitl: invalid setting {name}{message}", err=True)
        raise typer.Exit(2) from None


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="address to listen on (HITL_HOST)")] = None,
    port: Annotated[int | None, typer.Option(help="port (HITL_PORT)")] = None,
    database: DbOption = None,
    flow: Annotated[
        list[str] | None,
        typer.Option("--flow", help="name=package.module:factory; repeatable (HITL_FLOWS)"),
    ] = None,
    default_flow: Annotated[str | None, typer.Option(help="flow for tasks that name none")] = None,
    process_delay: Annotated[
        float | None, typer.Option(help="seconds the default processor sleeps")
    ] = None,
    concurrency: Annotated[int | None, typer.Option(help="tasks run at once")] = None,
    workers: Annotated[bool, typer.Option(help="run workers in this process")] = True,
    log_level: Annotated[str | None, typer.Option(help="debug, info, warning")] = None,
) -> None:
    """Serve the web UI and API; embedded SQLite and in-process workers by default."""
    import uvicorn

    from hitl.app import create_app
    from hitl.service.service import tune_gc

    settings = _settings(
        host=host,
        port=port,
        database_url=database,
        flows=flow or None,
        default_flow=default_flow,
        process_delay=process_delay,
        concurrency=concurrency,
        log_level=log_level,
    )
    settings.run_workers = workers
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    try:
        application = create_app(settings)
    except Exception as exc:  # a bad --flow or URL: say so, without a traceback
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    # Wait for the database (and create or check the schema) before serving: what goes wrong
    # here is one line, not a start-up traceback.
    _prepare(settings)
    tune_gc()
    where = safe_url(settings.database_url)
    typer.echo(f"hitl serving on http://{settings.host}:{settings.port} ({where})")
    uvicorn.run(
        application,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        timeout_graceful_shutdown=2,
    )


@db.command("upgrade")
def db_upgrade(database: DbOption = None, revision: str = "head") -> None:
    """Create or migrate the schema to the newest revision."""
    from hitl.store import migrate

    settings = _settings(database_url=database)
    _wait(settings)
    migrate.upgrade(settings.database_url, revision)
    typer.echo(f"database at revision {migrate.current_revision(settings.database_url)}")


def _prepare(settings: Settings) -> None:
    from hitl.service.service import DatabaseNotReady, DatabaseUnreachable, prepare_database

    try:
        prepare_database(settings.database_url, settings.database_wait_seconds)
    except (DatabaseUnreachable, DatabaseNotReady) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None


def _wait(settings: Settings) -> None:
    from hitl.service.service import DatabaseUnreachable, wait_for_database

    try:
        wait_for_database(settings.database_url, settings.database_wait_seconds)
    except DatabaseUnreachable as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None


def _client(server: str) -> Any:
    from hitl.client import Client

    return Client(server)


def _print(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, default=str))


@app.command()
def submit(
    text: Annotated[str, typer.Argument(help="the input; '-' reads standard input")],
    server: ServerOption = "http://127.0.0.1:8000",
    flow: Annotated[str | None, typer.Option(help="flow name")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="the input is JSON")] = False,
) -> None:
    """Submit a task and print it."""
    raw = sys.stdin.read() if text == "-" else text
    value = json.loads(raw) if as_json else raw
    with _client(server) as client:
        _print(client.create_task(value, flow=flow))


@app.command()
def tasks(
    server: ServerOption = "http://127.0.0.1:8000",
    status: Annotated[str | None, typer.Option(help="only tasks in this status")] = None,
    limit: int = 20,
) -> None:
    """List tasks, newest first."""
    with _client(server) as client:
        page = client.list_tasks(status=status, limit=limit)
    for task in page["data"]:
        typer.echo(f"{task['id']}  {task['status']:<20} round {task['round']}  {task['flow']}")
    typer.echo(f"{page['count']} task(s)")


@app.command()
def watch(task_id: str, server: ServerOption = "http://127.0.0.1:8000") -> None:
    """Print a task's events as they happen, until it finishes."""
    with _client(server) as client:
        for event in client.events(task_id):
            typer.echo(f"{event['id']:>6} {event['type']:<18} {json.dumps(event['data'])}")


def _decide(task_id: str, server: str, decision: str, comment: str | None) -> None:
    with _client(server) as client:
        task = client.get_task(task_id)
        open_rounds = [r for r in task["reviews"] or [] if r["status"] == "open"]
        if not open_rounds:
            typer.echo(f"error: task {task_id} is {task['status']}: no review is open", err=True)
            raise typer.Exit(1)
        _print(client.decide(open_rounds[-1]["id"], decision, comment=comment))


@app.command()
def approve(
    task_id: str,
    server: ServerOption = "http://127.0.0.1:8000",
    comment: Annotated[str | None, typer.Option(help="a note for the record")] = None,
) -> None:
    """Approve a task's open review."""
    _decide(task_id, server, "approve", comment)


@app.command()
def reject(
    task_id: str,
    comment: Annotated[str, typer.Option(help="what the next revision must change")],
    server: ServerOption = "http://127.0.0.1:8000",
) -> None:
    """Reject a task's open review, with a comment for the next revision."""
    _decide(task_id, server, "reject", comment)


@app.command()
def worker(
    database: DbOption = None,
    flow: Annotated[
        list[str] | None,
        typer.Option("--flow", help="name=package.module:factory; repeatable (HITL_FLOWS)"),
    ] = None,
    concurrency: Annotated[int | None, typer.Option(help="tasks run at once")] = None,
    name: Annotated[
        str | None,
        typer.Option(
            help="a name unique on this host: a restarted worker of the same name "
            "takes back its predecessor's tasks at once instead of when their leases expire"
        ),
    ] = None,
    log_level: Annotated[str | None, typer.Option(help="debug, info, warning")] = None,
) -> None:
    """Run workers only: claim tasks from the database and run their flows (PostgreSQL)."""
    import asyncio
    import signal
    import socket

    from hitl.service import Service
    from hitl.service.service import tune_gc

    settings = _settings(
        database_url=database, flows=flow or None, concurrency=concurrency, log_level=log_level
    )
    settings.run_workers = True
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    if settings.database_url.startswith("sqlite"):
        typer.echo(
            "error: a SQLite file belongs to one process: run `hitl serve` (which has workers), "
            "or point HITL_DATABASE_URL at PostgreSQL to run separate workers",
            err=True,
        )
        raise typer.Exit(2)
    home = f"{socket.gethostname()}:worker-{name}" if name else None

    async def main() -> None:
        service = Service(settings, home=home)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await service.start()
        tune_gc()
        typer.echo(f"hitl worker running ({settings.concurrency} at once)")
        try:
            await stop.wait()
        finally:
            await service.stop()

    try:
        asyncio.run(main())
    except Exception as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
