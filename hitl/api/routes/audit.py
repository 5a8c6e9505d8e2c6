"""The audit log: who signed in, changed users and tokens, decided, cancelled, retried."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from hitl.api import jsonio
from hitl.api.deps import PrincipalDep, ServiceDep
from hitl.api.responses import errors
from hitl.api.schemas import AuditEntryPublic, AuditPublic

router = APIRouter(prefix="/audit", tags=["audit"], route_class=jsonio.Route)


@router.get("", response_model=AuditPublic, responses=errors(401, 403, 422, 503))
async def read_audit(
    service: ServiceDep,
    who: PrincipalDep,
    since: Annotated[
        float, Query(ge=0, le=1e11, description="seconds since the epoch: entries from then")
    ] = 0,
    after: Annotated[int, Query(ge=0, le=2**63 - 1, description="entries after this id")] = 0,
    limit: Annotated[int, Query(ge=1, le=1000, description="entries per page")] = 100,
) -> AuditPublic:
    """Admins only: the audit log, oldest first, a page at a time."""
    rows = await service.identity.audit_log(since, after, limit, who)
    more = len(rows) == limit
    return AuditPublic(
        data=[AuditEntryPublic.of(r) for r in rows], next_after=rows[-1].id if more else None
    )
