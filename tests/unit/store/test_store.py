from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import sqlite3
import struct
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from functools import partial
from typing import Any

import pytest
import sqlalchemy as sa

from hitl.service.service import DatabaseNotReady, prepare_database
from hitl.store import (
    AuditRow,
    ConstraintError,
    EventRow,
    PrincipalRow,
    ReviewRow,
    SqlStore,
    SqlTx,
    TaskRow,
    TokenRow,
    Tx,
    Unavailable,
    migrate,
)
from hitl.store.engine import create_sync_engine


def _task(
    task_id: str, status: str = "queued", created_at: float | None = None, **values: Any
) -> TaskRow:
    now = created_at if created_at is not None else time.time()
    return TaskRow(
        id=task_id,
        flow="feedback",
        status=status,
        input='"x"',
        shared="{}",
        created_at=now,
        updated_at=now,
        **values,
    )


@pytest.fixture
async def store(migrated_database: Callable[[], str]) -> AsyncIterator[SqlStore]:
    url = migrated_database()
    s = SqlStore(url)
    yield s
    await s.close()


async def test_commits_are_durable(store: SqlStore) -> None:
    if store.dialect == "sqlite":
        # WAL: a killed process loses nothing committed.
        assert await store.read(lambda s: s.scalar("PRAGMA journal_mode")) == "wal"
    else:
        assert await store.read(lambda s: s.scalar("SHOW synchronous_commit")) == "on"


async def test_conditional_update_has_one_winner(store: SqlStore) -> None:
    await store.write(lambda tx: tx.insert_task(_task("t1", "waiting_for_review")))

    async def move() -> bool:
        return await store.write(
            lambda tx: tx.update_task("t1", ["waiting_for_review"], status="running")
        )

    results = await asyncio.gather(*(move() for _ in range(20)))
    assert results.count(True) == 1
    assert getattr(await store.get_task("t1"), "status", None) == "running"


async def test_update_checks_the_lease_owner(store: SqlStore) -> None:
    def write(tx: Tx) -> None:
        tx.insert_task(_task("t1", "running", lease_owner="a"))
        assert not tx.update_task("t1", ["running"], owner="b", node="x")
        assert tx.update_task("t1", ["running"], owner="a", node="y")

    await store.write(write)
    assert getattr(await store.get_task("t1"), "node", None) == "y"


async def test_a_failed_transaction_writes_nothing(store: SqlStore) -> None:
    def write(tx: Tx) -> None:
        tx.insert_task(_task("t1"))
        tx.add_event("t1", "task.created", "{}")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        await store.write(write)
    assert await store.get_task("t1") is None
    assert await store.last_event_id() == 0


async def test_claim_takes_the_oldest_runnable_then_expired_leases(store: SqlStore) -> None:
    now = time.time()

    def setup(tx: Tx) -> None:
        tx.insert_task(_task("new", created_at=now))
        tx.insert_task(_task("old", created_at=now - 10))
        tx.insert_task(_task("held", "running", now - 20, lease_expires_at=now + 60))
        tx.insert_task(_task("dead", "running", now - 5, lease_expires_at=now - 1))
        tx.insert_task(_task("waiting", "waiting_for_review", now - 30))

    await store.write(setup)
    claimed = []
    for _ in range(4):
        rows = await store.write(lambda tx: tx.claim("w1", now + 15, now, "queued", "running"))
        claimed.append(rows[0][0].id if rows else None)
    # An expired lease first (a task resumed after a decision, or orphaned), then oldest queued.
    assert claimed == ["dead", "old", "new", None]
    row = await store.get_task("dead")
    assert row is not None and row.lease_owner == "w1#1" and row.claims == 1


async def test_claim_takes_a_batch_in_order(store: SqlStore) -> None:
    now = time.time()

    def setup(tx: Tx) -> None:
        for i in range(5):
            tx.insert_task(_task(f"q{i}", created_at=now - 10 + i))
        tx.insert_task(_task("dead", "running", now, lease_expires_at=now - 1))

    await store.write(setup)
    rows = await store.write(lambda tx: tx.claim("w", now + 9, now, "queued", "running", 4))
    assert [r.id for r, _ in rows] == ["dead", "q0", "q1", "q2"]
    assert all(r.status == "running" and r.lease_owner == "w#1" for r, _ in rows)
    rest = await store.write(lambda tx: tx.claim("w", now + 9, now, "queued", "running", 4))
    assert [r.id for r, _ in rest] == ["q3", "q4"]


async def test_a_claimed_task_past_a_review_comes_with_its_latest_review(store: SqlStore) -> None:
    now = time.time()

    def setup(tx: Tx) -> None:
        tx.insert_task(_task("fresh", created_at=now - 3))
        tx.insert_task(_task("decided", created_at=now - 2, round=2))
        for round in (1, 2):
            tx.insert_review(
                ReviewRow(f"r{round}", "decided", round, "decided", "review", "{}", now)
            )
        tx.insert_task(_task("orphan", "running", now - 1, lease_expires_at=now - 1, round=1))
        tx.insert_review(ReviewRow("o1", "orphan", 1, "decided", "review", "{}", now))

    await store.write(setup)
    rows = await store.write(lambda tx: tx.claim("w", now + 9, now, "queued", "running", 5))
    assert [(t.id, r.id if r else None) for t, r in rows] == [
        ("orphan", "o1"),
        ("fresh", None),
        ("decided", "r2"),
    ]


async def test_events_have_increasing_ids_and_filter_by_task(store: SqlStore) -> None:
    await store.write(lambda tx: [tx.add_event(f"t{i % 2}", "x", f'{{"n":{i}}}') for i in range(6)])
    events = await store.events_after(0)
    ids = [e.id for e in events]
    assert ids == sorted(ids) and len(set(ids)) == 6
    assert [e.data for e in events] == [f'{{"n":{i}}}' for i in range(6)]  # written in order
    assert [e.id for e in await store.events_after(0, "t1")] == ids[1::2]
    assert [e.id for e in await store.events_after(ids[1], upto=ids[4])] == ids[2:5]
    assert await store.last_event_id() == ids[-1]
    assert await store.last_event_id("t0") == ids[4]


async def test_commit_callbacks_hear_only_commits_with_events(store: SqlStore) -> None:
    heard: list[list[EventRow] | None] = []
    store.on_commit(heard.append)
    await store.write(lambda tx: tx.insert_task(_task("t1")))
    assert heard == []

    def two(tx: SqlTx) -> None:
        tx.add_event("t1", "x", "{}")
        tx.add_event("t1", "y", "[]")

    await store.write(two)  # heard before the write is answered
    assert len(heard) == 1
    if store.dialect == "sqlite":  # its one writer knows the ids: the events, as logged
        assert heard[0] == await store.events_after(0)
    else:  # ids are handed out at insert, in any order: the listener reads the log
        assert heard[0] is None


async def test_idempotency_key_is_unique(store: SqlStore) -> None:
    await store.write(lambda tx: tx.insert_task(_task("t1", idempotency_key="k")))
    with pytest.raises(ConstraintError):
        await store.write(lambda tx: tx.insert_task(_task("t2", idempotency_key="k")))


def test_upgrade_is_repeatable_and_reaches_head(new_database: Callable[[], str]) -> None:
    url = new_database()
    assert migrate.is_empty(url)
    migrate.upgrade(url)
    migrate.upgrade(url)
    assert migrate.current_revision(url) == migrate.head_revision()
    assert not migrate.is_empty(url)


def test_server_creates_an_empty_database_but_refuses_an_old_one(
    new_database: Callable[[], str],
) -> None:
    fresh = new_database()
    prepare_database(fresh)
    assert migrate.current_revision(fresh) == migrate.head_revision()

    old = new_database()
    engine = create_sync_engine(old)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE alembic_version (version_num VARCHAR(32))"))
        conn.execute(sa.text("INSERT INTO alembic_version VALUES ('0000')"))
    engine.dispose()
    with pytest.raises(DatabaseNotReady, match="hitl db upgrade"):
        prepare_database(old)


def test_unsupported_url_is_refused_clearly() -> None:
    from hitl.store import BadDatabaseURL

    with pytest.raises(BadDatabaseURL, match="sqlite:///"):
        SqlStore("mysql://localhost/x")


async def test_expire_leases_of_one_home_only(store: SqlStore) -> None:
    now = time.time()

    def setup(tx: Tx) -> None:
        for name, owner in (("mine", "host:8000/1:a"), ("other", "host:8001/2:b")):
            tx.insert_task(_task(name, "running", lease_owner=owner, lease_expires_at=now + 60))

    await store.write(setup)
    assert await store.write(lambda tx: tx.expire_leases("running", "host:8000/")) == 1
    mine, other = await store.get_task("mine"), await store.get_task("other")
    assert mine is not None and mine.lease_expires_at == 0
    assert other is not None and other.lease_expires_at == now + 60
    assert await store.write(lambda tx: tx.expire_leases("running")) == 2


async def _insert_concurrently(
    store: SqlStore, n: int, failing: Callable[[int], bool]
) -> list[Any]:
    async def write(i: int) -> Any:
        def fn(tx: Tx) -> int:
            tx.insert_task(_task(f"t{i}"))
            tx.add_event(f"t{i}", "task.created", "{}")
            if failing(i):
                raise ValueError(f"bad {i}")
            return i

        return await store.write(fn)

    return await asyncio.gather(*(write(i) for i in range(n)), return_exceptions=True)


async def test_writes_that_wait_together_still_commit_or_fail_alone(store: SqlStore) -> None:
    results = await _insert_concurrently(store, 60, lambda i: i % 7 == 3)
    for i, result in enumerate(results):
        if i % 7 == 3:
            assert isinstance(result, ValueError) and str(result) == f"bad {i}"
        else:
            assert result == i
    ids = await store.read(lambda s: sorted(r["id"] for r in s.all("SELECT id FROM tasks")))
    assert ids == sorted(f"t{i}" for i in range(60) if i % 7 != 3)
    events = await store.read(lambda s: sorted(r["task_id"] for r in s.all("SELECT * FROM events")))
    assert events == ids


async def test_sqlite_commits_waiting_writes_together(store: SqlStore) -> None:
    before = store.commits
    results = await _insert_concurrently(store, 100, lambda i: False)
    assert results == list(range(100))
    assert await store.read(lambda s: s.scalar("SELECT count(*) FROM tasks")) == 100
    if store.dialect == "sqlite":
        assert store.commits - before < 100  # one writer: writes queued behind a commit share
    else:
        assert store.commits - before == 100  # many writers: each write is its own transaction


async def test_events_are_stored_as_written(store: SqlStore) -> None:
    """An event's text comes back exactly as written, whatever it holds (on PostgreSQL the
    events of a commit go with it in one query, their values quoted by the client)."""
    awkward = [
        "it's",
        "back\\slash \\' and \\\\",
        "$$ dollar $tag$ ; COMMIT; --",
        "%(task_id0)s %s %% {rows}",
        "line\nbreak\ttab\r",
        "émoji 🎉 李雷 \u202e",
        json.dumps({"output": "x'); DROP TABLE events; --"}),
    ]

    def write(tx: Tx) -> None:
        tx.insert_task(_task("q1"))
        for i, text in enumerate(awkward):
            tx.add_event("q1", f"type'{i}", text)
        tx.notify_work()

    await store.write(write)
    events = await store.events_after(0, "q1")
    assert [(e.type, e.data) for e in events] == [(f"type'{i}", t) for i, t in enumerate(awkward)]
    assert [e.id for e in events] == sorted(e.id for e in events)

    # A task's changes held to the commit (`update_task`) go with the events' statement on
    # PostgreSQL, quoted by the client the same way; with and without events after them.
    for n, events_too in enumerate((True, False)):
        text = awkward[n::2]

        def change(tx: Tx, text: list[str] = text, events_too: bool = events_too) -> None:
            assert tx.update_task("q1", ["queued"], status="running", lease_owner="o'1")
            assert tx.update_task("q1", ["running"], owner="o'1", shared=text[0], node=text[1])
            assert tx.update_task("q1", ["running"], owner="o'1", position=text[2], status="queued")
            if events_too:
                tx.add_event("q1", "changed", text[3])

        await store.write(change)
        task = await store.get_task("q1")
        assert task is not None
        assert (task.shared, task.node, task.position) == tuple(text[:3])
        assert (task.status, task.lease_owner) == ("queued", "o'1")


class _Counting:
    """A cursor that counts the UPDATE statements run through it."""

    def __init__(self, cursor: Any) -> None:
        self.cursor, self.updates = cursor, 0

    def execute(self, sql: str, params: Any = None) -> Any:
        self.updates += sql.startswith("UPDATE")
        return self.cursor.execute(sql, params)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.cursor, name)


async def test_a_transaction_changes_a_task_with_as_few_updates_as_it_can(
    store: SqlStore,
) -> None:
    """A change sure to apply (the transaction's last change left the task in an expected
    status, under the expected lease) is written with the next, before anything that reads the
    task, or at the commit; a change that is not sure is checked, and refused if it must be."""
    await store.write(lambda tx: tx.insert_task(_task("c1")))
    seen: dict[str, Any] = {}

    def step(tx: Any) -> None:
        tx.cursor = counting = _Counting(tx.cursor)
        claim = tx.update_task("c1", ["queued"], status="running", lease_owner="w#1")
        node = tx.update_task("c1", ["running"], owner="w#1", node="process")
        tx.add_event("c1", "node.started", "{}")
        saved = tx.update_task("c1", ["running"], owner="w#1", shared='{"a":1}', position="p")
        seen["written"] = (claim, node, saved, counting.updates)
        seen["read"] = tx.get_task("c1")  # sees the changes not written yet
        seen["others"] = tx.update_task("c1", ["running"], owner="w#2", node="theirs")
        seen["wrong status"] = tx.update_task("c1", ["queued"], owner="w#1", node="no")
        tx.update_task("c1", ["running"], owner="w#1", node="review")
        tx.update_task("c1", ["running"], owner="w#1", status="waiting_for_review")
        seen["done"] = tx.update_task("c1", ["waiting_for_review"], lease_owner=None)
        seen["after"] = tx.update_task("c1", ["waiting_for_review"], owner="w#1", node="x")
        seen["updates"] = counting.updates

    await store.write(step)
    assert seen["written"] == (True, True, True, 1)  # the first change alone was written
    read = seen["read"]
    assert (read.status, read.node, read.shared, read.position) == (
        "running",
        "process",
        '{"a":1}',
        "p",
    )
    assert seen["others"] is False and seen["wrong status"] is False
    assert seen["done"] is True and seen["after"] is False  # the lease was let go
    # The claim; the two held back, written before the read; the two refused (checked); the
    # next, checked (the read forgot what was known); the two held back after it, written
    # before the last one's check; that check.
    assert seen["updates"] == 7
    task = await store.get_task("c1")
    assert task is not None
    assert (task.status, task.node, task.lease_owner, task.shared, task.position) == (
        "waiting_for_review",
        "review",
        None,
        '{"a":1}',
        "p",
    )


async def test_event_ids_become_visible_in_order(store: SqlStore) -> None:
    """A transaction that appends events waits for an earlier one that has not committed, so
    no reader sees id n+1 and moves past it before id n is visible."""
    first = store.engine.raw_connection()
    try:
        tx = SqlTx(first, store.dialect)
        tx.add_event("first", "x", "{}")
        tx.flush_events()

        def second() -> None:
            conn = store.engine.raw_connection()
            try:
                later = SqlTx(conn, store.dialect)
                later.add_event("second", "x", "{}")
                later.flush_events()
                conn.commit()
            finally:
                conn.close()

        waiting = asyncio.create_task(asyncio.to_thread(second))
        await asyncio.sleep(0.5)
        assert not waiting.done(), "the second writer did not wait for the first to commit"
        first.commit()
        await waiting
    finally:
        first.close()
    assert [e.task_id for e in await store.events_after(0)] == ["first", "second"]


@pytest.mark.parametrize("backend", ["postgresql"])  # an SQLite file has no connection to drop
async def test_connections_dropped_by_the_server_are_replaced(store: SqlStore) -> None:
    """After PostgreSQL ends every connection the store holds (a restart, an idle timeout),
    reads and writes work again at once: the pool finds each dropped connection when it hands
    it out (the server's last message is waiting on it), with no round trip for the rest."""
    await asyncio.gather(
        *(store.write(lambda tx, i=i: tx.insert_task(_task(f"a{i}"))) for i in range(10))
    )
    assert await store.read(lambda s: s.scalar("SELECT count(*) FROM tasks")) == 10
    others = (
        "SELECT pid FROM pg_stat_activity "
        "WHERE datname = current_database() AND pid <> pg_backend_pid()"
    )
    terminate = f"SELECT pid, pg_terminate_backend(pid) FROM ({others}) o"
    dropped = {r["pid"] for r in await store.write(lambda tx: tx.all(terminate))}
    assert dropped

    async def ended() -> None:
        while True:
            try:  # (a connection whose end was still on its way fails here: another is taken)
                if not dropped & {r["pid"] for r in await store.write(lambda tx: tx.all(others))}:
                    return
            except Unavailable:
                pass
            await asyncio.sleep(0.01)

    await asyncio.wait_for(ended(), 10)  # (the pool now holds only dropped connections)
    outcomes = await asyncio.gather(
        *(store.write(lambda tx, i=i: tx.insert_task(_task(f"b{i}"))) for i in range(10)),
        *(store.read(lambda s: s.scalar("SELECT count(*) FROM tasks")) for _ in range(10)),
        return_exceptions=True,
    )
    assert all(o is None or isinstance(o, int) for o in outcomes), outcomes
    ids = await store.read(lambda s: sorted(r["id"] for r in s.all("SELECT id FROM tasks")))
    assert ids == sorted([f"a{i}" for i in range(10)] + [f"b{i}" for i in range(10)])


async def test_a_task_and_its_latest_review_are_read_together(store: SqlStore) -> None:
    """`task_and_last_review`, in a read and in a write: the task, the review of its highest
    round (None before the first), and its last event's id if asked for (0 if none)."""
    await store.write(lambda tx: tx.insert_task(_task("t1")))
    task, review, last = await store.read(lambda s: s.task_and_last_review("t1", True))
    assert task == await store.get_task("t1") and review is None and last == 0

    def two_rounds(tx: Tx) -> None:
        tx.insert_review(replace(_review("r1", "t1", "first"), round=1))
        tx.insert_review(replace(_review("r2", "t1", "second"), round=2))
        tx.insert_review(_review("r3", "t3", "another task's"))
        tx.add_event("t1", "x", "{}")
        tx.add_event("t1", "y", "{}")
        tx.add_event("t3", "z", "{}")

    await store.write(lambda tx: tx.insert_task(_task("t3")))
    await store.write(two_rounds)
    events = [e.id for e in await store.events_after(0, "t1")]
    task, review, last = await store.read(lambda s: s.task_and_last_review("t1", True))
    assert task is not None and task.id == "t1"
    assert review == await store.get_review("r2") and last == max(events)
    in_write = await store.write(lambda tx: tx.task_and_last_review("t1"))
    assert in_write == (task, review, 0)
    assert await store.snapshot("t1") == (task, review, last)
    assert await store.read(lambda s: s.task_and_last_review("nope", True)) == (None, None, 0)


class _Cuttable:
    """A TCP proxy to PostgreSQL whose connections can be cut without a word, as a firewall
    that forgets an idle flow does: a cut connection stays silent until the client sends,
    and is then reset."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.cut = False
        self.links: list[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = []

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._link, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def _link(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(self.host, self.port)
        cut_from_birth = self.cut
        self.links.append((writer, up_writer))

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter, out: bool) -> None:
            with contextlib.suppress(ConnectionError):
                while data := await src.read(65536):
                    if out and self.cut and not cut_from_birth:
                        linger = struct.pack("ii", 1, 0)  # close with a reset, not a FIN
                        writer.get_extra_info("socket").setsockopt(
                            socket.SOL_SOCKET, socket.SO_LINGER, linger
                        )
                        writer.transport.abort()
                        up_writer.close()
                        return
                    dst.write(data)
                    await dst.drain()

        await asyncio.gather(pipe(reader, up_writer, True), pipe(up_reader, writer, False))

    def close(self) -> None:
        self.server.close()
        for down, up in self.links:
            down.close()
            up.close()


@pytest.mark.parametrize("backend", ["postgresql"])  # an SQLite file has no connection to cut
async def test_a_connection_cut_silently_while_idle_is_replaced(
    migrated_database: Callable[[], str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pooled connection that sat idle for `QUIET_SECONDS` is pinged before use even if its
    socket is quiet, and replaced if the ping fails; one idle for less is used as it is, and a
    silent death then fails that one request with Unavailable (a 503), not more."""
    from sqlalchemy.engine import make_url

    from hitl.store import engine

    url = migrated_database()
    target = make_url(url)
    proxy = _Cuttable(target.host or "127.0.0.1", target.port or 5432)
    via = target.set(port=await proxy.start()).render_as_string(hide_password=False)
    store = SqlStore(via, pool_size=1)
    try:
        assert await store.read(lambda s: s.scalar("SELECT 1")) == 1
        proxy.cut = True  # the pooled connection is now dead, silently
        with pytest.raises(Unavailable):
            await store.read(lambda s: s.scalar("SELECT 2"))  # idle a moment: not pinged
        proxy.cut = False
        assert await store.read(lambda s: s.scalar("SELECT 3")) == 3  # a new one took its place
        proxy.cut = True
        monkeypatch.setattr(engine, "QUIET_SECONDS", 0.0)  # as if it sat idle for long
        assert await store.read(lambda s: s.scalar("SELECT 4")) == 4
        await store.write(lambda tx: tx.insert_task(_task("after the cut")))
        assert await store.get_task("after the cut") is not None
    finally:
        await store.close()
        proxy.close()


async def test_a_snapshot_reads_one_moment(store: SqlStore) -> None:
    """What `snapshot` returns is of one moment: a write that commits between its reads is in
    none of them (so a stream that starts after its event id shows that write once, later)."""
    await store.write(lambda tx: tx.insert_task(_task("t1")))
    await store.write(lambda tx: tx.add_event("t1", "task.created", "{}"))

    def commit_meanwhile() -> None:
        conn = store.engine.raw_connection()
        try:
            tx = SqlTx(conn, store.dialect)
            tx.update_task("t1", ["queued"], status="running")
            tx.add_event("t1", "task.running", "{}")
            tx.flush_events()
            conn.commit()
        finally:
            conn.close()

    def read(s: Any) -> tuple[int, str | None]:
        s.snapshot()
        last = s.scalar("SELECT max(id) FROM events WHERE task_id = 't1'")
        commit_meanwhile()
        task = s.get_task("t1")
        return int(last), task.status if task else None

    last, status = await store.read(read)
    assert status == "queued", "the snapshot saw a write committed after its first read"
    task, _, after = await store.snapshot("t1")
    assert task is not None and task.status == "running" and after > last


def test_head_is_the_newest_migration() -> None:
    assert migrate.head_revision() == migrate.newest_migration()


async def test_rows_insert_and_change_many_at_once(store: SqlStore) -> None:
    """`insert_all` writes every row it is given, and `change_all` changes the rows with the
    ids it names, no others (the notifier's deliveries, made and recorded by the batch)."""
    now = time.time()
    await store.write(lambda tx: tx.insert(PrincipalRow("p1", "ann", "user", "reviewer", now)))
    tokens = [TokenRow(f"t{i}", f"n{i}", f"{i}" * 64, "p1", "reviewer", now) for i in range(5)]
    await store.write(lambda tx: tx.insert_all(tokens))
    await store.write(lambda tx: tx.insert_all([]))
    assert await store.read(lambda r: r.select(TokenRow, order="name")) == tokens
    changed = await store.write(
        lambda tx: tx.change_all(TokenRow, ["t1", "t3", "missing"], revoked_at=now + 1)
    )
    assert changed == 2
    revoked = await store.read(lambda r: r.select(TokenRow, order="name", revoked_at=now + 1))
    assert [t.id for t in revoked] == ["t1", "t3"]
    assert await store.write(lambda tx: tx.change_all(TokenRow, [], revoked_at=now)) == 0
    with pytest.raises(ConstraintError):  # one statement: none of it is written
        await store.write(
            lambda tx: tx.insert_all([replace(tokens[0], id="t9", hash="9" * 64), tokens[1]])
        )
    assert len(await store.read(lambda r: r.select(TokenRow))) == 5


async def test_identity_rows_insert_select_change_and_unique_names(store: SqlStore) -> None:
    """The records of identity: look-ups by equal columns (None: IS NULL), updates by them,
    unique names and hashes, and the audit log in id order from a time on."""
    now = time.time()
    ann = PrincipalRow("p1", "José 李雷", "user", "reviewer", now, "jose@example.com")
    await store.write(lambda tx: tx.insert(ann))
    token = TokenRow("t1", "ci", "h" * 64, "p1", "reviewer", now)
    await store.write(lambda tx: tx.insert(token))
    with pytest.raises(ConstraintError):
        await store.write(lambda tx: tx.insert(PrincipalRow("p2", "José 李雷", "user", "x", now)))

    found = await store.read(lambda r: r.select(PrincipalRow, name="José 李雷"))
    assert found == [ann]
    live = await store.read(lambda r: r.select(TokenRow, hash="h" * 64, revoked_at=None))
    assert live == [token]
    changed = await store.write(
        lambda tx: tx.change(TokenRow, {"id": "t1", "revoked_at": None}, revoked_at=now)
    )
    assert changed == 1
    assert await store.read(lambda r: r.select(TokenRow, revoked_at=None)) == []
    again = await store.write(
        lambda tx: tx.change(TokenRow, {"id": "t1", "revoked_at": None}, revoked_at=now)
    )
    assert again == 0  # a conditional update: revoked once

    for i in range(3):
        row = AuditRow(None, now + i, "ann", f"act{i}", None, "127.0.0.1", f'{{"n": {i}}}')
        await store.write(lambda tx, row=row: tx.insert(row))
    log = await store.read(lambda r: r.audit_since(now + 1, 0, 10))
    assert [a.action for a in log] == ["act1", "act2"]
    assert [a.action for a in await store.read(lambda r: r.audit_since(0, log[0].id or 0, 10))] == [
        "act2"
    ]


# -- the queue's text search (`search.py`, migration 0006) -------------------------------------


def _review(
    review_id: str, task_id: str, output: Any, prompt: str = "", at: float = 0.0, **values: Any
) -> ReviewRow:
    request = json.dumps({"output": output, "prompt": prompt, "decisions": ["approve"]})
    return ReviewRow(review_id, task_id, 1, "open", "review", request, at or time.time(), **values)


def _task_with(task_id: str, input: Any) -> TaskRow:
    return replace(_task(task_id, "waiting_for_review"), input=json.dumps(input))


async def _open(store: SqlStore, n: str, input: Any, output: Any, prompt: str = "") -> None:
    """A task (`t<n>`, input `input`) waiting on its review (`r<n>`)."""

    def write(tx: Tx) -> None:
        tx.insert_task(_task_with(f"t{n}", input))
        tx.insert_review(_review(f"r{n}", f"t{n}", output, prompt))

    await store.write(write)


async def _found(store: SqlStore, text: str, status: str | None = "open") -> list[str]:
    rows, count = await store.list_reviews(status, 50, 0, text=text)
    assert count == len(rows)
    return sorted(r.id for r in rows)


async def test_the_queue_finds_text_values_in_output_prompt_and_input(store: SqlStore) -> None:
    await _open(store, "1", {"customer": "José Núñez"}, {"summary": "Refund 100% of €12"})
    await _open(store, "2", "李雷 and 韩梅梅", ["STRASSE 5", 42, 1.5, True, None], "Check it")
    await _open(store, "3", {"a": {"b": [{"c": 'say "hi"!'}]}}, "a_b", "prompt: output")

    assert await _found(store, "josé") == ["r1"]  # the input, any case
    assert await _found(store, "JOSÉ NÚÑEZ") == ["r1"]
    assert await _found(store, "refund") == ["r1"]  # the output
    assert await _found(store, "check IT") == ["r2"]  # the prompt
    assert await _found(store, "李雷") == ["r2"]  # two characters: read, not looked up
    assert await _found(store, "韩梅梅") == ["r2"]  # three: looked up
    assert await _found(store, "雷 and 韩") == ["r2"]
    assert await _found(store, "straße") == ["r2"]  # folded: ß is ss
    assert await _found(store, "42") == ["r2"]  # numbers are text a reviewer sees
    assert await _found(store, "1.5") == ["r2"]
    assert await _found(store, "true") == [] and await _found(store, "null") == []
    assert await _found(store, 'say "hi"!') == ["r3"]  # nested values; quotes are literal
    assert await _found(store, "prompt: output") == ["r3"]  # as a value, it is found
    # Key names and JSON's punctuation are not what a reviewer sees.
    for key in ("customer", "summary", "output", "prompt", "decisions", '"c"', "{", '":'):
        assert await _found(store, key) == ["r3"] * (key in ("output", "prompt")), key


async def test_the_queue_s_text_is_literal(store: SqlStore) -> None:
    """LIKE's and FTS5's special characters match themselves, in either kind of search."""
    await _open(store, "1", "x", "100% sure, a_b!c")
    await _open(store, "2", "x", "1000 sure, aXb")
    assert await _found(store, "100%") == ["r1"]
    assert await _found(store, "0%") == ["r1"]  # two characters: the scan
    assert await _found(store, "%") == ["r1"]
    assert await _found(store, "a_b") == ["r1"]
    assert await _found(store, "_") == ["r1"]
    assert await _found(store, "b!c") == ["r1"]
    assert await _found(store, "!") == ["r1"]
    for text in ("1_0", "%%", "a%b", '"', "NEAR(sure", "sure OR x", "*", "sure*", "b!!c"):
        assert await _found(store, text) == [], text
    assert await _found(store, "sure") == ["r1", "r2"]


async def test_the_queue_s_text_filter_keeps_its_status_order_and_pages(store: SqlStore) -> None:
    base = time.time()

    def write(tx: Tx) -> None:
        for i in range(6):
            tx.insert_task(_task_with(f"t{i}", "order"))
            deadline = base + 100 - i if i % 2 else None
            tx.insert_review(_review(f"r{i}", f"t{i}", f"item {i}", at=base + i, deadline=deadline))

    await store.write(write)
    await store.write(lambda tx: tx.update_review("r0", ["open"], status="decided"))
    for text in ("order", "item", "it"):
        rows, count = await store.list_reviews("open", 2, 1, text=text)
        assert [r.id for r in rows] == ["r2", "r3"] and count == 5, text
        newest, _ = await store.list_reviews("open", 50, 0, text=text, order="newest")
        assert [r.id for r in newest] == ["r5", "r4", "r3", "r2", "r1"]
        nearest, _ = await store.list_reviews("open", 50, 0, text=text, order="deadline")
        assert [r.id for r in nearest] == ["r5", "r3", "r1", "r2", "r4"]
        assert [r.id for r in (await store.list_reviews("decided", 5, 0, text=text))[0]] == ["r0"]
    [row], _ = await store.list_reviews("open", 1, 0, text="item 3")
    assert (row.flow, row.task_input, row.request) == (
        "feedback",
        '"order"',
        _review("r3", "t3", "item 3").request,
    )


async def test_a_review_whose_request_changes_is_found_by_its_new_text(store: SqlStore) -> None:
    await _open(store, "1", "input", "first draft")
    request = json.dumps({"output": "second version", "prompt": ""})
    assert await store.write(lambda tx: tx.update_review("r1", ["open"], request=request))
    assert await _found(store, "draft") == [] and await _found(store, "dra") == []
    assert await _found(store, "second") == ["r1"] and await _found(store, "inp") == ["r1"]


async def test_the_queue_s_search_uses_the_index(store: SqlStore) -> None:
    """A query of three characters or more looks the text up; the queue's first page, in each
    order, reads the reviews in that order from an index, with no sort of them all."""
    await _open(store, "1", "x", "findable")

    def plan(sql: str, params: dict[str, Any]) -> Callable[[Any], str]:
        def read(s: Any) -> str:
            if store.dialect == "sqlite":
                rows = s.run("EXPLAIN QUERY PLAN " + sql, params).fetchall()
                return "\n".join(str(r[-1]) for r in rows)
            s.snapshot()  # a transaction (reads are in autocommit), for SET LOCAL
            s.run("SET LOCAL enable_seqscan = off")  # a tiny table: the index all the same
            return "\n".join(r[0] for r in s.run("EXPLAIN " + sql, params).fetchall())

        return read

    from hitl.store import queries as q

    # Of any status: the text is then the one thing the index can narrow by (with a status,
    # PostgreSQL may rightly read that status's few reviews instead).
    page, count = q.review_queue(False, False, True, 0, "oldest", store.dialect)
    text = '"findable"' if store.dialect == "sqlite" else "%findable%"
    params = {"status": "open", "text": text, "tail": "findable", "limit": 50, "offset": 0}
    for sql in (page, count):
        shown = await store.read(plan(sql, params))
        index = "VIRTUAL TABLE INDEX 0:M" if store.dialect == "sqlite" else "ix_reviews_search"
        assert index in shown, shown
        if store.dialect == "sqlite":  # the tail: a range of keys, not every review
            assert "ix_reviews_search_id (search_id>?)" in shown, shown
    for order in ("oldest", "newest", "deadline"):
        page, _ = q.review_queue(True, False, None, 0, order, store.dialect)
        shown = await store.read(plan(page, params))
        first = shown.split("USE TEMP B-TREE FOR ORDER BY")[0]  # (SQLite: the 50 chosen)
        assert "ix_reviews_status_created" in first or "ix_reviews_queue_deadline" in first, shown
    assert await _found(store, "findable") == ["r1"]


def _migrate(url: str, revision: str, down: bool = False) -> None:
    if not down:
        migrate.upgrade(url, revision)
        return
    from alembic import command

    engine = create_sync_engine(url)
    try:
        with engine.begin() as connection:
            config = migrate._config()
            config.attributes["connection"] = connection
            command.downgrade(config, revision)
    finally:
        engine.dispose()


async def test_the_migration_indexes_reviews_written_before_it(
    new_database: Callable[[], str],
) -> None:
    """Reviews written at 0005 are found after the upgrade, and new ones after them; a
    downgrade and another upgrade give the same answers."""
    url = new_database()
    _migrate(url, "0005")
    engine = create_sync_engine(url)
    with engine.begin() as conn:
        for n, (input, output) in enumerate([("José", "first"), ("李雷", {"zq": "second"})]):
            for row, table in (
                (_task_with(f"t{n}", input), "tasks"),
                (_review(f"r{n}", f"t{n}", output, "Look"), "reviews"),
            ):
                values = {name: getattr(row, name) for name in row.__slots__}
                columns = ", ".join(values)
                marks = ", ".join(f":{c}" for c in values)
                conn.execute(sa.text(f"INSERT INTO {table} ({columns}) VALUES ({marks})"), values)
    engine.dispose()

    for n in (1, 2):
        _migrate(url, "head")
        store = SqlStore(url)
        try:
            assert await _found(store, "JOSÉ") == ["r0"]
            assert await _found(store, "李雷") == ["r1"]
            assert await _found(store, "second") == ["r1"]
            assert await _found(store, "look") == ["r0", "r1"]
            assert await _found(store, "zq") == []  # a key
            await _open(store, f"9{n}", "later", "third")  # after them: found too
            assert await _found(store, "third") == [f"r9{i}" for i in range(1, n + 1)]
            assert await _found(store, "lat") == [f"r9{i}" for i in range(1, n + 1)]
            assert await _found(store, "look") == ["r0", "r1"]
        finally:
            await store.close()
        if n == 1:
            _migrate(url, "0005", down=True)


async def _indexed_upto(store: SqlStore) -> int | None:
    """SQLite: the largest `search_id` in the queue's FTS5 index (migration 0007)."""
    if store.dialect != "sqlite":
        return None
    return int(await store.read(lambda s: s.scalar("SELECT upto FROM search_indexed")))


async def _index_is_sound(store: SqlStore) -> None:
    """SQLite: FTS5's check that its index holds exactly the text of the rows it covers
    (`rank` 1, against `reviews`), with the tail indexed too, in a transaction rolled back."""
    if store.dialect != "sqlite":
        return
    from hitl.store import queries as q

    with sqlite3.connect(store.url.split("///", 1)[1]) as db:
        db.execute("BEGIN IMMEDIATE")
        try:
            db.execute(q.INDEX_SEARCH_TAIL)
            db.execute(q.MARK_SEARCH_INDEXED)
            db.execute(
                "INSERT INTO review_search (review_search, rank) VALUES ('integrity-check', 1)"
            )
        finally:
            db.rollback()


async def _delete_review(store: SqlStore, review_id: str) -> None:
    await store.write(lambda tx: tx.run("DELETE FROM reviews WHERE id = :id", {"id": review_id}))


async def test_a_review_is_found_from_its_commit_whether_or_not_it_is_indexed_yet(
    store: SqlStore,
) -> None:
    """SQLite indexes new reviews `SEARCH_BATCH` at a time (migration 0007); a search reads
    the ones not indexed yet, so it finds each from the moment it is committed, and a change
    of a review's text, indexed or not, is what it is found by."""
    from hitl.store.sql import SEARCH_BATCH

    total = 2 * SEARCH_BATCH + 3
    upto = []
    for i in range(total):
        await _open(store, f"{i:03d}", "batch", f"word{i:03d}x")
        assert await _found(store, f"word{i:03d}x") == [f"r{i:03d}"]
        assert await _found(store, f"d{i:03d}") == [f"r{i:03d}"]
        upto.append(await _indexed_upto(store))
    assert (await store.list_reviews("open", 1, 0, text="batch"))[1] == total
    if store.dialect == "sqlite":
        # The first review a store writes indexes what was waiting; then every SEARCH_BATCH.
        assert upto[0] == 1 and upto[SEARCH_BATCH] == SEARCH_BATCH + 1
        assert upto[-1] == 2 * SEARCH_BATCH + 1 and upto[-1] < total  # a tail is waiting
    await _index_is_sound(store)

    # One review in the index, one in the tail: each is found by its new text only.
    for n in ("000", f"{total - 1:03d}"):
        request = json.dumps({"output": f"rewritten{n}", "prompt": ""})
        rewrite = partial(SqlTx.update_review, review_id=f"r{n}", expect=["open"], request=request)
        assert await store.write(rewrite)
        assert await _found(store, f"word{n}x") == []
        assert await _found(store, f"rewritten{n}") == [f"r{n}"]
    await _index_is_sound(store)
    for i in range(SEARCH_BATCH):  # the tail, rewritten one included, goes into the index
        await _open(store, f"x{i:02d}", "more", "later")
    assert await _indexed_upto(store) in (None, total + SEARCH_BATCH - 2)
    assert await _found(store, f"rewritten{total - 1:03d}") == [f"r{total - 1:03d}"]
    assert await _found(store, f"word{total - 1:03d}x") == []
    assert len(await _found(store, "later")) == SEARCH_BATCH
    await _index_is_sound(store)

    # Deleted, whether indexed or not: no longer found, and the index stays whole.
    await _open(store, "tail", "more", "in the tail")
    for gone in ("r001", f"rx{SEARCH_BATCH - 1:02d}", "rtail"):
        await _delete_review(store, gone)
    assert await _found(store, "word001x") == [] and await _found(store, "the tail") == []
    assert len(await _found(store, "later")) == SEARCH_BATCH - 1
    await _index_is_sound(store)


async def test_a_store_indexes_the_reviews_an_earlier_one_left_waiting(
    migrated_database: Callable[[], str],
) -> None:
    url = migrated_database()
    first = SqlStore(url)
    try:
        for i in range(5):
            await _open(first, f"{i}", "input", f"left{i}")
        before = await _indexed_upto(first)
    finally:
        await first.close()
    second = SqlStore(url)
    try:
        assert await _found(second, "left") == [f"r{i}" for i in range(5)]
        await _open(second, "9", "input", "next")
        if second.dialect == "sqlite":
            assert before == 1 and await _indexed_upto(second) == 6
        assert await _found(second, "left") == [f"r{i}" for i in range(5)]
        await _index_is_sound(second)
    finally:
        await second.close()


async def test_the_migration_to_0008_reads_each_reviews_self_review_flag(
    new_database: Callable[[], str],
) -> None:
    """Reviews written before 0008 get `self_review` from their request as Python parses it:
    a NUL in it (PostgreSQL's JSON refuses one) or the flag's name inside a string change
    nothing."""
    url = new_database()
    _migrate(url, "0007")
    requests = {
        "yes": {"output": "x", "allow_self_review": True},
        "no": {"output": "x", "allow_self_review": False},
        "unsaid": {"output": "x"},
        "nul": {"output": "a\0b", "allow_self_review": True},
        "inside": {"output": '"allow_self_review": true'},
        "broken": None,
    }
    engine = create_sync_engine(url)
    try:
        with engine.begin() as conn:
            for n, (name, request) in enumerate(requests.items()):
                text = json.dumps(request) if request is not None else "{allow_self_review"
                row = replace(_review(name, f"t{n}", "x"), request=text)
                values = {c: getattr(row, c) for c in row.__slots__}
                task = {c: getattr(_task(f"t{n}"), c) for c in TaskRow.__slots__}
                for table, v in (("tasks", task), ("reviews", values)):
                    marks = ", ".join(f":{c}" for c in v)
                    conn.execute(
                        sa.text(f"INSERT INTO {table} ({', '.join(v)}) VALUES ({marks})"), v
                    )
    finally:
        engine.dispose()
    _migrate(url, "head")
    engine = create_sync_engine(url)
    try:
        with engine.begin() as conn:
            rows = conn.exec_driver_sql("SELECT id, self_review FROM reviews").all()
    finally:
        engine.dispose()
    assert {id for id, flag in rows if flag} == {"yes", "nul"}
    assert len(rows) == len(requests)


async def test_a_downgrade_to_0006_indexes_the_reviews_left_waiting(
    migrated_database: Callable[[], str],
) -> None:
    url = migrated_database()
    store = SqlStore(url)
    try:
        for i in range(3):  # the first is indexed at once (a store's first), two wait
            await _open(store, f"{i}", "input", f"kept{i}")
    finally:
        await store.close()
    _migrate(url, "0006", down=True)
    engine = create_sync_engine(url)
    try:
        with engine.begin() as conn:
            if engine.dialect.name == "sqlite":  # 0006's index holds every review again
                conn.exec_driver_sql(
                    "INSERT INTO review_search (review_search, rank) VALUES ('integrity-check', 1)"
                )
                found = conn.exec_driver_sql(
                    "SELECT count(*) FROM review_search WHERE review_search MATCH 'kept'"
                ).scalar()
                assert found == 3
    finally:
        engine.dispose()
    _migrate(url, "head")
    store = SqlStore(url)
    try:
        assert await _found(store, "kept") == ["r0", "r1", "r2"]
        await _index_is_sound(store)
    finally:
        await store.close()


async def test_a_review_written_after_the_newest_indexed_one_was_deleted_is_found(
    store: SqlStore,
) -> None:
    """SQLite: a new review's key is above every key the index ever held, so the deletion of
    the newest indexed review does not make the next one look indexed when it is not."""
    await _open(store, "0", "input", "first")  # a store's first review is indexed at once
    assert await _indexed_upto(store) in (None, 1)
    await _delete_review(store, "r0")
    await _open(store, "1", "input", "second")
    assert await _found(store, "second") == ["r1"]
    request = json.dumps({"output": "changed", "prompt": ""})
    changed = partial(SqlTx.update_review, review_id="r1", expect=["open"], request=request)
    assert await store.write(changed)
    assert await _found(store, "changed") == ["r1"] and await _found(store, "second") == []
    await _index_is_sound(store)


async def test_a_review_whose_text_holds_nul_is_stored_and_found(store: SqlStore) -> None:
    """PostgreSQL stores no NUL in text, and FTS5 stops reading a value at one: in the
    searchable text NUL is a space, on both databases, indexed or not."""
    from hitl.store.sql import SEARCH_BATCH

    await _open(store, "n", "in\x00put", {"text": "pre\x00needle"})
    for i in range(SEARCH_BATCH + 1):
        assert await _found(store, "needle") == ["rn"] and await _found(store, "put") == ["rn"]
        await _open(store, f"{i:02d}", "filler", "filler")
    assert await _indexed_upto(store) in (None, SEARCH_BATCH + 1)  # indexed since
    await _index_is_sound(store)


async def test_an_insert_that_breaks_a_constraint_fails_its_whole_write(store: SqlStore) -> None:
    """On PostgreSQL an insert waits for the next statement or the commit; a broken
    constraint still fails the write that made it, and nothing of that write is kept."""
    await store.write(lambda tx: tx.insert_task(_task("k1", idempotency_key="key")))

    def again(tx: Tx) -> None:  # statements that succeed before the one that fails
        tx.insert(AuditRow(0, time.time(), "someone", "task.submit", "k2", None, None))
        tx.insert_task(_task("k0"))
        tx.insert_task(_task("k2", idempotency_key="key"))
        tx.add_event("k2", "task.created", "{}")

    def late(tx: Tx) -> None:  # the last statement fails: the events' (data NOT NULL)
        tx.insert_task(_task("k4"))
        tx.add_event("k4", "task.created", None)  # type: ignore[arg-type]

    for write in (again, late):
        with pytest.raises(ConstraintError):
            await store.write(write)
    for task_id in ("k0", "k2", "k4"):
        assert await store.get_task(task_id) is None
        assert await store.events_after(0, task_id) == []
    assert await store.write(lambda tx: tx.select(AuditRow, target="k2")) == []
    # The store goes on: a write after it commits, and sees what it inserted.
    seen: dict[str, Any] = {}

    def then(tx: Tx) -> None:
        tx.insert_task(_task("k3"))
        seen["task"] = tx.get_task("k3")

    await store.write(then)
    assert seen["task"] is not None and seen["task"].id == "k3"
    assert await store.get_task("k3") is not None


async def test_a_write_that_only_inserts_is_one_query_on_postgresql(
    store: SqlStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A submission (a task, its event, the workers' notice) sends nothing before its commit,
    and the commit sends it all as one query, with no `BEGIN` before it: one round trip."""
    if store.dialect != "postgresql":
        return  # (SQLite has no round trips)
    import psycopg

    sent: list[tuple[str, Any]] = []
    execute = psycopg.Cursor.execute

    def counted(self: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
        # In autocommit psycopg sends no BEGIN of its own first: the query is the round trip.
        sent.append((str(query)[:30], self.connection.autocommit))
        return execute(self, query, *args, **kwargs)

    def submit(tx: Tx) -> None:
        tx.insert_task(_task("one"))
        tx.add_event("one", "task.created", '{"it\'s": "%s"}')
        tx.notify_work()

    await store.write(lambda tx: tx.insert_task(_task("warm")))  # the pool's connection, made
    monkeypatch.setattr(psycopg.Cursor, "execute", counted)
    await store.write(submit)
    monkeypatch.undo()
    assert len(sent) == 1 and sent[0] == ("INSERT INTO tasks (id, flow, s", True), sent
    assert [e.data for e in await store.events_after(0, "one")] == ['{"it\'s": "%s"}']
    assert (task := await store.get_task("one")) is not None and task.status == "queued"


async def test_a_task_read_with_its_row_locked_is_changed_with_the_commit(
    store: SqlStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL: a decision locks its task's row, then reads the review again; the task's
    status is then known to the commit, so its change is sure to apply and goes with it."""
    if store.dialect != "postgresql":
        return  # (SQLite locks nothing: one write at a time)
    import psycopg

    def setup(tx: Tx) -> None:
        tx.insert_task(_task("t", "waiting_for_review"))
        tx.insert_review(_review("r", "t", "x"))

    await store.write(setup)
    sent: list[str] = []
    execute = psycopg.Cursor.execute

    def counted(self: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
        sent.append(" ".join(str(query).split()))
        return execute(self, query, *args, **kwargs)

    def decide(tx: Tx) -> None:
        review, task = tx.review_and_task("r")
        assert review is not None and task is not None and task.status == "waiting_for_review"
        tx.lock_task("t")  # (held already: nothing sent)
        assert tx.update_review("r", ["open"], status="decided")
        assert tx.update_task("t", ["waiting_for_review"], status="queued")

    monkeypatch.setattr(psycopg.Cursor, "execute", counted)
    await store.write(decide)
    monkeypatch.undo()
    assert [q.split(" ", 2)[:2] for q in sent] == [
        ["SELECT", "id,"],  # the review
        ["SELECT", "id,"],  # its task, locked
        ["SELECT", "id,"],  # the review again
        ["UPDATE", "reviews"],
        ["UPDATE", "tasks"],  # with the COMMIT, in one query
    ], sent
    assert sent[-1].endswith("; COMMIT"), sent[-1]  # the task's change went with the commit
    task = await store.get_task("t")
    assert task is not None and task.status == "queued"
