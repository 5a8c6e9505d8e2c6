from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request

from hitl.service import Service


async def get_service(request: Request) -> Service:
    service: Service = request.app.state.service
    return service


ServiceDep = Annotated[Service, Depends(get_service)]


async def get_user(x_hitl_user: Annotated[str | None, Header(max_length=200)] = None) -> str | None:
    return x_hitl_user


UserDep = Annotated[str | None, Depends(get_user)]
