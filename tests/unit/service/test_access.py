"""The queue's "decidable" filter is `access.may_decide`'s rule run as SQL (`access.decider`):
it must keep exactly the reviews `may_decide` allows, for every kind of principal and review,
including those someone has voted on already."""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import AsyncIterator, Callable

import pytest

from hitl.flow import ReviewRequest
from hitl.service import access
from hitl.service.principal import Principal
from hitl.service.tasks import TaskService
from hitl.store import ReviewRow, SqlStore, TaskRow, Tx, VoteRow

CREATORS = ["max", "ann", "a_b", None]
# Who has voted on the review already (a quorum of 3: not decided yet).
VOTERS: list[tuple[str, ...]] = [(), ("ann",), ("max", "a_b")]
ASSIGNEES: list[tuple[str, ...]] = [
    (),
    ("max",),
    ("role:reviewer",),
    ("role:admin",),
    ("rita", "role:submitter"),
    ("aXb",),  # `_` in a name is a character, not LIKE's wildcard
    ("a_b",),
    ("max%",),
]
PEOPLE = [
    None,
    Principal("max", frozenset({"submitter", "reviewer"})),
    Principal("ann", frozenset({"reviewer"})),
    Principal("rita", frozenset({"reviewer", "submitter"})),
    Principal("a_b", frozenset({"reviewer"})),
    Principal("boss", frozenset({"admin"})),
    Principal("ann", frozenset({"admin", "reviewer"})),  # an admin's own tasks
]


@pytest.fixture
async def store(migrated_database: Callable[[], str]) -> AsyncIterator[SqlStore]:
    url = migrated_database()
    s = SqlStore(url)
    yield s
    await s.close()


async def test_the_decidable_filter_keeps_what_may_decide_allows(store: SqlStore) -> None:
    kinds = list(itertools.product(CREATORS, ASSIGNEES, [False, True], VOTERS))
    now = time.time()
    votes: dict[str, list[VoteRow]] = {}

    def write(tx: Tx) -> None:
        for n, (creator, assignees, own, voters) in enumerate(kinds):
            at = now + n
            task = TaskRow(f"t{n}", "feedback", "waiting_for_review", '"x"', "{}", at, at)
            task.created_by, task.round = creator, 1
            tx.insert_task(task)
            request = ReviewRequest(  # (half hold a NUL, which PostgreSQL's JSON refuses)
                output="x\0" if n % 2 else "x", assignees=assignees, allow_self_review=own, quorum=3
            )
            assignee = f",{','.join(assignees)}," if assignees else None
            text = json.dumps(request.to_json())
            tx.insert_review(ReviewRow(f"r{n}", f"t{n}", 1, "open", "review", text, at, assignee))
            votes[f"r{n}"] = [VoteRow(f"r{n}", voter, "approve", at) for voter in voters]
            tx.insert_all(votes[f"r{n}"])

    await store.write(write)
    every, count = await store.list_reviews("open", 1000, 0)
    assert count == len(kinds)
    for who in PEOPLE:
        allowed = [
            r.id for r in every if TaskService.may_decide(who, r, r.task_created_by, votes[r.id])
        ]
        rows, count = await store.list_reviews("open", 1000, 0, decider=access.decider(who))
        assert [r.id for r in rows] == allowed, who
        assert count == len(allowed), who
        if who is not None and who.name != "boss":
            assert 0 < len(allowed) < len(kinds), who  # the rule narrowed, but not to nothing
