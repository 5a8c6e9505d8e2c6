"""The task state machine: the statuses, and the only arrows between them."""

from __future__ import annotations

from enum import StrEnum


class TaskStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    WAITING_FOR_REVIEW = "waiting_for_review"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


class ReviewStatus(StrEnum):
    OPEN = "open"
    DECIDED = "decided"
    EXPIRED = "expired"  # its deadline passed with no decision, and it had no default one
    CANCELLED = "cancelled"


class EventType(StrEnum):
    CREATED = "task.created"
    RUNNING = "task.running"
    NODE_STARTED = "node.started"
    NODE_FINISHED = "node.finished"
    REVIEW_REQUESTED = "review.requested"
    REVIEW_DECIDED = "review.decided"
    COMPLETED = "task.completed"
    FAILED = "task.failed"
    CANCELLED = "task.cancelled"


FINAL = frozenset({TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED})
FINAL_EVENTS = frozenset({EventType.COMPLETED, EventType.FAILED, EventType.CANCELLED})

TRANSITIONS: dict[TaskStatus, frozenset[TaskStatus]] = {
    TaskStatus.QUEUED: frozenset({TaskStatus.RUNNING, TaskStatus.CANCELLED, TaskStatus.FAILED}),
    # running → running: a worker takes over a task whose lease expired.
    TaskStatus.RUNNING: frozenset(
        {
            TaskStatus.RUNNING,
            TaskStatus.WAITING_FOR_REVIEW,
            TaskStatus.COMPLETED,
            TaskStatus.FAILED,
            TaskStatus.CANCELLED,
        }
    ),
    TaskStatus.WAITING_FOR_REVIEW: frozenset(
        {TaskStatus.RUNNING, TaskStatus.CANCELLED, TaskStatus.FAILED}
    ),
    TaskStatus.COMPLETED: frozenset(),
    TaskStatus.FAILED: frozenset(),
    TaskStatus.CANCELLED: frozenset(),
}


def sources(target: TaskStatus) -> frozenset[TaskStatus]:
    """The statuses a task may be in to move to `target`: the `WHERE status IN (...)` of it."""
    return frozenset(s for s, targets in TRANSITIONS.items() if target in targets)


def can_move(source: TaskStatus, target: TaskStatus) -> bool:
    return target in TRANSITIONS[source]
