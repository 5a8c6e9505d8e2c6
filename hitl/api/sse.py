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


def cursor(last_event_id: str | None, after: int | None) -> int:
    """Where a stream starts: after `Last-Event-ID` if the client sent one, else `?after=`."""
    text = (last_event_id or "").strip()
    if not text:
        return after or 0
    if not _DIGITS.fullmatch(text) or int(text) > MAX_ID:
        raise Invalid(
            f"Last-Event-ID {text[:40]!r} is not an event id: send the id of the last "
            f"event received (digits 0-9, at most {MAX_ID}), or no Last-Event-ID"
        )
    return int(text)
