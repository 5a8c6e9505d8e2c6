"""PostgreSQL's notifications (`hitl.store.listen`): each channel calls its own callback, a
connection the server ends is replaced, and a process hears only the channels it uses."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import psycopg
import pytest

from hitl.config import Settings
from hitl.service.service import Service
from hitl.store.listen import EVENTS, WORK, Listener, conninfo

pytestmark = pytest.mark.parametrize("backend", ["postgresql"])

LISTENERS = (
    "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'LISTEN %'"
)


def _sql(url: str, statement: str) -> list[tuple[object, ...]]:
    with psycopg.connect(conninfo(url), autocommit=True) as conn:
        return conn.execute(statement).fetchall()


async def _heard(flag: asyncio.Event) -> None:
    await asyncio.wait_for(flag.wait(), 10)
    flag.clear()


async def test_each_channel_calls_its_callback_again_after_the_server_ends_the_connection(
    new_database: Callable[[], str],
) -> None:
    url = new_database()
    events, work = asyncio.Event(), asyncio.Event()
    listener = Listener(url, events.set, work.set)
    await listener.start()
    try:
        # Connected: both are called at once, for whatever was committed before.
        await _heard(events)
        await _heard(work)
        _sql(url, f"SELECT pg_notify('{WORK}', '')")
        await _heard(work)
        assert not events.is_set()
        _sql(url, f"SELECT pg_notify('{EVENTS}', '')")
        await _heard(events)
        assert not work.is_set()
        # Many notifications in one transaction, then in many: each is heard (at least once).
        _sql(url, f"SELECT pg_notify('{EVENTS}', x::text) FROM generate_series(1, 500) x")
        await _heard(events)

        (pid,) = [row[0] for row in _sql(url, LISTENERS)]
        events.clear()  # (the 500 may have come in two packets, and called it twice)
        work.clear()
        _sql(url, f"SELECT pg_terminate_backend({pid})")
        # A new connection: it looks at once (both called), and hears what comes after.
        await _heard(events)
        await _heard(work)
        assert listener.connected.is_set()
        assert [row[0] for row in _sql(url, LISTENERS)] not in ([], [pid])
        _sql(url, f"SELECT pg_notify('{WORK}', '')")
        await _heard(work)
    finally:
        await listener.stop()

    async def closed() -> None:  # stopped: its connection is closed (its server process
        while _sql(url, LISTENERS):  # ends a moment later)
            await asyncio.sleep(0.01)

    await asyncio.wait_for(closed(), 10)


async def test_a_process_listens_only_to_the_channels_it_has_a_use_for(
    new_database: Callable[[], str],
) -> None:
    url = new_database()
    api = Service(Settings(database_url=url, run_workers=False))  # `serve --no-workers`
    worker = Service(Settings(database_url=url), streams=False)  # `worker`
    both = Service(Settings(database_url=url))  # `serve`
    assert api.listener is not None and set(api.listener.callbacks) == {EVENTS}
    # The worker's process hears events too: its notifier sends the webhooks.
    assert worker.listener is not None and set(worker.listener.callbacks) == {EVENTS, WORK}
    assert both.listener is not None and set(both.listener.callbacks) == {EVENTS, WORK}
    for service in (api, worker, both):
        await service.store.close()
