"""Use cases for clients and reviewers: submit, read, list, cancel, decide.

Each state change is one `Store.write` of a small synchronous function: read what is needed,
make the conditional update, append the event. It raises a domain error to roll back.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from typing import Any

from hitl.flow import ReviewRequest
from hitl.service.errors import Conflict, Invalid, NotFound
from hitl.service.flows import FlowRegistry
from hitl.service.ids import new_id
from hitl.service.states import EventType, ReviewStatus, TaskStatus, sources
from hitl.store import ConstraintError, Row, Store, Tx


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), allow_nan=False)


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
    ) -> tuple[Row, bool]:
        """Queue a task; returns it and whether it is new (False: an idempotent replay)."""
        if input is None or input == "" or input == {} or input == []:
            raise Invalid("input is empty: send the text or JSON value to process")
        input_text = json_value(input, "input")
        name = self.registry.resolve(flow)
        digest = request_hash(name, input)
        now = time.time()
        task_id = new_id()
        row: Row = {
            "id": task_id,
            "flow": name,
            "status": TaskStatus.QUEUED.value,
            "input": input_text,
            "shared": dumps({"task_input": input, "task_id": task_id}),
            "position": None,
            "node": None,
            "round": 0,
            "result": None,
            "error": None,
            "created_by": created_by,
            "created_at": now,
            "updated_at": now,
            "lease_owner": None,
            "lease_expires_at": None,
            "claims": 0,
            "idempotency_key": idempotency_key,
            "request_hash": digest,
        }
        event = dumps({"task_id": task_id, "status": "queued", "flow": name, "input": input})

        def write(tx: Tx) -> tuple[Row, bool]:
            if idempotency_key is not None:
                existing = tx.task_by_key(idempotency_key)
                if existing is not None:
                    if existing["request_hash"] != digest:
                        raise Conflict(
                            "this Idempotency-Key was used for a different request; "
                            "use a new key for new work",
                            task_id=existing["id"],
                        )
                    return existing, False
            tx.insert_task(row)
            tx.add_event(task_id, EventType.CREATED, event)
            tx.notify_work()
            return row, True

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

    async def get(self, task_id: str) -> tuple[Row, list[Row]]:
        task, reviews = await self.store.task_with_reviews(task_id)
        if task is None:
            raise NotFound(f"no task {task_id!r}")
        return task, reviews

    async def list_tasks(
        self, status: str | None, limit: int, offset: int
    ) -> tuple[list[Row], int]:
        return await self.store.list_tasks(status, limit, offset)

    async def list_reviews(
        self, status: str | None, limit: int, offset: int
    ) -> tuple[list[Row], int]:
        return await self.store.list_reviews(status, limit, offset)

    async def get_review(self, review_id: str) -> Row:
        review = await self.store.get_review(review_id)
        if review is None:
            raise NotFound(f"no review {review_id!r}")
        return review

    async def cancel(self, task_id: str, by: str | None = None) -> Row:
        def write(tx: Tx) -> Row:
            task = tx.get_task(task_id)
            if task is None:
                raise NotFound(f"no task {task_id!r}")
            moved = tx.update_task(
                task_id,
                sources(TaskStatus.CANCELLED),
                status=TaskStatus.CANCELLED.value,
                lease_owner=None,
                lease_expires_at=None,
            )
            if not moved:
                raise Conflict(
                    f"task is {task['status']}: only a queued, running or waiting task can be "
                    "cancelled",
                    status=task["status"],
                )
            tx.update_reviews_of(task_id, ReviewStatus.OPEN, status=ReviewStatus.CANCELLED.value)
            tx.add_event(
                task_id,
                EventType.CANCELLED,
                dumps({"task_id": task_id, "status": "cancelled", "by": by}),
            )
            return {**task, "status": TaskStatus.CANCELLED.value}

        return await self.store.write(write)

    async def decide(
        self,
        review_id: str,
        action: str,
        comment: str | None = None,
        edited_output: Any = None,
        decided_by: str | None = None,
    ) -> Row:
        """Record a decision; exactly one of any number of concurrent decisions wins."""
        edited = self._edited(action, edited_output)

        def write(tx: Tx) -> Row:
            review = tx.get_review(review_id)
            if review is None:
                raise NotFound(f"no review {review_id!r}")
            return record_decision(tx, review, action, comment, edited, decided_by)

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
    ) -> Row:
        """Decide the task's latest review round (the cookbook's `/feedback/{task_id}`)."""
        edited = self._edited(action, edited_output)

        def write(tx: Tx) -> Row:
            review = tx.last_review(task_id)
            if review is None:
                task = tx.get_task(task_id)
                if task is None:
                    raise NotFound(f"no task {task_id!r}")
                raise Conflict(
                    f"task is {task['status']} and has no review open; wait for waiting_for_review",
                    status=task["status"],
                )
            return record_decision(tx, review, action, comment, edited, decided_by)

        decided = await self.store.write(write)
        self.wake_workers()
        return decided

    @staticmethod
    def _edited(action: str, edited_output: Any) -> str | None:
        if action == "edit" and edited_output is None:
            raise Invalid("an edit needs edited_output: the corrected output to approve")
        return json_value(edited_output, "edited_output") if edited_output is not None else None


def record_decision(
    tx: Tx,
    review: Row,
    action: str,
    comment: str | None,
    edited: str | None,
    decided_by: str | None,
) -> Row:
    """Decide an open review and hand its task back to the workers, in the caller's
    transaction; a review that is no longer open raises Conflict and changes nothing."""
    request = ReviewRequest.from_json(json.loads(review["request"]))
    if review["status"] != ReviewStatus.OPEN:
        raise Conflict(
            f"review round {review['round']} is already {review['status']}"
            + (f" ({review['decision']})" if review["decision"] else "")
            + "; nothing to decide",
            review_status=review["status"],
            decision=review["decision"],
        )
    if action not in request.decisions:
        raise Conflict(
            f"decision {action!r} is not allowed here; allowed: {', '.join(request.decisions)}",
            allowed=list(request.decisions),
        )
    decision = {
        "status": ReviewStatus.DECIDED.value,
        "decision": action,
        "comment": comment,
        "edited_output": edited,
        "decided_by": decided_by,
        "decided_at": time.time(),
    }
    if not tx.update_review(review["id"], [ReviewStatus.OPEN], **decision):
        current = tx.get_review(review["id"]) or review
        raise Conflict(
            "another decision on this review won first",
            review_status=current["status"],
            decision=current["decision"],
        )
    moved = tx.update_task(
        review["task_id"],
        [TaskStatus.WAITING_FOR_REVIEW],
        status=TaskStatus.RUNNING.value,
        lease_owner=None,
        lease_expires_at=0.0,
    )
    if not moved:
        raise Conflict("the task is no longer waiting for this review")
    tx.notify_work()
    tx.add_event(
        review["task_id"],
        EventType.REVIEW_DECIDED,
        dumps(
            {
                "task_id": review["task_id"],
                "review_id": review["id"],
                "round": review["round"],
                "status": "running",
                "decision": action,
                "comment": comment,
                "edited_output": json.loads(edited) if edited is not None else None,
                "decided_by": decided_by,
            }
        ),
    )
    return {**review, **decision}
