"""The FastAPI application: the HTTP API, the cookbook's API and the web pages."""

from __future__ import annotations

import logging
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI
from starlette.types import ASGIApp

from hitl.api import auth, errors, jsonio, limits, security
from hitl.api.fastpath import CookbookFastPath
from hitl.api.middleware import BodyLimit
from hitl.api.routes import audit, cookbook, events, health, reviews, tasks
from hitl.config import Settings
from hitl.service import Service
from hitl.web import routes as web

log = logging.getLogger(__name__)


class _GuardedApp(FastAPI):
    """FastAPI inside `security.Guard`: outside even Starlette's error middleware, so that a
    500 has the security headers too, and a request for a host not allowed reaches nothing."""

    def __init__(self, hosts: security.HostPolicy, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.hosts = hosts

    def build_middleware_stack(self) -> ASGIApp:
        return security.Guard(super().build_middleware_stack(), self.hosts)


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

    app = _GuardedApp(
        security.HostPolicy.of(settings),
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
    for router in (tasks.router, reviews.router, events.router, audit.router):
        api.include_router(router)
    app.include_router(api)
    app.include_router(cookbook.router)
    app.include_router(health.router)
    web.mount(app)
    # Middleware added later runs earlier: the fast path is innermost, so every other
    # middleware (the body limit first) sees its requests too. `security.Guard` is around
    # them all, and around Starlette's own (`_GuardedApp`).
    if fast_path:
        app.add_middleware(CookbookFastPath, service=service)
    app.add_middleware(BodyLimit, max_bytes=settings.max_input_bytes)
    # Outside the body limit: an anonymous request is refused before its body is read, and
    # one over its principal's limits too.
    if settings.rate_limit or settings.max_streams:
        app.add_middleware(
            limits.PrincipalLimits, rate=settings.rate_limit, streams=settings.max_streams
        )
    if settings.auth:
        proxies = frozenset(settings.trusted_proxies)
        header = settings.proxy_user_header
        app.add_middleware(
            auth.Authenticate, identity=service.identity, proxy_header=header, proxies=proxies
        )
    else:
        app.add_middleware(auth.NoAuth)
    return app
