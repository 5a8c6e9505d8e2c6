"""The cookbook's three routes without FastAPI's per-request machinery.

A cookbook client makes three requests per task (`/submit`, `/stream/{id}`, `/feedback/{id}`),
and FastAPI's routing, dependency solving and body validation cost about half of the server's
CPU for them. The front door (`hitl.api.front`) hands every request that passed its checks
(the Host, the principal, the limits, the body's size) here first, and this answers a
well-formed request to one of those routes itself, with what the FastAPI routes in
`routes/cookbook.py` use: the same principal, found by authentication (`deps.principal_of`),
the same JSON reader (`jsonio.loads`), the same body models, the same functions and the same
answers (`errors.respond`, `jsonio.JSONResponse`).
Anything else — a body that is not JSON of the right shape, an unknown task to stream — goes
on to those routes, body replayed, so they stay the one definition of the API's errors and of
its OpenAPI description. `tests/unit/api/test_fastpath_parity.py` sends one table of requests
through the app with and without this path and requires the same answers.

Its answers carry the security headers themselves (`security.secured`); what it hands on to
the routes gets them from the front door, as every other request does.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import BaseModel, ValidationError
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hitl.api import errors, jsonio, sse
from hitl.api.body import BodyTooLarge, counted, too_large
from hitl.api.deps import address_of, principal_of
from hitl.api.routes import cookbook
from hitl.api.schemas import FeedbackRequest, SubmitRequest
from hitl.api.security import secured
from hitl.service import HitlError, NotFound, Service, Unavailable

Handler = Callable[[Any, Scope, str], Awaitable[tuple[int, BaseModel]]]


class FastPath:
    """Called by the front door (`hitl.api.front`) once a request has passed its checks."""

    def __init__(self, service: Service, max_bytes: int) -> None:
        self.service = service
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send, app: ASGIApp) -> bool:
        """Answer the request, if it is to a cookbook route; `app` answers what is not ours.
        False: the request is not to a cookbook route, and nothing was done."""
        method, path = scope["method"], scope["path"]
        if method == "POST":
            if path == "/submit":
                await self._post(scope, receive, send, app, self._submit, "")
                return True
            task_id = _tail(path, "/feedback/")
            if task_id:
                await self._post(scope, receive, send, app, self._feedback, task_id)
                return True
        elif method == "GET":
            task_id = _tail(path, "/stream/")
            if task_id:
                await self._stream(scope, receive, send, app, task_id)
                return True
        return False

    async def _post(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        app: ASGIApp,
        handler: Handler,
        task_id: str,
    ) -> None:
        headers = Headers(scope=scope)
        ours = _is_json(headers.get("content-type"))
        try:
            body, seen = await _read(counted(receive, self.max_bytes)) if ours else (None, [])
        except BodyTooLarge:
            await secured(too_large(self.max_bytes))(scope, receive, send)
            return
        try:
            value = jsonio.loads(body) if body else None
        except (ValueError, RecursionError):  # FastAPI says what is wrong with it
            value = None
        if not isinstance(value, dict):
            await app(scope, _replay(seen, receive), send)
            return
        try:
            status, answer = await handler(value, scope, task_id)
        except ValidationError:
            await app(scope, _replay(seen, receive), send)
            return
        except (HitlError, Unavailable) as exc:
            await secured(errors.respond(exc))(scope, receive, send)
            return
        except Exception:  # a bug: 500, raised on to be logged, as Starlette would
            await secured(errors.internal())(scope, receive, send)
            raise
        answered = jsonio.JSONResponse(answer.model_dump(mode="json"), status)
        await secured(answered)(scope, receive, send)

    async def _submit(self, body: Any, scope: Scope, _: str) -> tuple[int, BaseModel]:
        request = SubmitRequest.model_validate(body)
        return 202, await cookbook.submit_task(self.service, request, principal_of(scope))

    async def _feedback(self, body: Any, scope: Scope, task_id: str) -> tuple[int, BaseModel]:
        request = FeedbackRequest.model_validate(body)
        who, address = principal_of(scope), address_of(scope)
        return 200, await cookbook.give_feedback(self.service, task_id, request, who, address)

    async def _stream(
        self, scope: Scope, receive: Receive, send: Send, app: ASGIApp, task_id: str
    ) -> None:
        try:
            task, review, last = await self.service.tasks.snapshot(task_id, principal_of(scope))
        except NotFound:
            await app(scope, receive, send)  # the route's own 404
            return
        except (HitlError, Unavailable) as exc:
            await secured(errors.respond(exc))(scope, receive, send)
            return
        except Exception:
            await secured(errors.internal())(scope, receive, send)
            raise
        await send({"type": "http.response.start", "status": 200, "headers": STREAM_HEADERS})
        chunks = cookbook.stream_chunks(self.service, task, review, last)

        async def pump() -> None:
            async for chunk in chunks:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})

        async def gone() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass

        streaming = asyncio.ensure_future(pump())
        watching = asyncio.ensure_future(gone())
        try:
            await asyncio.wait({streaming, watching}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for job in (streaming, watching):
                job.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await streaming
            await chunks.aclose()


# The headers of the route's StreamingResponse, exactly, with the security headers.
STREAM_HEADERS = secured(sse.response(iter(()))).raw_headers  # type: ignore[arg-type]


def _is_json(content_type: str | None) -> bool:
    """As FastAPI decides that a body is JSON; anything unusual is left to it."""
    return (content_type or "").split(";")[0].strip().lower() == "application/json"


async def _read(receive: Receive) -> tuple[bytes | None, list[Message]]:
    """The whole body (None if the client left first), and the messages it came in."""
    seen: list[Message] = []
    while True:
        message = await receive()
        seen.append(message)
        if message["type"] != "http.request":
            return None, seen
        if not message.get("more_body", False):
            return b"".join(m.get("body", b"") for m in seen), seen


def _tail(path: str, prefix: str) -> str | None:
    """The one path segment after `prefix`, if `path` is exactly that."""
    if not path.startswith(prefix):
        return None
    rest = path[len(prefix) :]
    return rest if rest and "/" not in rest else None


def _replay(seen: list[Message], receive: Receive) -> Receive:
    pending = list(seen)

    async def replayed() -> Message:
        return pending.pop(0) if pending else await receive()

    return replayed


__all__ = ["FastPath"]
