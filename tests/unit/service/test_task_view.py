"""What a task's page is told besides the task: whether the person may cancel or retry it, the
votes on each review that several people decide, and the graph of its flow — on a real SQLite
file and on PostgreSQL. Waits follow the task's event stream; nothing sleeps."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable

import pytest

from hitl.config import Settings
from hitl.service import NotFound, Service, TaskRow
from hitl.service.principal import Principal
from hitl.service.tasks import TaskService

FLOWS = "tests.unit.service.flows_for_tests"

ADMIN = Principal("root", frozenset({"admin"}))
SAM = Principal("sam", frozenset({"submitter"}))
EVE = Principal("eve", frozenset({"submitter"}))
ANN = Principal("ann", frozenset({"reviewer"}))
BOB = Principal("bob", frozenset({"reviewer"}))


@pytest.fixture
async def service(migrated_database: Callable[[], str]) -> AsyncIterator[Service]:
    settings = Settings(
        database_url=migrated_database(),
        process_delay=0,
        poll_interval=0.05,
        flows=[f"{FLOWS}:create_panel_flow", f"{FLOWS}:create_publishing_flow"],
    )
    svc = Service(settings)
    await svc.start()
    yield svc
    await svc.stop()


async def reach(service: Service, task_id: str, event: str) -> TaskRow:
    """The task, once its event stream says `event`."""
    async with asyncio.timeout(15):
        async for seen in service.broker.subscribe(task_id, 0, heartbeat=1.0):
            if seen is not None and seen.type == event:
                task, _ = await service.tasks.get(task_id)
                return task
    raise AssertionError("the stream ended")


def may(task: TaskRow, who: Principal) -> tuple[bool, bool]:
    """(may cancel, may retry), as the task's page is told."""
    return TaskService.may_change(who, task, "cancel"), TaskService.may_change(who, task, "retry")


async def test_who_may_cancel_or_retry_is_said_by_status_and_person(service: Service) -> None:
    task, _ = await service.tasks.submit("the report", "publishing", by=SAM)
    waiting = await reach(service, task.id, "review.requested")
    assert may(waiting, ADMIN) == (True, False)
    assert may(waiting, SAM) == (True, False)  # the submitter: their own task
    assert may(waiting, EVE) == (False, False)  # another submitter
    assert may(waiting, ANN) == (False, False)  # a reviewer sees it, but may not change it
    _, reviews = await service.tasks.get(task.id)
    await service.tasks.decide(reviews[-1].id, "approve", by=ANN)
    failed = await reach(service, task.id, "task.failed")  # the printer is jammed, once
    assert failed.node == "publish"
    assert may(failed, ADMIN) == (False, True)
    assert may(failed, SAM) == (False, True)
    assert may(failed, ANN) == (False, False)
    await service.tasks.retry(task.id, by=SAM)
    done = await reach(service, task.id, "task.completed")
    assert may(done, ADMIN) == (False, False)


async def test_votes_are_read_for_the_reviews_that_need_several(service: Service) -> None:
    panel, _ = await service.tasks.submit("the memo", "panel", by=SAM)
    single, _ = await service.tasks.submit("the report", "publishing", by=SAM)
    await reach(service, panel.id, "review.requested")
    await reach(service, single.id, "review.requested")
    _, [review] = await service.tasks.get(panel.id)
    assert await service.tasks.votes_of([review]) == {review.id: []}
    await service.tasks.decide(review.id, "approve", "fine by me", by=ANN)
    [vote] = (await service.tasks.votes_of([review]))[review.id]
    assert (vote.voter, vote.decision, vote.comment) == ("ann", "approve", "fine by me")
    _, [alone] = await service.tasks.get(single.id)
    assert await service.tasks.votes_of([alone]) == {}  # one person decides it: no votes
    await service.tasks.decide(review.id, "approve", by=BOB)
    await reach(service, panel.id, "task.completed")
    votes = (await service.tasks.votes_of([review]))[review.id]
    assert [(v.voter, v.decision) for v in votes] == [("ann", "approve"), ("bob", "approve")]
    assert json.loads(review.request)["quorum"] == 2


def test_a_flow_s_graph_is_read_once_and_an_unknown_flow_is_not_found(service: Service) -> None:
    registry = service.registry
    graph = registry.graph("publishing")
    assert registry.graph("publishing") is graph
    assert [n.id for n in graph.nodes if n.kind == "review"] == ["drafting/approval"]
    assert [n.id for n in registry.graph("feedback").nodes] == ["process", "review", "result"]
    with pytest.raises(NotFound, match="no flow 'nope'; this server runs: feedback, panel"):
        registry.graph("nope")
