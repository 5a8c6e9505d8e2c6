from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from hitl.api.deps import ServiceDep
from hitl.api.jsonio import JSONResponse
from hitl.api.schemas import ReadinessPublic

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get(
    "/readyz",
    response_model=None,
    responses={
        200: {"model": ReadinessPublic},
        503: {
            "model": ReadinessPublic,
            "description": "The database does not answer, or is lost, corrupt or out of space",
        },
    },
)
async def readyz(service: ServiceDep) -> dict[str, Any] | JSONResponse:
    """The database answers and, as far as hitl can tell, takes writes: 503, with the reason,
    while it is away, lost, corrupt or out of disk space."""
    try:
        await service.ping()
    except Exception as exc:
        return JSONResponse({"status": "unavailable", "database": str(exc)}, status_code=503)
    return {"status": "ok", "database": service.dialect}
