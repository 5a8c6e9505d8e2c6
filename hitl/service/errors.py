"""Domain errors; the API maps each to one HTTP status.

HitlError
 ├── NotFound        the task or review does not exist          → 404
 ├── Invalid         the request cannot be carried out as asked → 422
 ├── Conflict        the state changed, or forbids this now     → 409
 ├── Unauthenticated no credentials, or ones that are not valid   → 401
 ├── Forbidden       the caller may see it, but not do this      → 403
 └── LeaseLost       a worker no longer owns the task (internal)
"""

from __future__ import annotations

from typing import Any


class HitlError(Exception):
    """Something went wrong in hitl."""

    def __init__(self, message: str | None = None, **context: Any) -> None:
        self.message = message or (self.__doc__ or "").strip()
        self.context = context
        super().__init__(self.message)


class NotFound(HitlError):
    """No such task or review."""


class Invalid(HitlError):
    """The request is not valid."""


class Conflict(HitlError):
    """The task is not in a state that allows this."""


class Unauthenticated(HitlError):
    """Sign in: send `Authorization: Bearer <token>`, or use a sign-in link."""


class Forbidden(HitlError):
    """You may not do this."""


class LeaseLost(HitlError):
    """This worker no longer holds the task's lease."""
