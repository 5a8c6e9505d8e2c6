"""The front door: the one middleware layer, around the whole app.

Every request passes these checks, in this order, as plain calls:
1. its Host (`security.Hosts`: 400 for a host not served);
2. who it acts as (`auth`: 401, a redirect to sign-in, or 403 for a cross-site request);
3. the limits of that principal (`limits`: 429), when there are any;
4. its body's declared size (`body`: 413).
Then the cookbook's fast path answers its three routes (`fastpath`), and everything else goes
to FastAPI, its body counted as it is read. Every answer has the security headers
(`security.HEADERS`), errors included: the front door is outside even Starlette's error
middleware (`hitl.app`), and what it answers itself it secures itself.

One layer instead of one per check: each ASGI layer costs a call, and most a wrapper on every
message, on every request.
"""

from __future__ import annotations

import logging
from typing import Protocol

from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hitl.api import body, errors, jsonio
from hitl.api.body import BodyTooLarge
from hitl.api.fastpath import FastPath
from hitl.api.limits import PrincipalLimits
from hitl.api.security import HostPolicy, Hosts, secured, with_headers

log = logging.getLogger(__name__)


class Admits(Protocol):
    async def admit(self, scope: Scope) -> Response | None: ...


class FrontDoor:
    def __init__(
        self,
        app: ASGIApp,
        hosts: HostPolicy,
        auth: Admits | None = None,
        limits: PrincipalLimits | None = None,
        max_bytes: int | None = None,
        fast: FastPath | None = None,
    ) -> None:
        self.app = app
        self.hosts = Hosts(hosts)
        self.auth = auth
        self.limits = limits
        self.max_bytes = max_bytes
        self.fast = fast

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind not in ("http", "websocket"):
            if kind == "lifespan" and self.hosts.policy.warning is not None:
                log.warning(self.hosts.policy.warning, extra={"action": "start"})
            await self.app(scope, receive, send)
            return
        try:
            refusal = await self._check(scope)
        except Exception:
            log.exception("checking a request", extra={"action": "request"})
            refusal = errors.internal()
        if refusal is not None:
            if kind == "http":
                await secured(refusal)(scope, receive, send)
            else:  # a WebSocket: refused before it is accepted (the client sees 403)
                reason = _words(refusal)
                await send({"type": "websocket.close", "code": 1008, "reason": reason})
            return
        try:
            if kind == "websocket":
                await self.app(scope, receive, send)
            elif self.fast is None or not await self.fast(scope, receive, send, self._app):
                await self._app(scope, receive, send)
        finally:
            if self.limits is not None:
                self.limits.leave(scope)

    async def _check(self, scope: Scope) -> Response | None:
        """None if the request may be served; else the answer that refuses it."""
        problem = self.hosts.refusal(scope)
        if problem is not None:
            return jsonio.JSONResponse({"detail": problem}, 400)
        if self.auth is not None:
            refusal = await self.auth.admit(scope)
            if refusal is not None:
                return refusal
        if self.limits is not None:
            refusal = self.limits.admit(scope)
            if refusal is not None:
                return refusal
        if self.max_bytes is not None and body.declared_too_large(scope, self.max_bytes):
            return body.too_large(self.max_bytes)
        return None

    async def _app(self, scope: Scope, receive: Receive, send: Send) -> None:
        """FastAPI, for everything the fast path does not answer."""
        send = with_headers(send)
        if self.max_bytes is None or scope["method"] in body.NO_BODY:
            await self.app(scope, receive, send)
            return
        started = False

        async def tracked(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, body.counted(receive, self.max_bytes), tracked)
        except BodyTooLarge:  # (the routes answer it themselves: 413, as an HTTPException)
            if not started:
                await body.too_large(self.max_bytes)(scope, receive, send)


def _words(response: Response) -> str:
    text = bytes(response.body).decode("utf-8", "replace")
    return text[:120]  # a close frame's reason is at most 123 bytes
