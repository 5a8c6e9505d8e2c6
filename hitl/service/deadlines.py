"""Review deadlines: a review nobody decided in time is decided by its default, once.

Every process that runs workers looks for open reviews whose deadline has passed, every
`poll_interval`. Each one is settled in a transaction of its own that first moves the review
out of `open` with a conditional update: of any number of processes — and of a person deciding
at the same moment — exactly one wins, and the others change nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable

from hitl.flow import ReviewRequest
from hitl.service.errors import Conflict
from hitl.service.states import EventType, ReviewStatus, TaskStatus
from hitl.service.tasks import dumps, record_decision
from hitl.store import Store, Tx, Unavailable

log = logging.getLogger(__name__)

DEADLINE_BY = "deadline"  # the `decided_by` of a decision the deadline made


class Deadlines:
    def __init__(self, store: Store, interval: float, wake_workers: Callable[[], None]) -> None:
        self.store = store
        self.interval = interval
        self.wake_workers = wake_workers
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="hitl-deadlines")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.fire_due()
            except Unavailable as exc:
                log.warning("review deadlines: %s", exc, extra={"action": "deadlines"})
            except Exception:
                log.exception("review deadlines failed", extra={"action": "deadlines"})

    async def fire_due(self, now: float | None = None) -> int:
        """Settle every open review whose deadline is past; returns how many this call did."""
        now = time.time() if now is None else now
        fired = 0
        for review_id in await self.store.due_reviews(ReviewStatus.OPEN.value, now):
            try:
                await self.store.write(lambda tx, rid=review_id: _expire(tx, rid, now))  # type: ignore[misc]
            except Conflict:
                continue  # decided meanwhile: by a person, or by another process's deadline
            except Unavailable:
                raise
            except Exception:
                # One review that cannot be settled must not hold up the others behind it.
                log.exception(
                    "review %s: its deadline could not be applied",
                    review_id,
                    extra={"action": "deadlines"},
                )
                continue
            fired += 1
        if fired:
            self.wake_workers()
        return fired


def _expire(tx: Tx, review_id: str, now: float) -> None:
    review = tx.get_review(review_id)
    if review is None or review["status"] != ReviewStatus.OPEN:
        raise Conflict("the review is no longer open")
    request = ReviewRequest.from_json(json.loads(review["request"]))
    if request.on_deadline is not None:
        comment = f"no decision by the deadline: {request.on_deadline} by default"
        record_decision(tx, review, request.on_deadline, comment, None, DEADLINE_BY)
        return
    if not tx.update_review(review_id, [ReviewStatus.OPEN], status=ReviewStatus.EXPIRED.value):
        raise Conflict("the review is no longer open")
    error = f"review round {review['round']} had no decision by its deadline"
    failed = tx.update_task(
        review["task_id"],
        [TaskStatus.WAITING_FOR_REVIEW],
        status=TaskStatus.FAILED.value,
        error=error,
        lease_owner=None,
        lease_expires_at=None,
    )
    if not failed:
        raise Conflict("the task is no longer waiting for this review")
    data = {"task_id": review["task_id"], "status": "failed", "error": error}
    tx.add_event(review["task_id"], EventType.FAILED, dumps({**data, "review_id": review_id}))
