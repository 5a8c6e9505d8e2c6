"""The cookbook's three routes as plain ASGI, in front of FastAPI.

A cookbook client makes three requests per task (`/submit`, `/stream/{id}`, `/feedback/{id}`),
and FastAPI's per-request machinery — routing, dependency solving, body validation — cost about
half of the server's CPU for them. A well-formed request is answered here with the same service
calls and the same answers as the routes in `routes/cookbook.py`. Anything else — a body that is
not a JSON object of the right shape, a body over the limit, an unknown task to stream — goes on
to FastAPI with its body replayed, so those routes stay the one definition of the API, of its
error answers and of its OpenAPI description.

It runs in front of all of FastAPI's middleware: a middleware added to the app later (CORS,
say) does not see these three routes' well-formed requests unless it is added here too.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hitl.api import errors, sse
from hitl.api.routes import cookbook
from hitl.service import HitlError, Service, Unavailable

MAX_USER = 200  # as the `X-HITL-User` header's limit in `deps.py`

Handler = Callable[[Any, str | None, str], Awaitable[tuple[int, dict[str, Any]]]]


class CookbookFastPath:
    def __init__(self, app: ASGIApp, service: Service, max_bytes: int) -> None:
        self.app = app
        self.service = service
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            method, path = scope["method"], scope["path"]
            if method == "POST" and path == "/submit":
                await self._post(scope, receive, send, self._submit, "")
                return
            task_id = _tail(path, "/feedback/")
            if method == "POST" and task_id:
                await self._post(scope, receive, send, self._feedback, task_id)
                return
            task_id = _tail(path, "/stream/")
            if method == "GET" and task_id:
                await self._stream(scope, receive, send, task_id)
                return
        await self.app(scope, receive, send)

    async def _post(
        self, scope: Scope, receive: Receive, send: Send, handler: Handler, task_id: str
    ) -> None:
        headers = dict(scope["headers"])
        kind = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
        user = headers.get(b"x-hitl-user")
        body, seen = await self._read(receive) if kind == b"application/json" else (None, [])
        fast = body is not None and (user is None or len(user) <= MAX_USER)
        try:
            value = json.loads(body) if fast and body else None
        except (ValueError, RecursionError):  # FastAPI says what is wrong with it
            value = None
        if not isinstance(value, dict):
            await self.app(scope, _replay(seen, receive), send)
            return
        try:
            answer = await handler(value, user.decode("latin-1") if user else None, task_id)
        except _Slow:
            await self.app(scope, _replay(seen, receive), send)
            return
        except HitlError as exc:
            await _json(send, *errors.domain_answer(exc))
            return
        except Unavailable as exc:
            await _json(send, 503, {"detail": str(exc)}, errors.UNAVAILABLE_HEADERS)
            return
        await _json(send, *answer)

    async def _read(self, receive: Receive) -> tuple[bytes | None, list[Message]]:
        """The whole body, or None (with what was read) if it is over the limit or cut off."""
        seen: list[Message] = []
        size = 0
        while True:
            message = await receive()
            seen.append(message)
            if message["type"] != "http.request":
                return None, seen
            size += len(message.get("body", b""))
            if size > self.max_bytes:
                return None, seen
            if not message.get("more_body", False):
                return b"".join(m.get("body", b"") for m in seen), seen

    async def _submit(self, body: Any, user: str | None, _: str) -> tuple[int, dict[str, Any]]:
        data = body.get("data")
        if not isinstance(data, str) or not data:
            raise _Slow()
        return 202, await cookbook.submit_task(self.service, data, user)

    async def _feedback(
        self, body: Any, user: str | None, task_id: str
    ) -> tuple[int, dict[str, Any]]:
        feedback = body.get("feedback")
        if feedback not in ("approved", "rejected"):
            raise _Slow()
        return 200, await cookbook.give_feedback(self.service, task_id, feedback, user)

    async def _stream(self, scope: Scope, receive: Receive, send: Send, task_id: str) -> None:
        try:
            task, review, last = await self.service.store.snapshot(task_id)
        except Unavailable as exc:
            await _json(send, 503, {"detail": str(exc)}, errors.UNAVAILABLE_HEADERS)
            return
        if task is None:
            await self.app(scope, receive, send)
            return
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


class _Slow(Exception):
    """The body is not one this path answers: FastAPI will, with its validation error."""


STREAM_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    *((k.lower().encode(), v.encode()) for k, v in sse.HEADERS.items()),
]


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


async def _json(
    send: Send, status: int, body: dict[str, Any], extra: dict[str, str] | None = None
) -> None:
    data = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
    headers += [(k.lower().encode(), v.encode()) for k, v in (extra or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": data})
