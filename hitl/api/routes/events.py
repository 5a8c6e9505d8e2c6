"""SSE streams of the event log: one task's, or every task's."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Header, Query
from fastapi.responses import StreamingResponse

from hitl.api import jsonio, sse
from hitl.api.deps import PrincipalDep, ServiceDep
from hitl.api.responses import LOG_EVENT, errors, event_stream
from hitl.service import FINAL, FINAL_EVENTS, Service
from hitl.service.tasks import Viewer

router = APIRouter(tags=["events"], route_class=jsonio.Route)

AfterQuery = Annotated[  # (checked by `sse.cursor`, as `Last-Event-ID` is)
    str | None,
    Query(description=f"stream events after this id (digits 0-9, at most {sse.MAX_ID})"),
]
LastEventId = Annotated[
    str | None, Header(description="the id of the last event received; wins over `after`")
]


async def _stream(
    service: Service,
    task_id: str | None,
    after: int,
    ends_from: int | None,
    sees: Viewer | None = None,
) -> AsyncIterator[bytes]:
    """Events after `after`; with `ends_from`, the stream ends after a final event whose id is
    at least that (the task's last event when the stream began): an earlier final event is
    history, which a retry followed."""
    yield sse.RETRY
    heartbeat = service.settings.heartbeat_seconds
    async for run in service.broker.runs(task_id, after, heartbeat):
        if run is None:
            yield sse.HEARTBEAT
            continue
        frames = []  # the run's events, sent in one write
        for event in run:
            if sees is not None and not await sees(event.task_id, event.type):
                continue
            frames.append(sse.event_frame(event.id, event.type, event.data))
            if ends_from is not None and event.type in FINAL_EVENTS and event.id >= ends_from:
                yield b"".join(frames)
                return
        if frames:
            yield b"".join(frames)


@router.get(
    "/tasks/{task_id}/events",
    response_class=StreamingResponse,
    responses={
        **event_stream("The task's events; ends after its final one", LOG_EVENT),
        **errors(401, 404, 422, 503),
    },
)
async def task_events(
    task_id: str,
    service: ServiceDep,
    who: PrincipalDep,
    after: AfterQuery = None,
    last_event_id: LastEventId = None,
) -> StreamingResponse:
    """Every event of one task after the cursor, then live ones; ends after the final one."""
    start = sse.cursor(last_event_id, after)
    task, _, last = await service.tasks.snapshot(task_id, who)
    if task.status in FINAL and start >= last:
        return sse.response(_closed())
    return sse.response(_stream(service, task.id, start, ends_from=last))


async def _closed() -> AsyncIterator[bytes]:
    yield sse.RETRY


@router.get(
    "/events",
    response_class=StreamingResponse,
    # No 503: "from now" is asked of the database, or else taken from memory, and the stream
    # reads the database only once it has begun.
    responses={**event_stream("Every task's events; never ends", LOG_EVENT), **errors(401, 422)},
)
async def all_events(
    service: ServiceDep,
    who: PrincipalDep,
    after: AfterQuery = None,
    last_event_id: LastEventId = None,
) -> StreamingResponse:
    """Every event of every task after the cursor, then live ones; never ends. Admins see
    every task's; anyone else the events of the tasks they may see."""
    start = sse.cursor(last_event_id, after)
    if not (last_event_id or "").strip() and after is None:
        start = await service.broker.now()
    return sse.response(_stream(service, None, start, None, service.tasks.viewer(who)))
