"""Live reads of the event log, for any number of subscribers in this process.

The log in the database is the truth. The newest events are kept in memory, so a thousand
subscribers to one task cost nothing more per commit than one. What this process commits goes
there straight from the commit, with no query, when the store knows its ids and they follow
the last event read (`committed`: SQLite, whose one writer is this process); otherwise one pump
per process reads what was committed after the last id it saw — when told to (`poke`: this
process's commits on PostgreSQL, and other processes' through `LISTEN`), and every
`poll_interval`. A subscriber whose cursor is older than that window reads
the database until it catches up, so a reconnecting client misses nothing.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

from hitl.service.waiting import wait_set
from hitl.store import EventRow, Store, Unavailable

log = logging.getLogger(__name__)

# A replay's client may read slowly: the server holds one page of rows for it, and reads the
# next only once the client has taken the last (uvicorn's `send` waits for its socket to drain).
PAGE = 250
# Replay page reads at once: an ordinary request's read queues behind no more than these, and
# replays waiting for theirs leave the event loop to other clients.
REPLAY_READS = 2
# Events a subscriber hands on in one go (one run, one write): one that is far behind yields
# the loop this often, so other clients' requests do not wait behind the whole of its backlog.
TURN = 50


class _Signal:
    """Wakes the subscribers of one task when an event of that task is read."""

    __slots__ = ("event", "before", "waiters")

    def __init__(self) -> None:
        self.event = asyncio.Event()
        self.before = 0  # every event up to this id was read before, and none was this task's
        self.waiters = 0


@dataclass(frozen=True, slots=True)
class Event:
    id: int
    task_id: str
    type: str
    data: str


class EventBroker:
    def __init__(self, store: Store, window: int = 1000, poll_interval: float = 1.0) -> None:
        self.store = store
        self.window = window
        self.poll_interval = poll_interval
        self.last_id = 0
        self._floor = 0
        self._events: list[Event] = []
        self._ids: list[int] = []
        self._wake = asyncio.Event()
        self._changed = asyncio.Event()  # wakes the subscribers of every task's events
        self._signals: dict[str, _Signal] = {}  # wake those of one task
        self._pump_task: asyncio.Task[None] | None = None
        self._replaying = asyncio.Semaphore(REPLAY_READS)
        self.listening = 0  # subscribers reading now

    async def start(self) -> None:
        self.last_id = self._floor = await self.store.last_event_id()
        self._pump_task = asyncio.create_task(self._pump(), name="hitl-event-pump")

    async def stop(self) -> None:
        if self._pump_task is not None:
            self._pump_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pump_task

    async def now(self) -> int:
        """Where a stream of what happens from now on starts: after the last event committed,
        which this process may not have read yet (so its subscribers would be handed events
        from before they came); if the database cannot say, after the last one read."""
        try:
            return max(self.last_id, await self.store.last_event_id())
        except Unavailable:
            return self.last_id

    def poke(self) -> None:
        """Events were committed: read them."""
        self._wake.set()

    def committed(self, events: list[EventRow] | None) -> None:
        """This process committed `events` (None: some, unknown). If they follow the last one
        read, they go into the window at once, with no query; else they are read, as any
        other process's are."""
        if events and events[0].id == self.last_id + 1:
            self._add(events)
        else:
            self.poke()

    async def _pump(self) -> None:
        while True:
            await wait_set(self._wake, self.poll_interval)
            self._wake.clear()
            try:
                await self._fetch()
            except Unavailable as exc:
                log.warning("reading new events: %s", exc, extra={"action": "event_pump"})
                await asyncio.sleep(self.poll_interval)
            except Exception:
                log.exception("reading new events failed", extra={"action": "event_pump"})
                await asyncio.sleep(self.poll_interval)

    async def _fetch(self) -> None:
        while True:
            rows = await self.store.events_after(self.last_id, limit=2000)
            if rows and rows[0].id <= self.last_id:  # some were added meanwhile (`committed`)
                rows = [r for r in rows if r.id > self.last_id]
            if rows:
                self._add(rows)
            if len(rows) < 2000:
                return

    def _add(self, rows: list[EventRow]) -> None:
        """Put events that follow the last one read into the window, and wake their tasks'
        subscribers."""
        before = self.last_id
        for r in rows:
            self._events.append(Event(r.id, r.task_id, r.type, r.data))
            self._ids.append(r.id)
        self.last_id = rows[-1].id
        if len(self._events) > self.window + self.window // 4:
            cut = len(self._events) - self.window
            self._floor = self._ids[cut - 1]
            del self._events[:cut], self._ids[:cut]
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()
        if self._signals:
            for task_id in {r.task_id for r in rows}:
                signal = self._signals.pop(task_id, None)
                if signal is not None:
                    signal.before = before
                    signal.event.set()

    async def _wait(self, cursor: int, timeout: float) -> bool:
        if self.last_id > cursor:
            return True
        changed = self._changed
        try:
            # asyncio.timeout, unlike wait_for, makes no task: it matters with 1,000 waiters.
            async with asyncio.timeout(timeout):
                await changed.wait()
        except TimeoutError:
            return False
        return True

    async def _wait_for(self, task_id: str, cursor: int, timeout: float) -> tuple[bool, int]:
        """Wait until an event of `task_id` is read (True), or `timeout` (False). Only that
        task's events wake its subscribers; the cursor returned skips what was read meanwhile,
        none of which was the task's."""
        if self.last_id > cursor:
            return True, cursor
        signal = self._signals.get(task_id)
        if signal is None:
            signal = self._signals[task_id] = _Signal()
        signal.waiters += 1
        try:
            async with asyncio.timeout(timeout):
                await signal.event.wait()
        except TimeoutError:
            if not signal.event.is_set():  # (it may be, if both happened in one turn)
                return False, self.last_id
        finally:
            signal.waiters -= 1
            if not signal.waiters and self._signals.get(task_id) is signal:
                del self._signals[task_id]
        return True, max(cursor, signal.before)

    async def subscribe(
        self, task_id: str | None, after: int, heartbeat: float
    ) -> AsyncIterator[Event | None]:
        """Every event after `after` (of one task, or all), then live ones; None = heartbeat."""
        async for run in self.runs(task_id, after, heartbeat):
            if run is None:
                yield None
                continue
            for event in run:
                yield event

    async def runs(
        self, task_id: str | None, after: int, heartbeat: float
    ) -> AsyncIterator[list[Event] | None]:
        """`subscribe`'s events, in runs of those that are there together (at most TURN), so
        that a stream can send each run in one write; None = heartbeat."""
        self.listening += 1  # (the event streams open now, for the metrics)
        try:
            cursor = after
            while True:
                upto = self.last_id
                if cursor < self._floor:
                    async with self._replaying:
                        rows = await self.store.events_after(cursor, task_id, PAGE, upto)
                    for i in range(0, len(rows), TURN):
                        yield [Event(r.id, r.task_id, r.type, r.data) for r in rows[i : i + TURN]]
                        await asyncio.sleep(0)
                    cursor = rows[-1].id if len(rows) == PAGE else max(cursor, upto)
                    continue
                start = bisect.bisect_right(self._ids, cursor)
                run: list[Event] = []
                for event in self._events[start:]:
                    if event.id > upto:
                        break
                    if task_id is None or event.task_id == task_id:
                        run.append(event)
                        if len(run) == TURN:
                            yield run
                            run = []
                            await asyncio.sleep(0)
                if run:
                    yield run
                cursor = max(cursor, upto)
                if task_id is None:
                    woken = await self._wait(cursor, heartbeat)
                else:
                    woken, cursor = await self._wait_for(task_id, cursor, heartbeat)
                if not woken:
                    yield None
        finally:
            self.listening -= 1
