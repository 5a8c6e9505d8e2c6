"""`hitl serve` (the web UI, the API and, by default, workers) and `hitl worker`."""

from __future__ import annotations

import socket
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Annotated

import typer

from hitl.cli import tuning
from hitl.cli._common import (
    FAILED,
    USAGE,
    ConcurrencyOption,
    DbOption,
    FlowOption,
    LogFormatOption,
    LogLevelOption,
    browser_host,
    configure_logging,
    fail,
    server_settings,
)
from hitl.config import Settings

if TYPE_CHECKING:
    import uvicorn


def serve(
    host: Annotated[str | None, typer.Option(help="address to listen on (HITL_HOST)")] = None,
    port: Annotated[int | None, typer.Option(help="port (HITL_PORT)")] = None,
    allowed_host: Annotated[
        list[str] | None,
        typer.Option(
            "--allowed-host",
            help="a name clients reach the server by (the Host header; `*`: any); "
            "repeatable (HITL_ALLOWED_HOSTS)",
            show_default=False,
        ),
    ] = None,
    database: DbOption = None,
    flow: FlowOption = None,
    default_flow: Annotated[
        str | None, typer.Option(help="flow for tasks that name none (HITL_DEFAULT_FLOW)")
    ] = None,
    process_delay: Annotated[
        float | None,
        typer.Option(help="seconds the default processor sleeps (HITL_PROCESS_DELAY)"),
    ] = None,
    concurrency: ConcurrencyOption = None,
    workers: Annotated[
        bool | None,
        typer.Option(
            "--workers/--no-workers",
            help="run workers in this process (HITL_RUN_WORKERS; default: on)",
            show_default=False,
        ),
    ] = None,
    log_level: LogLevelOption = None,
    log_format: LogFormatOption = None,
) -> None:
    """Serve the web UI and API; embedded SQLite and in-process workers by default.

    Every flag overrides its HITL_* variable; see docs/configuration.md for all of them.
    """
    settings = server_settings(
        host=host,
        port=port,
        allowed_hosts=allowed_host or None,
        database_url=database,
        flows=flow or None,
        default_flow=default_flow,
        process_delay=process_delay,
        concurrency=concurrency,
        run_workers=workers,
        log_level=log_level,
        log_format=log_format,
    )
    run_server(settings)


def run_server(settings: Settings) -> None:
    from hitl.app import create_app
    from hitl.server import config
    from hitl.service.admin import safe_url

    try:
        application = create_app(settings)
    except Exception as exc:  # a bad --flow: say so, without a traceback
        fail(str(exc), USAGE)
    configure_logging(settings)
    # Take the port before touching the database: a port in use is one line, and nothing else.
    listener = _listen(settings.host, settings.port)
    prepare(settings)
    workers = f"on, {settings.concurrency} tasks at once" if settings.run_workers else "off"
    typer.echo(f"hitl: database {safe_url(settings.database_url)}, workers: {workers}")
    port = listener.getsockname()[1]
    base = f"http://{browser_host(settings.host)}:{port}"
    ready = f"hitl ready: open {base}  (reviewers: /reviews, API docs: /docs)"

    async def first_run() -> None:
        """With no admin yet, make one, and a one-time link to sign in as it."""
        if not settings.auth:
            typer.echo(
                "hitl: HITL_AUTH=false: no sign-in, anyone who reaches the port may do anything"
            )
            return
        secret = await application.state.service.identity.first_admin_link()
        if secret is not None:
            typer.echo(
                f"hitl: first run: sign in as admin with this one-time link (for 15 minutes; "
                f"`hitl login-link admin` makes another): {base}/login/{secret}"
            )

    server = _ready_server(config(application, settings), ready, first_run)
    tuning.tune_switch_interval()
    tuning.tune_gc()
    server.run(sockets=[listener])


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        fail(
            f"cannot listen on {host}:{port} ({exc.strerror or exc}): stop what uses it, or "
            f"choose another port with --port or HITL_PORT (HITL_PORT=9000 make run)",
            FAILED,
        )
    sock.set_inheritable(True)
    return sock


def _ready_server(
    config: uvicorn.Config, ready: str, first: Callable[[], Awaitable[None]]
) -> uvicorn.Server:
    """uvicorn, which says where to open hitl once it listens: the last line of start-up."""
    import uvicorn

    class Server(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets=sockets)
            if self.started:
                await first()
                typer.echo(ready)

    return Server(config)


def prepare(settings: Settings) -> None:
    """Wait for the database, then create or check its schema; what goes wrong is one line."""
    from hitl.service.service import DatabaseNotReady, DatabaseUnreachable, prepare_database

    try:
        prepare_database(
            settings.database_url, settings.database_wait_seconds, settings.create_database
        )
    except (DatabaseUnreachable, DatabaseNotReady) as exc:
        fail(str(exc))


def worker(
    database: DbOption = None,
    flow: FlowOption = None,
    concurrency: ConcurrencyOption = None,
    name: Annotated[
        str | None,
        typer.Option(
            help="a name unique on this host: a restarted worker of the same name "
            "takes back its predecessor's tasks at once instead of when their leases expire"
        ),
    ] = None,
    log_level: LogLevelOption = None,
    log_format: LogFormatOption = None,
) -> None:
    """Run workers only: claim tasks from the database and run their flows (PostgreSQL)."""
    settings = server_settings(
        database_url=database,
        flows=flow or None,
        concurrency=concurrency,
        log_level=log_level,
        log_format=log_format,
        run_workers=True,  # what a worker is for, whatever HITL_RUN_WORKERS says for servers
    )
    if settings.database_url.startswith("sqlite"):
        fail(
            "a SQLite file belongs to one process: run `hitl serve` (which has workers), "
            "or point HITL_DATABASE_URL (--db) at PostgreSQL to run separate workers",
            USAGE,
        )
    run_worker(settings, name)


def run_worker(settings: Settings, name: str | None) -> None:
    import asyncio

    configure_logging(settings)
    prepare(settings)
    tuning.tune_switch_interval()
    home = f"{socket.gethostname()}:worker-{name}" if name else None
    try:
        with asyncio.Runner(loop_factory=tuning.event_loop()) as runner:
            runner.run(_work(settings, home))
    except Exception as exc:
        fail(str(exc))


async def _work(settings: Settings, home: str | None) -> None:
    import asyncio
    import signal

    from hitl.service import Service
    from hitl.service.admin import safe_url

    service = Service(settings, home=home, streams=False)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await service.start()
    tuning.tune_gc()
    where = safe_url(settings.database_url)
    typer.echo(f"hitl worker running: database {where}, {settings.concurrency} tasks at once")
    try:
        await stop.wait()
    finally:
        await service.stop()
