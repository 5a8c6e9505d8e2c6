"""Use cases for clients and reviewers: submit, read, list, cancel, decide.

Each state change is one `Store.write` of a small synchronous function: read what is needed,
make the conditional update, append the event. It raises a domain error to roll back.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import partial
from typing import Any, Literal, Protocol

from hitl.flow import ReviewRequest, content_hash, standalone
from hitl.service import access, machine
from hitl.service.errors import Conflict, HitlError, Invalid, NotFound
from hitl.service.flows import FlowRegistry
from hitl.service.identity import ROLES, audit, represented
from hitl.service.ids import new_id
from hitl.service.machine import TaskStatus, dumps
from hitl.service.metrics import Metrics
from hitl.service.principal import Principal
from hitl.store import (
    AuditRow,
    ConstraintError,
    QueueRow,
    ReviewRow,
    Store,
    TaskRow,
    Tx,
    VoteRow,
)

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


Viewer = Callable[[str, str], Awaitable[bool]]


@dataclass(frozen=True)
class _Verdict:
    action: str
    comment: str | None
    edited: str | None  # JSON text
    by: Principal | None
    on_behalf_of: str | None
    seen: machine.Seen | None = None
    form: dict[str, Any] | None = None


# How long opening a review claims it; the page renews the claim while it is open and seen.
CLAIM_SECONDS = 300.0
MAX_ASSIGNEES = 50
MAX_BULK = 100  # reviews decided at once


def _check_assignees(assignees: list[str], what: str = "assignees") -> None:
    if len(assignees) > MAX_ASSIGNEES:
        raise Invalid(f"{what}: at most {MAX_ASSIGNEES} names")
    for name in assignees:
        bad = not isinstance(name, str) or not name.strip() or len(name) > 200
        if bad or "," in name or "\0" in name:  # (PostgreSQL's text holds no NUL)
            raise Invalid(
                f"{what}: {name!r} is not a user name or role:NAME (at most 200 characters, "
                "no comma, no NUL)"
            )
        if name.startswith("role:") and name[5:] not in ROLES:
            raise Invalid(f"{what}: no role {name[5:]!r}; roles: {', '.join(ROLES)}")


class Hands(Protocol):
    """Where a decided task can be run at once: this process's worker."""

    def reserve(self) -> machine.Lease | None: ...
    def hand(self, claimed: machine.Claimed | None) -> None: ...


class TaskService:
    def __init__(
        self,
        store: Store,
        registry: FlowRegistry,
        wake_workers: Callable[[], None],
        hands: Hands | None = None,
        max_comment_chars: int = 0,
    ) -> None:
        self.store = store
        self.registry = registry
        self.wake_workers = wake_workers
        self.hands = hands
        self.max_comment_chars = max_comment_chars
        self.clock: Callable[[], float] = time.time  # claims and decisions; tests set their own
        self.metrics: Metrics | None = None

    async def submit(
        self,
        input: Any,
        flow: str | None = None,
        idempotency_key: str | None = None,
        by: Principal | None = None,
        assignees: list[str] | None = None,
    ) -> tuple[TaskRow, bool]:
        """Queue a task; returns it and whether it is new (False: an idempotent replay).
        `assignees` (user names, and roles as "role:NAME") decide its reviews, where a review
        node names none itself."""
        access.submit(by)
        if assignees is not None:
            _check_assignees(assignees)
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
            created_by=by.name if by is not None else None,
            idempotency_key=idempotency_key,
            request_hash=digest,
            assignees=dumps(assignees) if assignees else None,
        )

        def write(tx: Tx) -> tuple[TaskRow, bool]:
            if idempotency_key is not None:
                existing = tx.task_by_key(idempotency_key)
                if existing is not None:
                    if not access.may_see(by, existing):
                        raise Conflict("this Idempotency-Key is taken: use a new key")
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

    async def create_review(
        self,
        spec: dict[str, Any],
        idempotency_key: str | None = None,
        by: Principal | None = None,
    ) -> tuple[TaskRow, bool]:
        """A standalone review: a task of the built-in `review` flow, whose one node asks what
        `spec` says (`standalone.FIELDS`) and whose result is the decision. A bad spec is
        Invalid, naming the field, before anything is written."""
        access.submit(by)
        try:
            request = standalone.review_request(spec)
        except ValueError as exc:
            raise Invalid(str(exc)) from exc
        _check_assignees(list(request.assignees))
        _check_assignees(list(request.escalate_to), "escalate_to")
        return await self.submit(spec, standalone.FLOW, idempotency_key, by)

    async def resolve(self, task_id: str, by: Principal | None = None) -> str:
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
        seen = access.seen_by(by)  # (a task `by` may not see is not there for them)
        found = await self.store.tasks_by_part(part, **seen)
        if not found:
            found = await self.store.tasks_by_part(part, end=True, **seen)
        if not found:
            raise NotFound(f"no task {task_id!r}")
        if len(found) > 1:
            raise Conflict(
                f"{task_id!r} is part of more than one task's id: give more characters "
                "(the end of an id tells tasks apart sooner than its start)"
            )
        return found[0].id

    async def get(
        self, task_id: str, by: Principal | None = None
    ) -> tuple[TaskRow, list[ReviewRow]]:
        """A task (by id or unique prefix) with every review round."""
        task, reviews = await self.store.task_with_reviews(await self.resolve(task_id, by))
        return access.see(by, task, task_id), reviews

    async def audit(self, task_id: str, by: Principal | None = None) -> list[AuditRow]:
        """A task's audit entries — its decisions (round, choice, comment, form values, edit,
        content hash, claim), cancellations and retries — for whoever may see the task."""
        task, _ = await self.get(task_id, by)
        return await self.store.read(lambda r: r.audit_of_task(task.id))

    async def snapshot(
        self, task_id: str, by: Principal | None = None
    ) -> tuple[TaskRow, ReviewRow | None, int]:
        """A task, its latest review and its last event's id, as of one moment: a stream that
        starts there shows each later change once."""
        task, review, last = await self.store.snapshot(_id(task_id, "task"))
        return access.see(by, task, task_id), review, last

    async def list_tasks(
        self, status: str | None, limit: int, offset: int, by: Principal | None = None
    ) -> tuple[list[TaskRow], int]:
        """A page of the tasks `by` may see, newest first, and how many there are."""
        return await self.store.list_tasks(status, limit, offset, **access.seen_by(by))

    async def list_reviews(
        self,
        status: str | None,
        limit: int,
        offset: int,
        by: Principal | None = None,
        flow: str | None = None,
        text: str | None = None,
        mine: bool = False,
        order: str = "oldest",
        decidable: bool = False,
    ) -> tuple[list[QueueRow], int]:
        """The reviewers' queue. `mine`: only the reviews assigned to `by`, by name or by one
        of its roles. `decidable`: only the open reviews `by` may decide (`may_decide`)."""
        access.see_queue(by)
        # An empty filter is no filter, as an empty `text` is; an unknown flow is a 422 that
        # names them.
        flow = self.registry.resolve(flow) if flow and flow.strip() else None
        assigned: tuple[str, ...] = ()
        if mine:
            if by is None:
                raise Invalid("mine: this server signs nobody in, so nothing is assigned to you")
            assigned = (by.name, *(f"role:{r}" for r in sorted(by.roles)))
        text = (text or "").strip() or None
        if not decidable:
            return await self.store.list_reviews(status, limit, offset, flow, text, assigned, order)
        if status not in (None, "open"):
            return [], 0  # only an open review is decided
        # `access.decide`'s rule as the query's filter: the page and its count are read, not
        # every open review (10,000 of them took 0.4 s to read and check one by one).
        decider = access.decider(by)
        return await self.store.list_reviews(
            "open", limit, offset, flow, text, assigned, order, decider
        )

    @staticmethod
    def sees_traceback(by: Principal | None) -> bool:
        return access.see_traceback(by)

    @staticmethod
    def may_change(by: Principal | None, task: TaskRow, what: Literal["cancel", "retry"]) -> bool:
        """Whether `by` may cancel or retry `task` now: the state machine lets it move so (a
        cancel while it is unfinished, a retry once it failed), and access lets `by` move it."""
        move = machine.CANCEL if what == "cancel" else machine.RETRY
        return task.status in move.sources and access.may_change(by, task)

    @staticmethod
    def may_decide(
        by: Principal | None,
        review: ReviewRow,
        created_by: str | None,
        votes: Collection[VoteRow] = (),
    ) -> bool:
        """Whether `by` may decide `review` (of a task `created_by` submitted, with `votes`
        cast on it so far), if it is open."""
        if review.status != "open":
            return False
        request = ReviewRequest.from_json(json.loads(review.request))
        return access.may_decide(by, created_by, request, {v.voter for v in votes})

    async def get_review(self, review_id: str, by: Principal | None = None) -> ReviewRow:
        return (await self.review_of(review_id, by))[0]

    async def votes(self, review_id: str) -> list[VoteRow]:
        """The votes on a review that needs several, in the order they came."""
        return await self.store.read(lambda r: r.select(VoteRow, "at", review_id=review_id))

    async def votes_of(self, reviews: Sequence[ReviewRow]) -> dict[str, list[VoteRow]]:
        """The votes on each of `reviews` that needs several (a quorum), by review id, in one
        read; a review that one person decides has none."""
        polled = [r.id for r in reviews if (json.loads(r.request).get("quorum") or 1) > 1]
        if not polled:
            return {}
        return await self.store.read(
            lambda r: {i: r.select(VoteRow, "at", review_id=i) for i in polled}
        )

    async def review_of(
        self, review_id: str, by: Principal | None = None
    ) -> tuple[ReviewRow, TaskRow]:
        """A review, and the task it is of."""
        review = await self.store.get_review(_id(review_id, "review"))
        task = await self.store.get_task(review.task_id) if review is not None else None
        if review is None or task is None or not access.may_see(by, task):
            raise NotFound(f"no review {review_id!r}")
        return review, task

    async def cancel(
        self,
        task_id: str,
        by: Principal | None = None,
        address: str | None = None,
        reason: str | None = None,
    ) -> TaskRow:
        """Stop a task; `reason`, if given, is in its `task.cancelled` event and the audit."""
        reason = (reason or "").strip() or None
        move = partial(machine.cancel, reason=reason)
        return await self._change(task_id, "cancel", move, by, address, reason=reason)

    async def retry(
        self, task_id: str, by: Principal | None = None, address: str | None = None
    ) -> TaskRow:
        task = await self._change(task_id, "retry", machine.retry, by, address)
        self.wake_workers()
        return task

    async def _change(
        self,
        task_id: str,
        what: str,
        move: Callable[[Tx, str, str | None], TaskRow],
        by: Principal | None,
        address: str | None,
        **detail: Any,
    ) -> TaskRow:
        """Cancel or retry a task: if `by` may, one transition and its audit row."""
        task_id = _id(task_id, "task")

        def write(tx: Tx) -> TaskRow:
            access.change(by, access.see(by, tx.get_task(task_id), task_id), what)
            task = move(tx, task_id, by.name if by is not None else None)
            if by is not None:
                audit(tx, by.name, f"task.{what}", task_id, address, **detail)
            return task

        return await self.store.write(write)

    async def decide(
        self,
        review_id: str,
        action: str,
        comment: str | None = None,
        edited_output: Any = None,
        by: Principal | None = None,
        on_behalf_of: str | None = None,
        address: str | None = None,
        seen: machine.Seen | None = None,
        form: dict[str, Any] | None = None,
    ) -> ReviewRow:
        """Record a decision; exactly one of any number of concurrent decisions wins."""
        review_id = _id(review_id, "review")

        def find(tx: Tx) -> tuple[ReviewRow, TaskRow]:
            return self._review(tx, review_id, by)

        edited = self._edited(action, edited_output)
        verdict = _Verdict(action, comment, edited, by, on_behalf_of, seen, form)
        return await self._decide(find, verdict, address)

    async def decide_many(
        self,
        review_ids: list[str],
        action: str,
        comment: str | None = None,
        by: Principal | None = None,
        address: str | None = None,
        seen: Mapping[str, machine.Seen] | None = None,
    ) -> list[ReviewRow | HitlError]:
        """Approve or reject several reviews at once, each as its own decision (and its own
        audit row); each review's node must allow it. One failing does not stop the others.
        `seen`: what the client showed of each review (by id), checked as a single decision's."""
        access.see_queue(by)  # a reviewer's act: anyone else is refused at once
        if action not in ("approve", "reject"):
            raise Invalid(f"only approve or reject are decided in bulk, not {action!r}")
        if not 1 <= len(review_ids) <= MAX_BULK:
            raise Invalid(f"review_ids: give 1 to {MAX_BULK} reviews")
        unknown = sorted(set(seen or {}) - set(review_ids))
        if unknown:
            raise Invalid(f"seen: {unknown[0]!r} is not one of review_ids")
        results: list[ReviewRow | HitlError] = []
        for review_id in review_ids:
            try:
                shown = (seen or {}).get(review_id) or machine.Seen()
                seen_one = replace(shown, bulk=True)
                results.append(
                    await self.decide(
                        review_id, action, comment, by=by, address=address, seen=seen_one
                    )
                )
            except Invalid as exc:
                if exc.message.startswith("form."):  # a value of its form: none is sent in bulk
                    alone = f"/api/v1/reviews/{review_id}/decision"
                    exc = Invalid(f"{exc.message}: decide this one alone, with POST {alone}")
                results.append(exc)
            except HitlError as exc:
                results.append(exc)
        return results

    async def decide_task(
        self,
        task_id: str,
        action: str,
        comment: str | None = None,
        edited_output: Any = None,
        by: Principal | None = None,
        on_behalf_of: str | None = None,
        address: str | None = None,
        seen: machine.Seen | None = None,
    ) -> ReviewRow:
        """Decide the task's latest review round (the cookbook's `/feedback/{task_id}`)."""
        task_id = _id(task_id, "task")

        def find(tx: Tx) -> tuple[ReviewRow, TaskRow]:
            found, review, _ = tx.task_and_last_review(task_id, lock=True)
            task = access.see(by, found, task_id)
            if review is None:
                raise Conflict(
                    f"task is {task.status} and has no review open; wait for waiting_for_review",
                    status=task.status,
                )
            return review, task

        edited = self._edited(action, edited_output)
        verdict = _Verdict(action, comment, edited, by, on_behalf_of, seen)
        try:
            return await self._decide(find, verdict, address)
        except Invalid as exc:  # a comment or a form value, which the cookbook's body lacks
            raise Invalid(
                f"{exc.message}; the cookbook's /feedback carries no comment or form: decide it "
                "with POST /api/v1/reviews/{id}/decision (its id is in GET /api/v1/tasks/"
                f"{task_id})"
            ) from None

    @staticmethod
    def _review(tx: Tx, review_id: str, by: Principal | None) -> tuple[ReviewRow, TaskRow]:
        # The task's row held first: its review's may change next (`Tx.lock_task`).
        review, task = tx.review_and_task(review_id)
        if review is None or task is None or not access.may_see(by, task):
            raise NotFound(f"no review {review_id!r}")
        return review, task

    async def claim_review(
        self, review_id: str, by: Principal | None, take_over: bool = False
    ) -> ReviewRow:
        """Claim a review for `by` for CLAIM_SECONDS (again: renew it), so that others see who
        is reviewing it and cannot decide it unless they take the claim over."""
        review_id = _id(review_id, "review")
        who = by.name if by is not None else "hitl"
        now = self.clock()

        def write(tx: Tx) -> ReviewRow:
            review, task = self._review(tx, review_id, by)
            request = ReviewRequest.from_json(json.loads(review.request))
            access.decide(by, task.created_by, request, None)
            return machine.take_review(tx, review, who, now + CLAIM_SECONDS, now, take_over)

        return await self.store.write(write)

    async def release_review(self, review_id: str, by: Principal | None) -> ReviewRow:
        """Give up `by`'s claim on a review (an admin's: anyone's)."""
        review_id = _id(review_id, "review")
        who = by.name if by is not None else "hitl"

        def write(tx: Tx) -> ReviewRow:
            review, _ = self._review(tx, review_id, by)
            anyone = by is None or by.is_admin
            return machine.leave_review(tx, review, who, self.clock(), anyone)

        return await self.store.write(write)

    async def _decide(
        self,
        find: Callable[[Tx], tuple[ReviewRow, TaskRow]],
        verdict: _Verdict,
        address: str | None,
    ) -> ReviewRow:
        """Run a decision's write, handing the task straight to this process's worker when it
        has a free slot (no claim, no wake-up); else any worker claims it."""
        limit, comment = self.max_comment_chars, verdict.comment
        if limit and comment is not None and len(comment) > limit:
            raise Invalid(
                f"the comment has {len(comment)} characters; the most is {limit} "
                "(HITL_MAX_COMMENT_CHARS): shorten it"
            )

        def write(tx: Tx, to: machine.Lease | None) -> machine.Decided:
            review, task = find(tx)
            by = verdict.by
            request = ReviewRequest.from_json(json.loads(review.request))
            if by is not None:
                access.decide(by, task.created_by, request, verdict.on_behalf_of)
                if verdict.on_behalf_of is not None:
                    for_whom = represented(tx, verdict.on_behalf_of)
                    access.decide_for(for_whom, task.created_by, request)
            decided = machine.decide(
                tx,
                review,
                verdict.action,
                verdict.comment,
                verdict.edited,
                by.name if by is not None else None,
                to,
                verdict.on_behalf_of,
                request,
                verdict.seen,
                verdict.form,
                self.clock(),
            )
            if by is not None:
                voted = decided.review.status == "open"  # a vote; the quorum is not there yet
                audit(
                    tx,
                    by.name,
                    "review.vote" if voted else "review.decide",
                    review.id,
                    address,
                    task_id=review.task_id,
                    round=review.round,
                    decision=verdict.action,
                    comment=verdict.comment,
                    form=decided.review.form_values and json.loads(decided.review.form_values),
                    edited_output=json.loads(verdict.edited) if verdict.edited else None,
                    content_hash=content_hash(request.output),
                    claimed_by=machine.claim_holder(review, self.clock()),
                    on_behalf_of=verdict.on_behalf_of,
                )
            return decided

        hands = self.hands
        to = hands.reserve() if hands is not None else None
        if hands is None or to is None:
            decided = await self.store.write(lambda tx: write(tx, None))
            self.wake_workers()
            self._count(decided.review)
            return decided.review
        job = asyncio.ensure_future(self.store.write(lambda tx: write(tx, to)))

        def settle(job: asyncio.Future[machine.Decided]) -> None:
            # The slot is given back when the write ends, even if the caller stopped waiting.
            ok = not job.cancelled() and job.exception() is None
            hands.hand(job.result().taken if ok else None)
            if ok:
                self._count(job.result().review)

        job.add_done_callback(settle)
        return (await asyncio.shield(job)).review

    def _count(self, review: ReviewRow) -> None:
        """A decision (not a vote short of its quorum) for the metrics."""
        if self.metrics is not None and review.decision and review.decided_at is not None:
            self.metrics.decided(review.decision, False, review.decided_at - review.created_at)

    def viewer(self, by: Principal | None) -> Viewer | None:
        """For a stream of every task's events: which of them `by` may see (None: all)."""
        if access.see_all_events(by):
            return None
        known: dict[str, bool] = {}

        async def sees(task_id: str, type: str) -> bool:
            seen = known.get(task_id)
            # A task becomes a reviewer's to see when it reaches a review.
            if seen is None or (not seen and type == machine.EventType.REVIEW_REQUESTED):
                if len(known) > 10_000:
                    known.clear()
                task = await self.store.get_task(task_id)
                known[task_id] = seen = task is not None and access.may_see(by, task)
            return seen

        return sees

    @staticmethod
    def _edited(action: str, edited_output: Any) -> str | None:
        if action == "edit" and edited_output is None:
            raise Invalid("an edit needs edited_output: the corrected output to approve")
        if action != "edit" and edited_output is not None:
            raise Invalid(
                f"edited_output goes only with the decision 'edit', not {action!r}: send "
                "'edit' to approve a corrected output, or leave edited_output out"
            )
        return json_value(edited_output, "edited_output") if edited_output is not None else None
