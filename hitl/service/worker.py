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
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from hitl.flow import Checkpoint, Completed, Decision, Position, Runner, Suspended, dump_shared
from hitl.flow.checkpoint import SharedNotJSON
from hitl.service.errors import LeaseLost
from hitl.service.flows import FlowRegistry
from hitl.service.ids import new_id
from hitl.service.states import EventType, ReviewStatus, TaskStatus
from hitl.service.tasks import dumps
from hitl.service.waiting import wait_set
from hitl.store import Row, Store, Tx, Unavailable

log = logging.getLogger(__name__)

CLAIM_BATCH = 16


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
        self._dispatcher: asyncio.Task[None] | None = None

    def wake(self) -> None:
        self._wake.set()

    async def start(self) -> None:
        self._dispatcher = asyncio.create_task(self._dispatch(), name="hitl-dispatcher")

    async def stop(self) -> None:
        tasks = [t for t in [self._dispatcher, *self._running] if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.executor.shutdown(wait=False, cancel_futures=True)

    async def _dispatch(self) -> None:
        while True:
            free = self.concurrency - len(self._running)
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
                task = asyncio.create_task(self._execute(row), name=f"hitl-task-{row['id']}")
                self._running.add(task)
                task.add_done_callback(self._done)
            if len(rows) < want:
                await wait_set(self._wake, self.poll_interval)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        self._freed.set()

    async def _claim(self, limit: int) -> list[Row]:
        now = time.time()

        def write(tx: Tx) -> list[Row]:
            rows = tx.claim(
                self.owner,
                now + self.lease_seconds,
                now,
                TaskStatus.QUEUED.value,
                TaskStatus.RUNNING.value,
                limit,
            )
            for row in rows:
                data = {"task_id": row["id"], "status": "running", "node": row["node"]}
                tx.add_event(row["id"], EventType.RUNNING, dumps({**data, "claims": row["claims"]}))
                # A task resumed after a review needs its decision: read it here, not later.
                row["last_review"] = tx.last_review(row["id"]) if row["round"] else None
            return rows

        return await self.store.write(write)

    async def _execute(self, row: Row) -> None:
        task_id, owner = row["id"], row["lease_owner"]
        running = asyncio.current_task()
        assert running is not None
        lease = _Lease(row.get("lease_expires_at") or time.time() + self.lease_seconds)
        renewer = asyncio.create_task(self._renew(task_id, owner, lease, running))
        try:
            if row["claims"] > self.max_claims:
                raise RuntimeError(
                    f"task was claimed {row['claims']} times without finishing; giving up"
                )
            await self._run(row)
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
            renewer.cancel()

    async def _run(self, row: Row) -> None:
        task_id = row["id"]
        shared = json.loads(row["shared"])
        position = Position.from_json(json.loads(row["position"])) if row["position"] else None
        decision = _decision(row.get("last_review")) if position and position.waiting else None
        steps = _Steps(self.store, row["lease_owner"], task_id, int(row["round"]))
        runner = Runner(
            self.registry.create(row["flow"]),
            executor=self.executor,
            on_node_started=steps.started,
            on_checkpoint=steps.checkpoint,
        )
        try:
            outcome = await runner.run(shared, position, decision)
        except (LeaseLost, Unavailable, asyncio.CancelledError):
            raise
        except Exception as exc:
            log.warning("task failed: %s", exc, extra={"action": "task_failed", "task_id": task_id})
            await steps.fail(_describe(exc))
            return
        if isinstance(outcome, Suspended):
            await steps.suspend(outcome, shared)
        elif isinstance(outcome, Completed):
            await steps.complete(shared, outcome.action)

    async def _renew(
        self, task_id: str, owner: str, lease: _Lease, running: asyncio.Task[None]
    ) -> None:
        """Keep the lease while the task runs; stop the run (its node included, if it is async)
        when the lease is lost — the task was cancelled or taken over — or when it could not be
        renewed and is about to expire, so that no other worker's run overlaps this one."""
        while True:
            await asyncio.sleep(self.lease_seconds / 3)
            until = time.time() + self.lease_seconds

            def renew(tx: Tx, until: float = until) -> bool:
                return tx.update_task(
                    task_id, [TaskStatus.RUNNING], owner=owner, lease_expires_at=until
                )

            try:
                held = await self.store.write(renew)
            except Unavailable as exc:
                log.warning("renewing a lease: %s", exc, extra={"action": "renew"})
                if time.time() + self.lease_seconds / 3 >= lease.expires_at:
                    lease.abandoned = "its lease could not be renewed before it expired"
                    running.cancel()
                    return
                continue
            if not held:
                lease.abandoned = "it was cancelled, or another worker holds its lease"
                running.cancel()
                return
            lease.expires_at = until

    async def release(self, everything: bool) -> int:
        """Expire the leases of this home's dead predecessor, or every lease (for the embedded
        server, the only process on its SQLite file): their tasks resume at once."""
        prefix = None if everything else f"{self.home}/"
        return await self.store.write(lambda tx: tx.expire_leases(TaskStatus.RUNNING.value, prefix))


Write = Callable[[Tx], None]


@dataclass
class _Lease:
    expires_at: float
    abandoned: str | None = None  # why the run was stopped, if it was


class _Steps:
    """The writes of one run of a task, each conditional on this worker's lease.

    A node's checkpoint is written in the same transaction as whatever comes next — the next
    node's start, the review request, the completion or the failure — so no node starts, and
    no person is asked, before the checkpoint before it is stored; a crash in between reruns
    the node, as a crash during it would.
    """

    def __init__(self, store: Store, owner: str, task_id: str, round: int = 0) -> None:
        self.store = store
        self.owner = owner
        self.task_id = task_id
        self.round = round  # review rounds so far: no one else changes it while we hold it
        self.pending: Write | None = None

    async def _write(self, fn: Write) -> None:
        before, self.pending = self.pending, None

        def write(tx: Tx) -> None:
            if before is not None:
                before(tx)
            fn(tx)

        await self.store.write(write)

    def _event(self, tx: Tx, type: EventType, **data: Any) -> None:
        tx.add_event(self.task_id, type, dumps({"task_id": self.task_id, **data}))

    def _move(self, tx: Tx, **values: Any) -> None:
        if not tx.update_task(self.task_id, [TaskStatus.RUNNING], owner=self.owner, **values):
            raise LeaseLost()

    async def checkpoint(self, cp: Checkpoint) -> None:
        shared = dump_shared(cp.shared)
        position = dumps(cp.position.to_json())
        node = "/".join(cp.position.path)
        action = _jsonable(cp.position.action)
        earlier = self.pending

        def write(tx: Tx) -> None:
            if earlier is not None:
                earlier(tx)
            self._move(tx, shared=shared, position=position)
            self._event(tx, EventType.NODE_FINISHED, status="running", node=node, action=action)

        self.pending = write

    async def started(self, path: list[str]) -> None:
        node = "/".join(path)

        def write(tx: Tx) -> None:
            self._move(tx, node=node)
            self._event(tx, EventType.NODE_STARTED, status="running", node=node, path=path)

        await self._write(write)

    async def suspend(self, outcome: Suspended, shared: dict[str, Any]) -> None:
        shared_text = dump_shared(shared)
        request = outcome.request.to_json()
        position = dumps(outcome.position.to_json())
        node = "/".join(outcome.position.path)
        review_id = new_id()
        seconds = outcome.request.deadline_seconds
        deadline = time.time() + seconds if seconds is not None else None

        round_no = self.round + 1

        def write(tx: Tx) -> None:
            self._move(
                tx,
                status=TaskStatus.WAITING_FOR_REVIEW.value,
                shared=shared_text,
                position=position,
                node=node,
                round=round_no,
                lease_owner=None,
                lease_expires_at=None,
            )
            tx.insert_review(
                {
                    "id": review_id,
                    "task_id": self.task_id,
                    "round": round_no,
                    "status": ReviewStatus.OPEN.value,
                    "node": node,
                    "request": dumps(request),
                    "deadline": deadline,
                    "created_at": time.time(),
                }
            )
            self._event(
                tx,
                EventType.REVIEW_REQUESTED,
                status="waiting_for_review",
                review_id=review_id,
                round=round_no,
                node=node,
                deadline=deadline,
                **request,
            )

        await self._write(write)

    async def complete(self, shared: dict[str, Any], action: Any) -> None:
        shared_text = dump_shared(shared)
        result = _result(shared, _jsonable(action))

        def write(tx: Tx) -> None:
            self._move(
                tx,
                status=TaskStatus.COMPLETED.value,
                shared=shared_text,
                result=dumps(result),
                lease_owner=None,
                lease_expires_at=None,
            )
            self._event(tx, EventType.COMPLETED, status="completed", result=result)

        await self._write(write)

    async def fail(self, error: str) -> None:
        """Fail the task, if this worker still holds it; the failure's own checkpoint is kept."""

        def write(tx: Tx) -> None:
            failed = tx.update_task(
                self.task_id,
                [TaskStatus.RUNNING],
                owner=self.owner,
                status=TaskStatus.FAILED.value,
                error=error,
                lease_owner=None,
                lease_expires_at=None,
            )
            if failed:
                self._event(tx, EventType.FAILED, status="failed", error=error)

        try:
            await self._write(write)
        except LeaseLost:
            self.pending = None
            await self._write(write)


def _decision(last: Row | None) -> Decision:
    """The decision on the task's latest review, which its run resumes with."""
    if last is None or last["status"] != ReviewStatus.DECIDED:
        raise RuntimeError("task is past its review but the review has no decision")
    edited = json.loads(last["edited_output"]) if last["edited_output"] is not None else None
    return Decision(last["decision"], last["comment"], edited, last["decided_by"])


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
