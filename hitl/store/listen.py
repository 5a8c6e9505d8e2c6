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

import psycopg

from hitl.store.engine import sync_url

log = logging.getLogger(__name__)

EVENTS = "hitl_events"
WORK = "hitl_work"
WAIT = 1.0  # seconds between checks for stopping while no notification comes


def conninfo(url: str) -> str:
    return sync_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


class Listener:
    def __init__(
        self, url: str, on_events: Callable[[], None], on_work: Callable[[], None]
    ) -> None:
        self.conninfo = conninfo(url)
        self.callbacks = {EVENTS: on_events, WORK: on_work}
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self.connected = asyncio.Event()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="hitl-listener")

    async def stop(self, timeout: float = 5.0) -> None:
        """Stop listening. The listener also checks, every `WAIT` seconds, whether it should
        stop, so it ends even if a psycopg connection caught mid-read does not hear the
        cancel (a known psycopg limitation); past `timeout`, stop waiting for it."""
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
                    while not self._stopping:
                        async for note in conn.notifies(timeout=WAIT):
                            self.callbacks[note.channel]()
                    return
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
