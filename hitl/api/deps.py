from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request

from hitl.service import Service

MAX_USER = 200  # characters of `X-HITL-User`


async def get_service(request: Request) -> Service:
    service: Service = request.app.state.service
    return service


ServiceDep = Annotated[Service, Depends(get_service)]


def user_value(header: str | None) -> str | None:
    """Who the caller says it is: the first `X-HITL-User` header; an empty one says nobody."""
    return header or None


async def get_user(
    x_hitl_user: Annotated[str | None, Header(max_length=MAX_USER)] = None,
) -> str | None:
    return user_value(x_hitl_user)


UserDep = Annotated[str | None, Depends(get_user)]
