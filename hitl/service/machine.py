"""The task state machine: its statuses, its arrows, and one function per transition.

Every change of a task's status is one of the functions below, run inside a store
transaction (`Tx`). Each takes the statuses it may start from out of its `Transition`, makes a
conditional update (`... WHERE status IN (sources)`, and `AND lease_owner = :owner` for a
worker's writes), and appends the event its `Transition` names, in the same transaction: a race
has one winner, and no event is lost or invented. Nothing else in hitl writes a task's status.

    submit                    → queued
    claim      queued, running → running        (running: a lease that expired)
    start_node running        → running
    checkpoint running        → running
    progress   running        → running        (what a node reports while it runs)
    suspend    running        → waiting_for_review
    decide     waiting        → running        (or straight to a worker: its claim)
    expire     waiting        → failed          (a deadline with no default decision)
    complete   running        → completed
    fail       running        → failed
    cancel     queued, running, waiting → cancelled
    retry      failed         → queued
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from hitl.flow import ReviewRequest, content_hash
from hitl.flow import review as flow_review
from hitl.flow.checkpoint import compact
from hitl.service.errors import Conflict, Invalid, LeaseLost, NotFound
from hitl.store import ANY_OWNER, ReviewRow, TaskRow, Tx, VoteRow


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
    NODE_PROGRESS = "node.progress"
    REVIEW_REQUESTED = "review.requested"
    REVIEW_DECIDED = "review.decided"
    COMPLETED = "task.completed"
    FAILED = "task.failed"
    CANCELLED = "task.cancelled"
    RETRIED = "task.retried"
    REVIEW_CLAIMED = "review.claimed"
    REVIEW_RELEASED = "review.released"
    REVIEW_VOTED = "review.voted"
    REVIEW_ESCALATED = "review.escalated"
    REVIEW_DEADLINE_NEAR = "review.deadline_near"


FINAL = frozenset({TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED})
FINAL_EVENTS = frozenset({EventType.COMPLETED, EventType.FAILED, EventType.CANCELLED})

S = TaskStatus


@dataclass(frozen=True)
class Transition:
    name: str
    sources: frozenset[TaskStatus]  # empty: the task is new
    target: TaskStatus
    event: EventType

    @property
    def expect(self) -> list[str]:
        """The `WHERE status IN (...)` of this transition's update."""
        return sorted(s.value for s in self.sources)


SUBMIT = Transition("submit", frozenset(), S.QUEUED, EventType.CREATED)
CLAIM = Transition("claim", frozenset({S.QUEUED, S.RUNNING}), S.RUNNING, EventType.RUNNING)
START_NODE = Transition("start_node", frozenset({S.RUNNING}), S.RUNNING, EventType.NODE_STARTED)
CHECKPOINT = Transition("checkpoint", frozenset({S.RUNNING}), S.RUNNING, EventType.NODE_FINISHED)
PROGRESS = Transition("progress", frozenset({S.RUNNING}), S.RUNNING, EventType.NODE_PROGRESS)
SUSPEND = Transition(
    "suspend", frozenset({S.RUNNING}), S.WAITING_FOR_REVIEW, EventType.REVIEW_REQUESTED
)
DECIDE = Transition(
    "decide", frozenset({S.WAITING_FOR_REVIEW}), S.RUNNING, EventType.REVIEW_DECIDED
)
EXPIRE = Transition("expire", frozenset({S.WAITING_FOR_REVIEW}), S.FAILED, EventType.FAILED)
COMPLETE = Transition("complete", frozenset({S.RUNNING}), S.COMPLETED, EventType.COMPLETED)
FAIL = Transition("fail", frozenset({S.RUNNING}), S.FAILED, EventType.FAILED)
CANCEL = Transition(
    "cancel",
    frozenset({S.QUEUED, S.RUNNING, S.WAITING_FOR_REVIEW}),
    S.CANCELLED,
    EventType.CANCELLED,
)
RETRY = Transition("retry", frozenset({S.FAILED}), S.QUEUED, EventType.RETRIED)
# A reviewer's claim on an open review: the task stays waiting; others see who is reviewing.
TAKE_REVIEW = Transition(
    "take_review",
    frozenset({S.WAITING_FOR_REVIEW}),
    S.WAITING_FOR_REVIEW,
    EventType.REVIEW_CLAIMED,
)
LEAVE_REVIEW = Transition(
    "leave_review",
    frozenset({S.WAITING_FOR_REVIEW}),
    S.WAITING_FOR_REVIEW,
    EventType.REVIEW_RELEASED,
)
# One vote of several on a review with a quorum, that does not decide it yet.
VOTE = Transition(
    "vote", frozenset({S.WAITING_FOR_REVIEW}), S.WAITING_FOR_REVIEW, EventType.REVIEW_VOTED
)
# A deadline that asks someone else: the review goes to `escalate_to`, with a new deadline.
ESCALATE = Transition(
    "escalate",
    frozenset({S.WAITING_FOR_REVIEW}),
    S.WAITING_FOR_REVIEW,
    EventType.REVIEW_ESCALATED,
)

# An open review whose deadline is near: said once, for notifications; nothing else changes.
WARN = Transition(
    "warn",
    frozenset({S.WAITING_FOR_REVIEW}),
    S.WAITING_FOR_REVIEW,
    EventType.REVIEW_DEADLINE_NEAR,
)

ALL = (
    SUBMIT,
    CLAIM,
    START_NODE,
    CHECKPOINT,
    PROGRESS,
    SUSPEND,
    DECIDE,
    EXPIRE,
    COMPLETE,
    FAIL,
    CANCEL,
    RETRY,
    TAKE_REVIEW,
    LEAVE_REVIEW,
    VOTE,
    ESCALATE,
    WARN,
)

# The arrows, as the transitions above draw them.
TRANSITIONS: dict[TaskStatus, frozenset[TaskStatus]] = {
    status: frozenset(t.target for t in ALL if status in t.sources) for status in TaskStatus
}


def can_move(source: TaskStatus, target: TaskStatus) -> bool:
    return target in TRANSITIONS[source]


dumps = compact  # what is stored: compact JSON, NaN refused


def _event(tx: Tx, transition: Transition, task_id: str, **data: Any) -> None:
    body = {"task_id": task_id, "status": transition.target.value, **data}
    tx.add_event(task_id, transition.event, dumps(body))


def _move(
    tx: Tx, transition: Transition, task_id: str, owner: object = ANY_OWNER, **values: Any
) -> bool:
    return tx.update_task(task_id, transition.expect, owner=owner, **values)


def _changed(tx: Tx, task: TaskRow) -> TaskRow:
    """A task as it is now, after a move of it found it changed: on PostgreSQL a concurrent
    write may have changed it since it was read (the move waited for that write's commit)."""
    return tx.get_task(task.id) or task


def _held(tx: Tx, transition: Transition, task_id: str, owner: str, **values: Any) -> None:
    """A worker's move: only while its lease holds the task, else `LeaseLost`."""
    if not _move(tx, transition, task_id, owner, **values):
        raise LeaseLost()


# -- clients ---------------------------------------------------------------------------------


def submit(tx: Tx, task: TaskRow, input: Any) -> None:
    tx.insert_task(task)
    _event(tx, SUBMIT, task.id, flow=task.flow, input=input)
    tx.notify_work()


def cancel(tx: Tx, task_id: str, by: str | None, reason: str | None = None) -> TaskRow:
    task = tx.get_task(task_id)
    if task is None:
        raise NotFound(f"no task {task_id!r}")
    moved = _move(
        tx, CANCEL, task_id, status=CANCEL.target.value, lease_owner=None, lease_expires_at=None
    )
    if not moved:
        now = _changed(tx, task)
        raise Conflict(
            f"task is {now.status}: only a queued, running or waiting task can be cancelled",
            status=now.status,
        )
    # The task's row first, then its reviews', as in every write that changes both (`decide`).
    tx.update_reviews_of(task_id, ReviewStatus.OPEN, status=ReviewStatus.CANCELLED.value)
    _event(tx, CANCEL, task_id, by=by, **({"reason": reason} if reason else {}))
    task.status = CANCEL.target.value
    return task


def retry(tx: Tx, task_id: str, by: str | None) -> TaskRow:
    """Queue a failed task again: it resumes from its last checkpoint (a task that failed at a
    review asks for that review again)."""
    task = tx.get_task(task_id)
    if task is None:
        raise NotFound(f"no task {task_id!r}")
    values: dict[str, Any] = {"status": RETRY.target.value, "error": None, "claims": 0}
    values["traceback"] = None
    values |= {"lease_owner": None, "lease_expires_at": None}
    if not _move(tx, RETRY, task_id, **values):
        now = _changed(tx, task)
        raise Conflict(
            f"task is {now.status}: only a failed task can be retried", status=now.status
        )
    _event(tx, RETRY, task_id, by=by)
    tx.notify_work()
    task.status, task.error, task.claims = RETRY.target.value, None, 0
    return task


# -- reviewers and deadlines ------------------------------------------------------------------


@dataclass(frozen=True)
class Claimed:
    """A task a worker leased, with the decision it resumes with (if it was at a review)."""

    task: TaskRow
    last_review: ReviewRow | None


@dataclass(frozen=True)
class Lease:
    """A worker's lease on a task it is handed: whose, and until when."""

    owner: str
    until: float


@dataclass(frozen=True)
class Decided:
    review: ReviewRow
    taken: Claimed | None  # the task, leased to the worker it was handed to, if it was


def decide(
    tx: Tx,
    review: ReviewRow,
    action: str,
    comment: str | None,
    edited: str | None,
    decided_by: str | None,
    to: Lease | None = None,
    on_behalf_of: str | None = None,
    request: ReviewRequest | None = None,
    seen: Seen | None = None,
    form: dict[str, Any] | None = None,
    now: float | None = None,
) -> Decided:
    """Decide an open review and hand its task back to the workers — straight to the worker
    holding the lease `to`, if one is given. A review that is no longer open, a decision made
    on another round or other content than the review's (`seen`), or one made while someone
    else holds the review's claim, raises Conflict and changes nothing; a missing comment or a
    form value that is wrong raises Invalid, naming it."""
    if request is None:
        request = ReviewRequest.from_json(json.loads(review.request))
    if review.status != ReviewStatus.OPEN:
        raise _not_open(review)
    if seen is not None:
        seen.check(review, request)
        if seen.bulk and not request.bulk:
            raise Conflict(
                "this review is not decided in bulk: its node does not allow it (bulk = True); "
                "open it and decide it alone"
            )
    if action not in request.decisions:
        raise Conflict(
            f"decision {action!r} is not allowed here; allowed: {', '.join(request.decisions)}",
            allowed=list(request.decisions),
        )
    now = time.time() if now is None else now
    if decided_by not in (None, DEADLINE_BY):
        holder = claim_holder(review, now)
        if holder is not None and holder != decided_by:
            raise Conflict(
                f"{holder} is reviewing this (their claim ends at {_clock(review)}): take the "
                "claim over to decide it",
                claimed_by=holder,
            )
    try:
        values = request.check(action, comment, form)
    except ValueError as exc:
        raise Invalid(str(exc)) from None
    # A write that changes a task and its reviews locks the task's row first (a cancellation,
    # a worker's review request do too): on PostgreSQL, two writes that lock the two rows in
    # opposite orders deadlock, and one of them fails.
    tx.lock_task(review.task_id)
    votes: list[VoteRow] = []
    if request.quorum > 1 and decided_by not in (None, DEADLINE_BY):
        # An admin's vote for someone is theirs: one each, however it reached the review.
        ballot = VoteRow(review.id, on_behalf_of or decided_by, action, now, comment, edited)
        ballot.form_values = dumps(values) if values else None
        votes = vote(tx, review, request, ballot)
        if not votes:
            return Decided(review, None)  # the round goes on
    decision = {
        "status": ReviewStatus.DECIDED.value,
        "decision": action,
        "comment": comment,
        "edited_output": edited,
        "decided_by": decided_by,
        "decided_at": now,
        "on_behalf_of": on_behalf_of,
        "form_values": dumps(values) if values else None,
    }
    if not tx.update_review(review.id, [ReviewStatus.OPEN], **decision):
        current = tx.get_review(review.id) or review  # (changed since it was read)
        if current.status != ReviewStatus.DECIDED:  # cancelled, expired, ...
            raise _not_open(current)
        raise Conflict(
            "another decision on this review won first",
            review_status=current.status,
            decision=current.decision,
        )
    task: TaskRow | None = None
    if to is not None:
        (source,) = DECIDE.sources
        task = tx.take(review.task_id, source, to.owner, to.until, now, DECIDE.target.value)
        moved = task is not None
    else:
        # An expired lease: the first worker to look claims the task at once.
        values = {"status": DECIDE.target.value, "lease_owner": None, "lease_expires_at": 0.0}
        moved = _move(tx, DECIDE, review.task_id, **values)
        tx.notify_work()
    if not moved:
        raise Conflict("the task is no longer waiting for this review")
    _event(
        tx,
        DECIDE,
        review.task_id,
        review_id=review.id,
        round=review.round,
        decision=action,
        comment=comment,
        edited_output=json.loads(edited) if edited is not None else None,
        decided_by=decided_by,
        **({"on_behalf_of": on_behalf_of} if on_behalf_of is not None else {}),
        **({"form": values} if values else {}),
        **({"votes": [{"voter": v.voter, "decision": v.decision} for v in votes]} if votes else {}),
    )
    for name, value in decision.items():
        setattr(review, name, value)
    if task is None:
        return Decided(review, None)
    _event(tx, CLAIM, task.id, node=task.node, claims=task.claims)
    return Decided(review, Claimed(task, review))


def _not_open(review: ReviewRow) -> Conflict:
    return Conflict(
        f"review round {review.round} is already {review.status}"
        + (f" ({review.decision})" if review.decision else "")
        + "; nothing to decide",
        review_status=review.status,
        decision=review.decision,
    )


DEADLINE_BY = "deadline"  # the `decided_by` of a decision the deadline made


@dataclass(frozen=True)
class Seen:
    """What a decision was made on, as its client says: the review's round, and the hash of
    the output it showed (`hitl.flow.content_hash`). Either may be unknown (None)."""

    round: int | None = None
    content_hash: str | None = None
    bulk: bool = False  # decided with others at once, from a list: the node must allow it

    def check(self, review: ReviewRow, request: ReviewRequest) -> None:
        if self.round is not None and self.round != review.round:
            raise Conflict(
                f"this decision was made on round {self.round}, but the review open now is "
                f"round {review.round}: read it again, and decide on what it shows now",
                round=review.round,
            )
        if self.content_hash is not None and self.content_hash != content_hash(request.output):
            raise Conflict(
                "this decision was made on other content than this review shows: read it "
                "again, and decide on what it shows now",
                round=review.round,
            )


def vote(tx: Tx, review: ReviewRow, request: ReviewRequest, ballot: VoteRow) -> list[VoteRow]:
    """Record one person's vote on a review that needs `request.quorum` approvals. Returns
    every vote if this one decides the review (then `decide` goes on to record it), else
    nothing: the vote is recorded, its event appended, and the review stays open."""
    # Lock the review's row first: on PostgreSQL a concurrent vote waits here, and then
    # counts this one (or finds the review decided).
    if not tx.update_review(review.id, [ReviewStatus.OPEN], status=ReviewStatus.OPEN.value):
        raise Conflict("another decision on this review won first")
    votes = tx.select(VoteRow, "at", review_id=review.id)
    earlier = next((v for v in votes if v.voter == ballot.voter), None)
    if earlier is not None:
        raise Conflict(
            f"{ballot.voter} has voted on this review already ({earlier.decision}); it needs "
            f"{request.quorum} different people",
            voted=earlier.decision,
        )
    tx.insert(ballot)
    votes.append(ballot)
    approvals = sum(v.decision in APPROVING for v in votes)
    others = len(votes) - approvals
    ends = approvals >= request.quorum or (
        ballot.decision not in APPROVING and (request.reject_ends_round or others >= request.quorum)
    )
    if ends:
        return votes
    _event(
        tx,
        VOTE,
        review.task_id,
        review_id=review.id,
        round=review.round,
        voter=ballot.voter,
        decision=ballot.decision,
        approvals=approvals,
        quorum=request.quorum,
    )
    return []


APPROVING = frozenset({"approve", "edit"})  # votes that count toward a quorum


def claim_holder(review: ReviewRow, now: float) -> str | None:
    """Who is reviewing it now: the holder of a claim that has not expired."""
    if review.claimed_by is None or (review.claimed_until or 0.0) <= now:
        return None
    return review.claimed_by


def take_review(
    tx: Tx, review: ReviewRow, who: str, until: float, now: float, take_over: bool
) -> ReviewRow:
    """Claim an open review for `who` until `until` (again: renew it). Someone else's claim
    that has not expired is taken over only with `take_over`."""
    if review.status != ReviewStatus.OPEN:
        raise Conflict(
            f"review round {review.round} is already {review.status}; nothing to review",
            review_status=review.status,
        )
    holder = claim_holder(review, now)
    if holder is not None and holder != who and not take_over:
        raise Conflict(
            f"{holder} is reviewing this (their claim ends at {_clock(review)}): take the "
            "claim over to review it yourself",
            claimed_by=holder,
        )
    if not tx.update_review(review.id, [ReviewStatus.OPEN], claimed_by=who, claimed_until=until):
        raise Conflict("the review was decided meanwhile; nothing to review")
    taken = {"taken_from": holder} if holder not in (None, who) else {}
    _event(
        tx,
        TAKE_REVIEW,
        review.task_id,
        review_id=review.id,
        round=review.round,
        claimed_by=who,
        claimed_until=until,
        **taken,
    )
    review.claimed_by, review.claimed_until = who, until
    return review


def leave_review(tx: Tx, review: ReviewRow, who: str, now: float, anyone: bool) -> ReviewRow:
    """Release `who`'s claim (`anyone`: whoever holds it); nothing to do if none holds it."""
    holder = claim_holder(review, now)
    if holder is None or review.status != ReviewStatus.OPEN:
        return review
    if holder != who and not anyone:
        raise Conflict(f"{holder} holds the claim on this review, not {who}", claimed_by=holder)
    if tx.update_review(review.id, [ReviewStatus.OPEN], claimed_by=None, claimed_until=None):
        _event(tx, LEAVE_REVIEW, review.task_id, review_id=review.id, round=review.round)
        review.claimed_by, review.claimed_until = None, None
    return review


def _clock(review: ReviewRow) -> str:
    return time.strftime("%H:%M:%S UTC", time.gmtime(review.claimed_until or 0.0))


def expire(tx: Tx, review: ReviewRow, now: float | None = None) -> ReviewRow | None:
    """A review's deadline passed: decide it by its default (returning it, decided), or
    escalate it, or expire it and fail the task."""
    if review.status != ReviewStatus.OPEN:
        raise Conflict("the review is no longer open")
    now = time.time() if now is None else now
    if review.deadline is None or review.deadline > now:  # escalated meanwhile, say
        raise Conflict("the review's deadline is not past")
    request = ReviewRequest.from_json(json.loads(review.request))
    if request.on_deadline == flow_review.ESCALATE:
        escalate(tx, review, request, now)
        return None
    error = f"review round {review.round} had no decision by its deadline"
    if request.on_deadline is not None:
        comment = flow_review.DEADLINE_COMMENT.format(request.on_deadline)
        try:
            return decide(tx, review, request.on_deadline, comment, None, DEADLINE_BY).review
        except Invalid as exc:  # its form blocks it (stored before such ones were refused)
            error += f", and its default {request.on_deadline!r} could not be made: {exc.message}"
    tx.lock_task(review.task_id)  # the task's row first (`decide`)
    if not tx.update_review(review.id, [ReviewStatus.OPEN], status=ReviewStatus.EXPIRED.value):
        raise Conflict("the review is no longer open")
    values = {"status": EXPIRE.target.value, "error": error}
    if not _move(tx, EXPIRE, review.task_id, **values, lease_owner=None, lease_expires_at=None):
        raise Conflict("the task is no longer waiting for this review")
    _event(tx, EXPIRE, review.task_id, error=error, review_id=review.id)
    return None


def warn(tx: Tx, review: ReviewRow, now: float) -> bool:
    """Say, once, that an open review's deadline is near; False if it was said, or the review
    is no longer open."""
    if not tx.warn_review(review.id, ReviewStatus.OPEN.value, now):
        return False
    request = json.loads(review.request)
    _event(
        tx,
        WARN,
        review.task_id,
        review_id=review.id,
        round=review.round,
        node=review.node,
        deadline=review.deadline,
        assignees=request.get("assignees") or [],
        prompt=request.get("prompt") or "",
    )
    return True


def escalate(tx: Tx, review: ReviewRow, request: ReviewRequest, now: float) -> None:
    """Nobody decided in time: the review now asks `escalate_to`, with a new deadline of the
    same length and no further escalation (a second miss fails the task)."""
    moved = replace(request, assignees=request.escalate_to, on_deadline=None).to_json()
    deadline = now + (request.deadline_seconds or 0)
    assignee = f",{','.join(request.escalate_to)},"
    changed = tx.update_review(
        review.id, [ReviewStatus.OPEN], request=dumps(moved), deadline=deadline, assignee=assignee
    )
    if not changed:
        raise Conflict("the review is no longer open")
    _event(
        tx,
        ESCALATE,
        review.task_id,
        review_id=review.id,
        round=review.round,
        assignees=list(request.escalate_to),
        was=list(request.assignees),
        deadline=deadline,
    )


# -- workers: every write is conditional on the worker's lease ---------------------------------


def claim(tx: Tx, owner: str, until: float, now: float, limit: int) -> list[Claimed]:
    """Lease up to `limit` runnable tasks: expired leases first, then the oldest queued."""
    rows = tx.claim(owner, until, now, S.QUEUED.value, S.RUNNING.value, limit)
    for row, _ in rows:
        _event(tx, CLAIM, row.id, node=row.node, claims=row.claims)
    # A task resumed after a review needs its decision: the claim read it.
    return [Claimed(row, review) for row, review in rows]


assert CLAIM.sources == {S.QUEUED, S.RUNNING}  # what `tx.claim` picks from


def start_node(tx: Tx, task_id: str, owner: str, path: list[str]) -> None:
    node = "/".join(path)
    _held(tx, START_NODE, task_id, owner, node=node)
    _event(tx, START_NODE, task_id, node=node, path=path)


def checkpoint(
    tx: Tx, task_id: str, owner: str, shared: str, position: str, node: str, action: Any
) -> None:
    _held(tx, CHECKPOINT, task_id, owner, shared=shared, position=position)
    _event(tx, CHECKPOINT, task_id, node=node, action=action)


def progress(tx: Tx, task_id: str, owner: str, node: str, report: dict[str, Any]) -> None:
    """What a running node reported (`message`, `delta`, `reset`, values): an event, while
    this worker holds the task."""
    _held(tx, PROGRESS, task_id, owner)
    _event(tx, PROGRESS, task_id, node=node, **report)


def suspend(
    tx: Tx,
    owner: str,
    review: ReviewRow,
    shared: str,
    position: str,
    request: dict[str, Any],
    task_input: str | None = None,
) -> None:
    """Suspend a task for `review`, which asks `request`; `task_input`: the task's input as
    stored, if the caller has it (else the store reads it for the review's search text)."""
    values: dict[str, Any] = {"status": SUSPEND.target.value, "shared": shared}
    values |= {"position": position, "node": review.node, "round": review.round}
    _held(tx, SUSPEND, review.task_id, owner, **values, lease_owner=None, lease_expires_at=None)
    tx.insert_review(review, request, task_input)
    _event(
        tx,
        SUSPEND,
        review.task_id,
        review_id=review.id,
        round=review.round,
        node=review.node,
        deadline=review.deadline,
        content_hash=content_hash(request.get("output")),
        **request,
    )


def complete(tx: Tx, task_id: str, owner: str, shared: str, result: Any) -> None:
    values = {"status": COMPLETE.target.value, "shared": shared, "result": dumps(result)}
    _held(tx, COMPLETE, task_id, owner, **values, lease_owner=None, lease_expires_at=None)
    _event(tx, COMPLETE, task_id, result=result)


def fail(
    tx: Tx,
    task_id: str,
    owner: str,
    error: str,
    node: str | None = None,
    trace: str | None = None,
) -> bool:
    """Fail the task if this worker still holds it; False (and nothing written) if not. `node`
    is where it failed; `trace` the traceback, which only admins read (not in the event)."""
    values = {"status": FAIL.target.value, "error": error, "traceback": trace}
    if node is not None:
        values["node"] = node
    if not _move(tx, FAIL, task_id, owner, **values, lease_owner=None, lease_expires_at=None):
        return False
    _event(tx, FAIL, task_id, error=error, **({"node": node} if node is not None else {}))
    return True


def renew(tx: Tx, task_id: str, owner: str, until: float) -> bool:
    """Extend a worker's lease on a running task (no status change, no event); False if the
    lease is lost: the task was cancelled, or another worker took it over."""
    return tx.update_task(task_id, START_NODE.expect, owner=owner, lease_expires_at=until)


def release(tx: Tx, home_prefix: str | None) -> int:
    """Expire the leases of running tasks (of one home, or all): workers claim them at once."""
    return tx.expire_leases(S.RUNNING.value, home_prefix)
