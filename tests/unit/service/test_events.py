from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hitl.service import EventBroker
from hitl.service.waiting import wait_set
from hitl.store import SqlStore, migrate


async def test_old_cursors_read_the_database_then_the_window(
    migrated_database: Callable[[], str],
) -> None:
    url = migrated_database()
    store = SqlStore(url)
    broker = EventBroker(store, window=3, poll_interval=0.02)
    store.on_commit(broker.committed)
    await broker.start()
    try:
        for i in range(20):
            await store.write(lambda tx, i=i: tx.add_event("a" if i % 2 else "b", "x", str(i)))
        while broker.last_id < 20:
            await asyncio.sleep(0.01)
        assert len(broker._events) <= 6  # only the newest are kept in memory

        got: list[int] = []
        async for event in broker.subscribe("a", 0, heartbeat=0.05):
            if event is None:
                break
            got.append(event.id)
        assert got == [r.id for r in await store.events_after(0, "a")]
        assert len(got) == 10

        later: list[str] = []
        async for event in broker.subscribe(None, 17, heartbeat=0.05):
            if event is None:
                break
            later.append(event.data)
        assert later == ["17", "18", "19"]
    finally:
        await broker.stop()
        await store.close()


async def test_the_pump_stops_even_when_poked_just_before(
    migrated_database: Callable[[], str],
) -> None:
    """A commit's poke and the service's stop in one step of the loop: with
    `asyncio.wait_for`, Python 3.11 dropped that cancellation and the pump ran on for ever."""
    url = migrated_database()
    store = SqlStore(url)
    try:
        for _ in range(5):
            broker = EventBroker(store, poll_interval=60)
            await broker.start()
            await asyncio.sleep(0.05)  # the pump is waiting for a poke
            broker.poke()
            stopping = asyncio.ensure_future(broker.stop())
            done, _ = await asyncio.wait({stopping}, timeout=3)  # its poll interval is 60 s
            assert done, "the pump ran on after it was cancelled"
    finally:
        await store.close()


async def test_wait_set_says_whether_the_event_came() -> None:
    event = asyncio.Event()
    assert not await wait_set(event, 0.01)
    asyncio.get_running_loop().call_later(0.01, event.set)
    assert await wait_set(event, 5)


async def test_a_live_subscriber_skips_other_tasks_events_without_reading_them(
    migrated_database: Callable[[], str],
) -> None:
    """Only a task's own events wake its subscribers; when they wake, everything read
    meanwhile (more than the window holds) is known not to be theirs: no database read."""
    url = migrated_database()
    store = SqlStore(url)
    broker = EventBroker(store, window=3, poll_interval=60)
    store.on_commit(broker.committed)
    await broker.start()
    task_reads = 0
    events_after = store.events_after

    async def counted(after: int, task_id: str | None = None, *args: Any, **kw: Any) -> Any:
        nonlocal task_reads
        task_reads += task_id is not None
        return await events_after(after, task_id, *args, **kw)

    store.events_after = counted  # type: ignore[method-assign,assignment]
    try:
        got: list[str] = []
        waiting = asyncio.Event()

        async def follow() -> None:
            async for event in broker.subscribe("a", broker.last_id, heartbeat=60):
                assert event is not None
                got.append(event.data)
                if len(got) == 2:
                    return
                waiting.set()

        follower = asyncio.create_task(follow())
        await store.write(lambda tx: tx.add_event("a", "x", "first"))
        await waiting.wait()
        for i in range(50):
            await store.write(lambda tx, i=i: tx.add_event("b", "x", str(i)))
        while broker.last_id < 51:
            await asyncio.sleep(0.01)
        await store.write(lambda tx: tx.add_event("a", "x", "second"))
        await asyncio.wait_for(follower, 10)
        assert got == ["first", "second"]
        assert task_reads == 0
        assert not broker._signals  # no subscriber left waiting
    finally:
        await broker.stop()
        await store.close()


async def test_this_process_commits_reach_subscribers_without_a_query(tmp_path: Path) -> None:
    """SQLite: what this process commits goes into the window straight from the commit. A
    commit by another process in between is read from the log, and nothing is out of order.
    (PostgreSQL's commits are always read from the log: the tests above run on both.)"""
    url = f"sqlite:///{tmp_path / 'events.db'}"
    migrate.upgrade(url)
    store, other = SqlStore(url), SqlStore(url)
    broker = EventBroker(store, poll_interval=60)
    store.on_commit(broker.committed)
    await broker.start()
    reads = 0
    events_after = store.events_after

    async def counted(*args: Any, **kw: Any) -> Any:
        nonlocal reads
        reads += 1
        return await events_after(*args, **kw)

    store.events_after = counted  # type: ignore[method-assign]
    try:
        for i in range(5):
            await store.write(lambda tx, i=i: tx.add_event("a", "x", str(i)))
        assert broker.last_id == 5 and reads == 0
        await other.write(lambda tx: tx.add_event("a", "x", "elsewhere"))  # not heard here
        await store.write(lambda tx: tx.add_event("a", "x", "after"))  # id 7 does not follow 5
        while broker.last_id < 7:
            await asyncio.sleep(0.01)
        got = []
        async for event in broker.subscribe("a", 0, heartbeat=0.05):
            if event is None:
                break
            got.append((event.id, event.data))
        assert got == [(i + 1, str(i)) for i in range(5)] + [(6, "elsewhere"), (7, "after")]
        assert reads == 1  # the one that found the other process's event
    finally:
        await broker.stop()
        await store.close()
        await other.close()


async def test_now_is_after_the_last_event_committed_not_the_last_read(
    migrated_database: Callable[[], str],
) -> None:
    """A stream "from now" hands on nothing committed before it came, even what this process
    has not read yet (another process's commits, on a busy machine)."""
    url = migrated_database()
    store, other = SqlStore(url), SqlStore(url)  # `other`: another process's commits
    broker = EventBroker(store, poll_interval=60)  # read only when poked
    await broker.start()
    try:
        for i in range(3):
            await other.write(lambda tx, i=i: tx.add_event("a", "before", str(i)))
        assert broker.last_id == 0  # not read yet
        start = await broker.now()
        assert start == await store.last_event_id() == 3
        await other.write(lambda tx: tx.add_event("a", "after", "3"))
        broker.poke()
        got: list[str] = []
        async for event in broker.subscribe(None, start, heartbeat=5):
            assert event is not None
            got.append(event.type)
            break
        assert got == ["after"]
    finally:
        await broker.stop()
        await store.close()
        await other.close()
