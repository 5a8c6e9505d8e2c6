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
from functools import partial
from typing import Any

from hitl.flow.review import ESCALATE
from hitl.service import machine
from hitl.service.errors import Conflict
from hitl.service.identity import audit
from hitl.service.machine import ReviewStatus
from hitl.service.metrics import Metrics
from hitl.store import ReviewRow, Store, Tx, Unavailable

log = logging.getLogger(__name__)


class Deadlines:
    def __init__(self, store: Store, interval: float, wake_workers: Callable[[], None]) -> None:
        self.store = store
        self.interval = interval
        self.wake_workers = wake_workers
        self.metrics: Metrics | None = None
        self.warn_seconds = 900.0  # HITL_DEADLINE_WARNING_SECONDS (`queries.DUE_WARNINGS`)
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
                await self.warn_due()
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
                decided = await self.store.write(partial(_expire, review_id=review_id, now=now))
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
            if decided is not None and decided.decided_at is not None and self.metrics is not None:
                waited = decided.decided_at - decided.created_at
                self.metrics.decided(decided.decision or "", True, waited)
        if fired:
            self.wake_workers()
        return fired

    async def warn_due(self, now: float | None = None) -> int:
        """Say, once each, that the deadline of open reviews is near (`review.deadline_near`,
        which notifications send); returns how many this call said."""
        now = time.time() if now is None else now
        due = await self.store.due_warnings(ReviewStatus.OPEN.value, now, self.warn_seconds)
        said = 0
        for review_id in due:
            said += await self.store.write(partial(_warn, review_id=review_id, now=now))
        return said


def _warn(tx: Tx, review_id: str, now: float) -> bool:
    review = tx.get_review(review_id)
    return review is not None and machine.warn(tx, review, now)


def _expire(tx: Tx, review_id: str, now: float) -> ReviewRow | None:
    # The task's row held first (the lock order), and the review read after it: a watcher of
    # another process that fired it meanwhile has moved its deadline (`machine.expire`).
    review, _ = tx.review_and_task(review_id)
    if review is None:
        raise Conflict("the review is gone")
    decided = machine.expire(tx, review, now)
    # In the audit log as every decision is: by nobody signed in, but by the deadline.
    by = machine.DEADLINE_BY
    detail: dict[str, Any] = {"task_id": review.task_id, "round": review.round, "by": by}
    request = json.loads(review.request)  # (as `expire` acted on it)
    if decided is not None:
        detail |= {"decision": decided.decision, "comment": decided.comment}
        audit(tx, None, "review.decide", review_id, **detail)
    elif request.get("on_deadline") == ESCALATE:
        assignees = request.get("escalate_to") or []
        audit(tx, None, "review.escalate", review_id, **detail, assignees=assignees)
    else:
        audit(tx, None, "review.expire", review_id, **detail)
    return decided
