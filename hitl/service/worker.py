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
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from hitl.flow import Checkpoint, Completed, Decision, Position, Runner, Suspended, dump_shared
from hitl.flow.checkpoint import SharedNotJSON
from hitl.service.errors import LeaseLost
from hitl.service.flows import FlowRegistry
from hitl.service.states import EventType, ReviewStatus, TaskStatus
from hitl.service.tasks import dumps
from hitl.store import Row, Store, Tx

log = logging.getLogger(__name__)


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
    ) -> None:
        self.store = store
        self.registry = registry
        self.concurrency = concurrency
        self.lease_seconds = lease_seconds
        self.poll_interval = poll_interval
        self.max_claims = max_claims
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.executor = ThreadPoolExecutor(concurrency, thread_name_prefix="hitl-node")
        self._slots = asyncio.Semaphore(concurrency)
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
            await self._slots.acquire()
            # Clear before claiming: a wake-up that arrives during the claim is kept.
            self._wake.clear()
            try:
                row = await self._claim()
            except Exception:
                log.exception("claiming work failed", extra={"action": "claim"})
                row = None
            if row is None:
                self._slots.release()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.poll_interval)
                continue
            task = asyncio.create_task(self._execute(row), name=f"hitl-task-{row['id']}")
            self._running.add(task)
            task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        self._slots.release()

    async def _claim(self) -> Row | None:
        now = time.time()

        def write(tx: Tx) -> Any:
            row = tx.claim(
                self.owner,
                now + self.lease_seconds,
                now,
                TaskStatus.QUEUED.value,
                TaskStatus.RUNNING.value,
            )
            if row is None:
                return None
            tx.add_event(
                row["id"],
                EventType.RUNNING,
                dumps(
                    {
                        "task_id": row["id"],
                        "status": "running",
                        "node": row["node"],
                        "claims": row["claims"],
                    }
                ),
            )
            return row

        return await self.store.write(write)

    async def _execute(self, row: Row) -> None:
        task_id = row["id"]
        renewer = asyncio.create_task(self._renew(task_id))
        try:
            if row["claims"] > self.max_claims:
                raise RuntimeError(
                    f"task was claimed {row['claims']} times without finishing; giving up"
                )
            await self._run(row)
        except LeaseLost:
            log.info("lease lost", extra={"action": "lease_lost", "task_id": task_id})
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("task failed: %s", exc, extra={"action": "task_failed", "task_id": task_id})
            await self._fail(task_id, _describe(exc))
        finally:
            renewer.cancel()

    async def _run(self, row: Row) -> None:
        task_id = row["id"]
        shared = json.loads(row["shared"])
        position = Position.from_json(json.loads(row["position"])) if row["position"] else None
        decision = await self._decision(task_id) if position and position.waiting else None

        async def started(path: list[str]) -> None:
            await self._node_started(task_id, path)

        async def checkpoint(cp: Checkpoint) -> None:
            await self._checkpoint(task_id, cp)

        runner = Runner(
            self.registry.create(row["flow"]),
            executor=self.executor,
            on_node_started=started,
            on_checkpoint=checkpoint,
        )
        outcome = await runner.run(shared, position, decision)
        if isinstance(outcome, Suspended):
            await self._suspend(task_id, outcome, shared)
        elif isinstance(outcome, Completed):
            await self._complete(task_id, shared, outcome.action)

    async def _decision(self, task_id: str) -> Decision:
        reviews = await self.store.reviews_of(task_id)
        last = reviews[-1] if reviews else None
        if last is None or last["status"] != ReviewStatus.DECIDED:
            raise RuntimeError("task is past its review but the review has no decision")
        edited = json.loads(last["edited_output"]) if last["edited_output"] is not None else None
        return Decision(last["decision"], last["comment"], edited, last["decided_by"])

    async def _renew(self, task_id: str) -> None:
        while True:
            await asyncio.sleep(self.lease_seconds / 3)

            def renew(tx: Tx) -> bool:
                return tx.update_task(
                    task_id,
                    [TaskStatus.RUNNING],
                    owner=self.owner,
                    lease_expires_at=time.time() + self.lease_seconds,
                )

            if not await self.store.write(renew):
                return

    async def _node_started(self, task_id: str, path: list[str]) -> None:
        node = "/".join(path)

        def write(tx: Tx) -> Any:
            if not tx.update_task(task_id, [TaskStatus.RUNNING], owner=self.owner, node=node):
                raise LeaseLost()
            tx.add_event(
                task_id,
                EventType.NODE_STARTED,
                dumps({"task_id": task_id, "status": "running", "node": node, "path": path}),
            )

        await self.store.write(write)

    async def _checkpoint(self, task_id: str, cp: Checkpoint) -> None:
        shared = dump_shared(cp.shared)
        position = dumps(cp.position.to_json())
        node = "/".join(cp.position.path)

        def write(tx: Tx) -> Any:
            saved = tx.update_task(
                task_id, [TaskStatus.RUNNING], owner=self.owner, shared=shared, position=position
            )
            if not saved:
                raise LeaseLost()
            tx.add_event(
                task_id,
                EventType.NODE_FINISHED,
                dumps(
                    {
                        "task_id": task_id,
                        "status": "running",
                        "node": node,
                        "action": _jsonable(cp.position.action),
                    }
                ),
            )

        await self.store.write(write)

    async def _suspend(self, task_id: str, outcome: Suspended, shared: dict[str, Any]) -> None:
        shared_text = dump_shared(shared)
        request = outcome.request.to_json()
        position = outcome.position
        node = "/".join(position.path)
        review_id = str(uuid.uuid4())

        def write(tx: Tx) -> Any:
            task = tx.get_task(task_id)
            if task is None:
                raise LeaseLost()
            round_no = int(task["round"]) + 1
            moved = tx.update_task(
                task_id,
                [TaskStatus.RUNNING],
                owner=self.owner,
                status=TaskStatus.WAITING_FOR_REVIEW.value,
                shared=shared_text,
                position=dumps(position.to_json()),
                node=node,
                round=round_no,
                lease_owner=None,
                lease_expires_at=None,
            )
            if not moved:
                raise LeaseLost()
            tx.insert_review(
                {
                    "id": review_id,
                    "task_id": task_id,
                    "round": round_no,
                    "status": ReviewStatus.OPEN.value,
                    "node": node,
                    "request": dumps(request),
                    "created_at": time.time(),
                }
            )
            tx.add_event(
                task_id,
                EventType.REVIEW_REQUESTED,
                dumps(
                    {
                        "task_id": task_id,
                        "status": "waiting_for_review",
                        "review_id": review_id,
                        "round": round_no,
                        "node": node,
                        **request,
                    }
                ),
            )

        await self.store.write(write)

    async def _complete(self, task_id: str, shared: dict[str, Any], action: Any) -> None:
        shared_text = dump_shared(shared)
        result = _result(shared, _jsonable(action))

        def write(tx: Tx) -> Any:
            done = tx.update_task(
                task_id,
                [TaskStatus.RUNNING],
                owner=self.owner,
                status=TaskStatus.COMPLETED.value,
                shared=shared_text,
                result=dumps(result),
                lease_owner=None,
                lease_expires_at=None,
            )
            if not done:
                raise LeaseLost()
            tx.add_event(
                task_id,
                EventType.COMPLETED,
                dumps({"task_id": task_id, "status": "completed", "result": result}),
            )

        await self.store.write(write)

    async def _fail(self, task_id: str, error: str) -> None:
        def write(tx: Tx) -> Any:
            failed = tx.update_task(
                task_id,
                [TaskStatus.RUNNING],
                owner=self.owner,
                status=TaskStatus.FAILED.value,
                error=error,
                lease_owner=None,
                lease_expires_at=None,
            )
            if failed:
                tx.add_event(
                    task_id,
                    EventType.FAILED,
                    dumps({"task_id": task_id, "status": "failed", "error": error}),
                )

        await self.store.write(write)

    async def release_all(self) -> int:
        """Expire every running lease: for the embedded server, the only process on its file."""

        def write(tx: Tx) -> Any:
            return tx.expire_leases(TaskStatus.RUNNING.value)

        return await self.store.write(write)


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
