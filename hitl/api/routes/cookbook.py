"""The cookbook example's API, unchanged: /submit, /stream/{task_id}, /feedback/{task_id}.

These routes are the definition (and the OpenAPI description) of the cookbook API. Well-formed
requests to them are answered by `hitl.api.fastpath` without FastAPI's per-request machinery,
calling the functions below; `tests/unit/api/test_fastpath_parity.py` proves that both answer
every case identically.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator
from typing import Any

from fastapi import APIRouter, status
from fastapi.responses import StreamingResponse

from hitl.api import compat, jsonio, sse
from hitl.api.deps import AddressDep, PrincipalDep, ServiceDep
from hitl.api.responses import COOKBOOK_MESSAGE, errors, event_stream
from hitl.api.schemas import FeedbackRequest, FeedbackResponse, SubmitRequest, SubmitResponse
from hitl.service import FINAL, FINAL_EVENTS, NotFound, ReviewRow, Seen, Service, TaskRow
from hitl.service.principal import Principal

router = APIRouter(tags=["cookbook"], route_class=jsonio.Route)


async def submit_task(
    service: Service, body: SubmitRequest, who: Principal | None
) -> SubmitResponse:
    row, _ = await service.tasks.submit(body.data, by=who)
    return SubmitResponse(task_id=row.id)


async def give_feedback(
    service: Service,
    task_id: str,
    body: FeedbackRequest,
    who: Principal | None,
    address: str | None,
) -> FeedbackResponse:
    action = "approve" if body.feedback == "approved" else "reject"
    seen = Seen(body.round, body.content_hash)
    await service.tasks.decide_task(task_id, action, by=who, address=address, seen=seen)
    return FeedbackResponse(message=f"Feedback '{body.feedback}' received")


@router.post(
    "/submit",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=SubmitResponse,
    responses=errors(400, 401, 403, 413, 422, 503),
)
async def submit(body: SubmitRequest, service: ServiceDep, who: PrincipalDep) -> SubmitResponse:
    return await submit_task(service, body, who)


@router.post(
    "/feedback/{task_id}",
    response_model=FeedbackResponse,
    responses=errors(400, 401, 403, 404, 409, 413, 422, 503),
)
async def feedback(
    task_id: str,
    body: FeedbackRequest,
    service: ServiceDep,
    who: PrincipalDep,
    address: AddressDep,
) -> FeedbackResponse:
    return await give_feedback(service, task_id, body, who, address)


def _data(message: dict[str, Any], id: int | None) -> bytes:
    return sse.frame(json.dumps(message), id).encode()


CLOSED = sse.frame(json.dumps({"status": "stream_closed"})).encode()


async def stream_chunks(
    service: Service, task: TaskRow, review: ReviewRow | None, last: int
) -> AsyncGenerator[bytes]:
    yield _data(compat.snapshot(task, review), last or None)
    if task.status in FINAL:
        yield CLOSED
        return
    heartbeat = service.settings.heartbeat_seconds
    async for run in service.broker.runs(task.id, last, heartbeat):
        if run is None:
            yield sse.HEARTBEAT
            continue
        frames = []  # the run's messages, sent in one write
        for event in run:
            if event.type in compat.SPOKEN:
                message = compat.message(event.type, json.loads(event.data))
                if message is not None:
                    frames.append(_data(message, event.id))
            if event.type in FINAL_EVENTS:
                frames.append(CLOSED)
                yield b"".join(frames)
                return
        if frames:
            yield b"".join(frames)


@router.get(
    "/stream/{task_id}",
    response_class=StreamingResponse,
    responses={
        **event_stream(
            "Cookbook messages, then `stream_closed` once the task ends", COOKBOOK_MESSAGE
        ),
        **errors(401, 404, 422, 503),
    },
)
async def stream(task_id: str, service: ServiceDep, who: PrincipalDep) -> StreamingResponse:
    """The task's current state first, then every change, then `stream_closed`."""
    try:
        task, review, last = await service.tasks.snapshot(task_id, who)
    except NotFound:
        raise NotFound("Task not found") from None  # the cookbook's own words
    return sse.response(stream_chunks(service, task, review, last))
