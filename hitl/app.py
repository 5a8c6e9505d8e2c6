"""The FastAPI application: the HTTP API, the cookbook's API and the web pages."""

from __future__ import annotations

import logging
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from hitl.api import errors
from hitl.api.fastpath import CookbookFastPath
from hitl.api.middleware import BodyLimit
from hitl.api.routes import cookbook, events, health, reviews, tasks
from hitl.config import Settings
from hitl.service import Service
from hitl.web import routes as web

log = logging.getLogger(__name__)


class App(FastAPI):
    """FastAPI, with the cookbook routes' fast path (`hitl.api.fastpath`) in front of all of
    its middleware; what the fast path does not answer goes through FastAPI as usual."""

    fast: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.fast is not None:
            await self.fast(scope, receive, send)
        else:
            await super().__call__(scope, receive, send)

    async def without_fast_path(self, scope: Scope, receive: Receive, send: Send) -> None:
        await super().__call__(scope, receive, send)


def create_app(settings: Settings | None = None) -> App:
    settings = settings or Settings()
    service = Service(settings, home=f"{socket.gethostname()}:{settings.port}")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await service.start()
        log.info("hitl ready", extra={"action": "start", "database": service.store.dialect})
        try:
            yield
        finally:
            await service.stop()

    app = App(
        title="hitl",
        summary="A durable human-in-the-loop review service for PocketFlow workflows",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.service = service
    errors.install(app)
    api = APIRouter(prefix="/api/v1")
    for router in (tasks.router, reviews.router, events.router):
        api.include_router(router)
    app.include_router(api)
    app.include_router(cookbook.router)
    app.include_router(health.router)
    web.mount(app)
    app.add_middleware(BodyLimit, max_bytes=settings.max_input_bytes)
    app.fast = CookbookFastPath(app.without_fast_path, service, settings.max_input_bytes)
    return app
