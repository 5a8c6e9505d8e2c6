"""The service as one object: store, flows, event broker, workers and use cases, wired."""

from __future__ import annotations

import asyncio
import logging
import socket
import sys

from hitl.config import Settings
from hitl.service.events import EventBroker
from hitl.service.flows import build_registry
from hitl.service.tasks import TaskService
from hitl.service.worker import Worker
from hitl.store import Store, migrate

log = logging.getLogger(__name__)


class DatabaseNotReady(RuntimeError):
    """The database schema is older than this version of hitl: run `hitl db upgrade`."""


def prepare_database(url: str) -> None:
    """Create the schema in an empty database; refuse one that needs a migration."""
    if migrate.is_empty(url):
        log.info("empty database: creating the schema", extra={"action": "migrate"})
        migrate.upgrade(url)
        return
    current, head = migrate.current_revision(url), migrate.head_revision()
    if current != head:
        raise DatabaseNotReady(
            f"the database is at schema revision {current!r}, this hitl needs {head!r}: "
            "run `hitl db upgrade` first"
        )


class Service:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.registry = build_registry(
            settings.flows, settings.process_delay, settings.default_flow
        )
        self.store = Store(settings.database_url, settings.pool_size)
        self.broker = EventBroker(self.store, poll_interval=settings.poll_interval)
        self.worker = (
            Worker(
                self.store,
                self.registry,
                concurrency=settings.concurrency,
                lease_seconds=settings.lease_seconds,
                poll_interval=settings.poll_interval,
                max_claims=settings.max_claims,
                home=f"{socket.gethostname()}:{settings.port}" if settings.port else None,
            )
            if settings.run_workers
            else None
        )
        self.tasks = TaskService(self.store, self.registry, self.wake_workers)
        self.store.on_commit(self.broker.poke)

    def wake_workers(self) -> None:
        if self.worker is not None:
            self.worker.wake()

    async def start(self) -> None:
        # Database threads hand results back to the event loop constantly; the default 5 ms
        # GIL switch interval would add up to that much latency to every hand-over.
        sys.setswitchinterval(0.0005)
        await asyncio.to_thread(prepare_database, self.settings.database_url)
        await self.broker.start()
        if self.worker is not None:
            # One process owns a SQLite file: whatever was running died with the last one.
            # On PostgreSQL, only what the last process on this host and port was running.
            await self.worker.release(everything=self.store.dialect == "sqlite")
            await self.worker.start()

    async def stop(self) -> None:
        if self.worker is not None:
            await self.worker.stop()
        await self.broker.stop()
        await self.store.close()
