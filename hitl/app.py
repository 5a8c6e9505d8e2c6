"""The FastAPI application: the HTTP API, the cookbook's API and the web pages."""

from __future__ import annotations

import logging
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import partial

from fastapi import APIRouter, FastAPI
from starlette.types import ASGIApp

from hitl.api import auth, errors, jsonio, limits, security
from hitl.api.fastpath import FastPath
from hitl.api.front import FrontDoor
from hitl.api.routes import (
    audit,
    channels,
    cookbook,
    events,
    flows,
    health,
    metrics,
    reviews,
    tasks,
)
from hitl.config import Settings
from hitl.service import Service
from hitl.web import routes as web

log = logging.getLogger(__name__)


class _App(FastAPI):
    """FastAPI inside the front door (`hitl.api.front`): outside even Starlette's error
    middleware, so that a 500 has the security headers too, and a request for a host not
    allowed, or from no one, reaches nothing."""

    front: Callable[[ASGIApp], ASGIApp]

    def build_middleware_stack(self) -> ASGIApp:
        return self.front(super().build_middleware_stack())


def create_app(settings: Settings | None = None, *, fast_path: bool = True) -> FastAPI:
    """The app. `fast_path=False` leaves every cookbook request to the FastAPI routes; the
    parity test compares the two."""
    settings = settings or Settings()
    service = Service(settings, home=f"{socket.gethostname()}:{settings.port}")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await service.start()
        log.info("hitl ready", extra={"action": "start", "database": service.dialect})
        try:
            yield
        finally:
            await service.stop()

    app = _App(
        title="hitl",
        summary="A durable human-in-the-loop review service for PocketFlow workflows",
        version="0.1.0",
        lifespan=lifespan,
        default_response_class=jsonio.JSONResponse,
        # /docs is hitl.web's: Swagger UI from /static/swagger, which a strict CSP lets run.
        docs_url=None,
        redoc_url=None,
    )
    app.state.service = service
    errors.install(app)
    api = APIRouter(prefix="/api/v1")
    routers = (tasks, reviews, events, audit, flows, channels)
    for router in (r.router for r in routers):
        api.include_router(router)
    app.include_router(api)
    app.include_router(cookbook.router)
    app.include_router(health.router)
    app.include_router(metrics.router)
    web.mount(app)
    if settings.auth:
        proxies = frozenset(settings.trusted_proxies)
        header = settings.proxy_user_header
        authenticate: auth.Authenticator | auth.NoAuth = auth.Authenticator(
            service.identity, proxy_header=header, proxies=proxies
        )
    else:
        authenticate = auth.NoAuth()
    per_principal = None
    if settings.rate_limit or settings.max_streams:
        per_principal = limits.PrincipalLimits(settings.rate_limit, settings.max_streams)
    app.front = partial(
        FrontDoor,
        hosts=security.HostPolicy.of(settings),
        auth=authenticate,
        limits=per_principal,
        max_bytes=settings.max_input_bytes,
        fast=FastPath(service, settings.max_input_bytes) if fast_path else None,
    )
    return app
