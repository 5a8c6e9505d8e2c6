"""A limit on request bodies, enforced before any route reads them."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hitl.api import jsonio


def _detail(max_bytes: int) -> str:
    return f"request body is larger than {max_bytes} bytes (HITL_MAX_INPUT_BYTES): send less data"


class BodyTooLarge(HTTPException):
    """An HTTPException, so FastAPI answers it as a 413 rather than "error parsing the body"."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(413, detail=_detail(max_bytes))


class BodyLimit:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            # No body to count; long-lived streams skip the wrapper on every chunk they send.
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._reject(scope, receive, send)
            return
        seen = 0
        started = False

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return message

        async def tracked(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted, tracked)
        except BodyTooLarge:
            if not started:
                await self._reject(scope, receive, send)

    async def _reject(self, scope: Scope, receive: Receive, send: Send) -> None:
        await jsonio.JSONResponse({"detail": _detail(self.max_bytes)}, 413)(scope, receive, send)
