"""Review deadlines: decided by default (or failing the task) once, whoever else is looking."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from functools import partial
from typing import Any

import pytest

from hitl.config import Settings
from hitl.service import Conflict, Invalid, ReviewRow, Service, TaskRow
from hitl.service.principal import Principal
from hitl.store import Tx

Make = Callable[..., Awaitable[Service]]
LATER = 7200.0  # a deadline far enough away that only an explicit `fire_due(now=...)` reaches it


@pytest.fixture
async def make(migrated_database: Callable[[], str]) -> AsyncIterator[Make]:
    url = migrated_database()
    started: list[Service] = []

    async def start(**settings: Any) -> Service:
        svc = Service(Settings(database_url=url, process_delay=0, poll_interval=0.05, **settings))
        await svc.start()
        started.append(svc)
        return svc

    yield start
    for svc in started:
        await svc.stop()


async def until(svc: Service, task_id: str, status: str) -> tuple[TaskRow, list[ReviewRow]]:
    for _ in range(250):
        task, reviews = await svc.tasks.get(task_id)
        if task.status == status:
            return task, reviews
        await asyncio.sleep(0.02)
    raise AssertionError(f"task {task_id} is {task.status}, never {status}")


async def event_types(svc: Service, task_id: str) -> list[str]:
    return [r.type for r in await svc.store.events_after(0, task_id)]


async def test_a_deadline_decides_with_its_default(make: Make) -> None:
    svc = await make(review_deadline_seconds=0.3, on_deadline="approve")
    task, _ = await svc.tasks.submit("decide me")
    started = time.time()
    done, reviews = await until(svc, task.id, "completed")
    assert time.time() - started >= 0.3
    [review] = reviews
    assert review.decision == "approve" and review.decided_by == "deadline"
    assert "deadline" in review.comment
    assert review.deadline == pytest.approx(review.created_at + 0.3, abs=0.1)
    assert json.loads(done.result) == json.loads(review.request)["output"]
    types = await event_types(svc, task.id)
    assert types.count("review.decided") == 1 and types.count("task.completed") == 1


async def test_a_deadline_without_default_fails_the_task(make: Make) -> None:
    svc = await make(review_deadline_seconds=0.3)
    task, _ = await svc.tasks.submit("nobody answers")
    failed, [review] = await until(svc, task.id, "failed")
    assert "no decision by its deadline" in failed.error
    assert review.status == "expired" and review.decision is None
    with pytest.raises(Conflict):
        await svc.tasks.decide(review.id, "approve", by=Principal("late", frozenset({"reviewer"})))
    types = await event_types(svc, task.id)
    assert types.count("task.failed") == 1 and "review.decided" not in types


async def test_a_decision_in_time_stops_the_deadline(make: Make) -> None:
    svc = await make(review_deadline_seconds=LATER, on_deadline="approve")
    task, _ = await svc.tasks.submit("in time")
    _, [review] = await until(svc, task.id, "waiting_for_review")
    await svc.tasks.decide(review.id, "approve", by=Principal("ann", frozenset({"reviewer"})))
    await until(svc, task.id, "completed")
    assert svc.deadlines is not None
    assert await svc.deadlines.fire_due(now=time.time() + 2 * LATER) == 0


async def waiting_tasks(svc: Service, n: int) -> list[ReviewRow]:
    tasks = [(await svc.tasks.submit(f"task {i}"))[0] for i in range(n)]
    return [(await until(svc, t.id, "waiting_for_review"))[1][0] for t in tasks]


async def test_deadlines_fire_once_across_processes(make: Make) -> None:
    services = [await make(review_deadline_seconds=LATER, on_deadline="approve") for _ in range(3)]
    reviews = await waiting_tasks(services[0], 30)
    later = time.time() + 2 * LATER
    fired = await asyncio.gather(
        *(s.deadlines.fire_due(now=later) for s in services if s.deadlines)
    )
    assert sum(fired) == 30
    for review in reviews:
        await until(services[0], review.task_id, "completed")
        types = await event_types(services[0], review.task_id)
        assert types.count("review.decided") == 1 and types.count("task.completed") == 1


async def test_a_person_racing_the_deadline_gives_one_decision(make: Make) -> None:
    svc = await make(review_deadline_seconds=LATER, on_deadline="approve")
    reviews = await waiting_tasks(svc, 20)
    assert svc.deadlines is not None

    async def person(review: ReviewRow) -> bool:
        try:
            await svc.tasks.decide(
                review.id, "approve", by=Principal("ann", frozenset({"reviewer"}))
            )
        except Conflict:
            return False
        return True

    later = time.time() + 2 * LATER
    results = await asyncio.gather(svc.deadlines.fire_due(now=later), *(person(r) for r in reviews))
    by_deadline, by_person = results[0], results[1:]
    assert by_deadline + sum(by_person) == 20
    for review, won in zip(reviews, by_person, strict=True):
        decided = await svc.tasks.get_review(review.id)
        assert decided.decided_by == ("ann" if won else "deadline")
        types = await event_types(svc, review.task_id)
        assert types.count("review.decided") == 1


@pytest.mark.parametrize(
    "default,ends,action",
    [("approve", "completed", "review.decide"), (None, "failed", "review.expire")],
)
async def test_what_a_deadline_does_is_in_the_audit_log(
    make: Make, default: str | None, ends: str, action: str
) -> None:
    """A decision by default, or a review expired with its task, is audited as a person's
    decision is: by nobody signed in, but by the deadline."""
    svc = await make(review_deadline_seconds=LATER, on_deadline=default)
    task, _ = await svc.tasks.submit("nobody answers")
    _, [review] = await until(svc, task.id, "waiting_for_review")
    assert await svc.deadlines.fire_due(now=time.time() + 2 * LATER) == 1
    await until(svc, task.id, ends)
    [entry] = await svc.tasks.audit(task.id)
    assert (entry.actor, entry.action, entry.target) == (None, action, review.id)
    said = {"task_id": task.id, "round": 1, "by": "deadline"}
    if default is not None:
        comment = f"no decision by the deadline: {default} by default"
        said |= {"decision": default, "comment": comment}
    assert json.loads(entry.detail or "") == said


async def test_a_default_that_a_form_blocks_is_refused_and_a_stored_one_fails_its_task(
    make: Make,
) -> None:
    """A deadline's default is made with no form: a review whose form a person must fill in to
    make that decision is refused when asked for. One stored before that (here: written into
    the database) is read, listed and decided by people as any other; if nobody decides it,
    its deadline fails its task, once, instead of failing every second for ever."""
    svc = await make()
    form = [{"name": "why", "type": "text", "required": True, "decisions": ["approve"]}]
    spec = {"output": "x", "form": form, "deadline_seconds": 60, "on_deadline": "approve"}
    with pytest.raises(Invalid, match="on_deadline 'approve' could never be applied: nobody fills"):
        await svc.tasks.create_review(spec)
    fine = {**spec, "on_deadline": "reject"}  # (the field is asked for approvals only)
    stored: list[str] = []
    for _ in range(2):
        task, _ = await svc.tasks.create_review(fine)
        _, [review] = await until(svc, task.id, "waiting_for_review")
        request = json.dumps(json.loads(review.request) | {"on_deadline": "approve"})
        await svc.store.write(partial(_store_request, review_id=review.id, request=request))
        stored.append(task.id)
    ann = Principal("ann", frozenset({"reviewer"}))
    listed, _ = await svc.tasks.list_reviews("open", 50, 0, ann, decidable=True)
    assert len(listed) == 2
    _, [first] = await svc.tasks.get(stored[0])
    await svc.tasks.decide(first.id, "approve", by=ann, form={"why": "checked"})
    await until(svc, stored[0], "completed")
    assert await svc.deadlines.fire_due(now=time.time() + 120) == 1
    failed, [expired] = await until(svc, stored[1], "failed")
    assert expired.status == "expired"
    assert "its default 'approve' could not be made: form.why: required" in (failed.error or "")
    assert await svc.deadlines.fire_due(now=time.time() + 120) == 0


def _store_request(tx: Tx, review_id: str, request: str) -> None:
    assert tx.update_review(review_id, ["open"], request=request)


def test_default_flow_deadline_settings_are_checked() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="needs HITL_REVIEW_DEADLINE_SECONDS"):
        Settings(on_deadline="approve")
    with pytest.raises(ValidationError, match="approve"):
        Settings(review_deadline_seconds=5, on_deadline="reject")  # would loop for ever
    with pytest.raises(ValidationError):
        Settings(review_deadline_seconds=0)
    assert Settings(review_deadline_seconds=5, on_deadline="approve").on_deadline == "approve"
