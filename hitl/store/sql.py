"""The store: SQLAlchemy Core over SQLite or PostgreSQL, behind one small interface.

A write is a plain function of a `Tx` — conditional updates (`... WHERE status IN (:expected)`)
and event appends — that `Store.write` runs in one transaction on a database thread, so one
state change and its event commit together or not at all, and the event loop never waits on
the database. SQLite allows one writer at a time, so its writes run on a single thread, in
order, instead of failing with "database is locked"; reads run on their own threads.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Collection
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import sqlalchemy as sa

from hitl.store.engine import create_sync_engine
from hitl.store.tables import events, reviews, tasks

Row = dict[str, Any]
T = TypeVar("T")
ANY_OWNER = object()


def _row(row: sa.Row[Any] | None) -> Row | None:
    return dict(row._mapping) if row is not None else None


class Tx:
    """One write transaction; its methods run on the store's database thread."""

    def __init__(self, conn: sa.Connection) -> None:
        self.conn = conn
        self.events_written = 0

    def get_task(self, task_id: str) -> Row | None:
        result = self.conn.execute(sa.select(tasks).where(tasks.c.id == task_id))
        return _row(result.first())

    def task_by_key(self, key: str) -> Row | None:
        result = self.conn.execute(sa.select(tasks).where(tasks.c.idempotency_key == key))
        return _row(result.first())

    def insert_task(self, values: Row) -> None:
        self.conn.execute(sa.insert(tasks).values(values))

    def update_task(
        self,
        task_id: str,
        expect: Collection[str],
        owner: object = ANY_OWNER,
        **values: Any,
    ) -> bool:
        """Change a task only if its status is one of `expect` (and its lease is `owner`'s)."""
        stmt = sa.update(tasks).where(tasks.c.id == task_id, tasks.c.status.in_(list(expect)))
        if owner is not ANY_OWNER:
            stmt = stmt.where(tasks.c.lease_owner == owner)
        result = self.conn.execute(stmt.values(updated_at=time.time(), **values))
        return bool(result.rowcount == 1)

    def claim(
        self, owner: str, until: float, now: float, runnable: str, running: str, limit: int = 1
    ) -> list[Row]:
        """Lease up to `limit` tasks: those whose lease expired (resumed after a decision, or
        orphaned by a dead worker) first, then the oldest queued.

        Two indexed look-ups rather than one OR, which would scan every task ever run.
        """
        expired = (
            sa.select(tasks.c.id)
            .where(tasks.c.status == running, tasks.c.lease_expires_at < now)
            .order_by(tasks.c.lease_expires_at)
        )
        queued = (
            sa.select(tasks.c.id).where(tasks.c.status == runnable).order_by(tasks.c.created_at)
        )
        claimed: list[Row] = []
        for pick in (expired, queued):
            want = limit - len(claimed)
            if want <= 0:
                break
            pick = pick.limit(want)
            if self.conn.dialect.name == "postgresql":
                pick = pick.with_for_update(skip_locked=True)
            stmt = (
                sa.update(tasks)
                .where(tasks.c.id.in_(pick.scalar_subquery()))
                .values(
                    status=running,
                    lease_owner=owner,
                    lease_expires_at=until,
                    claims=tasks.c.claims + 1,
                    updated_at=now,
                )
                .returning(*tasks.c)
            )
            rows = [dict(r._mapping) for r in self.conn.execute(stmt)]
            claimed.extend(sorted(rows, key=lambda r: (r["created_at"], r["id"])))
        return claimed

    def expire_leases(self, running: str) -> int:
        result = self.conn.execute(
            sa.update(tasks).where(tasks.c.status == running).values(lease_expires_at=0.0)
        )
        return int(result.rowcount)

    def get_review(self, review_id: str) -> Row | None:
        result = self.conn.execute(sa.select(reviews).where(reviews.c.id == review_id))
        return _row(result.first())

    def last_review(self, task_id: str) -> Row | None:
        result = self.conn.execute(
            sa.select(reviews)
            .where(reviews.c.task_id == task_id)
            .order_by(reviews.c.round.desc())
            .limit(1)
        )
        return _row(result.first())

    def insert_review(self, values: Row) -> None:
        self.conn.execute(sa.insert(reviews).values(values))

    def update_review(self, review_id: str, expect: Collection[str], **values: Any) -> bool:
        stmt = (
            sa.update(reviews)
            .where(reviews.c.id == review_id, reviews.c.status.in_(list(expect)))
            .values(**values)
        )
        result = self.conn.execute(stmt)
        return bool(result.rowcount == 1)

    def update_reviews_of(self, task_id: str, expect: str, **values: Any) -> int:
        stmt = (
            sa.update(reviews)
            .where(reviews.c.task_id == task_id, reviews.c.status == expect)
            .values(**values)
        )
        result = self.conn.execute(stmt)
        return int(result.rowcount)

    def add_event(self, task_id: str, type: str, data: str) -> int:
        result = self.conn.execute(
            sa.insert(events)
            .values(task_id=task_id, type=type, data=data, created_at=time.time())
            .returning(events.c.id)
        )
        self.events_written += 1
        return int(result.scalar_one())


class Store:
    """Reads, and writes run as whole transactions; `on_commit` callbacks hear of every commit
    that appended events."""

    def __init__(self, url: str, pool_size: int = 10) -> None:
        self.url = url
        self.engine = create_sync_engine(url, pool_size=pool_size)
        self.dialect = self.engine.dialect.name
        writers = 1 if self.dialect == "sqlite" else pool_size
        self._writer = ThreadPoolExecutor(writers, thread_name_prefix="hitl-db-write")
        self._reader = ThreadPoolExecutor(
            min(4, pool_size) if self.dialect == "sqlite" else pool_size,
            thread_name_prefix="hitl-db-read",
        )
        self._on_commit: list[Callable[[], None]] = []

    def on_commit(self, callback: Callable[[], None]) -> None:
        self._on_commit.append(callback)

    async def write(self, fn: Callable[[Tx], T]) -> T:
        """Run `fn` in one transaction: all of it commits, or (if it raises) none of it."""
        loop = asyncio.get_running_loop()
        result, wrote_events = await loop.run_in_executor(self._writer, self._write, fn)
        if wrote_events:
            for callback in self._on_commit:
                callback()
        return result

    def _write(self, fn: Callable[[Tx], T]) -> tuple[T, bool]:
        with self.engine.begin() as conn:
            tx = Tx(conn)
            result = fn(tx)
        return result, tx.events_written > 0

    async def read(self, fn: Callable[[sa.Connection], T]) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._reader, self._read, fn)

    def _read(self, fn: Callable[[sa.Connection], T]) -> T:
        with self.engine.connect() as conn:
            return fn(conn)

    async def close(self) -> None:
        self._writer.shutdown(wait=True)
        self._reader.shutdown(wait=True)
        self.engine.dispose()

    async def ping(self) -> None:
        await self.read(lambda conn: conn.execute(sa.text("SELECT 1")))

    async def _all(self, stmt: sa.Executable) -> list[Row]:
        return await self.read(lambda conn: [dict(r._mapping) for r in conn.execute(stmt)])

    async def _first(self, stmt: sa.Executable) -> Row | None:
        return await self.read(lambda conn: _row(conn.execute(stmt).first()))

    async def get_task(self, task_id: str) -> Row | None:
        return await self._first(sa.select(tasks).where(tasks.c.id == task_id))

    async def list_tasks(
        self, status: str | None, limit: int, offset: int
    ) -> tuple[list[Row], int]:
        where = [tasks.c.status == status] if status else []
        rows = await self._all(
            sa.select(tasks)
            .where(*where)
            .order_by(tasks.c.created_at.desc(), tasks.c.id)
            .limit(limit)
            .offset(offset)
        )
        count = await self._first(
            sa.select(sa.func.count().label("n")).select_from(tasks).where(*where)
        )
        return rows, int(count["n"]) if count else 0

    async def get_review(self, review_id: str) -> Row | None:
        return await self._first(sa.select(reviews).where(reviews.c.id == review_id))

    async def task_with_reviews(self, task_id: str) -> tuple[Row | None, list[Row]]:
        def read(conn: sa.Connection) -> tuple[Row | None, list[Row]]:
            task = _row(conn.execute(sa.select(tasks).where(tasks.c.id == task_id)).first())
            if task is None:
                return None, []
            rows = conn.execute(
                sa.select(reviews).where(reviews.c.task_id == task_id).order_by(reviews.c.round)
            )
            return task, [dict(r._mapping) for r in rows]

        return await self.read(read)

    async def reviews_of(self, task_id: str) -> list[Row]:
        return await self._all(
            sa.select(reviews).where(reviews.c.task_id == task_id).order_by(reviews.c.round)
        )

    async def list_reviews(
        self, status: str | None, limit: int, offset: int
    ) -> tuple[list[Row], int]:
        where = [reviews.c.status == status] if status else []
        rows = await self._all(
            sa.select(reviews)
            .where(*where)
            .order_by(reviews.c.created_at, reviews.c.id)
            .limit(limit)
            .offset(offset)
        )
        count = await self._first(
            sa.select(sa.func.count().label("n")).select_from(reviews).where(*where)
        )
        return rows, int(count["n"]) if count else 0

    async def events_after(
        self, after: int, task_id: str | None = None, limit: int = 1000, upto: int | None = None
    ) -> list[Row]:
        stmt = sa.select(events).where(events.c.id > after)
        if task_id is not None:
            stmt = stmt.where(events.c.task_id == task_id)
        if upto is not None:
            stmt = stmt.where(events.c.id <= upto)
        return await self._all(stmt.order_by(events.c.id).limit(limit))

    async def last_event_id(self, task_id: str | None = None) -> int:
        stmt = sa.select(sa.func.max(events.c.id).label("m"))
        if task_id is not None:
            stmt = stmt.where(events.c.task_id == task_id)
        row = await self._first(stmt)
        return int(row["m"]) if row and row["m"] is not None else 0

    async def snapshot(self, task_id: str) -> tuple[Row | None, Row | None, int]:
        """A task, its latest review, and an event id no later than what they reflect.

        The id is read first: an event committed meanwhile is replayed after the snapshot
        rather than lost.
        """

        def read(conn: sa.Connection) -> tuple[Row | None, Row | None, int]:
            last = conn.execute(
                sa.select(sa.func.max(events.c.id)).where(events.c.task_id == task_id)
            ).scalar()
            task = _row(conn.execute(sa.select(tasks).where(tasks.c.id == task_id)).first())
            review = _row(
                conn.execute(
                    sa.select(reviews)
                    .where(reviews.c.task_id == task_id)
                    .order_by(reviews.c.round.desc())
                    .limit(1)
                ).first()
            )
            return task, review, int(last or 0)

        return await self.read(read)
