"""The limit on request bodies (HITL_MAX_INPUT_BYTES), enforced by the front door
(`hitl.api.front`) before any route reads a body: a declared length over it is refused at
once, and a body that grows past it while it is read stops there."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.types import Message, Receive, Scope

from hitl.api import jsonio

NO_BODY = frozenset({"GET", "HEAD", "OPTIONS"})  # long-lived streams skip the count


def _detail(max_bytes: int) -> str:
    return f"request body is larger than {max_bytes} bytes (HITL_MAX_INPUT_BYTES): send less data"


class BodyTooLarge(HTTPException):
    """An HTTPException, so FastAPI answers it as a 413 rather than "error parsing the body"."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(413, detail=_detail(max_bytes))


def too_large(max_bytes: int) -> Response:
    return jsonio.JSONResponse({"detail": _detail(max_bytes)}, 413)


def declared_too_large(scope: Scope, max_bytes: int) -> bool:
    """Whether the request's `Content-Length` is over the limit."""
    for name, value in scope["headers"]:
        if name == b"content-length":
            return value.isdigit() and int(value) > max_bytes
    return False


def counted(receive: Receive, max_bytes: int) -> Receive:
    """`receive`, raising BodyTooLarge once the body read so far is over the limit."""
    seen = 0

    async def receiving() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > max_bytes:
                raise BodyTooLarge(max_bytes)
        return message

    return receiving
