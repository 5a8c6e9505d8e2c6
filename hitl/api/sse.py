"""Server-Sent Events framing over the event log."""

from __future__ import annotations

from collections.abc import AsyncIterator
from functools import lru_cache

from fastapi.responses import StreamingResponse

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


def cursor(last_event_id: str | None, after: int | None) -> int:
    """Where a stream starts: after `Last-Event-ID` if the client sent one, else `?after=`."""
    if last_event_id is not None and last_event_id.strip().isdigit():
        return int(last_event_id.strip())
    return after or 0
