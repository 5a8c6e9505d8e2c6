"""The store: SQLite or PostgreSQL behind one small interface.

A write is a plain function of a `Tx` — conditional updates (`... WHERE status IN (:expected)`)
and event appends — that `Store.write` runs in one transaction on a database thread, so one
state change and its event commit together or not at all, and the event loop never waits on
the database. SQLite allows one writer at a time, so its writes run on a single thread, in
order, instead of failing with "database is locked"; reads run on their own threads. The
statements themselves are in `queries.py`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections.abc import Callable, Collection, Sequence
from typing import Any, TypeVar

import sqlalchemy as sa

from hitl.store import queries as q
from hitl.store import search
from hitl.store.base import Decider
from hitl.store.engine import create_sync_engine
from hitl.store.guard import Fault, Guard
from hitl.store.listen import EVENTS, WORK
from hitl.store.rows import (
    REVIEW_COLUMNS,
    TABLE_OF,
    TASK_COLUMNS,
    AuditRow,
    ChannelRow,
    DeliveryRow,
    EventRow,
    LinkRow,
    PrincipalRow,
    QueueRow,
    Record,
    ReviewRow,
    SessionRow,
    TaskRow,
    TokenRow,
    VoteRow,
    column_names,
)
from hitl.store.search import searchable
from hitl.store.threads import MAX_BATCH, DbThreads, Outcome

Row = dict[str, Any]  # a row of an ad-hoc query (`_Session.all`), by column name
T = TypeVar("T")
R = TypeVar(
    "R",
    TaskRow,
    ReviewRow,
    QueueRow,
    EventRow,
    PrincipalRow,
    TokenRow,
    SessionRow,
    LinkRow,
    AuditRow,
    VoteRow,
    ChannelRow,
    DeliveryRow,
)
ANY_OWNER = object()
# Reads that wait together share a connection, up to this many: larger batches measured slower
# delivery to 1,000 streams (bench/fanout.py) for little more throughput.
READ_BATCH = 8
# SQLite: the reviews written (and found by reading their text) before a transaction indexes
# them all at once (`SqlTx.index_search`).
SEARCH_BATCH = 32


class Unavailable(Exception):
    """The database is unavailable right now; retry shortly.

    `retry_after`: seconds a client should wait before trying again; None when retrying will
    not help until an operator acts (the database file was lost, or is corrupt)."""

    def __init__(self, message: str = "", retry_after: int | None = 1) -> None:
        super().__init__(message or (self.__doc__ or "").splitlines()[0])
        self.retry_after = retry_after


class ConstraintError(Exception):
    """A write broke one of the schema's constraints (a unique key used twice, say)."""


def _unavailable(exc: BaseException) -> Unavailable:
    orig = getattr(exc, "orig", None) or exc
    reason = str(orig).strip().splitlines()[0] if str(orig).strip() else type(orig).__name__
    return Unavailable(f"the database is unavailable right now ({reason}); retry shortly")


def _member(name: str) -> str:
    """A LIKE pattern (`ESCAPE '!'`) for one name in an `assignee` column (`,name,role:X,`)."""
    return "%," + name.replace("!", "!!").replace("%", "!%").replace("_", "!_") + ",%"


class _Session:
    """Runs `queries` statements on one DBAPI connection, in the connection's dialect.

    Statements go to the driver's cursor directly: SQLAlchemy's execution layer (contexts,
    result objects, events) cost two to three times the statement itself on the hot path.
    SQLAlchemy still owns the pool, the dialects and the schema.
    """

    def __init__(self, dbapi: Any, dialect: str) -> None:
        self.dialect = dialect
        self.cursor = dbapi.cursor()

    def run(self, sql: str, params: dict[str, Any] | None = None) -> Any:
        """Execute; returns the driver's cursor (for `rowcount`)."""
        self.cursor.execute(q.for_dialect(sql, self.dialect), params or {})
        return self.cursor

    def all(self, sql: str, params: dict[str, Any] | None = None) -> list[Row]:
        cursor = self.run(sql, params)
        if cursor.description is None:
            return []
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def first(self, sql: str, params: dict[str, Any] | None = None) -> Row | None:
        cursor = self.run(sql, params)
        row = cursor.fetchone()
        if row is None:
            return None
        return dict(zip([d[0] for d in cursor.description], row, strict=True))

    def scalar(self, sql: str, params: dict[str, Any] | None = None) -> Any:
        row = self.run(sql, params).fetchone()
        return row[0] if row is not None else None

    def rows(self, kind: type[R], sql: str, params: dict[str, Any] | None = None) -> list[R]:
        """Typed rows of a statement that names `kind`'s columns in order (`queries.py`)."""
        return [kind(*row) for row in self.run(sql, params).fetchall()]

    def row(self, kind: type[R], sql: str, params: dict[str, Any] | None = None) -> R | None:
        row = self.run(sql, params).fetchone()
        return kind(*row) if row is not None else None

    def snapshot(self) -> None:
        """Make the reads that follow, up to the next rollback, see one consistent state."""
        if self.dialect == "postgresql":  # (reads run in autocommit: `SqlStore._read_batch`)
            self.run("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        elif not self.cursor.connection.in_transaction:
            self.run("BEGIN")

    def select(
        self, kind: type[R], order: str | None = None, limit: int = 1000, **where: Any
    ) -> list[R]:
        """Identity rows whose columns equal `where` (a None: IS NULL), in `order`."""
        terms = tuple((c, v is None) for c, v in where.items())
        sql = q.select_rows(TABLE_OF[kind], column_names(kind), terms, order)
        params = {f"w_{c}": v for c, v in where.items() if v is not None}
        return self.rows(kind, sql, params | {"limit": limit})

    def audit_of_task(self, task_id: str) -> list[AuditRow]:
        return self.rows(AuditRow, q.AUDIT_OF_TASK, {"task": task_id})

    def event(self, event_id: int) -> EventRow | None:
        return self.row(EventRow, q.EVENT, {"id": event_id})

    def last_event_id(self) -> int:
        return int(self.scalar(q.LAST_EVENT) or 0)

    def audit_since(self, since: float, after: int, limit: int) -> list[AuditRow]:
        return self.rows(AuditRow, q.AUDIT_SINCE, {"since": since, "after": after, "limit": limit})

    def get_task(self, task_id: str) -> TaskRow | None:
        return self.row(TaskRow, q.GET_TASK, {"id": task_id})

    def get_review(self, review_id: str) -> ReviewRow | None:
        return self.row(ReviewRow, q.GET_REVIEW, {"id": review_id})

    def last_review(self, task_id: str) -> ReviewRow | None:
        return self.row(ReviewRow, q.LAST_REVIEW, {"task_id": task_id})

    def task_and_last_review(
        self, task_id: str, last_event: bool = False
    ) -> tuple[TaskRow | None, ReviewRow | None, int]:
        """A task, its latest review, and (with `last_event`) its last event's id, 0 if none,
        read by one statement, so of one moment."""
        sql = q.TASK_LAST_REVIEW_AND_EVENT if last_event else q.TASK_AND_LAST_REVIEW
        row = self.run(sql, {"task_id": task_id}).fetchone()
        if row is None:
            return None, None, 0
        t, r = len(TASK_COLUMNS), len(TASK_COLUMNS) + len(REVIEW_COLUMNS)
        review = ReviewRow(*row[t:r]) if row[t] is not None else None
        return TaskRow(*row[:t]), review, int(row[r] or 0) if last_event else 0

    def reviews_of(self, task_id: str) -> list[ReviewRow]:
        return self.rows(ReviewRow, q.REVIEWS_OF, {"task_id": task_id})


class SqlTx(_Session):
    """One write transaction; its methods run on the store's database thread."""

    def __init__(self, dbapi: Any, dialect: str) -> None:
        super().__init__(dbapi, dialect)
        self.events_written = 0
        self.reviews_inserted = 0
        self.appended: list[EventRow] = []  # SQLite: the events appended, with their ids
        self._pending: list[Row] = []
        self._work = False  # PostgreSQL: tell the workers, on commit (`notify_work`)
        # Tasks this transaction changed: the statuses each may have now and its lease's owner
        # (ANY_OWNER: not known); and the values of updates sure to apply, not written yet.
        self._known: dict[str, tuple[frozenset[str], object]] = {}
        self._later: dict[str, Row] = {}
        # PostgreSQL: inserts not sent yet, in order: sent before any other statement, or with
        # the commit (`insert`, `insert_task`, `insert_review`).
        self._deferred: list[tuple[str, Row]] = []
        self._locked: set[str] = set()  # PostgreSQL: tasks whose rows this transaction holds

    def run(self, sql: str, params: dict[str, Any] | None = None) -> Any:
        if self._deferred:
            self._send_deferred()
        if self._known and not sql.startswith(_NO_TASK_READ):
            self._before_any_other()
        return super().run(sql, params)

    def _insert_row(self, sql: str, values: Row) -> None:
        """An insert whose outcome nothing in the transaction reads: on PostgreSQL it waits
        for the next statement or the commit, to go in its query (a broken constraint then
        fails the write there, as it would have here: no caller handles one mid-transaction)."""
        if self.dialect == "postgresql":
            self._deferred.append((sql, values))
        else:
            self.run(sql, values)

    def _send_deferred(self) -> None:
        deferred, self._deferred = self._deferred, []
        for statement in deferred:
            super().run(*statement)

    def _before_any_other(self) -> None:
        """Anything but an event's or a review's insert may read or change a task: it sees
        the updates not written yet, and what is known of the tasks is forgotten."""
        self._write_later()
        self._known.clear()

    def task_by_key(self, key: str) -> TaskRow | None:
        return self.row(TaskRow, q.TASK_BY_KEY, {"key": key})

    def task_and_last_review(
        self, task_id: str, last_event: bool = False, lock: bool = False
    ) -> tuple[TaskRow | None, ReviewRow | None, int]:
        # The lock, then the read: a statement that waits for a row's lock reads the rest (the
        # review) as it was when the statement began (PostgreSQL, READ COMMITTED).
        locking = self._locking(task_id, lock)
        if locking:
            self.run(q.LOCK_TASK, {"id": task_id})
        task, review, event = super().task_and_last_review(task_id, last_event)
        return self._held(task) if locking else task, review, event

    def review_and_task(self, review_id: str) -> tuple[ReviewRow | None, TaskRow | None]:
        review = self.get_review(review_id)
        if review is None:
            return None, None
        if not self._locking(review.task_id, True):
            return review, self.get_task(review.task_id)
        task = self.row(TaskRow, q.GET_TASK + " FOR UPDATE", {"id": review.task_id})
        review = self.get_review(review_id)  # read again: it may have changed meanwhile
        return review, self._held(task)  # (known after the last read, which forgets it)

    def lock_task(self, task_id: str) -> None:
        if self._locking(task_id, True):
            self.run(q.LOCK_TASK, {"id": task_id})

    def _held(self, task: TaskRow | None) -> TaskRow | None:
        """A task read with its row locked: its status and lease are known to the commit, so
        a change of it that they allow is sure to apply, and is held back (`update_task`)."""
        if task is not None:
            self._known[task.id] = (frozenset((task.status,)), task.lease_owner)
        return task

    def _locking(self, task_id: str, lock: bool) -> bool:
        """Whether a read of this task must lock its row (PostgreSQL; not held yet)."""
        if not lock or self.dialect != "postgresql" or task_id in self._locked:
            return False
        self._locked.add(task_id)
        return True

    def insert_task(self, task: TaskRow) -> None:
        self._insert(q.TASK, task)

    def insert(self, row: Record) -> None:
        """Insert an identity or audit row (an audit row's id is the database's)."""
        values = {name: getattr(row, name) for name in row.__slots__}
        if isinstance(row, AuditRow):
            del values["id"]
        self._insert_row(q.insert(TABLE_OF[type(row)], tuple(values)), values)

    def insert_all(self, rows: Sequence[Record]) -> None:
        """Insert rows of one kind (not audit rows) with one statement, run for each."""
        if not rows:
            return
        names = type(rows[0]).__slots__
        sql = q.for_dialect(q.insert(TABLE_OF[type(rows[0])], tuple(names)), self.dialect)
        self._send_deferred()
        self._before_any_other()
        self.cursor.executemany(sql, [{n: getattr(row, n) for n in names} for row in rows])

    def change_all(self, kind: type[Record], ids: Sequence[str], **values: Any) -> int:
        """Set `values` in the rows of `kind` with these ids; how many changed."""
        if not ids:
            return 0
        sql = q.update_ids(TABLE_OF[kind], tuple(values), len(ids))
        params = {f"_i{n}": id for n, id in enumerate(ids)}
        return int(self.run(sql, params | values).rowcount)

    def change(self, kind: type[Record], where: dict[str, Any], **values: Any) -> int:
        """Update the identity rows whose columns equal `where`; how many changed."""
        terms = tuple((c, v is None) for c, v in where.items())
        sql = q.update_rows(TABLE_OF[kind], tuple(values), terms)
        params = {f"w_{c}": v for c, v in where.items() if v is not None}
        return int(self.run(sql, params | values).rowcount)

    def _insert(self, table: str, row: TaskRow | ReviewRow) -> None:
        values = {name: getattr(row, name) for name in row.__slots__}
        self._insert_row(q.insert(table, tuple(values)), values)

    def update_task(
        self,
        task_id: str,
        expect: Collection[str],
        owner: object = ANY_OWNER,
        **values: Any,
    ) -> bool:
        """Change a task only if its status is one of `expect` (and its lease is `owner`'s).

        One UPDATE a task a transaction, or nearly: a change that is sure to apply, because
        this transaction's last change of the task left it in a status of `expect` and (if
        `owner` is asked for) under that lease, is held back and written with the next ones,
        before any statement that may read the task, or at the commit. (A worker's step —
        the node's start, its checkpoint, the next node's start, the review request — is
        four changes of one task in one transaction.) The rows the transaction changed are
        its own to the commit, so nothing else can change them in between."""
        values["updated_at"] = time.time()
        known = self._known.get(task_id, (frozenset(), None))
        sure_owner = owner is ANY_OWNER or (owner is not None and owner == known[1])
        if known[0] and sure_owner and known[0] <= set(expect):
            self._later.setdefault(task_id, {}).update(values)
            self._learn(task_id, known, values)
            return True
        changed = self._update(q.TASK, "id", task_id, expect, owner, values) == 1
        if changed:
            self._learn(task_id, (frozenset(expect), owner), values)
            self._locked.add(task_id)  # (an updated row is held to the commit)
        return changed

    def _learn(self, task_id: str, known: tuple[frozenset[str], object], values: Row) -> None:
        statuses, owner = known
        if "status" in values:
            statuses = frozenset((values["status"],))
        self._known[task_id] = (statuses, values.get("lease_owner", owner))

    def _write_later(self) -> None:
        for statement in self._take_later():
            super().run(*statement)

    def _take_later(self) -> list[tuple[str, Row]]:
        """The held task changes' statements, no longer held."""
        later, self._later = self._later, {}
        return [
            (q.update_ids(q.TASK, tuple(values), 1), {**values, "_i0": task_id})
            for task_id, values in later.items()
        ]

    def _update(
        self, table: str, by: str, key: str, expect: Collection[str], owner: object, values: Row
    ) -> int:
        statuses = sorted(expect)
        sql = q.update(table, tuple(values), len(statuses), by, owner is not ANY_OWNER)
        params = {**values, "_by": key, **{f"_s{i}": s for i, s in enumerate(statuses)}}
        if owner is not ANY_OWNER:
            params["_owner"] = owner
        return int(self.run(sql, params).rowcount)

    def claim(
        self, owner: str, until: float, now: float, runnable: str, running: str, limit: int = 1
    ) -> list[tuple[TaskRow, ReviewRow | None]]:
        claimed: list[TaskRow] = []
        params = {"owner": owner, "until": until, "now": now, "running": running}
        if self.dialect == "postgresql":  # both look-ups and the reviews in one round trip
            rows = self.run(q.CLAIM_BOTH, params | {"limit": limit, "runnable": runnable})
            t = len(TASK_COLUMNS)
            picked = [
                (row[t], TaskRow(*row[:t]), ReviewRow(*row[t + 1 :]) if row[t + 1] else None)
                for row in rows.fetchall()
            ]
            picked.sort(key=lambda p: (p[0], p[1].created_at, p[1].id))
            # A row changed after the statement began is locked, and updated, as it is now;
            # the reviews were read as they were then: one of another round is read again.
            return [
                (task, review if _of_round(task, review) else self.last_review(task.id))
                for _, task, review in picked
            ]
        for pick in (q.CLAIM_EXPIRED, q.CLAIM_QUEUED):
            want = limit - len(claimed)
            if want <= 0:
                break
            extra = {"limit": want} | ({"runnable": runnable} if pick is q.CLAIM_QUEUED else {})
            rows = self.rows(TaskRow, q.claim(pick, self.dialect), params | extra)
            claimed.extend(sorted(rows, key=lambda r: (r.created_at, r.id)))
        return [(task, self.last_review(task.id) if task.round else None) for task in claimed]

    def warn_review(self, review_id: str, open: str, now: float) -> bool:
        """Mark an open review as warned of its deadline, unless it was already."""
        params = {"id": review_id, "open": open, "now": now}
        return bool(self.run(q.WARN_REVIEW, params).rowcount)

    def claim_deliveries(
        self, owner: str, pending: str, now: float, until: float, limit: int
    ) -> list[DeliveryRow]:
        """Lease up to `limit` pending deliveries that are due (and not leased) to `owner`,
        counting an attempt for each."""
        sql = q.claim_deliveries(self.dialect, ", ".join(column_names(DeliveryRow)))
        params = {"pending": pending, "now": now, "until": until, "limit": limit, "owner": owner}
        return sorted(self.rows(DeliveryRow, sql, params), key=lambda d: (d.next_at, d.id))

    def take(
        self, task_id: str, expected: str, owner: str, until: float, now: float, running: str
    ) -> TaskRow | None:
        """Lease one task, if it is in status `expected`, to `owner`."""
        params = {"task_id": task_id, "expected": expected, "owner": owner, "until": until}
        return self.row(TaskRow, q.TAKE, params | {"now": now, "running": running})

    def expire_leases(self, running: str, owner_prefix: str | None = None) -> int:
        if owner_prefix is None:
            return int(self.run(q.EXPIRE_LEASES, {"running": running}).rowcount)
        params = {"running": running, "prefix": owner_prefix, "n": len(owner_prefix)}
        return int(self.run(q.EXPIRE_LEASES_OF, params).rowcount)

    def insert_review(
        self,
        review: ReviewRow,
        request: dict[str, Any] | None = None,
        task_input: str | None = None,
    ) -> None:
        """Insert a review with its searchable text (`search.py`), which its task's input is
        part of (PostgreSQL indexes it in the same statement; SQLite in a batch later, and
        finds it meanwhile by reading it: `index_search`). `request` (the review's, parsed)
        and `task_input` (its task's, as stored), when the caller has them, save parsing the
        one and reading the other again."""
        values = {name: getattr(review, name) for name in review.__slots__}
        if task_input is None:
            task_input = self.scalar(q.TASK_INPUT, {"id": review.task_id})
        shown = json.loads(review.request) if request is None else request
        values["search"] = searchable(shown, task_input)
        values["self_review"] = _self_review(shown)
        self._insert_row(q.insert_review(tuple(values), self.dialect), values)
        self.reviews_inserted += 1

    def index_search(self) -> None:
        """SQLite: put the reviews not in the queue's FTS5 index yet into it, all at once
        (migration 0007: FTS5 writes a segment of its index at each commit that changes it,
        which cost a review's insert about 60 µs; thirty together, about 5 µs each)."""
        self.run(q.INDEX_SEARCH_TAIL)
        self.run(q.MARK_SEARCH_INDEXED)

    def update_review(self, review_id: str, expect: Collection[str], **values: Any) -> bool:
        if "request" in values:  # what it shows may change: so does what finds it
            task_input = self.scalar(q.REVIEW_TASK_INPUT, {"id": review_id})
            shown = json.loads(values["request"])
            values["search"] = searchable(shown, task_input)
            values["self_review"] = _self_review(shown)
        return self._update(q.REVIEW, "id", review_id, expect, ANY_OWNER, values) == 1

    def update_reviews_of(self, task_id: str, expect: str, **values: Any) -> int:
        return self._update(q.REVIEW, "task_id", task_id, [expect], ANY_OWNER, values)

    def notify_work(self) -> None:
        """Tell every process's workers, on commit, that a task became runnable (PostgreSQL:
        sent with the events, `_flush`)."""
        self._work = self.dialect == "postgresql"

    def add_event(self, task_id: str, type: str, data: str) -> None:
        """Append an event. On PostgreSQL it is written last, with the commit (`commit`): the
        lock that orders event ids is then held for no round trip, not for the transaction."""
        now = time.time()
        params = {"task_id": task_id, "type": type, "data": data, "created_at": now}
        if self.dialect == "postgresql":
            self._pending.append(params)
        else:
            id = self.run(q.ADD_EVENT, params).lastrowid
            self.appended.append(EventRow(id, task_id, type, data, now))
        self.events_written += 1

    def flush_events(self) -> None:
        """PostgreSQL: write the pending events, and send the work notice (`notify_work`)."""
        statement = self._flush()
        if statement is not None:
            self.run(*statement)

    def commit(self) -> None:
        """Write what waits (inserts, held task changes, the pending events), and commit.

        PostgreSQL: the events' statement takes the lock that orders event ids, held to the
        commit while every other writer of events waits for it; so what waits, the events'
        statement and the COMMIT go as one query, in one round trip, and the lock is held for
        no wait on the network. (A query of several statements takes its values bound by the
        client: psycopg's `ClientCursor` quotes them.) A transaction that sent nothing before
        is that query alone, without a `BEGIN` first: PostgreSQL runs a query of several
        statements as one transaction, all of it or none."""
        connection = self.cursor.connection
        if self.dialect != "postgresql":
            self._write_later()
            connection.commit()
            return
        statements = self._deferred + self._take_later()
        self._deferred = []
        last = self._flush()
        if last is not None:
            statements.append(last)
        if not statements:
            connection.commit()
            return
        import psycopg  # (here: a SQLite process never loads it, nor does a command of the CLI)

        with psycopg.ClientCursor(connection) as cursor:
            query = "; ".join(
                cursor.mogrify(q.for_dialect(sql, self.dialect), p) for sql, p in statements
            )
            if connection.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                cursor.execute(query + "; COMMIT")
                return
            connection.autocommit = True
            try:
                cursor.execute(query)
            finally:  # back to a write's connection, whatever the outcome (it ended: IDLE)
                connection.autocommit = False

    def _flush(self) -> tuple[str, dict[str, Any]] | None:
        """The statement that writes the pending events and sends the work notice with them,
        or sends the notice alone; None if there is neither."""
        work, self._work = self._work, False
        if not self._pending:
            return (q.NOTIFY, {"channel": WORK}) if work else None
        params: dict[str, Any] = {"channel": EVENTS, "work": WORK}
        for i, event in enumerate(self._pending):
            params.update({f"{key}{i}": value for key, value in event.items()})
        sql = q.add_events_in_order(len(self._pending), work)
        self._pending = []
        return sql, params


def _of_round(task: TaskRow, review: ReviewRow | None) -> bool:
    """Whether a claimed task's review read with it is its round's (or it has none yet)."""
    return not task.round or (review is not None and review.round == task.round)


def _self_review(request: Any) -> bool:
    """A review's `self_review` column, from its request (parsed): what
    `ReviewRequest.from_json` makes of its `allow_self_review`."""
    return isinstance(request, dict) and bool(request.get("allow_self_review"))


# Statements that read no task (`SqlTx.run`).
_NO_TASK_READ = ("INSERT INTO events ", "INSERT INTO reviews ", "UPDATE reviews ")


def _autocommit(conn: Any, dialect: str, on: bool) -> None:
    """PostgreSQL: reads run in autocommit, so that a read is one round trip, without the
    BEGIN and ROLLBACK around it (`_Session.snapshot` begins a transaction when a read needs
    one); writes do not, but for the one query of a write that sent nothing before its commit
    (`SqlTx.commit`). A pooled connection serves both, so each sets it."""
    if dialect == "postgresql" and conn.dbapi_connection.autocommit != on:
        conn.dbapi_connection.autocommit = on


class SqlStore:
    """Reads, and writes run as whole transactions; `on_commit` callbacks hear of every commit
    that appended events."""

    def __init__(self, url: str, pool_size: int = 10) -> None:
        self.url = url
        self.engine = create_sync_engine(url, pool_size=pool_size)
        self.dialect = self.engine.dialect.name
        self._guard = Guard(self.engine)  # a SQLite file deleted, replaced or corrupt; disk full
        sqlite = self.dialect == "sqlite"
        # SQLite: one writer, whose batches commit together. PostgreSQL: many writers, each
        # taking one job at a time, so a write waiting on a row lock holds up no other.
        self._writer = DbThreads(
            1 if sqlite else pool_size,
            self._write_together if sqlite else self._write_each,
            "hitl-db-write",
            max_batch=MAX_BATCH if sqlite else 1,
        )
        self._reader = DbThreads(
            min(4, pool_size) if sqlite else pool_size,
            self._read_batch,
            "hitl-db-read",
            max_batch=READ_BATCH if sqlite else 1,
        )
        self._on_commit: list[Callable[[list[EventRow] | None], None]] = []
        self._loop: asyncio.AbstractEventLoop | None = None  # the one the writes come from
        self.commits = 0  # transactions committed by this store's writers
        # SQLite: reviews this process wrote that the queue's index may not hold yet (the
        # writer's own count; at first, the most there can be, so that the first review
        # written indexes what an earlier process left).
        self._unindexed = SEARCH_BATCH
        # Told how long each read and write took to be answered, queueing included.
        self.timed: Callable[[str, float], None] | None = None
        self._counting = threading.Lock()
        dbapi = self.engine.dialect.loaded_dbapi
        self._gone: tuple[type[Exception], ...] = (
            sa.exc.OperationalError,
            sa.exc.InterfaceError,
            dbapi.OperationalError,
            dbapi.InterfaceError,
        )
        self._constraint: type[Exception] = dbapi.IntegrityError

    def on_commit(self, callback: Callable[[list[EventRow] | None], None]) -> None:
        self._on_commit.append(callback)

    async def write(self, fn: Callable[[SqlTx], T]) -> T:
        """Run `fn` in one transaction: all of it commits, or (if it raises) none of it."""
        self._loop = asyncio.get_running_loop()
        start = time.perf_counter()
        try:
            result, wrote_events = await self._writer.submit(fn, None)
        finally:
            if self.timed is not None:
                self.timed("write", time.perf_counter() - start)
        if wrote_events and self.dialect != "sqlite":  # (SQLite's writer told them already)
            self._told(None)
        return result  # type: ignore[no-any-return]

    def _tell(self, events: list[EventRow]) -> None:
        """From the writer thread, right after a commit: the loop hears of it before the
        writes that made it are answered, and of each commit in order."""
        if self._loop is not None:
            with contextlib.suppress(RuntimeError):  # a closed loop: nobody listens any more
                self._loop.call_soon_threadsafe(self._told, events)

    def _told(self, events: list[EventRow] | None) -> None:
        for callback in self._on_commit:
            callback(events)

    def _write_each(self, jobs: list[tuple[Callable[[SqlTx], Any], Any]]) -> list[Outcome]:
        outcomes: list[Outcome] = []
        for fn, _ in jobs:
            try:
                outcomes.append((self._transact([fn])[0], None))
            except Exception as exc:
                outcomes.append((None, self._translate(exc)))
        return outcomes

    def _write_together(self, jobs: list[tuple[Callable[[SqlTx], Any], Any]]) -> list[Outcome]:
        """Group commit, for SQLite's one writer: the writes waiting together commit as one
        transaction. If any of them raises, none of that commits, and each runs again in a
        transaction of its own, so each still commits, or fails, alone."""
        if len(jobs) == 1:
            return self._write_each(jobs)
        try:
            return [(done, None) for done in self._transact([fn for fn, _ in jobs])]
        except Exception as exc:
            if isinstance(exc, Fault):  # the database is broken: alone, each fails the same
                return [(None, self._translate(exc))] * len(jobs)
            if getattr(exc, "sqlite_errorname", "").startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
                # Another process holds the file's lock past the busy timeout: running each
                # write alone would wait that long again for every one of them.
                return [(None, _unavailable(exc))] * len(jobs)
            return self._write_each(jobs)

    def _transact(self, fns: list[Callable[[SqlTx], Any]]) -> list[tuple[Any, bool]]:
        """Run `fns` in one transaction and commit; each yields (result, wrote events)."""
        conn = self.engine.raw_connection()
        try:
            _autocommit(conn, self.dialect, False)
            tx = SqlTx(conn, self.dialect)
            done: list[tuple[Any, bool]] = []
            for fn in fns:
                before = tx.events_written
                done.append((fn(tx), tx.events_written > before))
            sqlite = self.dialect == "sqlite"
            unindexed = self._unindexed + tx.reviews_inserted if sqlite else 0
            indexing = unindexed >= SEARCH_BATCH
            if indexing:
                tx.index_search()
            self._guard.check()
            tx.commit()
            self._unindexed = 0 if indexing else unindexed
            self._guard.after_commit(wrote=any(wrote for _, wrote in done))
            if tx.appended:
                self._tell(tx.appended)
            with self._counting:
                self.commits += 1
            return done
        except BaseException as exc:
            self._drop_if_broken(conn, exc)
            raise
        finally:
            conn.close()  # back to the pool, which rolls back what did not commit

    def _read_batch(self, jobs: list[tuple[Callable[[_Session], Any], Any]]) -> list[Outcome]:
        """Reads that waited together share one connection; each reads what is committed."""
        outcomes: list[Outcome] = []
        try:
            conn = self.engine.raw_connection()
            try:
                self._guard.check()
                _autocommit(conn, self.dialect, True)
                session = _Session(conn, self.dialect)
                for fn, _ in jobs:
                    try:
                        outcomes.append((fn(session), None))
                    except Exception as exc:
                        outcomes.append((None, self._translate(exc)))
                        if self._broken(conn, exc):
                            raise  # the rest fail with it; the connection is dropped
                    conn.rollback()  # end a snapshot's transaction: the next read is fresh
            except BaseException as exc:
                self._drop_if_broken(conn, exc)
                raise
            finally:
                conn.close()
        except Exception as exc:  # no connection, say: every read not yet answered fails with it
            outcomes += [(None, self._translate(exc))] * (len(jobs) - len(outcomes))
        return outcomes

    def _translate(self, exc: Exception) -> Exception:
        """The driver's errors as the store's: Unavailable when the database is away, or
        broken (`guard.py`)."""
        fault = exc if isinstance(exc, Fault) else self._guard.classify(exc)
        if fault is not None:
            return Unavailable(str(fault), None if fault.lasting else 5)
        if isinstance(exc, self._gone):
            return _unavailable(exc)
        if isinstance(exc, self._constraint):
            error = ConstraintError((str(exc).strip().splitlines() or [type(exc).__name__])[0])
            error.__cause__ = exc
            return error
        return exc

    def _broken(self, conn: Any, exc: BaseException) -> bool:
        """Whether `exc` means the connection itself is lost (not a lock timeout, a deadlock
        or a bad statement, after which the connection is still good)."""
        if isinstance(exc, sa.exc.DBAPIError):
            return bool(exc.connection_invalidated)
        if not isinstance(exc, self._gone):
            return False
        dbapi_error: Any = exc
        try:
            return bool(self.engine.dialect.is_disconnect(dbapi_error, conn.dbapi_connection, None))
        except Exception:
            return True

    def _drop_if_broken(self, conn: Any, exc: BaseException) -> None:
        if self._broken(conn, exc):
            with contextlib.suppress(Exception):
                conn.invalidate()  # the pool opens a new one instead

    async def read(self, fn: Callable[[_Session], T]) -> T:
        if self.timed is None:
            return await self._reader.submit(fn, None)  # type: ignore[no-any-return]
        start = time.perf_counter()
        try:
            return await self._reader.submit(fn, None)  # type: ignore[no-any-return]
        finally:
            self.timed("read", time.perf_counter() - start)

    async def close(self) -> None:
        self._writer.shutdown()
        self._reader.shutdown()
        self.engine.dispose()
        self._guard.close()

    async def ping(self) -> None:
        """The database answers and, as far as the store can tell, takes writes."""

        def ping(s: _Session) -> None:
            s.scalar("SELECT 1")
            self._guard.check_writable()

        await self.read(ping)

    async def get_task(self, task_id: str) -> TaskRow | None:
        return await self.read(lambda s: s.get_task(task_id))

    async def tasks_by_part(
        self,
        part: str,
        end: bool = False,
        limit: int = 2,
        mine: str | None = None,
        reviewed: bool | None = None,
    ) -> list[TaskRow]:
        """Tasks whose id starts with `part` (lower-case hex and '-'), or (`end`) ends with it,
        in id order; with `mine` or `reviewed` given, only those `list_tasks` would show."""
        sql = q.tasks_by_part(end, _seen(mine, reviewed))
        params: dict[str, Any] = {"limit": limit, "mine": mine}
        # (no LIKE wildcards in an id)
        params |= {"pattern": f"%{part}"} if end else {"prefix": part, "n": len(part)}
        return await self.read(lambda s: s.rows(TaskRow, sql, params))

    async def get_review(self, review_id: str) -> ReviewRow | None:
        return await self.read(lambda s: s.get_review(review_id))

    async def reviews_of(self, task_id: str) -> list[ReviewRow]:
        return await self.read(lambda s: s.reviews_of(task_id))

    async def task_with_reviews(self, task_id: str) -> tuple[TaskRow | None, list[ReviewRow]]:
        def read(s: _Session) -> tuple[TaskRow | None, list[ReviewRow]]:
            s.snapshot()
            task = s.get_task(task_id)
            return task, s.reviews_of(task_id) if task else []

        return await self.read(read)

    async def list_tasks(
        self,
        status: str | None,
        limit: int,
        offset: int,
        mine: str | None = None,
        reviewed: bool | None = None,
    ) -> tuple[list[TaskRow], int]:
        """A page of tasks; with `mine` or `reviewed` given, only those created by `mine`, or
        (`reviewed`) that reached a review."""
        if (seen := _seen(mine, reviewed)) is not None:
            sql = q.visible_tasks(bool(status), *seen)
            extra = {"mine": mine} if mine is not None else {}
            return await self._page(TaskRow, sql, status, limit, offset, extra)
        sql = (
            (q.LIST_TASKS_BY_STATUS, q.COUNT_TASKS_BY_STATUS)
            if status
            else (q.LIST_TASKS, q.COUNT_TASKS)
        )
        return await self._page(TaskRow, sql, status, limit, offset)

    async def list_reviews(
        self,
        status: str | None,
        limit: int,
        offset: int,
        flow: str | None = None,
        text: str | None = None,
        assigned: tuple[str, ...] = (),
        order: str = "oldest",
        decider: Decider | None = None,
    ) -> tuple[list[QueueRow], int]:
        where: dict[str, Any] = {"flow": flow} if flow is not None else {}
        by_index: bool | None = None
        if text:
            folded = search.fold(text)
            by_index = search.indexed(folded)
            if not by_index:
                where["text"] = folded  # instr / strpos: no wildcards
            elif self.dialect == "sqlite":
                where["text"] = search.fts_phrase(folded)
                where["tail"] = folded  # the reviews not indexed yet: `instr`, no wildcards
            else:
                where["text"] = search.like_pattern(folded)
        deciders: int | None = None
        if decider is not None:
            where["decider"] = decider.name
            names = decider.assignees
            deciders = -1 if names is None else len(names)
            where |= {f"d{i}": _member(name) for i, name in enumerate(names or ())}
        sql = q.review_queue(
            bool(status), flow is not None, by_index, len(assigned), order, self.dialect, deciders
        )
        where |= {f"a{i}": _member(name) for i, name in enumerate(assigned)}
        return await self._page(QueueRow, sql, status, limit, offset, where)

    async def _page(
        self,
        kind: type[R],
        sql: tuple[str, str],
        status: str | None,
        limit: int,
        offset: int,
        extra: dict[str, Any] | None = None,
    ) -> tuple[list[R], int]:
        where = ({"status": status} if status else {}) | (extra or {})

        def read(s: _Session) -> tuple[list[R], int]:
            s.snapshot()
            rows = s.rows(kind, sql[0], {**where, "limit": limit, "offset": offset})
            return rows, int(s.scalar(sql[1], where) or 0)

        return await self.read(read)

    async def events_after(
        self, after: int, task_id: str | None = None, limit: int = 1000, upto: int | None = None
    ) -> list[EventRow]:
        params: dict[str, Any] = {"after": after, "limit": limit}
        if task_id is not None:
            params["task_id"] = task_id
        if upto is not None:
            params["upto"] = upto
        sql = {
            (False, False): q.EVENTS_AFTER,
            (True, False): q.TASK_EVENTS_AFTER,
            (False, True): q.EVENTS_BETWEEN,
            (True, True): q.TASK_EVENTS_BETWEEN,
        }[(task_id is not None, upto is not None)]
        return await self.read(lambda s: s.rows(EventRow, sql, params))

    async def due_reviews(self, open: str, now: float, limit: int = 100) -> list[str]:
        """Ids of open reviews whose deadline is past, the oldest deadline first."""
        params = {"open": open, "now": now, "limit": limit}
        return await self.read(lambda s: [r["id"] for r in s.all(q.DUE_REVIEWS, params)])

    async def due_warnings(self, open: str, now: float, warn: float, limit: int = 100) -> list[str]:
        """Ids of open reviews whose deadline is near and not yet said (`queries.DUE_WARNINGS`)."""
        params = {"open": open, "now": now, "warn": warn, "limit": limit}
        return await self.read(lambda s: [r["id"] for r in s.all(q.DUE_WARNINGS, params)])

    async def open_reviews_by_node(self, open: str = "open") -> list[tuple[str, str, int, float]]:
        """(flow, node, how many are open, the oldest one's created_at) of the open reviews."""

        def read(s: _Session) -> list[tuple[str, str, int, float]]:
            rows = s.run(q.OPEN_BY_NODE, {"open": open}).fetchall()
            return [(flow, node, int(n), float(oldest)) for flow, node, n, oldest in rows]

        return await self.read(read)

    async def last_event_id(self, task_id: str | None = None) -> int:
        if task_id is None:
            last = await self.read(lambda s: s.scalar(q.LAST_EVENT))
        else:
            last = await self.read(lambda s: s.scalar(q.LAST_TASK_EVENT, {"task_id": task_id}))
        return int(last or 0)

    async def snapshot(self, task_id: str) -> tuple[TaskRow | None, ReviewRow | None, int]:
        """A task, its latest review, and the id of its last event, all of one moment: a
        subscriber that starts after that id sees each later change once, and nothing twice."""

        return await self.read(lambda s: s.task_and_last_review(task_id, last_event=True))


def _seen(mine: str | None, reviewed: bool | None) -> tuple[bool, bool] | None:
    """Whose tasks a look-up keeps (`queries._seen`): None, every one's; else whether the
    principal's own (`mine`) and whether those that reached a review."""
    if mine is None and reviewed is None:
        return None
    return mine is not None, bool(reviewed)
