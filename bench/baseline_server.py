"""The baseline hitl is measured against: the in-memory cookbook example, as its README
describes it (`../shared/seed`, "How It Works"), written again here so that it runs on this
machine with the same PocketFlow and FastAPI as hitl.

- FastAPI serves `POST /submit`, `GET /stream/{task_id}` and `POST /feedback/{task_id}`, with
  pydantic models for the bodies.
- Each task keeps, in a dict in memory, a PocketFlow `shared` store that holds an
  `asyncio.Queue` (the statuses its stream sends) and an `asyncio.Event` (set by the feedback).
- `/submit` schedules the flow with FastAPI's `BackgroundTasks`, to run after the answer.
- The flow is an `AsyncFlow`: process → review; review "approved" → result, "rejected" →
  process again. Processing has no delay (the benchmarks' `process_delay=0`).
- Nothing is persisted.
- Logging: by default nothing is logged per request, which makes this baseline cheaper than
  the example, never dearer. With `BASELINE_LOG=published` it prints a line at each step where
  the published example prints one (its nodes and its server: 25 lines a plain lifecycle, 10
  more a rejection round), and is meant to run as the example's README runs it, with uvicorn's
  default logging (an access line a request); `compare.py` measures it both ways.

    .venv/bin/python -m uvicorn --app-dir bench baseline_server:app --port 8001
"""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from collections.abc import AsyncIterator
from typing import Any, Literal

from fastapi import BackgroundTasks, FastAPI, HTTPException
from fastapi.responses import StreamingResponse
from pocketflow import AsyncFlow, AsyncNode, Node
from pydantic import BaseModel, Field

app = FastAPI(title="in-memory baseline")
tasks: dict[str, dict[str, Any]] = {}
PUBLISHED = os.environ.get("BASELINE_LOG") == "published"


def say(line: str) -> None:
    """A line where the published example prints one, in `BASELINE_LOG=published` mode."""
    if PUBLISHED:
        print(line)


class Process(Node):  # type: ignore[misc]
    def prep(self, shared: dict[str, Any]) -> tuple[str, int]:
        say("process: prep")
        shared["revision"] = shared.get("revision", 0) + 1
        return shared["task_input"], shared["revision"]

    def exec(self, prep_res: tuple[str, int]) -> str:
        text, revision = prep_res
        return f"Revision {revision}: {text.capitalize()}"

    def post(self, shared: dict[str, Any], prep_res: Any, exec_res: str) -> str:
        shared["processed_output"] = exec_res
        say("process: output stored")
        return "default"


class Review(AsyncNode):  # type: ignore[misc]
    async def prep_async(self, shared: dict[str, Any]) -> asyncio.Event:
        event: asyncio.Event = shared["review_event"]
        event.clear()
        await shared["sse_queue"].put(
            {"status": "waiting_for_review", "output": shared["processed_output"]}
        )
        say("review: waiting_for_review queued")
        return event

    async def exec_async(self, event: asyncio.Event) -> None:
        say("review: waiting for the feedback")
        await event.wait()
        say("review: feedback arrived")

    async def post_async(self, shared: dict[str, Any], prep_res: Any, exec_res: Any) -> str:
        feedback: str = shared["feedback"]
        say(f"review: feedback {feedback!r}")
        shared["feedback"] = None
        if feedback == "approved":
            shared["approved_output"] = shared["processed_output"]
        say(f"review: action {feedback}")
        return feedback


class Result(Node):  # type: ignore[misc]
    def prep(self, shared: dict[str, Any]) -> Any:
        say("result: prep")
        return shared["approved_output"]

    def exec(self, prep_res: Any) -> Any:
        say(f"--- final result ---\n{prep_res}\n--------------------")
        return prep_res

    def post(self, shared: dict[str, Any], prep_res: Any, exec_res: Any) -> None:
        shared["final_result"] = prep_res
        say("result: flow finished")


def feedback_flow() -> AsyncFlow:
    process, review, result = Process(), Review(), Result()
    process >> review
    review - "approved" >> result
    review - "rejected" >> process
    return AsyncFlow(start=process)


class SubmitRequest(BaseModel):
    data: str = Field(..., min_length=1)


class SubmitResponse(BaseModel):
    message: str = "Task submitted"
    task_id: str


class FeedbackRequest(BaseModel):
    feedback: Literal["approved", "rejected"]


class FeedbackResponse(BaseModel):
    message: str


async def run_flow(task_id: str, shared: dict[str, Any]) -> None:
    queue: asyncio.Queue[dict[str, Any] | None] = shared["sse_queue"]
    await queue.put({"status": "running"})
    say(f"task {task_id}: flow starting")
    try:
        await feedback_flow().run_async(shared)
        final: dict[str, Any] = {"status": "completed", "final_result": shared["final_result"]}
    except Exception as exc:
        final = {"status": "failed", "error": str(exc)}
    say(f"task {task_id}: flow finished: {final['status']}")
    tasks[task_id]["status"] = final["status"]
    await queue.put(final)
    await queue.put(None)
    say(f"task {task_id}: ended, end of stream queued")


@app.post("/submit", response_model=SubmitResponse, status_code=202)
async def submit(body: SubmitRequest, background: BackgroundTasks) -> SubmitResponse:
    task_id = str(uuid.uuid4())
    queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
    shared = {
        "task_input": body.data,
        "processed_output": None,
        "feedback": None,
        "review_event": asyncio.Event(),
        "sse_queue": queue,
        "final_result": None,
        "task_id": task_id,
    }
    tasks[task_id] = {"shared": shared, "status": "pending"}
    await queue.put({"status": "pending", "task_id": task_id})
    background.add_task(run_flow, task_id, shared)
    say(f"task {task_id}: submitted")
    return SubmitResponse(task_id=task_id)


@app.post("/feedback/{task_id}", response_model=FeedbackResponse)
async def feedback(task_id: str, body: FeedbackRequest) -> FeedbackResponse:
    task = tasks.get(task_id)
    if task is None:
        raise HTTPException(404, "Task not found")
    shared = task["shared"]
    event: asyncio.Event = shared["review_event"]
    if event.is_set() or shared["processed_output"] is None:
        raise HTTPException(409, "Task not awaiting feedback or feedback already sent")
    say(f"task {task_id}: feedback {body.feedback}")
    processing = {"status": "processing_feedback", "feedback_value": body.feedback}
    await shared["sse_queue"].put(processing)
    task["status"] = "processing_feedback"
    shared["feedback"] = body.feedback
    event.set()
    return FeedbackResponse(message=f"Feedback '{body.feedback}' received")


@app.get("/stream/{task_id}")
async def stream(task_id: str) -> StreamingResponse:
    task = tasks.get(task_id)
    if task is None:
        raise HTTPException(404, "Task not found")
    queue: asyncio.Queue[dict[str, Any] | None] = task["shared"]["sse_queue"]

    async def frames() -> AsyncIterator[str]:
        say(f"stream {task_id}: client connected")
        while True:
            update = await queue.get()
            if update is None:
                say(f"stream {task_id}: end of stream")
                yield f"data: {json.dumps({'status': 'stream_closed'})}\n\n"
                say(f"stream {task_id}: closed")
                return
            data = json.dumps(update)
            say(f"stream {task_id}: sending {data}")
            yield f"data: {data}\n\n"

    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(frames(), media_type="text/event-stream", headers=headers)
