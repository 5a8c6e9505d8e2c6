"""Server-Sent Events framing over the event log."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from functools import lru_cache

from fastapi.responses import StreamingResponse

from hitl.service import Invalid

HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no", "Connection": "keep-alive"}


def frame(data: str, id: int | None = None, event: str | None = None) -> str:
    lines = []
    if id is not None:
        lines.append(f"id: {id}")
    if event is not None:
        lines.append(f"event: {event}")
    lines.extend(f"data: {line}" for line in data.split("\n"))
    return "\n".join(lines) + "\n\n"


HEARTBEAT = b": ping\n\n"
RETRY = b"retry: 1000\n\n"


@lru_cache(maxsize=4096)
def event_frame(id: int, event: str, data: str) -> bytes:
    """One log event as an encoded frame, made once however many clients it goes to."""
    return frame(data, id, event).encode()


def response(body: AsyncIterator[bytes]) -> StreamingResponse:
    return StreamingResponse(body, media_type="text/event-stream", headers=HEADERS)


MAX_ID = 2**63 - 1  # the largest event id either database can hold
_DIGITS = re.compile(r"[0-9]{1,19}")


def cursor(last_event_id: str | None, after: str | None) -> int:
    """Where a stream starts: after `Last-Event-ID` if the client sent one, else `?after=`;
    each must be an event id, written in ASCII digits (no sign, point or underscore)."""
    text = (last_event_id or "").strip()
    if text:
        return _event_id(text, "Last-Event-ID", "the id of the last event received")
    if after is None:
        return 0
    return _event_id(after, "after", "an event id")


def _event_id(text: str, what: str, send: str) -> int:
    if not _DIGITS.fullmatch(text) or int(text) > MAX_ID:
        raise Invalid(
            f"{what} {text[:40]!r} is not an event id: send {send} (digits 0-9, at most "
            f"{MAX_ID}), or no {what}"
        )
    return int(text)
