from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from starlette.types import Scope

from hitl.service import Service, Unauthenticated
from hitl.service.principal import Principal


async def get_service(request: Request) -> Service:
    service: Service = request.app.state.service
    return service


ServiceDep = Annotated[Service, Depends(get_service)]


def principal_of(scope: Scope) -> Principal | None:
    """Who the request acts as, as authentication (`hitl.api.auth`) found it; None when the
    server runs without authentication. A request that did not pass authentication at all
    fails closed."""
    state = scope.get("state") or {}
    if "principal" not in state:
        raise Unauthenticated()
    principal: Principal | None = state["principal"]
    return principal


def address_of(scope: Scope) -> str | None:
    client = scope.get("client")
    return str(client[0]) if client else None


async def get_principal(request: Request) -> Principal | None:
    return principal_of(request.scope)


async def get_address(request: Request) -> str | None:
    return address_of(request.scope)


PrincipalDep = Annotated[Principal | None, Depends(get_principal)]
AddressDep = Annotated[str | None, Depends(get_address)]
