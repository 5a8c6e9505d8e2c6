"""Who may do what: every permission rule of hitl, and nowhere else.

- submitter: submits, and sees, streams, cancels and retries its own tasks;
- reviewer: sees the review queue and the tasks that have reached a review, and decides them;
- admin: everything, including users and tokens, and deciding on behalf of someone else.

A read that is not allowed is answered as if the thing did not exist (NotFound), so that a
caller learns nothing of other people's work; an action on something the caller may see, but
not do, is Forbidden, with a message naming what is missing. Separation of duties: nobody
decides a review of a task they submitted, unless the review node allows it. A review assigned
to people or roles is decided by them (or an admin) only; other reviewers may read it.

Every entry point calls these through the use cases of `TaskService`; a principal of None is
the process itself (workers, deadlines, tests that drive the service directly).
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from hitl.flow import ReviewRequest
from hitl.service.errors import Forbidden, NotFound
from hitl.service.principal import Principal
from hitl.store import Decider, TaskRow


def may_see(who: Principal | None, task: TaskRow) -> bool:
    if who is None or who.is_admin:
        return True
    if "submitter" in who.roles and task.created_by == who.name:
        return True
    return "reviewer" in who.roles and task.round > 0


def seen_by(who: Principal | None) -> dict[str, Any]:
    """`may_see` as the store's filter of tasks (`mine`, `reviewed`): nothing for whoever
    sees every task."""
    if who is None or who.is_admin:
        return {}
    return {
        "mine": who.name if "submitter" in who.roles else None,
        "reviewed": "reviewer" in who.roles,
    }


def see(who: Principal | None, task: TaskRow | None, task_id: str) -> TaskRow:
    if task is None or not may_see(who, task):
        raise NotFound(f"no task {task_id!r}")
    return task


def submit(who: Principal | None) -> None:
    if who is not None and not who.has("submitter"):
        raise Forbidden(f"{who.name} may not submit tasks: that needs the submitter role")


def see_queue(who: Principal | None) -> None:
    if who is not None and not who.has("reviewer"):
        raise Forbidden(f"{who.name} may not read the review queue: that needs the reviewer role")


def see_all_events(who: Principal | None) -> bool:
    """Whether the stream of every task's events may be read unfiltered."""
    return who is None or who.is_admin


def may_change(who: Principal | None, task: TaskRow) -> bool:
    """Whether `who` may cancel or retry `task` (for a page: its buttons)."""
    try:
        change(who, task, "change")
    except Forbidden:
        return False
    return True


def change(who: Principal | None, task: TaskRow, what: str) -> None:
    """Cancel or retry: the admin, or the submitter of the task."""
    if who is None or who.is_admin:
        return
    if "submitter" in who.roles and task.created_by == who.name:
        return
    raise Forbidden(
        f"{who.name} may not {what} this task: that needs the admin role, or to be the "
        "submitter who created it"
    )


def may_decide(
    who: Principal | None,
    created_by: str | None,
    request: ReviewRequest,
    voters: Collection[str] = (),
) -> bool:
    """Whether `who` may decide a review (for a page: its controls, or a read-only view);
    `voters`: who has voted on it already (a quorum's review), who may not again."""
    try:
        decide(who, created_by, request, None)
    except Forbidden:
        return False
    return who is None or who.name not in voters


def decide(
    who: Principal | None, created_by: str | None, request: ReviewRequest, on_behalf_of: str | None
) -> None:
    """A review of a task submitted by `created_by`."""
    if who is None:
        return
    if on_behalf_of is not None and not who.is_admin:
        raise Forbidden(f"{who.name} may not decide on behalf of someone else: admins only")
    if not who.has("reviewer"):
        raise Forbidden(f"{who.name} may not decide reviews: that needs the reviewer role")
    decider = on_behalf_of if on_behalf_of is not None else who.name
    if request.assignees and not who.is_admin and not assigned(who, request.assignees):
        raise Forbidden(
            f"this review is assigned to {', '.join(request.assignees)}: only they, or an "
            f"admin, may decide it; {who.name} may read it"
        )
    if created_by == decider and not request.allow_self_review:
        raise Forbidden(
            f"{decider} submitted this task, so someone else must decide its review "
            "(a flow may allow it per review node: allow_self_review)"
        )


def decide_for(who: Principal, created_by: str | None, request: ReviewRequest) -> None:
    """An admin's decision `on_behalf_of` someone (`decide` checked the admin): it is theirs,
    so it is allowed only as they may make it."""
    try:
        decide(who, created_by, request, None)
    except Forbidden as exc:
        raise Forbidden(f"on_behalf_of: {exc.message}") from None


def decider(who: Principal | None) -> Decider | None:
    """`may_decide`'s rule for a reviewer (`see_queue`) as the queue's filter (`decidable`),
    which the store applies in its query: not their own tasks' reviews unless self-review is
    allowed, not those they have voted on, and (unless an admin) only those assigned to nobody
    or to them. None: the process itself,
    which may decide every one. tests/unit/service/test_access.py checks that it keeps exactly
    the reviews `may_decide` allows."""
    if who is None:
        return None
    names = None if who.is_admin else (who.name, *(f"role:{r}" for r in sorted(who.roles)))
    return Decider(who.name, names)


def assigned(who: Principal, assignees: tuple[str, ...]) -> bool:
    """Whether `who` is one of a review's assignees: by name, or by a role ("role:NAME")."""
    return who.name in assignees or any(f"role:{role}" in assignees for role in who.roles)


def see_traceback(who: Principal | None) -> bool:
    """A failure's traceback shows code and data: admins only."""
    return who is None or who.is_admin


def administer(who: Principal | None, what: str) -> None:
    if who is not None and not who.is_admin:
        raise Forbidden(f"{who.name} may not {what}: that needs the admin role")


def may_administer(who: Principal | None) -> bool:
    """Whether `who` may do what only admins do (for a page: the settings, and its link)."""
    try:
        administer(who, "administer")
    except Forbidden:
        return False
    return True
