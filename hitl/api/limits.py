"""Limits per principal: requests per second, and event streams open at once.

They run right after authentication, so they count what each principal does, whichever route
serves it (the cookbook's fast path included). A limit of 0 is no limit. A request over a limit
gets 429 and a `Retry-After`, and is not served.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from starlette.responses import Response
from starlette.types import Scope

from hitl.api import jsonio
from hitl.api.auth import is_open

STREAMS = ("/stream/", "/api/v1/events")
_COUNTED = "hitl.stream_of"  # in the scope's state: whose open stream this request counts as


def is_stream(scope: Scope) -> bool:
    path: str = scope["path"]
    return scope.get("method") == "GET" and (
        path.startswith(STREAMS) or (path.startswith("/api/v1/tasks/") and path.endswith("/events"))
    )


class Bucket:
    """A token bucket: `rate` requests a second, and bursts of up to twice that."""

    __slots__ = ("tokens", "at")

    def __init__(self, capacity: float, now: float) -> None:
        self.tokens = capacity
        self.at = now


class PrincipalLimits:
    """The front door (`hitl.api.front`) asks `admit` before serving a request, and calls
    `leave` when it is done."""

    def __init__(
        self, rate: float, streams: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = rate
        self.clock = clock  # seconds, for the buckets' refill
        self.capacity = max(1.0, 2 * rate)
        self.streams = streams
        self._buckets: dict[str, Bucket] = {}
        self._open: dict[str, int] = {}

    def admit(self, scope: Scope) -> Response | None:
        """None if the request may go on (an event stream is counted open, until `leave`);
        else the 429 that refuses it."""
        principal = (scope.get("state") or {}).get("principal")
        if scope["type"] != "http" or principal is None or is_open(scope["path"]):
            return None  # health checks and sign-in count for no one
        name: str = principal.name
        if self.rate:
            wait = self._take(name)
            if wait:
                detail = (
                    f"too many requests from {name}: at most {self.rate:g} a second "
                    f"(HITL_RATE_LIMIT); retry in {wait} s"
                )
                return jsonio.JSONResponse({"detail": detail}, 429, {"Retry-After": str(wait)})
        if not self.streams or not is_stream(scope):
            return None
        if self._open.get(name, 0) >= self.streams:
            detail = (
                f"{name} has {self.streams} event streams open, the most allowed "
                "(HITL_MAX_STREAMS): close one first"
            )
            return jsonio.JSONResponse({"detail": detail}, 429, {"Retry-After": "1"})
        self._open[name] = self._open.get(name, 0) + 1
        scope["state"][_COUNTED] = name
        return None

    def leave(self, scope: Scope) -> None:
        """The request `admit` let in is done: its stream, if counted, is closed."""
        name = scope["state"].pop(_COUNTED, None) if "state" in scope else None
        if name is None:
            return
        left = self._open[name] - 1
        if left:
            self._open[name] = left
        else:
            del self._open[name]

    def _take(self, name: str) -> int:
        """Take one request from `name`'s bucket: 0, or the seconds until one is there."""
        now = self.clock()
        bucket = self._buckets.get(name)
        if bucket is None:
            if len(self._buckets) > 100_000:
                self._buckets.clear()
            bucket = self._buckets[name] = Bucket(self.capacity, now)
        bucket.tokens = min(self.capacity, bucket.tokens + (now - bucket.at) * self.rate)
        bucket.at = now
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return 0
        return max(1, math.ceil((1 - bucket.tokens) / self.rate))
