"""A client for the hitl HTTP API, sync and async. Depends on nothing of the server.

`Client(url, token=...)` signs in with an API token, or with `HITL_TOKEN` when `token` is left
out (and finds the server at `HITL_SERVER` when `url` is): every request sends
`Authorization: Bearer <token>`. Its answers are typed models (`hitl.client.models`).

`ask(output)` asks a person to review anything and waits for their decision; the
`@require_approval` decorator runs a function only once a person approves its arguments.
"""

from __future__ import annotations

from hitl.client._approval import require_approval
from hitl.client._client import AsyncClient, Client
from hitl.client._exceptions import (
    BadServerURL,
    HitlAPIError,
    HitlConnectionError,
    HitlError,
    HitlProtocolError,
    Rejected,
    TaskEnded,
    WaitTimeout,
)
from hitl.client.models import (
    Answer,
    Event,
    FormField,
    Review,
    ReviewCreated,
    ReviewOptions,
    Task,
)

__all__ = [
    "Answer",
    "AsyncClient",
    "BadServerURL",
    "Client",
    "Event",
    "FormField",
    "HitlAPIError",
    "HitlConnectionError",
    "HitlError",
    "HitlProtocolError",
    "Rejected",
    "Review",
    "ReviewCreated",
    "ReviewOptions",
    "Task",
    "TaskEnded",
    "WaitTimeout",
    "require_approval",
]
