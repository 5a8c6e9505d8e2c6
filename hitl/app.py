"""The FastAPI application: the HTTP API, the cookbook's API and the web pages."""

from __future__ import annotations

import logging
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI

from hitl.api import errors, jsonio
from hitl.api.fastpath import CookbookFastPath
from hitl.api.middleware import BodyLimit
from hitl.api.routes import cookbook, events, health, reviews, tasks
from hitl.config import Settings
from hitl.service import Service
from hitl.web import routes as web

log = logging.getLogger(__name__)


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

    app = FastAPI(
        title="hitl",
        summary="A durable human-in-the-loop review service for PocketFlow workflows",
        version="0.1.0",
        lifespan=lifespan,
        default_response_class=jsonio.JSONResponse,
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
    # Middleware added later runs earlier: the fast path is innermost, so every other
    # middleware (the body limit first) sees its requests too.
    if fast_path:
        app.add_middleware(CookbookFastPath, service=service)
    app.add_middleware(BodyLimit, max_bytes=settings.max_input_bytes)
    return app
