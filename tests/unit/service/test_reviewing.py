"""Deciding safely: stale decisions, required comments, forms, assignees and claims — on a
real SQLite file and on PostgreSQL, with a clock the tests move (no sleeps for claims)."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from hitl.config import Settings
from hitl.flow import content_hash
from hitl.service import (
    Conflict,
    Forbidden,
    Invalid,
    NotFound,
    ReviewRow,
    Seen,
    Service,
    TaskRow,
)
from hitl.service.principal import Principal
from hitl.service.tasks import CLAIM_SECONDS

FLOWS = "tests.unit.service.flows_for_tests"

ANN = Principal("ann", frozenset({"reviewer"}))
BOB = Principal("bob", frozenset({"reviewer"}))
RITA = Principal("rita", frozenset({"reviewer"}))
ADMIN = Principal("root", frozenset({"admin"}))
BOSS = Principal("boss", frozenset({"reviewer"}))
SAM = Principal("sam", frozenset({"submitter"}))


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def service(migrated_database: Callable[[], str]) -> AsyncIterator[Service]:
    settings = Settings(
        database_url=migrated_database(),
        process_delay=0,
        poll_interval=0.05,
        flows=[
            f"{FLOWS}:create_careful_flow",
            f"{FLOWS}:create_ritas_flow",
            f"{FLOWS}:create_panel_flow",
            f"patient={FLOWS}:create_patient_panel_flow",
            f"capped={FLOWS}:create_capped_flow",
            f"escalating={FLOWS}:create_escalating_flow",
            f"bulk={FLOWS}:create_bulk_flow",
            f"{FLOWS}:create_strict_flow",
        ],
    )
    svc = Service(settings)
    await svc.start()
    yield svc
    await svc.stop()


@pytest.fixture
def clock(service: Service) -> Clock:
    clock = Clock()
    service.tasks.clock = clock
    return clock


async def open_review(
    service: Service, flow: str | None = None, **submit: Any
) -> tuple[TaskRow, ReviewRow]:
    task, _ = await service.tasks.submit("x", flow=flow, by=SAM, **submit)
    for _ in range(500):
        row, reviews = await service.tasks.get(task.id)
        if row.status == "waiting_for_review" and reviews:
            return row, reviews[-1]
        await asyncio.sleep(0.01)
    raise AssertionError(f"task {task.id} never asked for a review")


async def finished(service: Service, task_id: str) -> TaskRow:
    for _ in range(500):
        row, _ = await service.tasks.get(task_id)
        if row.status in ("completed", "failed"):
            return row
        await asyncio.sleep(0.01)
    raise AssertionError(f"task {task_id} never finished")


def shown(review: ReviewRow) -> str:
    return content_hash(json.loads(review.request)["output"])


# -- stale decisions --------------------------------------------------------------------------


async def test_a_decision_on_another_round_or_other_content_is_refused(service: Service) -> None:
    task, review = await open_review(service)
    with pytest.raises(Conflict, match="made on round 2, but the review open now is round 1"):
        await service.tasks.decide(review.id, "approve", by=ANN, seen=Seen(round=2))
    with pytest.raises(Conflict, match="other content than this review shows"):
        await service.tasks.decide(review.id, "approve", by=ANN, seen=Seen(1, "0" * 64))
    unchanged, _ = await service.tasks.get(task.id)
    assert unchanged.status == "waiting_for_review"
    await service.tasks.decide(review.id, "reject", "more", by=ANN, seen=Seen(1, shown(review)))


async def test_the_cookbook_feedback_is_refused_for_an_older_round(service: Service) -> None:
    """A client that saw round 1 and approves after round 2 was asked gets 409, not an approval
    of what it never saw."""
    task, first = await open_review(service)
    await service.tasks.decide_task(task.id, "reject", "again", by=ANN, seen=Seen(1, shown(first)))
    for _ in range(500):
        _, reviews = await service.tasks.get(task.id)
        if len(reviews) == 2:
            break
        await asyncio.sleep(0.01)
    with pytest.raises(Conflict, match="made on round 1, but the review open now is round 2"):
        await service.tasks.decide_task(task.id, "approve", by=ANN, seen=Seen(1, shown(first)))
    second = reviews[-1]
    assert shown(second) != shown(first)  # the reprocessed output
    await service.tasks.decide_task(task.id, "approve", by=ANN, seen=Seen(2, shown(second)))
    assert (await finished(service, task.id)).status == "completed"


# -- comments and forms -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "action,comment,form,problem",
    [
        ("reject", None, None, "comment: this review needs a comment to reject"),
        ("reject", "  ", None, "comment: this review needs a comment to reject"),
        ("approve", None, None, "form.score: required to approve"),
        ("approve", None, {"score": 9}, "form.score: must be at most 5"),
        ("approve", None, {"score": 10**400}, "form.score: must be at most 5"),  # (not a 500)
        ("approve", None, {"score": -(10**400)}, "form.score: must be at least 1"),
        ("approve", None, {"score": 2.5}, "form.score: must be a whole number"),
        ("approve", None, {"score": "4"}, "form.score: must be a number"),
        ("approve", None, {"score": 3, "reason": "tone"}, "form.reason: no such field"),
        ("reject", "no", {"reason": "style"}, "form.reason: must be one of ['tone', 'facts']"),
        ("approve", None, {"score": 3, "note": "x" * 21}, "form.note: at most 20 characters"),
    ],
)
async def test_a_decision_that_misses_what_the_review_asks_is_invalid(
    service: Service, action: str, comment: str | None, form: Any, problem: str
) -> None:
    task, review = await open_review(service, "careful")
    with pytest.raises(Invalid) as refused:
        await service.tasks.decide(review.id, action, comment, by=ANN, form=form)
    assert str(refused.value.message).startswith(problem)
    row, reviews = await service.tasks.get(task.id)
    assert row.status == "waiting_for_review" and reviews[-1].status == "open"


@pytest.mark.parametrize("action", ["approve", "reject"])
async def test_an_edited_output_goes_only_with_an_edit(service: Service, action: str) -> None:
    """An approval or rejection that carries an edited output is refused: it would be recorded
    (on the review, its event, the audit log) as an edit that the task never received."""
    task, review = await open_review(service)
    problem = f"edited_output goes only with the decision 'edit', not {action!r}"
    with pytest.raises(Invalid, match=problem):
        await service.tasks.decide(review.id, action, "why", edited_output="changed", by=ANN)
    with pytest.raises(Invalid, match=problem):
        await service.tasks.decide_task(task.id, action, "why", edited_output="changed", by=ANN)
    row, reviews = await service.tasks.get(task.id)
    assert row.status == "waiting_for_review" and reviews[-1].status == "open"
    decided = await service.tasks.decide(review.id, "edit", edited_output="changed", by=ANN)
    assert decided.decision == "edit" and json.loads(decided.edited_output or "null") == "changed"


async def test_what_the_cookbook_or_a_bulk_decision_cannot_carry_says_where_to_go(
    service: Service,
) -> None:
    """The cookbook's /feedback has no comment or form, and a bulk decision no form: a review
    that needs one says so, and names the call that carries it."""
    task, review = await open_review(service, "careful")  # a comment to reject, a form to approve
    alone = re.escape("decide it with POST /api/v1/reviews/{id}/decision")
    with pytest.raises(Invalid, match=rf"needs a comment to reject; .*/feedback.*{alone}"):
        await service.tasks.decide_task(task.id, "reject", by=ANN)
    with pytest.raises(Invalid, match=rf"form.score: required to approve; .*{alone}"):
        await service.tasks.decide_task(task.id, "approve", by=ANN)
    form = [{"name": "why", "type": "text", "required": True}]
    bulk, _ = await service.tasks.create_review({"output": "x", "bulk": True, "form": form})
    _, [ballot] = await until_reviewed(service, bulk.id)
    [outcome] = await service.tasks.decide_many([ballot.id], "approve", by=ANN)
    assert isinstance(outcome, Invalid)
    said = "form.why: required to approve: decide this one alone, with POST /api/v1/reviews/"
    assert outcome.message == f"{said}{ballot.id}/decision"


async def until_reviewed(service: Service, task_id: str) -> tuple[TaskRow, list[ReviewRow]]:
    for _ in range(500):
        row, reviews = await service.tasks.get(task_id)
        if row.status == "waiting_for_review":
            return row, reviews
        await asyncio.sleep(0.01)
    raise AssertionError(f"task {task_id} never asked for a review")


async def test_a_form_reaches_post_and_is_recorded(service: Service) -> None:
    task, review = await open_review(service, "careful")
    request = json.loads(review.request)
    assert request["comment_required"] == ["reject"] and request["dangerous"] == ["reject"]
    assert [f["name"] for f in request["form"]] == ["score", "reason", "note"]
    decided = await service.tasks.decide(
        review.id, "approve", by=ANN, form={"score": 4, "note": "fine"}
    )
    assert json.loads(decided.form_values or "null") == {"score": 4, "note": "fine"}
    done = await finished(service, task.id)
    assert json.loads(done.result or "null") == {
        "action": "approve",
        "form": {"score": 4, "note": "fine"},
    }
    [entry] = [e for e in await service.identity.audit_log(0) if e.action == "review.decide"]
    detail = json.loads(entry.detail or "{}")
    assert detail["form"] == {"score": 4, "note": "fine"} and detail["round"] == 1
    assert detail["content_hash"] == shown(review)


# -- assignees --------------------------------------------------------------------------------


async def test_only_the_assignees_or_an_admin_decide_an_assigned_review(service: Service) -> None:
    _, review = await open_review(service, "ritas")
    with pytest.raises(Forbidden, match="assigned to rita: only they, or an admin"):
        await service.tasks.decide(review.id, "approve", by=ANN)
    seen = await service.tasks.get_review(review.id, by=ANN)  # others may read it
    assert seen.id == review.id
    await service.tasks.decide(review.id, "approve", by=RITA)
    _, other = await open_review(service, "ritas")
    await service.tasks.decide(other.id, "approve", by=ADMIN)


async def test_a_submission_names_who_decides_when_the_node_does_not(service: Service) -> None:
    _, review = await open_review(service, "careful", assignees=["bob", "role:admin"])
    assert json.loads(review.request)["assignees"] == ["bob", "role:admin"]
    with pytest.raises(Forbidden, match="assigned to bob, role:admin"):
        await service.tasks.decide(review.id, "approve", by=ANN, form={"score": 1})
    await service.tasks.decide(review.id, "approve", by=BOB, form={"score": 1})


@pytest.mark.parametrize(
    "assignees,problem",
    [
        (["role:boss"], "no role 'boss'"),
        ([""], "is not a user name"),
        (["x"] * 51, "at most 50"),
        (["rita\0"], "no NUL"),  # (PostgreSQL: accepted, then the task failed)
    ],
)
async def test_bad_assignees_are_refused_at_submission(
    service: Service, assignees: list[str], problem: str
) -> None:
    with pytest.raises(Invalid, match=problem):
        await service.tasks.submit("x", by=SAM, assignees=assignees)


# -- claims -----------------------------------------------------------------------------------


async def test_claims_and_decisions_racing_on_one_review_never_both_win(
    service: Service,
) -> None:
    """Two claims of one review at once, or a claim and someone else's decision: one wins,
    the other is refused. (On PostgreSQL the second read the review before the first's
    commit, and both went through: ann took bob's claim, or decided under it.)"""
    for _ in range(15):
        _, review = await open_review(service)
        claims = await asyncio.gather(
            service.tasks.claim_review(review.id, BOB),
            service.tasks.claim_review(review.id, ANN),
            return_exceptions=True,
        )
        assert sum(isinstance(r, Conflict) for r in claims) == 1, claims
        _, review = await open_review(service)
        raced = await asyncio.gather(
            service.tasks.claim_review(review.id, BOB),
            service.tasks.decide(review.id, "approve", by=ANN),
            return_exceptions=True,
        )
        assert sum(isinstance(r, Conflict) for r in raced) == 1, raced


async def test_a_claim_holds_off_others_until_taken_over_or_expired(
    service: Service, clock: Clock
) -> None:
    _, review = await open_review(service)
    held = await service.tasks.claim_review(review.id, ANN)
    assert held.claimed_by == "ann" and held.claimed_until == clock.now + CLAIM_SECONDS
    with pytest.raises(Conflict, match="ann is reviewing this"):
        await service.tasks.claim_review(review.id, BOB)
    with pytest.raises(Conflict, match="ann is reviewing this .* take the claim over"):
        await service.tasks.decide(review.id, "approve", by=BOB)
    clock.now += 60
    renewed = await service.tasks.claim_review(review.id, ANN)  # the page renews it
    assert renewed.claimed_until == clock.now + CLAIM_SECONDS
    taken = await service.tasks.claim_review(review.id, BOB, take_over=True)
    assert taken.claimed_by == "bob"
    with pytest.raises(Conflict, match="bob is reviewing this"):
        await service.tasks.decide(review.id, "approve", by=ANN)
    clock.now += CLAIM_SECONDS + 1  # bob left without releasing it: it expired
    await service.tasks.decide(review.id, "approve", by=ANN)


async def test_a_claim_is_released_by_its_holder_or_an_admin(
    service: Service, clock: Clock
) -> None:
    _, review = await open_review(service)
    await service.tasks.claim_review(review.id, ANN)
    with pytest.raises(Conflict, match="ann holds the claim on this review, not bob"):
        await service.tasks.release_review(review.id, BOB)
    released = await service.tasks.release_review(review.id, ANN)
    assert released.claimed_by is None
    await service.tasks.claim_review(review.id, BOB)
    await service.tasks.release_review(review.id, ADMIN)
    await service.tasks.decide(review.id, "approve", by=ANN)
    with pytest.raises(Conflict, match="already decided"):
        await service.tasks.claim_review(review.id, ANN)


async def test_claims_are_events_that_say_who(service: Service, clock: Clock) -> None:
    task, review = await open_review(service)
    await service.tasks.claim_review(review.id, ANN)
    await service.tasks.claim_review(review.id, BOB, take_over=True)
    await service.tasks.release_review(review.id, BOB)
    events = [
        (e.type, json.loads(e.data))
        for e in await service.store.events_after(0, task.id, 100)
        if e.type.startswith("review.")
    ]
    assert [t for t, _ in events] == [
        "review.requested",
        "review.claimed",
        "review.claimed",
        "review.released",
    ]
    assert events[0][1]["content_hash"] == shown(review)
    assert events[1][1]["claimed_by"] == "ann" and "taken_from" not in events[1][1]
    assert events[2][1]["claimed_by"] == "bob" and events[2][1]["taken_from"] == "ann"


async def test_who_may_not_decide_may_not_claim(service: Service) -> None:
    _, review = await open_review(service, "ritas")
    with pytest.raises(Forbidden, match="assigned to rita"):
        await service.tasks.claim_review(review.id, ANN)
    assert (await service.tasks.claim_review(review.id, RITA)).claimed_by == "rita"


# -- the queue --------------------------------------------------------------------------------


async def test_the_queue_filters_by_flow_text_and_assignee_and_sorts(service: Service) -> None:
    plain, _ = await open_review(service)  # feedback: "Revision 1: X"
    careful, _ = await open_review(service, "careful")  # "draft of x"
    ritas, _ = await open_review(service, "ritas")
    task, _ = await service.tasks.submit("Grüße 李雷 100% sure", by=SAM)
    for _ in range(500):
        row, reviews = await service.tasks.get(task.id)
        if reviews:
            break
        await asyncio.sleep(0.01)
    unicode = row

    async def ids(**filters: Any) -> list[str]:
        rows, count = await service.tasks.list_reviews("open", 50, 0, ANN, **filters)
        assert count == len(rows)
        return [r.task_id for r in rows]

    assert await ids() == [plain.id, careful.id, ritas.id, unicode.id]  # oldest first
    assert await ids(order="newest") == [unicode.id, ritas.id, careful.id, plain.id]
    assert await ids(flow="careful") == [careful.id]
    assert await ids(text="DRAFT OF") == [careful.id]  # any case, the output
    assert await ids(text="score it") == [careful.id]  # the prompt
    assert await ids(text="李雷") == [unicode.id]  # the input, not ASCII
    assert await ids(text="100%") == [unicode.id]  # % is a character, not a wildcard
    assert await ids(text="1_0") == []
    assert await ids(text="nowhere") == []
    rows, _ = await service.tasks.list_reviews("open", 50, 0, RITA, mine=True)
    assert [r.task_id for r in rows] == [ritas.id]
    assert rows[0].flow == "ritas" and json.loads(rows[0].task_input) == "x"
    assert await ids(mine=True) == []  # ann: nothing is assigned to her
    with pytest.raises(Invalid, match="unknown flow 'nope'"):
        await ids(flow="nope")
    assert await ids(flow="") == await ids()  # an empty filter is none, as an empty text is
    page, count = await service.tasks.list_reviews("open", 2, 2, ANN)
    assert [r.task_id for r in page] == [ritas.id, unicode.id] and count == 4


async def test_a_role_assignment_puts_the_review_in_that_role_s_queue(service: Service) -> None:
    task, _ = await open_review(service, "careful", assignees=["role:admin", "bob"])
    mine, _ = await service.tasks.list_reviews("open", 50, 0, ADMIN, mine=True)
    assert [r.task_id for r in mine] == [task.id]
    bobs, _ = await service.tasks.list_reviews("open", 50, 0, BOB, mine=True)
    assert [r.task_id for r in bobs] == [task.id]


async def test_the_queue_puts_the_nearest_deadline_first(
    migrated_database: Callable[[], str],
) -> None:
    settings = Settings(
        database_url=migrated_database(),
        process_delay=0,
        review_deadline_seconds=600,  # the default flow's reviews; the careful flow's have none
        flows=[f"{FLOWS}:create_careful_flow"],
    )
    svc = Service(settings)
    await svc.start()
    try:
        without, _ = await open_review(svc, "careful")
        soon, _ = await open_review(svc)
        rows, _ = await svc.tasks.list_reviews("open", 50, 0, ANN, order="deadline")
        assert [r.task_id for r in rows] == [soon.id, without.id]
        assert rows[0].deadline is not None and rows[1].deadline is None
        oldest, _ = await svc.tasks.list_reviews("open", 50, 0, ANN)
        assert [r.task_id for r in oldest] == [without.id, soon.id]
    finally:
        await svc.stop()


async def test_a_task_s_audit_has_its_decisions_and_changes(service: Service, clock: Clock) -> None:
    task, review = await open_review(service, "careful")
    await service.tasks.claim_review(review.id, ANN)
    await service.tasks.decide(
        review.id,
        "reject",
        "too long",
        by=ANN,
        seen=Seen(1, shown(review)),
        form={"reason": "tone"},
    )
    other, _ = await open_review(service)
    await service.tasks.cancel(other.id, by=ADMIN)
    entries = await service.tasks.audit(task.id, by=ANN)
    [decision] = [e for e in entries if e.action == "review.decide"]
    assert decision.actor == "ann" and decision.target == review.id
    detail = json.loads(decision.detail or "{}")
    assert detail == {
        "task_id": task.id,
        "round": 1,
        "decision": "reject",
        "comment": "too long",
        "form": {"reason": "tone"},
        "edited_output": None,
        "content_hash": shown(review),
        "claimed_by": "ann",
        "on_behalf_of": None,
    }
    assert all(e.target != other.id for e in entries)  # only this task's
    [cancel] = await service.tasks.audit(other.id, by=ADMIN)
    assert cancel.action == "task.cancel" and cancel.actor == "root"
    with pytest.raises(NotFound):
        await service.tasks.audit(other.id, by=Principal("eve", frozenset({"submitter"})))


async def test_who_may_decide_is_said_per_review(service: Service) -> None:
    """The pages show controls or a read-only view from this; the rules are access's."""
    task, review = await open_review(service, "ritas")
    may = service.tasks.may_decide
    assert may(RITA, review, task.created_by) and may(ADMIN, review, task.created_by)
    assert not may(ANN, review, task.created_by)  # not assigned
    assert not may(SAM, review, task.created_by)  # no reviewer role
    rows, _ = await service.tasks.list_reviews("open", 50, 0, ANN)
    assert rows[0].task_created_by == "sam"
    await service.tasks.decide(review.id, "approve", by=RITA)
    decided = await service.tasks.get_review(review.id)
    assert not may(RITA, decided, task.created_by)  # nothing left to decide


async def test_a_cancellation_says_why(service: Service) -> None:
    task, _ = await open_review(service)
    await service.tasks.cancel(task.id, by=ADMIN, reason="  sent by mistake ")
    [event] = [
        e for e in await service.store.events_after(0, task.id, 100) if e.type == "task.cancelled"
    ]
    assert json.loads(event.data)["reason"] == "sent by mistake"
    [entry] = await service.tasks.audit(task.id, by=ADMIN)
    assert json.loads(entry.detail or "{}") == {"reason": "sent by mistake"}


async def test_a_decision_on_behalf_of_someone_is_theirs_to_make(service: Service) -> None:
    """An admin records the decision of a person who phoned it in. It is theirs: they must be
    an enabled user who may make it (the review's assignee, a reviewer, not its submitter),
    and on a review that needs several approvals it is their vote, which counts once."""
    for name, roles in (("rita", ["reviewer"]), ("rob", ["reviewer"]), ("sue", ["submitter"])):
        await service.identity.add_user(name, roles)
    await service.identity.add_user("gone", ["reviewer"])
    await service.identity.disable_user("gone")
    task, review = await open_review(service, "ritas")  # assigned to rita
    refused: list[tuple[str, type[Exception], str]] = [
        ("nobody", Invalid, "on_behalf_of: no enabled user 'nobody'"),
        ("rita ", Invalid, "on_behalf_of: no enabled user 'rita '"),
        ("gone", Invalid, "on_behalf_of: no enabled user 'gone'"),
        ("sue", Forbidden, "on_behalf_of: sue may not decide reviews"),
        ("rob", Forbidden, "on_behalf_of: this review is assigned to rita"),
    ]
    for name, error, problem in refused:
        with pytest.raises(error, match=problem):
            await service.tasks.decide(review.id, "approve", by=ADMIN, on_behalf_of=name)
    row, reviews = await service.tasks.get(task.id)
    assert row.status == "waiting_for_review" and reviews[-1].status == "open"
    decided = await service.tasks.decide(review.id, "approve", by=ADMIN, on_behalf_of="rita")
    assert (decided.decided_by, decided.on_behalf_of) == ("root", "rita")

    panel, ballot = await open_review(service, "panel")  # two approvals
    await service.tasks.decide(ballot.id, "approve", by=RITA)
    with pytest.raises(Conflict, match="rita has voted on this review already"):
        await service.tasks.decide(ballot.id, "approve", by=ADMIN, on_behalf_of="rita")
    assert (await service.tasks.get_review(ballot.id)).status == "open"
    decided = await service.tasks.decide(ballot.id, "approve", by=ADMIN, on_behalf_of="rob")
    assert decided.status == "decided"
    assert [v.voter for v in await service.tasks.votes(ballot.id)] == ["rita", "rob"]


# -- quorum -----------------------------------------------------------------------------------


async def test_two_of_three_approvals_decide_and_each_vote_is_recorded(service: Service) -> None:
    task, review = await open_review(service, "panel")
    first = await service.tasks.decide(review.id, "approve", "looks right", by=ANN)
    assert first.status == "open"  # one approval of two
    with pytest.raises(Conflict, match="ann has voted on this review already"):
        await service.tasks.decide(review.id, "approve", by=ANN)
    # Ann may not decide it any more, and her queue of what she may decide leaves it out;
    # Bob's keeps it.
    open_now = await service.tasks.get_review(review.id)
    cast = await service.tasks.votes(review.id)
    assert not service.tasks.may_decide(ANN, open_now, task.created_by, cast)
    assert service.tasks.may_decide(BOB, open_now, task.created_by, cast)
    for who, listed in ((ANN, []), (BOB, [review.id])):
        rows, _ = await service.tasks.list_reviews("open", 50, 0, who, decidable=True)
        assert [r.id for r in rows] == listed, who
    decided = await service.tasks.decide(review.id, "approve", by=BOB)
    assert decided.status == "decided" and decided.decided_by == "bob"
    done = await finished(service, task.id)
    assert json.loads(done.result or "null") == {"action": "approve", "by": "bob"}
    votes = await service.tasks.votes(review.id)
    assert [(v.voter, v.decision, v.comment) for v in votes] == [
        ("ann", "approve", "looks right"),
        ("bob", "approve", None),
    ]
    events = [
        (e.type, json.loads(e.data))
        for e in await service.store.events_after(0, task.id, 100)
        if e.type in ("review.voted", "review.decided")
    ]
    assert [t for t, _ in events] == ["review.voted", "review.decided"]
    assert events[0][1]["voter"] == "ann" and events[0][1]["approvals"] == 1
    assert events[1][1]["votes"] == [
        {"voter": "ann", "decision": "approve"},
        {"voter": "bob", "decision": "approve"},
    ]
    actions = [e.action for e in await service.tasks.audit(task.id, by=ADMIN)]
    assert actions == ["review.vote", "review.decide"]


async def test_one_rejection_ends_the_round(service: Service) -> None:
    task, review = await open_review(service, "panel")
    await service.tasks.decide(review.id, "approve", by=ANN)
    decided = await service.tasks.decide(review.id, "reject", "wrong figures", by=BOB)
    assert decided.status == "decided" and decided.decision == "reject"
    assert decided.comment == "wrong figures"


async def test_a_node_may_need_as_many_rejections(service: Service) -> None:
    _, review = await open_review(service, "patient")
    still = await service.tasks.decide(review.id, "reject", "no", by=ANN)
    assert still.status == "open"
    decided = await service.tasks.decide(review.id, "reject", "no either", by=BOB)
    assert decided.status == "decided" and decided.decision == "reject"


# -- round caps and escalation ----------------------------------------------------------------


async def next_round(service: Service, task_id: str, round: int) -> ReviewRow:
    for _ in range(500):
        _, reviews = await service.tasks.get(task_id)
        if len(reviews) >= round and reviews[-1].status == "open":
            return reviews[-1]
        await asyncio.sleep(0.01)
    raise AssertionError(f"round {round} of {task_id} never opened")


async def test_past_its_round_cap_a_task_fails(service: Service) -> None:
    task, review = await open_review(service, "capped")
    await service.tasks.decide(review.id, "reject", "again", by=ANN)
    second = await next_round(service, task.id, 2)
    await service.tasks.decide(second.id, "reject", "and again", by=ANN)
    failed = await finished(service, task.id)
    assert failed.status == "failed"
    assert failed.error is not None and "reached its cap of 2 rounds" in failed.error
    _, reviews = await service.tasks.get(task.id)
    assert len(reviews) == 2  # no third round was asked for


async def test_past_its_round_cap_a_review_can_escalate(service: Service) -> None:
    task, review = await open_review(service, "escalating")
    await service.tasks.decide(review.id, "reject", "not yet", by=ANN)
    second = await next_round(service, task.id, 2)
    request = json.loads(second.request)
    assert request["assignees"] == ["boss"] and request["escalated"] == "after 1 rounds"
    with pytest.raises(Forbidden, match="assigned to boss"):
        await service.tasks.decide(second.id, "approve", by=ANN)
    mine, _ = await service.tasks.list_reviews("open", 50, 0, BOSS, mine=True)
    assert [r.id for r in mine] == [second.id]
    await service.tasks.decide(second.id, "approve", by=BOSS)


async def test_a_deadline_can_escalate_instead_of_deciding(service: Service) -> None:
    task, review = await open_review(service, "escalating")
    assert review.deadline is not None
    assert service.deadlines is not None
    later = review.deadline + 1  # the clock, moved past the deadline: no sleeping
    assert await service.deadlines.fire_due(now=later) == 1
    moved = await service.tasks.get_review(review.id)
    request = json.loads(moved.request)
    assert moved.status == "open" and request["assignees"] == ["boss"]
    assert request["on_deadline"] is None and moved.deadline == later + 600
    [event] = [
        json.loads(e.data)
        for e in await service.store.events_after(0, task.id, 100)
        if e.type == "review.escalated"
    ]
    assert event["assignees"] == ["boss"] and event["was"] == []
    with pytest.raises(Forbidden, match="assigned to boss"):
        await service.tasks.decide(review.id, "approve", by=ANN)
    assert await service.deadlines.fire_due(now=later + 601) == 1  # missed again: it fails
    assert (await finished(service, task.id)).status == "failed"


async def test_a_deadline_escalates_once_however_many_watchers_fire_it(service: Service) -> None:
    """Deadline watchers of several processes finding one review due at once: one escalates
    it; the others find it escalated, with its new deadline not due (they read it after the
    first one's commit), and leave it."""
    assert service.deadlines is not None
    for _ in range(5):
        task, review = await open_review(service, "escalating")
        assert review.deadline is not None
        later = review.deadline + 1
        fired = await asyncio.gather(*(service.deadlines.fire_due(now=later) for _ in range(4)))
        escalations = [
            e
            for e in await service.store.events_after(0, task.id, 100)
            if e.type == "review.escalated"
        ]
        assert len(escalations) == 1 and sum(fired) == 1, (fired, escalations)
        moved = await service.tasks.get_review(review.id)
        assert moved.status == "open" and moved.deadline == later + 600


# -- bulk -------------------------------------------------------------------------------------


async def test_bulk_decisions_are_separate_and_only_where_the_node_allows(
    service: Service,
) -> None:
    tasks = [await open_review(service, "bulk") for _ in range(3)]
    _, alone = await open_review(service)  # the default flow does not allow bulk decisions
    ids = [review.id for _, review in tasks] + [alone.id, "ffffffff-ffff-7fff-bfff-ffffffffffff"]
    results = await service.tasks.decide_many(ids, "approve", "batch ok", by=ANN)
    assert [r.status for r in results[:3]] == ["decided"] * 3  # type: ignore[union-attr]
    assert isinstance(results[3], Conflict) and "not decided in bulk" in results[3].message
    assert isinstance(results[4], NotFound)
    for task, _ in tasks:
        assert (await finished(service, task.id)).status == "completed"
        [entry] = await service.tasks.audit(task.id, by=ADMIN)
        assert entry.action == "review.decide" and entry.actor == "ann"
    open_again, _ = await service.tasks.get(alone.task_id)
    assert open_again.status == "waiting_for_review"
    with pytest.raises(Forbidden, match="needs the reviewer role"):
        await service.tasks.decide_many([alone.id], "approve", by=SAM)
    with pytest.raises(Invalid, match="only approve or reject"):
        await service.tasks.decide_many([alone.id], "edit", by=ANN)


async def test_bulk_decisions_are_checked_against_what_each_review_showed(
    service: Service,
) -> None:
    (_, first), (_, second) = [await open_review(service, "bulk") for _ in range(2)]
    seen = {
        first.id: Seen(first.round, shown(first)),
        second.id: Seen(second.round, "0" * 64),  # the page showed other content
    }
    results = await service.tasks.decide_many([first.id, second.id], "approve", by=ANN, seen=seen)
    assert isinstance(results[0], ReviewRow) and results[0].status == "decided"
    assert isinstance(results[1], Conflict) and "other content" in results[1].message
    stale_round = {second.id: Seen(second.round + 1, shown(second))}
    [late] = await service.tasks.decide_many([second.id], "approve", by=ANN, seen=stale_round)
    assert isinstance(late, Conflict) and "round 2" in late.message
    [again] = await service.tasks.decide_many([first.id], "approve", by=ANN)
    assert isinstance(again, Conflict)  # decided already
    assert (await service.tasks.get_review(second.id)).status == "open"
    with pytest.raises(Invalid, match="seen: 'nope' is not one of review_ids"):
        await service.tasks.decide_many([second.id], "approve", by=ANN, seen={"nope": Seen()})


async def test_the_queue_keeps_only_what_you_may_decide_when_asked(service: Service) -> None:
    anyones, _ = await open_review(service)
    ritas, _ = await open_review(service, "ritas")
    both = Principal("max", frozenset({"submitter", "reviewer"}))
    own, _ = await service.tasks.submit("max's own", flow="strict", by=both)  # no self-review
    for _ in range(500):
        if (await service.tasks.get(own.id))[1]:
            break
        await asyncio.sleep(0.01)

    async def ids(by: Principal, **filters: Any) -> tuple[list[str], int]:
        rows, count = await service.tasks.list_reviews("open", 50, 0, by, decidable=True, **filters)
        return [r.task_id for r in rows], count

    assert await ids(ANN) == ([anyones.id, own.id], 2)  # rita's is not hers
    assert await ids(RITA) == ([anyones.id, ritas.id, own.id], 3)
    assert await ids(both) == ([anyones.id], 1)  # not rita's, not his own
    assert await ids(ADMIN) == ([anyones.id, ritas.id, own.id], 3)
    assert await ids(RITA, order="newest") == ([own.id, ritas.id, anyones.id], 3)
    assert await ids(RITA, flow="ritas") == ([ritas.id], 1)
    assert await ids(RITA, mine=True) == ([ritas.id], 1)
    page, count = await service.tasks.list_reviews("open", 1, 1, RITA, decidable=True)
    assert [r.task_id for r in page] == [ritas.id] and count == 3
    decided, count = await service.tasks.list_reviews("decided", 50, 0, RITA, decidable=True)
    assert (decided, count) == ([], 0)
    # Every open review is still listed without it, and each says the same through may_decide.
    rows, count = await service.tasks.list_reviews("open", 50, 0, ANN)
    assert count == 3
    assert [r.task_id for r in rows if service.tasks.may_decide(ANN, r, r.task_created_by)] == [
        anyones.id,
        own.id,
    ]


# -- failures ---------------------------------------------------------------------------------


async def test_a_failure_names_its_node_and_keeps_its_traceback_for_admins(
    migrated_database: Callable[[], str], caplog: pytest.LogCaptureFixture
) -> None:
    settings = Settings(
        database_url=migrated_database(), process_delay=0, flows=[f"{FLOWS}:create_exploding_flow"]
    )
    svc = Service(settings)
    await svc.start()
    try:
        with caplog.at_level("WARNING", logger="hitl.service.worker"):
            task, _ = await svc.tasks.submit("x", flow="exploding", by=SAM)
            failed = await finished(svc, task.id)
        assert failed.status == "failed" and failed.error == "ValueError: the model is down"
        assert failed.node == "Explodes"
        assert failed.traceback is not None and "raise ValueError" in failed.traceback
        assert svc.tasks.sees_traceback(ADMIN) and not svc.tasks.sees_traceback(SAM)
        [record] = [r for r in caplog.records if getattr(r, "task_id", None) == task.id]
        assert getattr(record, "node", None) == "Explodes"
        assert "raise ValueError" in record.getMessage()
        assert "Traceback" not in record.getMessage()  # not a server error: the node's stack
        [event] = [
            e for e in await svc.store.events_after(0, task.id, 100) if e.type == "task.failed"
        ]
        assert json.loads(event.data)["node"] == "Explodes" and "traceback" not in event.data
    finally:
        await svc.stop()
