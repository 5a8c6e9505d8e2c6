"""A running node's progress in the event log: gathered into few writes, after the node's
start, before its checkpoint, and never for a task the worker no longer holds."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from pocketflow import AsyncFlow, Node

from hitl.config import Settings
from hitl.flow import Checkpoint, Frame, Position, Reporting, Update
from hitl.service import Service, machine
from hitl.service.worker import Worker, _Steps


@pytest.fixture
async def service(migrated_database: Callable[[], str]) -> AsyncIterator[Service]:
    svc = Service(Settings(database_url=migrated_database(), process_delay=0, run_workers=False))
    await svc.start()
    yield svc
    await svc.stop()


async def _claimed(service: Service) -> tuple[Worker, str, str]:
    """A worker, and a task it has claimed: (worker, task id, lease owner)."""
    worker = Worker(service.store, service.registry)
    task, _ = await service.tasks.submit("x")
    [claimed] = await worker._claim(1)
    return worker, task.id, claimed.task.lease_owner or ""


async def _log(service: Service, task_id: str) -> list[tuple[str, dict[str, Any]]]:
    events = await service.store.events_after(0, task_id, 1000)
    return [(e.type, json.loads(e.data)) for e in events]


def _progress(log: list[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    keep = ("node", "message", "delta", "reset", "usage")
    return [{k: d[k] for k in keep if k in d} for t, d in log if t == "node.progress"]


def _checkpoint(node: str) -> Checkpoint:
    return Checkpoint(Position((Frame(""),), node, "default"), {"x": 1})


async def test_reports_between_writes_are_one_event_and_the_rest_goes_with_the_checkpoint(
    service: Service,
) -> None:
    worker, task_id, owner = await _claimed(service)
    steps = _Steps(service.store, owner, task_id, progress_interval=3600)
    try:
        before = service.store.commits
        await steps.started(["draft"])
        steps.progress(["draft"], Update(message="asking"))
        await steps._flushed()  # the first report goes at once, with the node's start
        assert service.store.commits - before == 1
        for piece in "abcd":
            steps.progress(["draft"], Update(delta=piece))
        steps.progress(["draft"], Update(message="half way"))
        steps.progress(["draft"], Update(values={"usage": {"total_tokens": 4}}))
        # No write for an hour; the node ends first: its reports go before its checkpoint.
        await steps.checkpoint(_checkpoint("draft"))
        await steps.complete({"x": 1}, "default")
        assert service.store.commits - before == 2
        log = await _log(service, task_id)
        assert [t for t, _ in log][-5:] == [
            "node.started",
            "node.progress",
            "node.progress",
            "node.finished",
            "task.completed",
        ]
        assert _progress(log) == [
            {"node": "draft", "message": "asking"},
            {"node": "draft", "message": "half way", "delta": "abcd", "usage": {"total_tokens": 4}},
        ]
        assert all(d["status"] == "running" for t, d in log if t == "node.progress")
    finally:
        steps.close()
        await worker.stop()


async def test_a_reset_drops_the_text_reported_before_it(service: Service) -> None:
    worker, task_id, owner = await _claimed(service)
    steps = _Steps(service.store, owner, task_id)
    try:
        await steps.started(["draft"])
        steps.progress(["draft"], Update("asking"))  # written at once: the rest waits
        for update in (Update(delta="x"), Update(delta="y"), Update("retry 1", "z", reset=True)):
            steps.progress(["draft"], update)
        steps.progress(["draft"], Update(delta="!"))
        await steps.complete({}, "default")
        assert _progress(await _log(service, task_id)) == [
            {"node": "draft", "message": "asking"},
            {"node": "draft", "message": "retry 1", "delta": "z!", "reset": True},
        ]
    finally:
        steps.close()
        await worker.stop()


async def test_a_steady_stream_is_written_at_most_once_an_interval(service: Service) -> None:
    interval = 0.05
    worker, task_id, owner = await _claimed(service)
    steps = _Steps(service.store, owner, task_id, progress_interval=interval)
    try:
        await steps.started(["draft"])
        began = time.monotonic()
        sent = [f"t{i} " for i in range(150)]
        for piece in sent:  # a token every 2 ms or so, for about 0.3 s
            steps.progress(["draft"], Update(delta=piece))
            await asyncio.sleep(0.002)
        elapsed = time.monotonic() - began
        await steps.checkpoint(_checkpoint("draft"))
        await steps.complete({"x": 1}, "default")
        reports = _progress(await _log(service, task_id))
        assert "".join(r["delta"] for r in reports) == "".join(sent)
        # One write at once, then at most one an interval; the last with the checkpoint.
        assert 2 <= len(reports) <= elapsed / interval + 2, (len(reports), elapsed)
    finally:
        steps.close()
        await worker.stop()


async def test_a_report_for_a_task_no_longer_held_stops_the_run_and_writes_nothing(
    service: Service,
) -> None:
    worker, task_id, owner = await _claimed(service)
    steps = _Steps(service.store, owner, task_id)
    lost = asyncio.Event()
    steps.on_lost = lost.set
    try:
        await steps.started(["draft"])
        steps.progress(["draft"], Update(delta="before"))
        await steps._flushed()
        await service.store.write(lambda tx: machine.cancel(tx, task_id, "admin"))
        steps.progress(["draft"], Update(delta="after"))
        await asyncio.wait_for(lost.wait(), 10)
        log = await _log(service, task_id)
        assert [r["delta"] for r in _progress(log)] == ["before"]
        assert log[-1][0] == "task.cancelled"
    finally:
        steps.close()
        await worker.stop()


class Streams(Reporting, Node):  # type: ignore[misc]
    """A sync node that reports from its worker thread, then fails if told to."""

    name = "streams"

    def __init__(self, fail: bool = False) -> None:
        super().__init__()
        self.fail = fail

    def exec(self, prep_res: Any) -> str:
        self.progress("starting")
        for i in range(50):
            self.progress(delta=f"{i} ")
        if self.fail:
            raise RuntimeError("the model fell over")
        return "done"

    def post(self, shared: dict[str, Any], prep_res: Any, exec_res: str) -> None:
        shared["final_result"] = exec_res


@pytest.mark.parametrize("fail", [False, True], ids=["completes", "fails"])
async def test_a_worker_writes_a_nodes_reports_before_what_follows_it(
    service: Service, fail: bool
) -> None:
    service.registry.add("streams", lambda: AsyncFlow(start=Streams(fail)))
    worker = Worker(service.store, service.registry)
    try:
        task, _ = await service.tasks.submit("x", "streams")
        [claimed] = await worker._claim(1)
        await worker._run(claimed)
        log = await _log(service, task.id)
        types = [t for t, _ in log]
        end = "task.failed" if fail else "node.finished"
        assert types.index("node.started") < types.index("node.progress") < types.index(end)
        assert max(i for i, t in enumerate(types) if t == "node.progress") < types.index(end)
        reports = _progress(log)
        assert "".join(r.get("delta", "") for r in reports) == "".join(f"{i} " for i in range(50))
        assert reports[0]["message"] == "starting"
        assert types[-1] == ("task.failed" if fail else "task.completed")
    finally:
        await worker.stop()
