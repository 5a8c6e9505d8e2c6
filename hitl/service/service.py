"""The service as one object: store, flows, event broker, workers and use cases, wired."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterator

import sqlalchemy as sa

from hitl.config import Settings
from hitl.service import access
from hitl.service.deadlines import Deadlines
from hitl.service.events import EventBroker
from hitl.service.flows import build_registry
from hitl.service.identity import Identity
from hitl.service.machine import ReviewStatus
from hitl.service.metrics import Metrics
from hitl.service.notify import Notifier
from hitl.service.principal import Principal
from hitl.service.tasks import TaskService
from hitl.service.worker import Worker
from hitl.store import SqlStore, Store, guard, migrate
from hitl.store.engine import safe_url
from hitl.store.listen import Listener

log = logging.getLogger(__name__)


class DatabaseNotReady(RuntimeError):
    """The database schema is older than this version of hitl: run `hitl db upgrade`."""


class DatabaseMissing(DatabaseNotReady):
    """The database is missing, empty or was lost, and start-up creates none in its place (see
    `prepare_database`)."""


class DatabaseUnreachable(RuntimeError):
    """The database did not answer."""


class DatabaseCorrupt(DatabaseUnreachable):
    """The database answered that its file is corrupt: restore it from a backup."""


def wait_for_database(url: str, seconds: float) -> bool:
    """Wait up to `seconds` for the database to answer, saying so while it does not; then
    whether it is empty (has no tables)."""
    deadline = time.monotonic() + seconds
    where = safe_url(url)
    while True:
        try:
            with _corrupt_in_one_line(where):
                return migrate.is_empty(url)
        except sa.exc.OperationalError as exc:
            reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
            if guard.sqlite_path(url) is not None:
                # A file on this machine: waiting will not make it openable.
                raise DatabaseUnreachable(
                    f"cannot open the SQLite database at {where} ({reason}): check that its "
                    "directory exists and is writable, or set HITL_DATABASE_URL"
                ) from None
            if time.monotonic() >= deadline:
                raise DatabaseUnreachable(
                    f"the database at {where} did not answer within {seconds:g} s ({reason}); "
                    "check HITL_DATABASE_URL and that the server is running"
                ) from None
            log.warning("waiting for the database at %s: %s", where, reason)
            time.sleep(1.0)


def prepare_database(url: str, wait_seconds: float = 0.0, create: bool = True) -> None:
    """Create the schema in a new database, loudly; refuse one that is corrupt or needs a
    migration.

    A SQLite file that was lost is not replaced by a new one: start-up refuses while a copy that
    a server saved when it lost the file remains, or while the file is missing but its
    write-ahead log remains. Without `create` (HITL_CREATE_DATABASE=false), start-up creates
    nothing at all.
    """
    if url in _prepared:
        return  # this process checked it already (`hitl serve` does, before the app starts)
    where = safe_url(url)
    path = guard.sqlite_path(url)
    if path is not None and (refusal := guard.refusal(path)) is not None:
        raise DatabaseMissing(refusal)
    if path is not None and not create and not path.exists():
        raise DatabaseMissing(_not_created(f"there is no database file {path}"))
    empty = wait_for_database(url, wait_seconds)
    with _corrupt_in_one_line(where):
        if path is not None and (problem := migrate.quick_check(url)) is not None:
            raise DatabaseCorrupt(_corrupt(where, problem))
        if empty:
            if not create:
                raise DatabaseMissing(_not_created(f"the database at {where} is empty"))
            log.warning(
                "created a new, empty database at %s (on a first start, that is all; if this "
                "hitl had tasks before, stop it: their database is elsewhere, in the directory "
                "it ran in or at another HITL_DATABASE_URL, or was lost)",
                where,
                extra={"action": "create_database"},
            )
            migrate.upgrade(url)
            _prepared.add(url)
            return
        current, head = migrate.current_revision(url), migrate.head_revision()
    if current != head:
        raise DatabaseNotReady(
            f"the database is at schema revision {current!r}, this hitl needs {head!r}: "
            "run `hitl db upgrade` first"
        )
    _prepared.add(url)


# The databases this process has prepared: a second look would only repeat the whole-file check.
_prepared: set[str] = set()


def _not_created(problem: str) -> str:
    return (
        f"{problem} and HITL_CREATE_DATABASE is false: restore it, or create it on purpose "
        "with `hitl db upgrade`"
    )


def _corrupt(where: str, problem: str) -> str:
    return (
        f"the database at {where} is corrupt ({problem}): restore it from a backup, or move "
        "it aside to start with an empty database"
    )


@contextlib.contextmanager
def _corrupt_in_one_line(where: str) -> Iterator[None]:
    try:
        yield
    except sa.exc.DatabaseError as exc:
        if not guard.is_corrupt(exc):
            raise
        raise DatabaseCorrupt(_corrupt(where, guard.first_line(exc))) from None


def _local_url(host: str, port: int) -> str:
    if host in ("", "0.0.0.0", "::"):
        host = "127.0.0.1"
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


class Service:
    """`home` names where this process runs (host and port, or host and worker name): a
    process that starts at the home of one that died takes back its leases at once. A process
    that serves no event streams (`streams=False`: `hitl worker`) reads no events."""

    def __init__(self, settings: Settings, home: str | None = None, streams: bool = True) -> None:
        self.settings = settings
        self.streams = streams
        self.registry = build_registry(settings)
        self.store: Store = SqlStore(settings.database_url, settings.pool_size)
        self.broker = EventBroker(self.store, poll_interval=settings.poll_interval)
        self.worker = (
            Worker(
                self.store,
                self.registry,
                concurrency=settings.concurrency,
                lease_seconds=settings.lease_seconds,
                poll_interval=settings.poll_interval,
                max_claims=settings.max_claims,
                home=home,
            )
            if settings.run_workers
            else None
        )
        self.identity = Identity(self.store)
        self.tasks = TaskService(
            self.store, self.registry, self.wake_workers, self.worker, settings.max_comment_chars
        )
        # Where workers run, deadlines are watched too: they hand decided tasks to workers.
        self.deadlines = (
            Deadlines(self.store, settings.poll_interval, self.wake_workers)
            if settings.run_workers
            else None
        )
        if streams:
            self.store.on_commit(self.broker.committed)
        self.metrics = Metrics()
        self.store.timed = self.metrics.database
        self.metrics.count_streams(lambda: self.broker.listening)
        self.tasks.metrics = self.metrics
        if self.worker is not None:
            self.worker.metrics = self.metrics
        if self.deadlines is not None:
            self.deadlines.metrics = self.metrics
        # Channels are managed from any process; deliveries are sent where workers run.
        self.notifier = Notifier(
            self.store,
            settings.public_url or _local_url(settings.host, settings.port),
            settings.delivery_retry_seconds,
            settings.poll_interval,
            self.metrics,
            home or "",
        )
        self.sends = settings.run_workers
        if self.sends:
            self.store.on_commit(self.notifier.wake)
        if self.deadlines is not None:
            self.deadlines.warn_seconds = settings.deadline_warning_seconds
        self.listener = (
            Listener(
                settings.database_url,
                self._other_events if streams or self.sends else None,
                self.wake_workers if self.worker is not None else None,
            )
            if self.store.dialect == "postgresql"
            else None
        )

    def _other_events(self) -> None:
        """Another process committed events."""
        if self.streams:
            self.broker.poke()
        if self.sends:
            self.notifier.wake()

    def wake_workers(self) -> None:
        if self.worker is not None:
            self.worker.wake()

    @property
    def dialect(self) -> str:
        return self.store.dialect

    async def read_metrics(self, who: Principal | None) -> bytes:
        """Prometheus' text: what this process counted, and the queue as it is now."""
        access.administer(who, "read the metrics")
        return await self.metrics.render(self.store, ReviewStatus.OPEN.value)

    async def ping(self) -> None:
        """Raise `Unavailable` unless the database answers."""
        await self.store.ping()

    async def start(self) -> None:
        # Waiting for the database to come up is the entry points' business (`hitl serve`,
        # `hitl worker`): here it must answer now.
        await asyncio.to_thread(
            prepare_database, self.settings.database_url, 0.0, self.settings.create_database
        )
        if self.streams:
            await self.broker.start()
        if self.listener is not None:
            await self.listener.start()
        if self.worker is not None:
            # One process owns a SQLite file: whatever was running died with the last one.
            # On PostgreSQL, only what the last process at this home was running.
            if self.store.dialect == "sqlite" or self.worker.home_is_stable:
                await self.worker.release(everything=self.store.dialect == "sqlite")
            await self.worker.start()
        if self.deadlines is not None:
            await self.deadlines.start()
        if self.sends:
            sole = self.store.dialect == "sqlite"
            again = self.worker is not None and self.worker.home_is_stable
            await self.notifier.start("all" if sole else "home" if again else None)

    async def stop(self) -> None:
        if self.sends:
            await self.notifier.stop()
        if self.deadlines is not None:
            await self.deadlines.stop()
        if self.listener is not None:
            await self.listener.stop()
        if self.worker is not None:
            await self.worker.stop()
        await self.broker.stop()
        await self.store.close()
