"""The audit log: who signed in, changed users and tokens, decided, cancelled, retried."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Query

from hitl.api import jsonio
from hitl.api.deps import PrincipalDep, ServiceDep
from hitl.api.responses import errors
from hitl.api.schemas import AuditEntryPublic, AuditPublic
from hitl.service.identity import parse_moment

router = APIRouter(prefix="/audit", tags=["audit"], route_class=jsonio.Route)


@router.get("", response_model=AuditPublic, responses=errors(401, 403, 422, 503))
async def read_audit(
    service: ServiceDep,
    who: PrincipalDep,
    since: Annotated[
        str | None,
        Query(
            max_length=64,
            description="entries from then: a date or time (2026-11-01, 2026-11-01T09:30, UTC "
            "unless it says), a duration meaning that long ago (7d, 12h), or seconds since "
            "the epoch",
        ),
    ] = None,
    after: Annotated[int, Query(ge=0, le=2**63 - 1, description="entries after this id")] = 0,
    limit: Annotated[int, Query(ge=1, le=1000, description="entries per page")] = 100,
) -> AuditPublic:
    """Admins only: the audit log, oldest first, a page at a time."""
    start = parse_moment(since, time.time()) if since is not None else 0.0
    rows = await service.identity.audit_log(start, after, limit, who)
    more = len(rows) == limit
    return AuditPublic(
        data=[AuditEntryPublic.of(r) for r in rows], next_after=rows[-1].id if more else None
    )
