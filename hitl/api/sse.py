"""Server-Sent Events framing over the event log."""

from __future__ import annotations

from collections.abc import AsyncIterator

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


HEARTBEAT = ": ping\n\n"
RETRY = "retry: 1000\n\n"


def response(body: AsyncIterator[str]) -> StreamingResponse:
    return StreamingResponse(body, media_type="text/event-stream", headers=HEADERS)


def cursor(last_event_id: str | None, after: int | None) -> int:
    """Where a stream starts: after `Last-Event-ID` if the client sent one, else `?after=`."""
    if last_event_id is not None and last_event_id.strip().isdigit():
        return int(last_event_id.strip())
    return after or 0
