"""Use cases for clients and reviewers: submit, read, list, cancel, decide.

Each state change is one `Store.write` of a small synchronous function: read what is needed,
make the conditional update, append the event. It raises a domain error to roll back.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from typing import Any

from hitl.service import machine
from hitl.service.errors import Conflict, Invalid, NotFound
from hitl.service.flows import FlowRegistry
from hitl.service.ids import new_id
from hitl.service.machine import TaskStatus, dumps
from hitl.store import ConstraintError, ReviewRow, Store, TaskRow, Tx

# A task id is a UUID: 36 characters of lower-case hex and '-'. Fewer, and it is a prefix.
ID_LENGTH = 36
MIN_PREFIX = 4
_ID_CHARS = frozenset("0123456789abcdef-")


def _id(value: str, what: str) -> str:
    """An id as stored (lower case), or NotFound for text no id could be: it never reaches the
    database (PostgreSQL refuses a NUL in text, with an error rather than no row)."""
    lowered = value.lower()
    if not lowered or len(lowered) > ID_LENGTH or not set(lowered) <= _ID_CHARS:
        raise NotFound(f"no {what} {value[:80]!r}")
    return lowered


def json_value(value: Any, what: str) -> str:
    """`value` as JSON text, or Invalid: JSON has no NaN or Infinity, which Python parses."""
    try:
        return dumps(value)
    except ValueError as exc:
        raise Invalid(f"{what} is not valid JSON: NaN and Infinity are not allowed") from exc


def request_hash(flow: str | None, input: Any) -> str:
    return hashlib.sha256(dumps([flow, input]).encode()).hexdigest()


class TaskService:
    def __init__(
        self, store: Store, registry: FlowRegistry, wake_workers: Callable[[], None]
    ) -> None:
        self.store = store
        self.registry = registry
        self.wake_workers = wake_workers

    async def submit(
        self,
        input: Any,
        flow: str | None = None,
        created_by: str | None = None,
        idempotency_key: str | None = None,
    ) -> tuple[TaskRow, bool]:
        """Queue a task; returns it and whether it is new (False: an idempotent replay)."""
        if input is None or input == "" or input == {} or input == []:
            raise Invalid("input is empty: send the text or JSON value to process")
        input_text = json_value(input, "input")
        name = self.registry.resolve(flow)
        digest = request_hash(name, input)
        now = time.time()
        task_id = new_id()
        task = TaskRow(
            id=task_id,
            flow=name,
            status=TaskStatus.QUEUED.value,
            input=input_text,
            shared=dumps({"task_input": input, "task_id": task_id}),
            created_at=now,
            updated_at=now,
            created_by=created_by,
            idempotency_key=idempotency_key,
            request_hash=digest,
        )

        def write(tx: Tx) -> tuple[TaskRow, bool]:
            if idempotency_key is not None:
                existing = tx.task_by_key(idempotency_key)
                if existing is not None:
                    if existing.request_hash != digest:
                        raise Conflict(
                            "this Idempotency-Key was used for a different request; "
                            "use a new key for new work",
                            task_id=existing.id,
                        )
                    return existing, False
            machine.submit(tx, task, input)
            return task, True

        try:
            result = await self.store.write(write)
        except ConstraintError:
            if idempotency_key is None:
                raise
            # Another request with this key committed between our look-up and our insert (two
            # PostgreSQL writers): now the look-up finds it.
            result = await self.store.write(write)
        if result[1]:
            self.wake_workers()
        return result

    async def resolve(self, task_id: str) -> str:
        """The full id of the task that `task_id` names: the id itself, or at least four of its
        characters that no other task's id starts (as git takes a commit's) or, failing that,
        ends with. A task id is a UUIDv7: its first 12 characters are the time, shared by every
        task made in the same minute or so; its end is random, and a short end names one task."""
        part = _id(task_id, "task")
        if len(part) >= ID_LENGTH:
            return part
        if len(part) < MIN_PREFIX:
            raise NotFound(
                f"no task {task_id!r}: give the task's id, or at least {MIN_PREFIX} characters "
                "of its start or its end"
            )
        found = await self.store.tasks_by_prefix(part, limit=2)
        if not found:
            found = await self.store.tasks_by_suffix(part, limit=2)
        if not found:
            raise NotFound(f"no task {task_id!r}")
        if len(found) > 1:
            raise Conflict(
                f"{task_id!r} is part of more than one task's id: give more characters "
                "(the end of an id tells tasks apart sooner than its start)"
            )
        return found[0].id

    async def get(self, task_id: str) -> tuple[TaskRow, list[ReviewRow]]:
        """A task (by id or unique prefix) with every review round."""
        task, reviews = await self.store.task_with_reviews(await self.resolve(task_id))
        if task is None:
            raise NotFound(f"no task {task_id!r}")
        return task, reviews

    async def snapshot(self, task_id: str) -> tuple[TaskRow, ReviewRow | None, int]:
        """A task, its latest review and its last event's id, as of one moment: a stream that
        starts there shows each later change once."""
        task, review, last = await self.store.snapshot(_id(task_id, "task"))
        if task is None:
            raise NotFound(f"no task {task_id!r}")
        return task, review, last

    async def list_tasks(
        self, status: str | None, limit: int, offset: int
    ) -> tuple[list[TaskRow], int]:
        return await self.store.list_tasks(status, limit, offset)

    async def list_reviews(
        self, status: str | None, limit: int, offset: int
    ) -> tuple[list[ReviewRow], int]:
        return await self.store.list_reviews(status, limit, offset)

    async def get_review(self, review_id: str) -> ReviewRow:
        review = await self.store.get_review(_id(review_id, "review"))
        if review is None:
            raise NotFound(f"no review {review_id!r}")
        return review

    async def cancel(self, task_id: str, by: str | None = None) -> TaskRow:
        task_id = _id(task_id, "task")
        return await self.store.write(lambda tx: machine.cancel(tx, task_id, by))

    async def retry(self, task_id: str, by: str | None = None) -> TaskRow:
        task_id = _id(task_id, "task")
        task = await self.store.write(lambda tx: machine.retry(tx, task_id, by))
        self.wake_workers()
        return task

    async def decide(
        self,
        review_id: str,
        action: str,
        comment: str | None = None,
        edited_output: Any = None,
        decided_by: str | None = None,
    ) -> ReviewRow:
        """Record a decision; exactly one of any number of concurrent decisions wins."""
        edited = self._edited(action, edited_output)
        review_id = _id(review_id, "review")

        def write(tx: Tx) -> ReviewRow:
            review = tx.get_review(review_id)
            if review is None:
                raise NotFound(f"no review {review_id!r}")
            return machine.decide(tx, review, action, comment, edited, decided_by)

        decided = await self.store.write(write)
        self.wake_workers()
        return decided

    async def decide_task(
        self,
        task_id: str,
        action: str,
        comment: str | None = None,
        edited_output: Any = None,
        decided_by: str | None = None,
    ) -> ReviewRow:
        """Decide the task's latest review round (the cookbook's `/feedback/{task_id}`)."""
        edited = self._edited(action, edited_output)
        task_id = _id(task_id, "task")

        def write(tx: Tx) -> ReviewRow:
            review = tx.last_review(task_id)
            if review is None:
                task = tx.get_task(task_id)
                if task is None:
                    raise NotFound(f"no task {task_id!r}")
                raise Conflict(
                    f"task is {task.status} and has no review open; wait for waiting_for_review",
                    status=task.status,
                )
            return machine.decide(tx, review, action, comment, edited, decided_by)

        decided = await self.store.write(write)
        self.wake_workers()
        return decided

    @staticmethod
    def _edited(action: str, edited_output: Any) -> str | None:
        if action == "edit" and edited_output is None:
            raise Invalid("an edit needs edited_output: the corrected output to approve")
        return json_value(edited_output, "edited_output") if edited_output is not None else None
