"""The one JSON reader and writer of the HTTP API, for the FastAPI routes and the fast path.

Reading refuses what cannot be stored and sent back faithfully: bytes that are not UTF-8, and
strings that are not valid Unicode (a lone surrogate such as "\\ud800", which Python's `json`
accepts but no UTF-8 encoder can write). Both are `json.JSONDecodeError`s, so FastAPI answers
them as it answers any body that is not JSON: 422, with our message.
"""

from __future__ import annotations

import json
import re
from typing import Any

from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import JSONResponse as StarletteJSONResponse
from starlette.responses import Response

from hitl.flow.checkpoint import compact

# A `\u` escape of a surrogate (D800–DFFF); only then can the parsed value hold one.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")

NOT_UTF8 = "the body is not valid UTF-8: send JSON encoded as UTF-8"
NOT_UNICODE = (
    "the body holds a string that is not valid Unicode (a lone surrogate escape such as "
    "\\ud800): send text as valid UTF-8"
)


def loads(body: bytes) -> Any:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise json.JSONDecodeError(NOT_UTF8, repr(body[:50]), exc.start) from None
    value = json.loads(text)
    if _SURROGATE_ESCAPE.search(body):
        try:
            json.dumps(value, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError as exc:
            raise json.JSONDecodeError(NOT_UNICODE, text[:50], exc.start) from None
    return value


def dumps(value: Any) -> bytes:
    """Compact UTF-8 JSON; NaN and Infinity are refused (JSON has neither)."""
    try:
        return json.dumps(
            value, ensure_ascii=False, separators=(",", ":"), allow_nan=False
        ).encode()
    except UnicodeEncodeError:
        # A flow may put a lone surrogate in its output: send it escaped rather than fail.
        return compact(value).encode()


class JSONResponse(StarletteJSONResponse):
    def render(self, content: Any) -> bytes:
        return dumps(content)


class _Request(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = loads(await self.body())
        return self._json


class Route(APIRoute):
    """FastAPI's route, reading JSON bodies with `loads`."""

    def get_route_handler(self) -> Any:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            response: Response = await handler(_Request(request.scope, request.receive))
            return response

        return route
