"""One place that turns domain errors and bad requests into HTTP answers."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from hitl.service import Conflict, HitlError, Invalid, NotFound, Unavailable

STATUS = {NotFound: 404, Invalid: 422, Conflict: 409}


def domain_answer(exc: HitlError) -> tuple[int, dict[str, Any]]:
    """The status and body that answer a domain error, wherever the request was served."""
    code = next((s for cls, s in STATUS.items() if isinstance(exc, cls)), 400)
    return code, {"detail": exc.message, **exc.context}


UNAVAILABLE_HEADERS = {"Retry-After": "1"}


async def _domain(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HitlError)
    code, body = domain_answer(exc)
    return JSONResponse(body, status_code=code)


def _where(loc: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in loc) or "request"


async def _validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    problems = []
    for error in errors:
        if error.get("type") == "json_invalid":
            problems.append("the body is not valid JSON: send a JSON object")
        else:
            problems.append(f"{_where(tuple(error.get('loc', ())))}: {error.get('msg')}")
    clean = [
        {"loc": list(e.get("loc", ())), "msg": e.get("msg"), "type": e.get("type")} for e in errors
    ]
    return JSONResponse(
        {"detail": "invalid request: " + "; ".join(problems), "errors": clean}, status_code=422
    )


async def _unavailable(request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"detail": str(exc)}, status_code=503, headers=UNAVAILABLE_HEADERS)


def install(app: FastAPI) -> None:
    app.add_exception_handler(HitlError, _domain)
    app.add_exception_handler(Unavailable, _unavailable)
    app.add_exception_handler(RequestValidationError, _validation)
