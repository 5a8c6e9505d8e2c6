from __future__ import annotations

import asyncio
from collections.abc import Callable

from hitl.service import EventBroker
from hitl.store import Store, migrate


async def test_old_cursors_read_the_database_then_the_window(
    new_database: Callable[[], str],
) -> None:
    url = new_database()
    migrate.upgrade(url)
    store = Store(url)
    broker = EventBroker(store, window=3, poll_interval=0.02)
    store.on_commit(broker.poke)
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
        assert got == [r["id"] for r in await store.events_after(0, "a")]
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
