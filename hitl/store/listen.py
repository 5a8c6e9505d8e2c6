"""PostgreSQL LISTEN/NOTIFY: every process hears at once of commits made by any other.

Transactions that append events send `hitl_events`, and those that make work runnable send
`hitl_work`; PostgreSQL delivers them when the transaction commits. The database stays the
source of truth: a notification only says "look now", so one that is missed (while this
listener reconnects, say) delays an event until the next poll, and never loses it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from hitl.store.engine import sync_url

if TYPE_CHECKING:
    import psycopg

log = logging.getLogger(__name__)

EVENTS = "hitl_events"
WORK = "hitl_work"


def conninfo(url: str) -> str:
    return sync_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


class Listener:
    """Hears the channels given a callback (`None`: not listened to, so a process without
    workers is not woken by each work notice)."""

    def __init__(
        self,
        url: str,
        on_events: Callable[[], None] | None,
        on_work: Callable[[], None] | None,
    ) -> None:
        self.conninfo = conninfo(url)
        self.callbacks = {
            channel: callback
            for channel, callback in ((EVENTS, on_events), (WORK, on_work))
            if callback is not None
        }
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self.connected = asyncio.Event()

    async def start(self) -> None:
        if not self.callbacks:
            return
        self._task = asyncio.create_task(self._run(), name="hitl-listener")

    async def stop(self, timeout: float = 5.0) -> None:
        """Stop listening; past `timeout`, stop waiting for it."""
        if self._task is None:
            return
        self._stopping = True
        self._task.cancel()
        done, _ = await asyncio.wait({self._task}, timeout=timeout)
        if not done:
            log.warning(
                "the listener did not stop within %.0f s", timeout, extra={"action": "listen"}
            )

    async def _run(self) -> None:
        import psycopg  # (here: a SQLite process never loads it, nor does a command of the CLI)

        delay = 0.1
        while not self._stopping:
            try:
                async with await psycopg.AsyncConnection.connect(
                    self.conninfo, autocommit=True
                ) as conn:
                    for channel in self.callbacks:
                        await conn.execute(f"LISTEN {channel}")
                    self.connected.set()
                    delay = 0.1
                    # Whatever was committed while we were not listening: look now.
                    for callback in self.callbacks.values():
                        callback()
                    await self._hear(conn)  # (until the connection fails)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.connected.clear()
                log.warning(
                    "listening for notifications failed (%s); retrying in %.1f s",
                    exc,
                    delay,
                    extra={"action": "listen"},
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def _hear(self, conn: psycopg.AsyncConnection[Any]) -> None:
        """Call each channel's callback as its notifications come, until the connection
        fails. The socket is watched for as long as the connection lasts, and what one
        packet brings is handled in one call: psycopg's `notifies()` sets up and takes down a
        wait for each packet, which under load cost a worker process a sixth of its time."""
        import psycopg

        loop = asyncio.get_running_loop()
        pgconn, fd = conn.pgconn, conn.pgconn.socket
        callbacks = {channel.encode(): callback for channel, callback in self.callbacks.items()}
        lost: asyncio.Future[None] = loop.create_future()

        def readable() -> None:
            heard = set()
            try:
                pgconn.consume_input()
                while (note := pgconn.notifies()) is not None:
                    heard.add(note.relname)
            except psycopg.Error as exc:
                loop.remove_reader(fd)
                if not lost.done():
                    lost.set_exception(exc)
                return
            for channel in heard:
                try:
                    callbacks[channel]()
                except Exception:  # (the others are still called, and the reader stays)
                    log.exception("a notification's callback failed", extra={"action": "listen"})

        loop.add_reader(fd, readable)
        try:
            await lost
        finally:
            loop.remove_reader(fd)
