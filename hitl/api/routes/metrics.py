"""Prometheus' scrape target: admins only (a token with the admin role, for the scraper)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from hitl.api.deps import PrincipalDep, ServiceDep
from hitl.api.responses import errors
from hitl.service.metrics import CONTENT_TYPE

router = APIRouter(tags=["operations"])


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        200: {
            "content": {"text/plain": {"schema": {"type": "string"}}},
            "description": "Prometheus' text format (version 0.0.4)",
        },
        **errors(401, 403, 503),
    },
)
async def metrics(service: ServiceDep, who: PrincipalDep) -> Response:
    """Open reviews by flow and node and the oldest one's age; decisions by outcome; time to
    decision; lifecycle latency; deliveries by outcome; event-stream clients; database
    latency. See docs/deployment.md."""
    return Response(await service.read_metrics(who), media_type=CONTENT_TYPE)
