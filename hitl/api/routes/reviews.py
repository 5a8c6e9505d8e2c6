from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Header, Query, Response, status

from hitl.api import jsonio
from hitl.api.deps import AddressDep, PrincipalDep, ServiceDep
from hitl.api.errors import status_of
from hitl.api.responses import TASK_CREATED, errors
from hitl.api.routes.tasks import LimitQuery, OffsetQuery
from hitl.api.schemas import (
    BulkDecisionCreate,
    BulkDecisionsPublic,
    BulkResultPublic,
    ClaimCreate,
    DecisionCreate,
    ReviewCreate,
    ReviewCreated,
    ReviewPublic,
    ReviewsPublic,
)
from hitl.service import HitlError, ReviewStatus, Seen

router = APIRouter(prefix="/reviews", tags=["reviews"], route_class=jsonio.Route)


@router.get("", response_model=ReviewsPublic, responses=errors(401, 403, 422, 503))
async def list_reviews(
    service: ServiceDep,
    who: PrincipalDep,
    status: ReviewStatus | None = ReviewStatus.OPEN,
    limit: LimitQuery = 50,
    offset: OffsetQuery = 0,
    flow: Annotated[str | None, Query(max_length=200, description="only this flow's")] = None,
    q: Annotated[
        str | None,
        Query(
            max_length=200,
            pattern="^[^\x00]*$",
            description="only those whose output, prompt or task input contains this text",
        ),
    ] = None,
    mine: Annotated[
        bool, Query(description="only those assigned to you, by name or by one of your roles")
    ] = False,
    sort: Annotated[
        Literal["oldest", "newest", "deadline"],
        Query(description="oldest or newest first, or the nearest deadline first"),
    ] = "oldest",
    decidable: Annotated[
        bool, Query(description="only the open reviews you may decide (`may_decide`)")
    ] = False,
) -> ReviewsPublic:
    """Review rounds with their task's flow and input; by default the open ones, oldest
    first: the reviewers' queue."""
    rows, count = await service.tasks.list_reviews(
        status, limit, offset, who, flow, q, mine, sort, decidable
    )
    may = service.tasks.may_decide
    votes = await service.tasks.votes_of(rows)
    data = [ReviewPublic.of(r, may(who, r, r.task_created_by, votes.get(r.id, ()))) for r in rows]
    return ReviewsPublic(data=data, count=count)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=ReviewCreated,
    responses={**TASK_CREATED, **errors(400, 401, 403, 409, 413, 422, 503)},
)
async def create_review(
    body: ReviewCreate,
    service: ServiceDep,
    who: PrincipalDep,
    response: Response,
    idempotency_key: Annotated[str | None, Header(min_length=1, max_length=200)] = None,
) -> ReviewCreated:
    """Ask a person to review anything: a task of the built-in `review` flow, whose one review
    asks what the body says and whose result is the decision (wait for its `task.completed`).
    For whoever may submit tasks. Repeating a request with the same `Idempotency-Key` returns
    the same task."""
    row, created = await service.tasks.create_review(body.spec(), idempotency_key, who)
    if not created:
        response.headers["Idempotent-Replayed"] = "true"
    response.headers["Location"] = f"/api/v1/tasks/{row.id}"
    return ReviewCreated.of(row)


@router.post(
    "/decisions",
    response_model=BulkDecisionsPublic,
    responses=errors(400, 401, 403, 413, 422, 503),
)
async def decide_many(
    body: BulkDecisionCreate, service: ServiceDep, who: PrincipalDep, address: AddressDep
) -> BulkDecisionsPublic:
    """Approve or reject several reviews at once — those whose node allows it (`bulk`). Each is
    its own decision, in its own transaction, audited alone; each result says how it went."""
    seen = {key: Seen(s.round, s.content_hash) for key, s in (body.seen or {}).items()}
    outcomes = await service.tasks.decide_many(
        body.review_ids, body.decision, body.comment, who, address, seen
    )
    results = []
    for review_id, outcome in zip(body.review_ids, outcomes, strict=True):
        if isinstance(outcome, HitlError):
            status = status_of(outcome)
            results.append(
                BulkResultPublic(review_id=review_id, status=status, detail=str(outcome))
            )
        else:
            review = ReviewPublic.of(outcome)
            results.append(BulkResultPublic(review_id=review_id, status=200, review=review))
    return BulkDecisionsPublic(results=results)


@router.get("/{review_id}", response_model=ReviewPublic, responses=errors(401, 404, 422, 503))
async def get_review(review_id: str, service: ServiceDep, who: PrincipalDep) -> ReviewPublic:
    review, task = await service.tasks.review_of(review_id, who)
    votes = await service.tasks.votes(review.id)
    may = service.tasks.may_decide(who, review, task.created_by, votes)
    return ReviewPublic.of(review, may, votes)


@router.post(
    "/{review_id}/decision",
    response_model=ReviewPublic,
    responses=errors(400, 401, 403, 404, 409, 413, 422, 503),
)
async def decide(
    review_id: str,
    body: DecisionCreate,
    service: ServiceDep,
    who: PrincipalDep,
    address: AddressDep,
) -> ReviewPublic:
    """Approve, reject (with a comment for the next revision) or edit the output and approve.
    The decision is recorded as yours; an admin may record one `on_behalf_of` someone else."""
    row = await service.tasks.decide(
        review_id,
        body.decision,
        body.comment,
        body.edited_output,
        who,
        body.on_behalf_of,
        address,
        Seen(body.round, body.content_hash),
        body.form,
    )
    return ReviewPublic.of(row, votes=await service.tasks.votes(row.id))


@router.post(
    "/{review_id}/claim",
    response_model=ReviewPublic,
    responses=errors(400, 401, 403, 404, 409, 413, 422, 503),
)
async def claim(
    review_id: str, service: ServiceDep, who: PrincipalDep, body: ClaimCreate | None = None
) -> ReviewPublic:
    """Claim the review while you look at it (renew it the same way): others see that you are
    reviewing it, and cannot decide it unless they take the claim over (`take_over`)."""
    take_over = body.take_over if body is not None else False
    return ReviewPublic.of(await service.tasks.claim_review(review_id, who, take_over))


@router.delete(
    "/{review_id}/claim", response_model=ReviewPublic, responses=errors(401, 404, 409, 422, 503)
)
async def release(review_id: str, service: ServiceDep, who: PrincipalDep) -> ReviewPublic:
    """Give up your claim on the review (admins: anyone's)."""
    return ReviewPublic.of(await service.tasks.release_review(review_id, who))
