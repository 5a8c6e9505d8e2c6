"""One place that turns domain errors and bad requests into HTTP answers, wherever the request
was served (a FastAPI route, or the cookbook's fast path)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import PlainTextResponse, Response

from hitl.api import jsonio
from hitl.service import (
    CHANNEL_NAME,
    CHANNEL_NAME_RULE,
    Conflict,
    Forbidden,
    HitlError,
    Invalid,
    NotFound,
    Unauthenticated,
    Unavailable,
)

STATUS = {NotFound: 404, Invalid: 422, Conflict: 409, Forbidden: 403, Unauthenticated: 401}
# Patterns that a 422 says in words (what to use), not as the regular expression.
PATTERN_WORDS = {CHANNEL_NAME: CHANNEL_NAME_RULE}


def status_of(exc: HitlError) -> int:
    """The HTTP status of a domain error."""
    return next((s for cls, s in STATUS.items() if isinstance(exc, cls)), 400)


def respond(exc: HitlError | Unavailable) -> Response:
    """The answer to a domain error, or to the database being away."""
    if isinstance(exc, Unavailable):
        retry = {"Retry-After": str(exc.retry_after)} if exc.retry_after is not None else {}
        return jsonio.JSONResponse({"detail": str(exc)}, 503, retry)
    code = status_of(exc)
    extra = {"WWW-Authenticate": 'Bearer realm="hitl"'} if code == 401 else None
    return jsonio.JSONResponse({"detail": exc.message, **exc.context}, code, extra)


def internal() -> Response:
    """The answer to a bug, as Starlette's error middleware gives it."""
    return PlainTextResponse("Internal Server Error", 500)


async def _domain(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HitlError | Unavailable)
    return respond(exc)


def _where(loc: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in loc) or "request"


def _problem(error: Any) -> str:
    if error.get("type") == "json_invalid":
        reason = (error.get("ctx") or {}).get("error", "")
        if reason in (jsonio.NOT_UTF8, jsonio.NOT_UNICODE):
            return str(reason)
        return "the body is not valid JSON: send a JSON object"
    where = _where(tuple(error.get("loc", ())))
    words = PATTERN_WORDS.get(str((error.get("ctx") or {}).get("pattern")))
    if error.get("type") == "string_pattern_mismatch" and words:
        return f"{where}: {error.get('input')!r} does not fit: use {words}"
    return f"{where}: {error.get('msg')}"


async def _validation(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    problems = list(dict.fromkeys(_problem(e) for e in errors))
    clean = [
        {"loc": list(e.get("loc", ())), "msg": e.get("msg"), "type": e.get("type")} for e in errors
    ]
    body = {"detail": "invalid request: " + "; ".join(problems), "errors": clean}
    return jsonio.JSONResponse(body, 422)


# FastAPI's answer to a body it could not parse (JSON nested beyond Python's recursion limit,
# say) names no fix; ours keeps its words and adds one.
UNPARSEABLE = "There was an error parsing the body"


async def _http(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    detail = exc.detail
    if exc.status_code == 400 and detail == UNPARSEABLE:
        detail = f"{UNPARSEABLE}: {_unparseable(exc.__cause__)}"
    return jsonio.JSONResponse({"detail": detail}, exc.status_code, exc.headers)


def _unparseable(cause: BaseException | None) -> str:
    """What to fix in a body whose parse failed (FastAPI raises its 400 from the error)."""
    if isinstance(cause, ValueError) and "digits" in str(cause):
        # Python reads no integer of more than 4,300 digits (a guard against slow parsing).
        return "send numbers of at most 4300 digits (a longer one as a string)"
    if isinstance(cause, ValueError):
        return f"send valid JSON ({cause})"
    return "send a JSON object nested no deeper than a few hundred levels"


def install(app: FastAPI) -> None:
    app.add_exception_handler(StarletteHTTPException, _http)
    app.add_exception_handler(HitlError, _domain)
    app.add_exception_handler(Unavailable, _domain)
    app.add_exception_handler(RequestValidationError, _validation)
