"""Workers: lease runnable tasks from the store and run their flows, node by node.

One dispatcher per process claims tasks while fewer than `concurrency` run. A claimed task is
leased for `lease_seconds` and the lease is renewed while it runs; every write a worker makes is
conditional on still holding the lease, so a worker that lost its task (cancelled, or taken over
after its lease expired) stops at its next checkpoint without changing anything.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import time
import traceback
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from hitl.flow import (
    Checkpoint,
    Completed,
    Decision,
    Position,
    Runner,
    Suspended,
    Update,
    dump_shared,
)
from hitl.flow.checkpoint import SharedNotJSON
from hitl.flow.review import ESCALATE
from hitl.service import machine
from hitl.service.errors import LeaseLost
from hitl.service.flows import FlowRegistry
from hitl.service.ids import new_id
from hitl.service.machine import Claimed, ReviewStatus, dumps
from hitl.service.metrics import Metrics
from hitl.service.waiting import wait_set
from hitl.store import ReviewRow, Store, Tx, Unavailable

log = logging.getLogger(__name__)

CLAIM_BATCH = 16
TRACEBACK = "Traceback (most recent call last):"


def _result(shared: dict[str, Any], action: Any) -> Any:
    """What a completed task reports: `final_result` if the flow set one, else all of it."""
    if "final_result" in shared:
        return shared["final_result"]
    return {"action": action, "shared": shared}


class Worker:
    def __init__(
        self,
        store: Store,
        registry: FlowRegistry,
        concurrency: int = 32,
        lease_seconds: float = 15.0,
        poll_interval: float = 1.0,
        max_claims: int = 10,
        home: str | None = None,
    ) -> None:
        self.store = store
        self.registry = registry
        self.concurrency = concurrency
        self.lease_seconds = lease_seconds
        self.poll_interval = poll_interval
        self.max_claims = max_claims
        # `<home>/<pid>:<random>`: a home (host and port) is held by one process at a time, so
        # a process that starts there may take back the leases of the one that died there.
        self.home_is_stable = home is not None
        self.home = home or f"{socket.gethostname()}:pid{os.getpid()}"
        self.owner = f"{self.home}/{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.executor = ThreadPoolExecutor(concurrency, thread_name_prefix="hitl-node")
        self._freed = asyncio.Event()
        self._wake = asyncio.Event()
        self._running: set[asyncio.Task[None]] = set()
        self._reserved = 0  # slots held for tasks about to be handed over (`reserve`)
        self._leases: dict[asyncio.Task[None], _Run] = {}  # the runs whose leases are renewed
        self._renewer: asyncio.Task[None] | None = None
        self._dispatcher: asyncio.Task[None] | None = None
        self.metrics: Metrics | None = None

    def wake(self) -> None:
        self._wake.set()

    def reserve(self) -> machine.Lease | None:
        """A lease for a task this process is about to make runnable (a decision), if a slot
        is free: the write that does so claims the task for this worker, with no claim of its
        own. Give the slot back with `hand`, whatever the write's outcome."""
        if self._dispatcher is None or self._free() <= 0:
            return None
        self._reserved += 1
        return machine.Lease(self.owner, time.time() + self.lease_seconds)

    def hand(self, claimed: Claimed | None) -> None:
        """Run a task leased with `reserve`'s lease; None: the write did not take one."""
        self._reserved -= 1
        if claimed is not None:
            self._start(claimed)
        else:
            self._freed.set()

    def _free(self) -> int:
        return self.concurrency - len(self._running) - self._reserved

    async def start(self) -> None:
        self._dispatcher = asyncio.create_task(self._dispatch(), name="hitl-dispatcher")
        self._renewer = asyncio.create_task(self._renew(), name="hitl-lease-renewer")

    async def stop(self) -> None:
        tasks = [t for t in [self._dispatcher, self._renewer, *self._running] if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.executor.shutdown(wait=False, cancel_futures=True)

    async def _dispatch(self) -> None:
        while True:
            free = self._free()
            if free <= 0:
                await self._freed.wait()
                self._freed.clear()
                continue
            # Clear before claiming: a wake-up that arrives during the claim is kept.
            self._wake.clear()
            want = min(free, CLAIM_BATCH)
            try:
                rows = await self._claim(want)
            except Unavailable as exc:
                log.warning("claiming work: %s", exc, extra={"action": "claim"})
                rows = []
            except Exception:
                log.exception("claiming work failed", extra={"action": "claim"})
                rows = []
            for row in rows:
                self._start(row)
            if len(rows) < want:
                await wait_set(self._wake, self.poll_interval)

    def _start(self, claimed: Claimed) -> None:
        task = asyncio.create_task(self._execute(claimed), name=f"hitl-task-{claimed.task.id}")
        self._running.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        self._freed.set()

    async def _claim(self, limit: int) -> list[Claimed]:
        now = time.time()
        until = now + self.lease_seconds
        return await self.store.write(lambda tx: machine.claim(tx, self.owner, until, now, limit))

    async def _execute(self, claimed: Claimed) -> None:
        row = claimed.task
        task_id, owner = row.id, row.lease_owner or ""
        running = asyncio.current_task()
        assert running is not None
        lease = _Lease(row.lease_expires_at or time.time() + self.lease_seconds)
        self._leases[running] = _Run(task_id, owner, lease, running)
        try:
            if row.claims > self.max_claims:
                raise RuntimeError(
                    f"task was claimed {row.claims} times without finishing; giving up"
                )
            await self._run(claimed)
        except LeaseLost:
            log.info("lease lost", extra={"action": "lease_lost", "task_id": task_id})
        except Unavailable as exc:
            # Not the task's fault: it stays leased, and resumes from its last checkpoint
            # (here or on another worker) once the lease expires.
            log.warning("%s: task %s resumes later", exc, task_id, extra={"action": "db_down"})
        except asyncio.CancelledError:
            if lease.abandoned is None:
                raise  # the worker is stopping
            running.uncancel()
            log.info(
                "task abandoned: %s",
                lease.abandoned,
                extra={"action": "abandon", "task_id": task_id},
            )
        except Exception as exc:
            log.warning("task failed: %s", exc, extra={"action": "task_failed", "task_id": task_id})
            with contextlib.suppress(Unavailable, LeaseLost):
                await _Steps(self.store, owner, task_id).fail(_describe(exc))
        finally:
            del self._leases[running]

    async def _run(self, claimed: Claimed) -> None:
        row = claimed.task
        task_id = row.id
        shared = json.loads(row.shared)
        position = Position.from_json(json.loads(row.position)) if row.position else None
        decision = _decision(claimed.last_review) if position and position.waiting else None
        steps = _Steps(self.store, row.lease_owner or "", task_id, row.round)
        steps.assignees = json.loads(row.assignees) if row.assignees else []
        steps.task_input = row.input
        current = asyncio.current_task()
        run = self._leases.get(current) if current is not None else None
        if run is not None:  # (a test may call `_run` itself)
            steps.on_lost = partial(run.stop, LOST)
        runner = Runner(
            self.registry.create(row.flow),
            executor=self.executor,
            on_node_started=steps.started,
            on_checkpoint=steps.checkpoint,
            on_progress=steps.progress,
        )
        try:
            try:
                outcome = await runner.run(shared, position, decision)
            except (LeaseLost, Unavailable, asyncio.CancelledError):
                raise
            except Exception as exc:
                trace = "".join(traceback.format_exception(exc))
                # The flow's failure, not the server's: logged as such (a server's own
                # tracebacks are what its operators look for).
                stack = trace.replace(TRACEBACK, "the node's stack (most recent call last):", 1)
                log.warning(
                    "task failed in node %s: %s\n%s",
                    steps.node,
                    exc,
                    stack,
                    extra={"action": "task_failed", "task_id": task_id, "node": steps.node},
                )
                await steps.fail(_describe(exc), trace)
                self._ended("failed", row.created_at)
                return
            if isinstance(outcome, Suspended):
                await steps.suspend(outcome, shared)
            elif isinstance(outcome, Completed):
                await steps.complete(shared, outcome.action)
                self._ended("completed", row.created_at)
        finally:
            steps.close()

    def _ended(self, outcome: str, created_at: float) -> None:
        if self.metrics is not None:
            self.metrics.ended(outcome, time.time() - created_at)

    async def _renew(self) -> None:
        """Keep the leases of the tasks running here, all in one write every third of a lease;
        stop a run (its node included, if it is async) when its lease is lost — the task was
        cancelled or taken over — or when it could not be renewed and is about to expire, so
        that no other worker's run overlaps this one."""
        while True:
            await asyncio.sleep(self.lease_seconds / 3)
            runs = list(self._leases.values())
            if not runs:
                continue
            until = time.time() + self.lease_seconds

            try:
                held = await self.store.write(partial(_renew_all, runs=runs, until=until))
            except Unavailable as exc:
                log.warning("renewing leases: %s", exc, extra={"action": "renew"})
                for run in runs:
                    if time.time() + self.lease_seconds / 3 >= run.lease.expires_at:
                        run.stop("its lease could not be renewed before it expired")
                continue
            for run, kept in zip(runs, held, strict=True):
                if kept:
                    run.lease.expires_at = until
                elif run.running in self._leases:  # (not a run that ended meanwhile)
                    run.stop(LOST)

    async def release(self, everything: bool) -> int:
        """Expire the leases of this home's dead predecessor, or every lease (for the embedded
        server, the only process on its SQLite file): their tasks resume at once."""
        prefix = None if everything else f"{self.home}/"
        return await self.store.write(lambda tx: machine.release(tx, prefix))


Write = Callable[[Tx], None]
LOST = "it was cancelled, or another worker holds its lease"


@dataclass
class _Lease:
    expires_at: float
    abandoned: str | None = None  # why the run was stopped, if it was


@dataclass
class _Run:
    task_id: str
    owner: str
    lease: _Lease
    running: asyncio.Task[None]

    def stop(self, why: str) -> None:
        if self.lease.abandoned is None:
            self.lease.abandoned = why
            self.running.cancel()


# A node that ends within this many seconds has its start written with its checkpoint, in one
# transaction; a longer one has it written when this time has passed.
START_WINDOW = 0.005
# A running node's progress is written at most once in this many seconds (per task), however
# often it reports: one transaction, one event for all it reported meanwhile.
PROGRESS_INTERVAL = 0.2


@dataclass
class _Report:
    """What one node reported since its last progress write: one `node.progress` event."""

    message: str | None = None
    delta: list[str] = field(default_factory=list)
    reset: bool = False
    values: dict[str, Any] = field(default_factory=dict)

    def add(self, update: Update) -> None:
        if update.reset:  # the text starts over: what it streamed before is dropped
            self.delta.clear()
            self.reset = True
        if update.delta:
            self.delta.append(update.delta)
        if update.message is not None:
            self.message = update.message  # the latest line says where it is
        self.values.update(update.values)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {}
        if self.message is not None:
            data["message"] = self.message
        if self.delta:
            data["delta"] = "".join(self.delta)
        if self.reset:
            data["reset"] = True
        return {**data, **self.values}


class _Steps:
    """The writes of one run of a task, each conditional on this worker's lease.

    A node's checkpoint is written in the same transaction as whatever comes next — the next
    node's start, the review request, the completion or the failure. A node's start waits
    `START_WINDOW` for its checkpoint, so a quick node costs one transaction, not two; a
    slower one has its start (and the checkpoint before it) written then, while it runs. So
    no person is asked before the checkpoint before it is stored; a crash while a node runs
    reruns it, and, in its first few milliseconds, the node before it too.

    What a running node reports (`progress`) is gathered and written at most once every
    `progress_interval`, after (or with) the node's start; what is left when the node ends
    goes in its checkpoint's transaction, before it. Writes made while the node runs (its
    start, its progress) go one after another, in order; a later write waits for them. A
    progress write that finds the lease lost stops the run at once (`on_lost`).
    """

    def __init__(
        self,
        store: Store,
        owner: str,
        task_id: str,
        round: int = 0,
        progress_interval: float = PROGRESS_INTERVAL,
    ) -> None:
        self.store = store
        self.owner = owner
        self.task_id = task_id
        self.round = round  # review rounds so far: no one else changes it while we hold it
        self.progress_interval = progress_interval
        self.pending: Write | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._flushing: asyncio.Future[None] | None = None  # the last write made in the background
        self.assignees: list[str] = []  # the task's, from its submission
        self.task_input: str | None = None  # the task's input, as stored (its reviews' search)
        self.node: str | None = None  # the node started last: where a failure happened
        self.on_lost: Callable[[], None] | None = None  # stops the run
        self._reports: dict[str, _Report] = {}  # by node: progress not written yet
        self._report_timer: asyncio.TimerHandle | None = None
        self._reporting = False  # a progress write is on its way
        self._next_report = 0.0  # the loop's time before which no progress write starts
        self._closed = False

    async def _write(self, fn: Write) -> None:
        self._drain()
        await self._flushed()
        before, self.pending = self.pending, None

        def write(tx: Tx) -> None:
            if before is not None:
                before(tx)
            fn(tx)

        await self.store.write(write)

    async def _flushed(self) -> None:
        """Wait for the writes made in the background (a start written by the timer,
        progress): a later write follows them, and meets their error, if they failed."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        while self._flushing is not None:
            flushing = self._flushing
            try:
                await flushing
            finally:
                if self._flushing is flushing:
                    self._flushing = None

    def _background(self, fn: Write | None = None) -> asyncio.Future[None]:
        """Write what is pending, then `fn`, after the background writes before it."""
        pending, self.pending = self.pending, None
        before = self._flushing
        write = _then(pending, fn)

        async def run() -> None:
            if before is not None:
                await before  # its error is this write's too: the run is stopping
            if write is not None:
                await self.store.write(write)

        self._flushing = asyncio.ensure_future(run())
        self._flushing.add_done_callback(_retrieved)
        return self._flushing

    def _flush(self) -> None:
        self._timer = None
        if self.pending is not None:
            self._background()

    def close(self) -> None:
        """The run ended: nothing more is written on the timers, nor reported."""
        self._closed = True
        self._reports.clear()
        for timer in (self._timer, self._report_timer):
            if timer is not None:
                timer.cancel()
        self._timer = self._report_timer = None

    # -- progress ------------------------------------------------------------------------

    def progress(self, path: list[str], update: Update) -> None:
        """A running node's report (the runner's `on_progress`), kept for the next write."""
        if self._closed:
            return
        node = "/".join(path)
        report = self._reports.get(node)
        if report is None:
            report = self._reports[node] = _Report()
        report.add(update)
        self._schedule_report()

    def _schedule_report(self) -> None:
        if self._report_timer is not None or self._reporting or not self._reports:
            return
        loop = asyncio.get_running_loop()
        delay = self._next_report - loop.time()
        if delay <= 0:
            self._write_reports()
        else:
            self._report_timer = loop.call_later(delay, self._write_reports)

    def _write_reports(self) -> None:
        self._report_timer = None
        if self._closed or not self._reports:
            return
        self._next_report = asyncio.get_running_loop().time() + self.progress_interval
        self._reporting = True
        self._background(self._take_reports()).add_done_callback(self._reported)

    def _reported(self, done: asyncio.Future[None]) -> None:
        self._reporting = False
        lost = not done.cancelled() and isinstance(done.exception(), LeaseLost)
        if lost and self.on_lost is not None and not self._closed:
            self.on_lost()  # cancelled, or taken over: stop now, not at the next renewal
        else:
            self._schedule_report()

    def _take_reports(self) -> Write:
        reports = [(node, report.to_json()) for node, report in self._reports.items()]
        self._reports.clear()

        def write(tx: Tx) -> None:
            for node, data in reports:
                machine.progress(tx, self.task_id, self.owner, node, data)

        return write

    def _drain(self) -> None:
        """What is reported and not written yet goes with the next write, before it."""
        if self._report_timer is not None:
            self._report_timer.cancel()
            self._report_timer = None
        if self._reports:
            self._defer(self._take_reports())

    # -- steps ---------------------------------------------------------------------------

    async def checkpoint(self, cp: Checkpoint) -> None:
        shared = dump_shared(cp.shared)
        position = dumps(cp.position.to_json())
        node = "/".join(cp.position.path)
        action = _jsonable(cp.position.action)
        self._drain()  # the node's last reports, before its end
        self._defer(
            lambda tx: machine.checkpoint(
                tx, self.task_id, self.owner, shared, position, node, action
            )
        )

    async def started(self, path: list[str]) -> None:
        self.node = "/".join(path)
        await self._flushed()
        self._defer(lambda tx: machine.start_node(tx, self.task_id, self.owner, path))
        self._timer = asyncio.get_running_loop().call_later(START_WINDOW, self._flush)

    def _defer(self, fn: Write) -> None:
        earlier = self.pending

        def write(tx: Tx) -> None:
            if earlier is not None:
                earlier(tx)
            fn(tx)

        self.pending = write

    async def suspend(self, outcome: Suspended, shared: dict[str, Any]) -> None:
        shared_text = dump_shared(shared)
        request = outcome.request.to_json()
        if not request["assignees"] and self.assignees:  # the node named none: the task's
            request["assignees"] = list(self.assignees)
        cap = outcome.request.max_rounds
        if cap is not None and self.round + 1 > cap:  # the node's rounds are used up
            if outcome.request.on_max_rounds != ESCALATE:
                node = "/".join(outcome.position.path)
                await self.fail(f"review {node!r} reached its cap of {cap} rounds")
                return
            request["assignees"] = list(outcome.request.escalate_to)
            request["escalated"] = f"after {cap} rounds"
        position = dumps(outcome.position.to_json())
        seconds = outcome.request.deadline_seconds
        now = time.time()
        review = ReviewRow(
            id=new_id(),
            task_id=self.task_id,
            round=self.round + 1,
            status=ReviewStatus.OPEN.value,
            node="/".join(outcome.position.path),
            request=dumps(request),
            created_at=now,
            deadline=now + seconds if seconds is not None else None,
            assignee=f",{','.join(request['assignees'])}," if request["assignees"] else None,
        )
        await self._write(
            lambda tx: machine.suspend(
                tx, self.owner, review, shared_text, position, request, self.task_input
            )
        )

    async def complete(self, shared: dict[str, Any], action: Any) -> None:
        shared_text = dump_shared(shared)
        result = _result(shared, _jsonable(action))
        await self._write(
            lambda tx: machine.complete(tx, self.task_id, self.owner, shared_text, result)
        )

    async def fail(self, error: str, trace: str | None = None) -> None:
        """Fail the task, if this worker still holds it; the failure's own checkpoint is kept.
        `trace`: the exception's traceback, kept for admins."""

        def write(tx: Tx) -> None:
            machine.fail(tx, self.task_id, self.owner, error, self.node, trace)

        try:
            await self._write(write)
        except LeaseLost:
            self.pending = None
            await self._write(write)


def _then(first: Write | None, second: Write | None) -> Write | None:
    if first is None or second is None:
        return first or second

    def both(tx: Tx) -> None:
        first(tx)
        second(tx)

    return both


def _retrieved(done: asyncio.Future[None]) -> None:
    """A start written on the timer that failed: the run's next write waits for it and meets
    the same error; if there is none (the run was stopped), nothing is left to do."""
    if not done.cancelled():
        done.exception()


def _renew_all(tx: Tx, runs: list[_Run], until: float) -> list[bool]:
    return [machine.renew(tx, r.task_id, r.owner, until) for r in runs]


def _decision(last: ReviewRow | None) -> Decision | None:
    """The decision on the task's latest review, which its run resumes with; None if that
    review was not decided (a retried task whose review expired): the flow asks again."""
    if last is None or last.status != ReviewStatus.DECIDED or last.decision is None:
        return None
    edited = json.loads(last.edited_output) if last.edited_output is not None else None
    form = json.loads(last.form_values) if last.form_values else {}
    return Decision(last.decision, last.comment, edited, last.decided_by, form=form)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, SharedNotJSON):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def _jsonable(value: Any) -> Any:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)
    return value
