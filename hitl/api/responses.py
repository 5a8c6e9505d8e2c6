"""What each operation can answer besides its success, for the OpenAPI description.

Every error answer is JSON `{"detail": "<what to fix>", ...context}` (`schemas.ErrorPublic`),
made in one place (`hitl.api.errors`); 422 adds `errors` when the request did not match its schema.
Routes declare the statuses they can give with `errors(...)`, and the streams their 200 with
`event_stream(...)`. `tests/unit/api/test_openapi.py` sends a request for every declared
status and checks the answer against its declaration, and runs schemathesis over the whole
document.
"""

from __future__ import annotations

from typing import Any

from hitl.api.schemas import ErrorPublic, ValidationErrorPublic
from hitl.service import EventType

Responses = dict[int | str, dict[str, Any]]

_ERRORS: Responses = {
    400: {
        "model": ErrorPublic,
        "description": "The body could not be parsed (JSON nested too deeply, say)",
    },
    401: {
        "model": ErrorPublic,
        "description": "Not signed in, or with a token that is unknown, revoked or expired: "
        "send `Authorization: Bearer <token>`",
        "headers": {
            "WWW-Authenticate": {
                "description": '`Bearer`, with `error="invalid_token"` for a bad token',
                "required": True,
                "schema": {"type": "string"},
            }
        },
    },
    403: {
        "model": ErrorPublic,
        "description": "Signed in, but without what this needs (the body names it): a role, "
        "or a cross-site request from a signed-in browser",
    },
    429: {
        "model": ErrorPublic,
        "description": "Over a limit of yours: requests a second (`HITL_RATE_LIMIT`) or open "
        "event streams (`HITL_MAX_STREAMS`); retry after `Retry-After`",
        "headers": {
            "Retry-After": {
                "description": "seconds to wait before retrying",
                "required": True,
                "schema": {"type": "string", "pattern": "^[0-9]+$"},
            }
        },
    },
    404: {
        "model": ErrorPublic,
        "description": "No such task, review or flow, or none that you may see",
    },
    409: {
        "model": ErrorPublic,
        "description": "The state forbids this now (the body says which state), an "
        "`Idempotency-Key` used for another request, or an id prefix that several ids share",
    },
    413: {
        "model": ErrorPublic,
        "description": "The body is larger than `HITL_MAX_INPUT_BYTES`: send less",
    },
    422: {"model": ValidationErrorPublic, "description": "The request is not valid"},
    503: {
        "model": ErrorPublic,
        "description": "The database is unavailable right now: retry after `Retry-After`",
        "headers": {
            "Retry-After": {
                "description": "seconds to wait before retrying",
                "required": True,
                "schema": {"type": "string", "pattern": "^[0-9]+$"},
            }
        },
    },
}


def errors(*codes: int) -> Responses:
    """The declarations of these error statuses. Any POST may be refused with 413 (the body
    limit runs before routing), but only one that reads a body can fail to parse it (400).
    Whatever may be refused for want of sign-in (401) may also be over its caller's limits
    (429)."""
    codes = (*codes, 429) if 401 in codes else codes
    return {code: dict(_ERRORS[code]) for code in sorted(codes)}


TASK_CREATED: Responses = {
    201: {
        "headers": {
            "Location": {
                "description": "the task's URL",
                "required": True,
                "schema": {"type": "string"},
            },
            "Idempotent-Replayed": {
                "description": "`true` if this `Idempotency-Key` had made the task already",
                "schema": {"type": "string", "enum": ["true"]},
            },
        }
    }
}


def event_stream(description: str, item: dict[str, Any]) -> Responses:
    """A 200 that is a stream of Server-Sent Events; `item` is the schema of one event."""
    return {
        200: {"description": description, "content": {"text/event-stream": {"itemSchema": item}}}
    }


_EVENT_ID = {"type": "string", "pattern": "^[0-9]+$", "description": "the event's id in the log"}


def _sse_event(event: dict[str, Any], required: list[str], data: dict[str, Any]) -> dict[str, Any]:
    """An SSE event whose `data` is JSON text of the schema `data`."""
    return {
        "type": "object",
        "required": required,
        "properties": {
            "event": event,
            "id": _EVENT_ID,
            "data": {
                "type": "string",
                "contentMediaType": "application/json",
                "contentSchema": data,
            },
        },
    }


LOG_EVENT = _sse_event(
    {"type": "string", "enum": [t.value for t in EventType]},
    ["data", "event", "id"],
    {
        "type": "object",
        "required": ["task_id", "status"],
        "properties": {"task_id": {"type": "string"}, "status": {"type": "string"}},
        "description": "the task's id and status after the event, and what happened",
    },
)

COOKBOOK_MESSAGE = _sse_event(
    {"const": "message"},
    ["data", "event"],
    {
        "type": "object",
        "required": ["status"],
        "properties": {
            "status": {
                "enum": [
                    "pending",
                    "running",
                    "waiting_for_review",
                    "processing_feedback",
                    "completed",
                    "failed",
                    "stream_closed",
                ]
            },
            "task_id": {"type": "string"},
            "output_to_review": {},
            "round": {"type": "integer", "minimum": 1},
            "feedback_value": {"enum": ["approved", "rejected"]},
            "final_result": {},
            "error": {"type": ["string", "null"]},
        },
    },
)
