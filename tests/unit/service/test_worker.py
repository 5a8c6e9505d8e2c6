"""Leases: every claim is a lease of its own, even when one worker claims a task twice."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest

from hitl.config import Settings
from hitl.service import Service, machine
from hitl.service.errors import LeaseLost
from hitl.service.worker import Worker, _Steps


@pytest.fixture
async def service(new_database: Callable[[], str]) -> AsyncIterator[Service]:
    svc = Service(Settings(database_url=new_database(), process_delay=0, run_workers=False))
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

        with pytest.raises(LeaseLost):
            await _Steps(service.store, first.lease_owner, task.id).started(["process"])
        await _Steps(service.store, second.lease_owner, task.id).started(["process"])
        row = await service.store.get_task(task.id)
        assert row is not None and row.node == "process"
    finally:
        await worker.stop()
