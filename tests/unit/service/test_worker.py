"""Leases: every claim is a lease of its own, even when one worker claims a task twice."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable

import pytest

from hitl.config import Settings
from hitl.service import Service, machine
from hitl.service.errors import Conflict, LeaseLost
from hitl.service.tasks import TaskService
from hitl.service.worker import Worker, _Steps


@pytest.fixture
async def service(migrated_database: Callable[[], str]) -> AsyncIterator[Service]:
    svc = Service(Settings(database_url=migrated_database(), process_delay=0, run_workers=False))
    await svc.start()
    yield svc
    await svc.stop()


async def test_a_second_claim_by_the_same_worker_ends_the_first_run(service: Service) -> None:
    """A worker whose event loop stalled past a lease can claim back a task it is still
    running; the stale run must then stop at its next write, not run alongside the new one."""
    worker = Worker(service.store, service.registry)
    try:
        task, _ = await service.tasks.submit("x")
        [first] = [c.task for c in await worker._claim(1)]
        await service.store.write(lambda tx: machine.release(tx, None))
        [second] = [c.task for c in await worker._claim(1)]
        assert first.id == second.id == task.id
        assert first.lease_owner != second.lease_owner
        assert first.lease_owner.startswith(worker.owner)

        stale = _Steps(service.store, first.lease_owner, task.id)
        await stale.started(["process"])
        with pytest.raises(LeaseLost):
            await stale.complete({"x": 1}, "done")  # its next write
        fresh = _Steps(service.store, second.lease_owner, task.id)
        await fresh.started(["process"])
        await fresh.complete({"x": 1}, "done")
        row = await service.store.get_task(task.id)
        assert row is not None and row.status == "completed" and row.node == "process"
    finally:
        await worker.stop()


async def test_a_quick_node_starts_and_ends_in_one_transaction(service: Service) -> None:
    """process (quick) → review: the node's start, its checkpoint and the review request are
    one commit, and the log still has them all, in order."""
    worker = Worker(service.store, service.registry)
    try:
        task, _ = await service.tasks.submit("x")
        [claimed] = await worker._claim(1)
        before = service.store.commits
        await worker._run(claimed)
        assert service.store.commits - before == 1
        types = [e.type for e in await service.store.events_after(0, task.id, 100)]
        assert types[-3:] == ["node.started", "node.finished", "review.requested"]
    finally:
        await worker.stop()


async def test_a_slow_node_has_its_start_written_while_it_runs(service: Service) -> None:
    """A node still running after the window: its start is in the log before it ends."""
    worker = Worker(service.store, service.registry)
    steps = _Steps(service.store, "", "")
    try:
        task, _ = await service.tasks.submit("x")
        [claimed] = await worker._claim(1)
        steps = _Steps(service.store, claimed.task.lease_owner or "", task.id)
        await steps.started(["process"])
        for _ in range(500):  # the node "runs" until its start is stored
            row = await service.store.get_task(task.id)
            assert row is not None
            if row.node == "process":
                break
            await asyncio.sleep(0.01)
        assert row.node == "process"
        types = [e.type for e in await service.store.events_after(0, task.id, 100)]
        assert types[-1] == "node.started"
        await steps.complete({"x": 1}, "done")
        types = [e.type for e in await service.store.events_after(0, task.id, 100)]
        assert types[-2:] == ["node.started", "task.completed"]
    finally:
        steps.close()
        await worker.stop()


class Hands:
    """A worker's side of a hand-over, recording what it was handed."""

    def __init__(self, free: bool = True) -> None:
        self.free = free
        self.handed: list[machine.Claimed | None] = []

    def reserve(self) -> machine.Lease | None:
        return machine.Lease("here/1:ab", time.time() + 30) if self.free else None

    def hand(self, claimed: machine.Claimed | None) -> None:
        self.handed.append(claimed)


async def _waiting_task(service: Service) -> str:
    worker = Worker(service.store, service.registry)
    try:
        task, _ = await service.tasks.submit("x")
        [claimed] = await worker._claim(1)
        await worker._run(claimed)
        row = await service.store.get_task(task.id)
        assert row is not None and row.status == "waiting_for_review"
        return task.id
    finally:
        await worker.stop()


async def test_a_decision_hands_its_task_to_a_free_worker_of_this_process(
    service: Service,
) -> None:
    """The decision's own write leases the task to the worker: no claim of its own, so the
    task runs here at once; a decision that loses still gives the worker's slot back."""
    task_id = await _waiting_task(service)
    hands = Hands()
    woken: list[bool] = []
    tasks = TaskService(service.store, service.registry, lambda: woken.append(True), hands)

    review = await tasks.decide_task(task_id, "reject", "again")
    [claimed] = hands.handed
    assert claimed is not None and claimed.last_review is not None
    assert claimed.last_review.id == review.id and claimed.last_review.decision == "reject"
    row = await service.store.get_task(task_id)
    assert row is not None and row == claimed.task
    assert row.status == "running" and row.lease_owner == f"here/1:ab#{row.claims}"
    assert row.claims == 2 and not woken  # no other worker was asked to look
    types = [e.type for e in await service.store.events_after(0, task_id)]
    assert types[-2:] == ["review.decided", "task.running"]

    with pytest.raises(Conflict):
        await tasks.decide(review.id, "approve")
    assert hands.handed[1:] == [None]


async def test_without_a_free_worker_a_decision_leaves_the_task_to_any_worker(
    service: Service,
) -> None:
    task_id = await _waiting_task(service)
    hands = Hands(free=False)
    woken: list[bool] = []
    tasks = TaskService(service.store, service.registry, lambda: woken.append(True), hands)
    await tasks.decide_task(task_id, "approve")
    row = await service.store.get_task(task_id)
    assert row is not None and row.status == "running" and row.lease_owner is None
    assert woken == [True] and hands.handed == []


async def test_a_worker_reserves_only_free_slots(service: Service) -> None:
    worker = Worker(service.store, service.registry, concurrency=2)
    assert worker.reserve() is None  # not started: nothing would run what it is handed
    await worker.start()
    try:
        first, second = worker.reserve(), worker.reserve()
        assert first is not None and second is not None and first.owner == worker.owner
        assert worker.reserve() is None
        worker.hand(None)
        assert worker.reserve() is not None
    finally:
        await worker.stop()


async def test_leases_of_long_nodes_are_renewed_together(
    migrated_database: Callable[[], str],
) -> None:
    """One renewal write keeps every running task's lease: nodes that run for several leases
    are never taken over (each is claimed once), and no task is left leased once done. (A
    lease of 1.2 s, renewed every 0.4 s: a busy machine's stall of a few hundred milliseconds
    must not pass for a dead worker, as it did with 0.3 s.)"""
    settings = Settings(
        database_url=migrated_database(), process_delay=3.0, lease_seconds=1.2, poll_interval=0.05
    )
    svc = Service(settings)
    await svc.start()
    try:
        ids = [(await svc.tasks.submit(f"slow {i}"))[0].id for i in range(3)]
        worker = svc.worker
        assert worker is not None
        deadline = time.monotonic() + 30
        while True:
            rows = [await svc.store.get_task(i) for i in ids]
            waiting = all(r is not None and r.status == "waiting_for_review" for r in rows)
            # A run lets its lease go as it ends, just after the commit that a read can see.
            if waiting and not worker._leases:
                break
            statuses = [r.status for r in rows if r is not None]
            assert time.monotonic() < deadline, (statuses, len(worker._leases), "leases held")
            await asyncio.sleep(0.05)
        assert [r.claims for r in rows if r is not None] == [1, 1, 1]
        assert all(r is not None and r.lease_owner is None for r in rows)
    finally:
        await svc.stop()
