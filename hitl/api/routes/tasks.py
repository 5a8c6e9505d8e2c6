from __future__ import annotations

from functools import partial
from typing import Annotated

from fastapi import APIRouter, Header, Query, Response, status

from hitl.api import jsonio
from hitl.api.deps import AddressDep, PrincipalDep, ServiceDep
from hitl.api.responses import TASK_CREATED, errors
from hitl.api.schemas import (
    AuditEntryPublic,
    AuditPublic,
    CancelRequest,
    TaskCreate,
    TaskPublic,
    TasksPublic,
)
from hitl.service import Service, TaskRow, TaskStatus
from hitl.service.principal import Principal

router = APIRouter(prefix="/tasks", tags=["tasks"], route_class=jsonio.Route)

# Paging: a page of at most 500; an offset as large as the databases' integers.
LimitQuery = Annotated[int, Query(ge=1, le=500, description="items per page")]
OffsetQuery = Annotated[int, Query(ge=0, le=2**63 - 1, description="items to skip")]


def public(service: Service, who: Principal | None, row: TaskRow) -> TaskPublic:
    """A task as its caller sees it, with whether they may cancel or retry it."""
    return TaskPublic.of(row, may=partial(service.tasks.may_change, who, row))


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=TaskPublic,
    responses={**TASK_CREATED, **errors(400, 401, 403, 409, 413, 422, 503)},
)
async def create_task(
    body: TaskCreate,
    service: ServiceDep,
    who: PrincipalDep,
    response: Response,
    idempotency_key: Annotated[str | None, Header(min_length=1, max_length=200)] = None,
) -> TaskPublic:
    """Queue a task. Repeating a request with the same `Idempotency-Key` returns the same task."""
    row, created = await service.tasks.submit(
        body.input, body.flow, idempotency_key, who, body.assignees
    )
    if not created:
        response.headers["Idempotent-Replayed"] = "true"
    response.headers["Location"] = f"/api/v1/tasks/{row.id}"
    return public(service, who, row)


@router.get("", response_model=TasksPublic, responses=errors(401, 422, 503))
async def list_tasks(
    service: ServiceDep,
    who: PrincipalDep,
    status: TaskStatus | None = None,
    limit: LimitQuery = 50,
    offset: OffsetQuery = 0,
) -> TasksPublic:
    """The tasks you may see, newest first."""
    rows, count = await service.tasks.list_tasks(status, limit, offset, who)
    return TasksPublic(data=[public(service, who, r) for r in rows], count=count)


@router.get("/{task_id}", response_model=TaskPublic, responses=errors(401, 404, 409, 422, 503))
async def get_task(task_id: str, service: ServiceDep, who: PrincipalDep) -> TaskPublic:
    """A task with every review round: each output, decision, comment and vote. `task_id` may
    be a unique prefix of the id (at least 4 characters), as git takes a commit's."""
    row, reviews = await service.tasks.get(task_id, who)
    votes = await service.tasks.votes_of(reviews)
    return TaskPublic.of(
        row,
        reviews,
        lambda r: service.tasks.may_decide(who, r, row.created_by, votes.get(r.id, ())),
        service.tasks.sees_traceback(who),
        partial(service.tasks.may_change, who, row),
        votes,
    )


@router.post(
    "/{task_id}/cancel",
    response_model=TaskPublic,
    responses=errors(400, 401, 403, 404, 409, 413, 422, 503),
)
async def cancel_task(
    task_id: str,
    service: ServiceDep,
    who: PrincipalDep,
    address: AddressDep,
    body: CancelRequest | None = None,
) -> TaskPublic:
    """Stop a queued, running or waiting task; its open review is cancelled."""
    reason = body.reason if body is not None else None
    return public(service, who, await service.tasks.cancel(task_id, who, address, reason))


@router.post(
    "/{task_id}/retry",
    response_model=TaskPublic,
    responses=errors(401, 403, 404, 409, 413, 422, 503),
)
async def retry_task(
    task_id: str, service: ServiceDep, who: PrincipalDep, address: AddressDep
) -> TaskPublic:
    """Queue a failed task again: it resumes from its last checkpoint."""
    return public(service, who, await service.tasks.retry(task_id, who, address))


@router.get(
    "/{task_id}/audit", response_model=AuditPublic, responses=errors(401, 404, 409, 422, 503)
)
async def task_audit(task_id: str, service: ServiceDep, who: PrincipalDep) -> AuditPublic:
    """The task's audit entries, oldest first: every decision (who, when, which round and
    choice, the comment, the form values, the edit, the content hash and the claim it was made
    under), cancellation and retry."""
    rows = await service.tasks.audit(task_id, who)
    return AuditPublic(data=[AuditEntryPublic.of(r) for r in rows], next_after=None)
