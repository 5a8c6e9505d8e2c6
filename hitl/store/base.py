"""The store's seam: what the service may ask of any storage backend.

`SqlStore` (`sql.py`) implements it on SQLite and PostgreSQL; the contract suite in
`tests/unit/store` runs the same tests against every implementation. A write is a plain
function of a `Tx` that the store runs in one transaction: everything it did commits, or, if it
raises, nothing does.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from hitl.store.rows import (
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
)

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Decider:
    """Whose decidable reviews the queue lists (`access.decider`): not those of a task `name`
    submitted, unless the review allows self-review; and only those assigned to nobody or to
    one of `assignees` (names, and roles as role:NAME; None: assigned to anyone)."""

    name: str
    assignees: tuple[str, ...] | None


# The identity rows `select` reads.
K = TypeVar(
    "K", PrincipalRow, TokenRow, SessionRow, LinkRow, AuditRow, VoteRow, ChannelRow, DeliveryRow
)


class Reader(Protocol):
    """Reads of identity and audit rows, inside a read or a write."""

    def select(
        self, kind: type[K], order: str | None = None, limit: int = 1000, **where: Any
    ) -> list[K]: ...
    def audit_of_task(self, task_id: str) -> list[AuditRow]: ...
    def audit_since(self, since: float, after: int, limit: int) -> list[AuditRow]: ...
    def event(self, event_id: int) -> EventRow | None: ...
    def last_event_id(self) -> int: ...


class Tx(Reader, Protocol):
    """One write transaction. Updates are conditional: they change a row only if its status is
    one of `expect` (and, for tasks, if `owner` is given, only while that lease holds it)."""

    dialect: str

    def get_task(self, task_id: str) -> TaskRow | None: ...
    def lock_task(self, task_id: str) -> None:
        """Hold a task's row to the commit. A write that changes a task and its reviews
        locks the task first, so that two such writes wait for each other in one order: on
        PostgreSQL, rows locked in opposite orders deadlock. (SQLite runs one write at a
        time: there is nothing to hold.)"""
        ...

    def task_by_key(self, key: str) -> TaskRow | None: ...
    def insert_task(self, task: TaskRow) -> None: ...
    def update_task(
        self, task_id: str, expect: Collection[str], owner: object = ..., **values: Any
    ) -> bool: ...
    def claim(
        self, owner: str, until: float, now: float, runnable: str, running: str, limit: int = 1
    ) -> list[tuple[TaskRow, ReviewRow | None]]:
        """Lease up to `limit` tasks: expired leases first, then the oldest queued; each
        with its latest review if it is past one (`round` > 0), for its decision."""
        ...

    def take(
        self, task_id: str, expected: str, owner: str, until: float, now: float, running: str
    ) -> TaskRow | None: ...
    def expire_leases(self, running: str, owner_prefix: str | None = None) -> int: ...
    def get_review(self, review_id: str) -> ReviewRow | None: ...
    def review_and_task(self, review_id: str) -> tuple[ReviewRow | None, TaskRow | None]:
        """A review and its task, the task's row held (`lock_task`), both as they are once it
        is: a write that waited for the lock sees what the write it waited for did."""
        ...

    def last_review(self, task_id: str) -> ReviewRow | None: ...
    def task_and_last_review(
        self, task_id: str, last_event: bool = False, lock: bool = False
    ) -> tuple[TaskRow | None, ReviewRow | None, int]:
        """A task, its latest review and (with `last_event`) its last event's id, 0 if none,
        all as of one moment; with `lock`, the task's row is also held (`lock_task`)."""
        ...

    def insert_review(
        self,
        review: ReviewRow,
        request: dict[str, Any] | None = None,
        task_input: str | None = None,
    ) -> None: ...
    def update_review(self, review_id: str, expect: Collection[str], **values: Any) -> bool: ...
    def update_reviews_of(self, task_id: str, expect: str, **values: Any) -> int: ...
    def warn_review(self, review_id: str, open: str, now: float) -> bool: ...
    def claim_deliveries(
        self, owner: str, pending: str, now: float, until: float, limit: int
    ) -> list[DeliveryRow]: ...
    def notify_work(self) -> None: ...
    def add_event(self, task_id: str, type: str, data: str) -> None: ...
    def insert(self, row: Record) -> None: ...
    def change(self, kind: type[Record], where: dict[str, Any], **values: Any) -> int: ...
    def insert_all(self, rows: Sequence[Record]) -> None: ...
    def change_all(self, kind: type[Record], ids: Sequence[str], **values: Any) -> int: ...


class Store(Protocol):
    dialect: str
    # Told how long each read and write took to be answered, queueing included ("read" or
    # "write", seconds); None: nobody asks.
    timed: Callable[[str, float], None] | None

    def on_commit(self, callback: Callable[[list[EventRow] | None], None]) -> None:
        """Call `callback` (on the event loop, in commit order) after each commit that appended
        events: with those events, in id order, when the store knows them all (SQLite, whose
        one writer sees every id as it is given); with None when it does not (PostgreSQL, whose
        ids are handed out at insert, in any order: read them from the log)."""

    async def write(self, fn: Callable[[Tx], T]) -> T: ...
    async def read(self, fn: Callable[[Reader], T]) -> T: ...
    async def close(self) -> None: ...
    async def ping(self) -> None: ...
    async def get_task(self, task_id: str) -> TaskRow | None: ...
    async def tasks_by_part(
        self,
        part: str,
        end: bool = False,
        limit: int = 2,
        mine: str | None = None,
        reviewed: bool | None = None,
    ) -> list[TaskRow]: ...
    async def get_review(self, review_id: str) -> ReviewRow | None: ...
    async def reviews_of(self, task_id: str) -> list[ReviewRow]: ...
    async def task_with_reviews(self, task_id: str) -> tuple[TaskRow | None, list[ReviewRow]]: ...
    async def list_tasks(
        self,
        status: str | None,
        limit: int,
        offset: int,
        mine: str | None = None,
        reviewed: bool | None = None,
    ) -> tuple[list[TaskRow], int]: ...
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
        """The reviewers' queue: reviews of `status` (None: any) with their task's flow and
        input, of one `flow`, whose output, prompt or input contains `text` (any case),
        assigned to any of `assigned` (names, and roles as role:NAME), that `decider` may
        decide, in `order` (`oldest`, `newest`, `deadline`)."""

    async def events_after(
        self, after: int, task_id: str | None = None, limit: int = 1000, upto: int | None = None
    ) -> list[EventRow]: ...
    async def due_reviews(self, open: str, now: float, limit: int = 100) -> list[str]: ...
    async def due_warnings(
        self, open: str, now: float, warn: float, limit: int = 100
    ) -> list[str]: ...
    async def open_reviews_by_node(self, open: str = "open") -> list[tuple[str, str, int, float]]:
        """(flow, node, how many are open, the oldest one's created_at), by flow and node."""
        ...

    async def last_event_id(self, task_id: str | None = None) -> int: ...
    async def snapshot(self, task_id: str) -> tuple[TaskRow | None, ReviewRow | None, int]:
        """A task, its latest review and its last event's id, all as of one moment."""
        ...
