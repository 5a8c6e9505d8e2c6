from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from hitl.config import Settings
from hitl.service import Conflict, Invalid, NotFound, ReviewRow, Service, TaskRow
from hitl.service.flows import BadFlowSpec, load_factory
from hitl.service.principal import Principal

FLOWS = "tests.unit.service.flows_for_tests"


@pytest.fixture
async def service(migrated_database: Callable[[], str]) -> AsyncIterator[Service]:
    settings = Settings(
        database_url=migrated_database(),
        process_delay=0,
        poll_interval=0.05,
        flows=[
            f"bad={FLOWS}:create_bad_flow",
            f"{FLOWS}:create_exploding_flow",
            f"{FLOWS}:create_echo_flow",
            f"{FLOWS}:create_flaky_flow",
        ],
    )
    svc = Service(settings)
    await svc.start()
    yield svc
    await svc.stop()


Until = Callable[
    [str, Callable[[TaskRow, list[ReviewRow]], bool]], Awaitable[tuple[TaskRow, list[ReviewRow]]]
]


@pytest.fixture
def until(service: Service) -> Until:
    async def wait(
        task_id: str, done: Callable[[TaskRow, list[ReviewRow]], bool]
    ) -> tuple[TaskRow, list[ReviewRow]]:
        for _ in range(200):
            task, reviews = await service.tasks.get(task_id)
            if done(task, reviews):
                return task, reviews
            await asyncio.sleep(0.02)
        raise AssertionError(f"task never got there: {task['status']}")

    return wait


def waiting(rounds: int) -> Callable[[TaskRow, list[ReviewRow]], bool]:
    return lambda t, r: t.status == "waiting_for_review" and len(r) == rounds


async def events_of(service: Service, task_id: str) -> list[tuple[str, dict[str, Any]]]:
    rows = await service.store.events_after(0, task_id)
    return [(r.type, json.loads(r.data)) for r in rows]


async def test_reject_with_comment_then_approve(service: Service, until: Until) -> None:
    task, created = await service.tasks.submit("write a haiku")
    assert created and task.status == "queued"
    _, reviews = await until(task.id, waiting(1))
    first = json.loads(reviews[0].request)["output"]

    await service.tasks.decide(
        reviews[0].id, "reject", "mention autumn", by=Principal("ann", frozenset({"reviewer"}))
    )
    _, reviews = await until(task.id, waiting(2))
    second = json.loads(reviews[1].request)["output"]
    assert second != first and "mention autumn" in second

    await service.tasks.decide(
        reviews[1].id, "approve", by=Principal("bob", frozenset({"reviewer"}))
    )
    done, reviews = await until(task.id, lambda t, r: t.status == "completed")
    assert json.loads(done.result) == second
    assert [(r.decision, r.decided_by) for r in reviews] == [
        ("reject", "ann"),
        ("approve", "bob"),
    ]
    types = [t for t, _ in await events_of(service, task.id)]
    assert types.count("task.created") == 1 and types.count("task.completed") == 1
    assert types.count("review.requested") == 2 and types.count("review.decided") == 2


async def test_edit_completes_with_the_edited_output(service: Service, until: Until) -> None:
    task, _ = await service.tasks.submit("draft")
    _, reviews = await until(task.id, waiting(1))
    with pytest.raises(Invalid, match="edited_output"):
        await service.tasks.decide(reviews[0].id, "edit")
    await service.tasks.decide(reviews[0].id, "edit", edited_output="my better text")
    done, _ = await until(task.id, lambda t, r: t.status == "completed")
    assert json.loads(done.result) == "my better text"


async def test_second_decision_conflicts_and_changes_nothing(
    service: Service, until: Until
) -> None:
    task, _ = await service.tasks.submit("x")
    _, reviews = await until(task.id, waiting(1))
    results = await asyncio.gather(
        *(service.tasks.decide(reviews[0].id, "approve") for _ in range(10)),
        return_exceptions=True,
    )
    assert sum(not isinstance(r, Exception) for r in results) == 1
    assert all(isinstance(r, Conflict) for r in results if isinstance(r, Exception))
    await until(task.id, lambda t, r: t.status == "completed")
    types = [t for t, _ in await events_of(service, task.id)]
    assert types.count("review.decided") == 1


async def test_cancel_while_waiting(service: Service, until: Until) -> None:
    task, _ = await service.tasks.submit("x")
    _, reviews = await until(task.id, waiting(1))
    cancelled = await service.tasks.cancel(task.id, by=Principal("ops", frozenset({"admin"})))
    assert cancelled.status == "cancelled"
    assert (await service.tasks.get_review(reviews[0].id)).status == "cancelled"
    with pytest.raises(Conflict):
        await service.tasks.decide(reviews[0].id, "approve")
    with pytest.raises(Conflict):
        await service.tasks.cancel(task.id)


async def test_a_decision_racing_a_cancel_is_answered_as_one_or_the_other(
    service: Service, until: Until
) -> None:
    """A decision and a cancellation of one waiting task, at once: each either applies or is
    refused as a conflict. Neither may wait on the other's row locks (on PostgreSQL, locked in
    opposite orders they deadlock, and one of them failed as if the database were away)."""
    admin = Principal("ops", frozenset({"admin"}))
    for _ in range(40):
        task, _ = await service.tasks.submit("x")
        _, reviews = await until(task.id, waiting(1))
        results = await asyncio.gather(
            service.tasks.decide(reviews[0].id, "approve"),
            service.tasks.cancel(task.id, by=admin),
            return_exceptions=True,
        )
        failed = [r for r in results if isinstance(r, Exception)]
        assert all(isinstance(r, Conflict) for r in failed), results
        assert len(failed) <= 1, results
        if failed and isinstance(results[0], Conflict):  # the cancellation won
            assert "is already cancelled; nothing to decide" in str(results[0])


async def test_a_cancellation_leaves_no_review_open_whenever_it_comes(service: Service) -> None:
    """Cancel tasks at every moment of their run, a worker asking for their review meanwhile:
    a cancelled task has no open review, and a task whose cancel was refused is unharmed."""
    admin = Principal("ops", frozenset({"admin"}))
    tasks = [task for task, _ in [await service.tasks.submit(f"x{i}") for i in range(40)]]
    results = await asyncio.gather(
        *(service.tasks.cancel(task.id, by=admin) for task in tasks), return_exceptions=True
    )
    assert all(not isinstance(r, Exception) or isinstance(r, Conflict) for r in results), results
    for task, result in zip(tasks, results, strict=True):
        row, reviews = await service.tasks.get(task.id)
        if not isinstance(result, Exception):
            assert row.status == "cancelled"
            assert [r.status for r in reviews if r.status == "open"] == [], reviews


async def test_cancellations_that_lose_a_race_say_the_task_is_cancelled(
    service: Service, until: Until
) -> None:
    """Twenty cancellations of one task at once: one applies; each of the others is refused
    with the task's status as it is now, not as it was read before the winner's commit."""
    admin = Principal("ops", frozenset({"admin"}))
    for _ in range(5):
        task, _ = await service.tasks.submit("x")
        await until(task.id, waiting(1))
        results = await asyncio.gather(
            *(service.tasks.cancel(task.id, by=admin) for _ in range(20)), return_exceptions=True
        )
        lost = [r for r in results if isinstance(r, Exception)]
        assert len(lost) == 19, results
        for refused in lost:
            assert isinstance(refused, Conflict) and str(refused).startswith("task is cancelled:")


async def test_non_json_shared_fails_the_task_naming_the_key(
    service: Service, until: Until
) -> None:
    task, _ = await service.tasks.submit("x", flow="bad")
    failed, _ = await until(task.id, lambda t, r: t.status == "failed")
    assert "shared['bad']" in failed.error and "set" in failed.error


async def test_node_exception_fails_the_task(service: Service, until: Until) -> None:
    task, _ = await service.tasks.submit("x", flow="exploding")
    failed, _ = await until(task.id, lambda t, r: t.status == "failed")
    assert failed.error == "ValueError: the model is down"
    assert (await events_of(service, task.id))[-1][0] == "task.failed"


async def test_flow_without_review_completes(service: Service, until: Until) -> None:
    task, _ = await service.tasks.submit({"a": 1}, flow="echo")
    done, _ = await until(task.id, lambda t, r: t.status == "completed")
    assert json.loads(done.result) == {"echo": {"a": 1}}


async def test_bad_requests_change_nothing(service: Service) -> None:
    before = await service.store.last_event_id()
    for empty in ("", None, {}, []):
        with pytest.raises(Invalid):
            await service.tasks.submit(empty)
    with pytest.raises(Invalid, match="unknown flow"):
        await service.tasks.submit("x", flow="nope")
    for blank in ("", "  "):  # not the default: whoever sent it meant some flow
        with pytest.raises(Invalid, match=r"^flow is empty: name one this server runs \("):
            await service.tasks.submit("x", flow=blank)
    with pytest.raises(NotFound):
        await service.tasks.get("nope")
    with pytest.raises(NotFound):
        await service.tasks.decide("nope", "approve")
    with pytest.raises(NotFound):
        await service.tasks.cancel("nope")
    assert await service.store.last_event_id() == before
    assert (await service.tasks.list_tasks(None, 10, 0))[1] == 0


async def test_idempotent_submit(service: Service) -> None:
    first, created = await service.tasks.submit("x", idempotency_key="k1")
    again, created_again = await service.tasks.submit("x", idempotency_key="k1")
    assert created and not created_again and again.id == first.id
    with pytest.raises(Conflict, match="different request"):
        await service.tasks.submit("y", idempotency_key="k1")
    assert (await service.tasks.list_tasks(None, 10, 0))[1] == 1


async def test_concurrent_submits_with_one_key_make_one_task(service: Service) -> None:
    """On PostgreSQL these race on several writers: the losers' inserts break the unique
    key, and they answer with the winner's task instead of an error."""
    answers = await asyncio.gather(
        *(service.tasks.submit("x", idempotency_key="same") for _ in range(20))
    )
    assert len({task.id for task, _ in answers}) == 1
    assert sum(created for _, created in answers) == 1
    assert (await service.tasks.list_tasks(None, 10, 0))[1] == 1


async def test_live_subscription_sees_every_event_in_order(service: Service, until: Until) -> None:
    task, _ = await service.tasks.submit("x")
    seen: list[int] = []

    async def follow() -> None:
        async for event in service.broker.subscribe(task.id, 0, heartbeat=5):
            assert event is not None
            seen.append(event.id)
            if event.type == "task.completed":
                return

    follower = asyncio.create_task(follow())
    _, reviews = await until(task.id, waiting(1))
    await service.tasks.decide(reviews[0].id, "approve")
    await asyncio.wait_for(follower, 10)
    assert seen == [r.id for r in await service.store.events_after(0, task.id)]


async def test_idle_subscription_gets_heartbeats(service: Service) -> None:
    stream = service.broker.subscribe("no-such-task", service.broker.last_id, heartbeat=0.05)
    assert await asyncio.wait_for(anext(stream), 2) is None
    await stream.aclose()  # type: ignore[attr-defined]


def test_flow_specs() -> None:
    name, factory = load_factory(f"{FLOWS}:create_echo_flow")
    assert name == "echo" and callable(factory)
    assert load_factory(f"mine={FLOWS}:create_echo_flow")[0] == "mine"
    for bad in ("nocolon", f"{FLOWS}:missing", "no.such.module:f"):
        with pytest.raises(BadFlowSpec):
            load_factory(bad)


def test_a_flow_spec_may_name_a_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`path/to/file.py:factory`, relative to the working directory, as the LLM example is
    served (`--flow examples/llm_review.py:create_llm_review_flow`)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "mine.py").write_text(
        "from pocketflow import AsyncFlow, Node\n\n"
        "def create_tiny_flow():\n    return AsyncFlow(start=Node())\n"
    )
    name, factory = load_factory("flows/mine.py:create_tiny_flow")
    assert name == "tiny" and load_factory("flows/mine.py:create_tiny_flow")[1] is factory
    assert load_factory("other=flows/mine.py:create_tiny_flow")[0] == "other"
    with pytest.raises(BadFlowSpec, match="cannot load flow 'flows/gone.py:f': no file"):
        load_factory("flows/gone.py:f")
    with pytest.raises(BadFlowSpec, match="has no attribute 'missing'"):
        load_factory("flows/mine.py:missing")


async def test_cancel_stops_a_running_node(migrated_database: Callable[[], str]) -> None:
    """A cancelled task's node stops within a lease renewal, freeing its worker slot."""
    settings = Settings(
        database_url=migrated_database(),
        process_delay=60,
        concurrency=1,
        lease_seconds=0.6,
        poll_interval=0.05,
        flows=[f"{FLOWS}:create_echo_flow"],
    )
    svc = Service(settings)
    await svc.start()
    try:
        slow, _ = await svc.tasks.submit("sixty seconds of work")
        for _ in range(200):
            events = await events_of(svc, slow.id)
            if any(t == "node.started" for t, _ in events):
                break
            await asyncio.sleep(0.02)
        await svc.tasks.cancel(slow.id)
        nxt, _ = await svc.tasks.submit("next in line", flow="echo")
        for _ in range(150):  # 3 s, against the cancelled node's 60 s
            task, _ = await svc.tasks.get(nxt.id)
            if task.status == "completed":
                break
            await asyncio.sleep(0.02)
        assert task.status == "completed", "the cancelled node still holds the worker slot"
        cancelled, _ = await svc.tasks.get(slow.id)
        assert cancelled.status == "cancelled"
        types = [t for t, _ in await events_of(svc, slow.id)]
        assert "node.finished" not in types and types[-1] == "task.cancelled"
    finally:
        await svc.stop()


async def test_a_failed_task_can_be_retried_once_failed(service: Service, until: Until) -> None:
    task, _ = await service.tasks.submit("x", flow="flaky")
    failed, _ = await until(task.id, lambda t, r: t.status == "failed")
    assert failed.error == "RuntimeError: flaky"
    retried = await service.tasks.retry(task.id, by=Principal("ops", frozenset({"admin"})))
    assert retried.status == "queued" and retried.error is None
    done, _ = await until(task.id, lambda t, r: t.status == "completed")
    assert json.loads(done.result or "null") == "fine"
    types = [t for t, _ in await events_of(service, task.id)]
    assert types.count("task.failed") == 1 and types.count("task.retried") == 1
    assert types.index("task.retried") > types.index("task.failed")
    with pytest.raises(Conflict, match="only a failed task"):
        await service.tasks.retry(task.id)
    with pytest.raises(NotFound):
        await service.tasks.retry("00000000-0000-0000-0000-000000000000")


async def test_a_task_is_found_by_a_unique_prefix_of_its_id(service: Service) -> None:
    tasks = [(await service.tasks.submit(f"x{i}", flow="echo"))[0] for i in range(3)]
    for task in tasks:
        found, _ = await service.tasks.get(task.id)
        assert found.id == task.id
    last = tasks[-1]
    # The shortest prefix that names only `last`: ids are time-ordered, so they share a head.
    for n in range(4, 37):
        if sum(t.id.startswith(last.id[:n]) for t in tasks) == 1:
            break
    found, _ = await service.tasks.get(last.id[:n].upper())
    assert found.id == last.id
    shared_head = tasks[0].id[:4]  # the top of a millisecond clock: it changes every 50 days
    assert all(t.id.startswith(shared_head) for t in tasks)
    with pytest.raises(Conflict, match="more than one task"):
        await service.tasks.get(shared_head)
    # The random end of an id names one task after a few characters.
    for task in tasks:
        found, _ = await service.tasks.get(task.id[-8:])
        assert found.id == task.id
    with pytest.raises(NotFound, match="at least 4 characters"):
        await service.tasks.get(last.id[:3])
    with pytest.raises(NotFound):
        await service.tasks.get("zzzz")
    with pytest.raises(NotFound):
        await service.tasks.get("ffff")


async def test_a_prefix_names_only_the_tasks_its_caller_may_see(service: Service) -> None:
    """Other people's tasks are not there for a caller, by prefix too: a part of an id that
    they share with someone else's task names the caller's own, and a part of only others'
    ids is not found (a 409 "more than one" would say that they exist)."""
    sue, sam = (Principal(n, frozenset({"submitter"})) for n in ("sue", "sam"))
    mine = (await service.tasks.submit("mine", flow="echo", by=sue))[0]
    theirs = [(await service.tasks.submit(f"x{i}", flow="echo", by=sam))[0] for i in range(2)]
    shared_head = mine.id[:4]  # (the top of the clock: every task here has it)
    assert all(t.id.startswith(shared_head) for t in theirs)
    found, _ = await service.tasks.get(shared_head, by=sue)
    assert found.id == mine.id
    with pytest.raises(Conflict, match="more than one task"):
        await service.tasks.get(shared_head, by=sam)
    for task in theirs:
        with pytest.raises(NotFound, match="no task"):
            await service.tasks.get(task.id[-8:], by=sue)
        assert (await service.tasks.get(task.id[-8:], by=sam))[0].id == task.id
    nobody = Principal("nobody", frozenset())
    with pytest.raises(NotFound, match="no task"):
        await service.tasks.get(shared_head, by=nobody)


async def test_a_process_without_streams_reads_no_events(
    migrated_database: Callable[[], str],
) -> None:
    """`hitl worker` serves no event streams: it runs tasks, and never reads the events back
    (on PostgreSQL, each commit of every process would otherwise cost it a query)."""
    settings = Settings(database_url=migrated_database(), process_delay=0, poll_interval=0.05)
    svc = Service(settings, streams=False)
    await svc.start()
    try:
        task, _ = await svc.tasks.submit("x")
        for _ in range(200):
            if (await svc.tasks.get(task.id))[0].status == "waiting_for_review":
                break
            await asyncio.sleep(0.02)
        assert len(await events_of(svc, task.id)) > 2
        assert svc.broker.last_id == 0 and not svc.broker._events
    finally:
        await svc.stop()
