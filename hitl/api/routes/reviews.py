from __future__ import annotations

from fastapi import APIRouter

from hitl.api import jsonio
from hitl.api.deps import ServiceDep, UserDep
from hitl.api.responses import errors
from hitl.api.routes.tasks import LimitQuery, OffsetQuery
from hitl.api.schemas import DecisionCreate, ReviewPublic, ReviewsPublic
from hitl.service import ReviewStatus

router = APIRouter(prefix="/reviews", tags=["reviews"], route_class=jsonio.Route)


@router.get("", response_model=ReviewsPublic, responses=errors(422, 503))
async def list_reviews(
    service: ServiceDep,
    status: ReviewStatus | None = ReviewStatus.OPEN,
    limit: LimitQuery = 50,
    offset: OffsetQuery = 0,
) -> ReviewsPublic:
    """Review rounds, oldest first; by default the open ones: the reviewers' queue."""
    rows, count = await service.tasks.list_reviews(status, limit, offset)
    return ReviewsPublic(data=[ReviewPublic.of(r) for r in rows], count=count)


@router.get("/{review_id}", response_model=ReviewPublic, responses=errors(404, 422, 503))
async def get_review(review_id: str, service: ServiceDep) -> ReviewPublic:
    return ReviewPublic.of(await service.tasks.get_review(review_id))


@router.post(
    "/{review_id}/decision",
    response_model=ReviewPublic,
    responses=errors(400, 404, 409, 413, 422, 503),
)
async def decide(
    review_id: str, body: DecisionCreate, service: ServiceDep, user: UserDep
) -> ReviewPublic:
    """Approve, reject (with a comment for the next revision) or edit the output and approve."""
    row = await service.tasks.decide(
        review_id, body.decision, body.comment, body.edited_output, body.decided_by or user
    )
    return ReviewPublic.of(row)
