"""SSE streams of the event log: one task's, or every task's."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Header, Query
from fastapi.responses import StreamingResponse

from hitl.api import sse
from hitl.api.deps import ServiceDep
from hitl.service import FINAL, FINAL_EVENTS, NotFound, Service

router = APIRouter(tags=["events"])

AfterQuery = Annotated[int | None, Query(ge=0, description="stream events after this id")]
LastEventId = Annotated[str | None, Header()]


async def _stream(
    service: Service, task_id: str | None, after: int, ends: bool
) -> AsyncIterator[bytes]:
    yield sse.RETRY
    heartbeat = service.settings.heartbeat_seconds
    async for event in service.broker.subscribe(task_id, after, heartbeat):
        if event is None:
            yield sse.HEARTBEAT
            continue
        yield sse.event_frame(event.id, event.type, event.data)
        if ends and event.type in FINAL_EVENTS:
            return


@router.get("/tasks/{task_id}/events", response_class=StreamingResponse)
async def task_events(
    task_id: str,
    service: ServiceDep,
    after: AfterQuery = None,
    last_event_id: LastEventId = None,
) -> StreamingResponse:
    """Every event of one task after the cursor, then live ones; ends after the final one."""
    task, _, last = await service.store.snapshot(task_id)
    if task is None:
        raise NotFound(f"no task {task_id!r}")
    start = sse.cursor(last_event_id, after)
    if task["status"] in FINAL and start >= last:
        return sse.response(_closed())
    return sse.response(_stream(service, task_id, start, ends=True))


async def _closed() -> AsyncIterator[bytes]:
    yield sse.RETRY


@router.get("/events", response_class=StreamingResponse)
async def all_events(
    service: ServiceDep,
    after: AfterQuery = None,
    last_event_id: LastEventId = None,
) -> StreamingResponse:
    """Every event of every task after the cursor, then live ones; never ends."""
    start = sse.cursor(last_event_id, after)
    if last_event_id is None and after is None:
        start = service.broker.last_id
    return sse.response(_stream(service, None, start, ends=False))
