"""Helpers for talking to a real server: SSE parsing, waiting, reading the event log."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
import sqlalchemy as sa

from hitl.store.engine import create_sync_engine
from tests.conftest import Server

T = TypeVar("T")

FINAL_EVENTS = {"task.completed", "task.failed", "task.cancelled"}
# Reads may wait this long between bytes; overall limits are asyncio timeouts in the tests.
TIMEOUT = httpx.Timeout(10.0, read=30.0)


@dataclass(frozen=True)
class Event:
    """One SSE event: `id:`, `event:` and the parsed JSON of its `data:` lines."""

    id: int | None
    type: str
    data: Any


@dataclass(frozen=True)
class Comment:
    """One SSE comment line, such as the `: ping` heartbeat."""

    text: str


@dataclass(frozen=True)
class Retry:
    """A `retry:` field."""

    millis: int


class SSEParser:
    """text/event-stream lines → Event / Comment / Retry, per the WHATWG rules we rely on."""

    def __init__(self) -> None:
        self._id: int | None = None
        self._type: str | None = None
        self._data: list[str] = []
        self._has_id = False

    def feed(self, line: str) -> Event | Comment | Retry | None:
        if line == "":
            if not self._data:
                self._type, self._has_id = None, False
                return None
            event = Event(
                self._id if self._has_id else None,
                self._type or "message",
                json.loads("\n".join(self._data)),
            )
            self._type, self._data, self._has_id = None, [], False
            return event
        if line.startswith(":"):
            return Comment(line[1:].strip())
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "id":
            assert value.isdigit(), f"non-numeric event id {value!r}"
            self._id, self._has_id = int(value), True
        elif name == "event":
            self._type = value
        elif name == "data":
            self._data.append(value)
        elif name == "retry":
            return Retry(int(value))
        else:
            raise AssertionError(f"unexpected SSE line {line!r}")
        return None


async def sse_items(response: httpx.Response) -> AsyncGenerator[Event | Comment | Retry, None]:
    """Everything the server sends on an SSE response, in order, until it closes the stream."""
    assert response.status_code == 200, response.status_code
    assert response.headers["content-type"].startswith("text/event-stream")
    parser = SSEParser()
    async for line in response.aiter_lines():
        item = parser.feed(line)
        if item is not None:
            yield item


@dataclass
class Stream:
    """What one SSE connection delivered."""

    events: list[Event] = field(default_factory=list)
    comments: list[Comment] = field(default_factory=list)
    retries: list[Retry] = field(default_factory=list)
    ended: bool = False  # the server closed the stream (rather than us stopping reading)


async def read_stream(
    client: httpx.AsyncClient,
    url: str,
    *,
    params: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
    until: Callable[[Stream], bool] | None = None,
    on_event: Callable[[Event], Awaitable[None]] | None = None,
    on_open: Callable[[], Awaitable[None]] | None = None,
    timeout: float = 15.0,
) -> Stream:
    """Read an SSE stream until the server ends it, or `until(stream)` holds; fail on timeout.

    `on_open` runs once the response headers arrived (the server has fixed the stream's start);
    `on_event` runs for each event as it arrives.
    """
    got = Stream()
    async with asyncio.timeout(timeout):
        async with client.stream("GET", url, params=params, headers=headers) as response:
            if on_open is not None:
                await on_open()
            async with contextlib.aclosing(sse_items(response)) as items:
                async for item in items:
                    if isinstance(item, Event):
                        got.events.append(item)
                        if on_event is not None:
                            await on_event(item)
                    elif isinstance(item, Comment):
                        got.comments.append(item)
                    else:
                        got.retries.append(item)
                    if until is not None and until(got):
                        return got
            got.ended = True
    return got


async def event_log(client: httpx.AsyncClient, task_id: str) -> list[Event]:
    """The whole event log of a finished task, read through its SSE endpoint from the start."""
    stream = await read_stream(client, f"/api/v1/tasks/{task_id}/events", params={"after": 0})
    assert stream.ended, "the events stream of a finished task must end by itself"
    assert stream.events and stream.events[-1].type in FINAL_EVENTS, stream.events[-1:]
    return stream.events


async def wait_for(
    check: Callable[[], Awaitable[T | None]], timeout: float = 15.0, what: str = "condition"
) -> T:
    """Poll `check` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.05)


async def wait_until(check: Callable[[], bool], timeout: float = 15.0, what: str = "it") -> None:
    """Like `wait_for`, with a plain function as the check."""

    async def holds() -> bool:
        return check()

    await wait_for(holds, timeout, what)


async def get_task(client: httpx.AsyncClient, task_id: str) -> dict[str, Any]:
    response = await client.get(f"/api/v1/tasks/{task_id}")
    assert response.status_code == 200, response.text
    task: dict[str, Any] = response.json()
    return task


async def wait_status(
    client: httpx.AsyncClient, task_id: str, status: str, timeout: float = 15.0, round: int = 0
) -> dict[str, Any]:
    """The task, once it is in `status` (and, if given, at review round `round` or later)."""

    async def check() -> dict[str, Any] | None:
        task = await get_task(client, task_id)
        assert task["status"] not in {"failed", "cancelled"} or status == task["status"], task
        if task["status"] == status and task["round"] >= round:
            return task
        return None

    return await wait_for(check, timeout, f"task {task_id} to be {status} (round {round})")


async def open_review(
    client: httpx.AsyncClient, task_id: str, round: int = 1, timeout: float = 15.0
) -> dict[str, Any]:
    """The open review of round `round`, once the task waits for it."""
    task = await wait_status(client, task_id, "waiting_for_review", timeout, round=round)
    assert task["round"] == round, task
    review: dict[str, Any] = task["reviews"][-1]
    assert review["status"] == "open" and review["round"] == round, review
    return review


async def create_task(client: httpx.AsyncClient, input: Any, **body: Any) -> dict[str, Any]:
    response = await client.post("/api/v1/tasks", json={"input": input, **body})
    assert response.status_code == 201, response.text
    task: dict[str, Any] = response.json()
    return task


async def decide(
    client: httpx.AsyncClient, review_id: str, decision: str, **body: Any
) -> dict[str, Any]:
    response = await client.post(
        f"/api/v1/reviews/{review_id}/decision", json={"decision": decision, **body}
    )
    assert response.status_code == 200, response.text
    review: dict[str, Any] = response.json()
    return review


# One engine per database, for the whole session (see `dispose_engines`): a test that reads
# the database after every request would otherwise spend its time connecting.
_engines: dict[str, sa.Engine] = {}


def db_rows(server: Server, sql: str) -> list[tuple[Any, ...]]:
    """Read the server's database directly: the ground truth under the API."""
    engine = _engines.get(server.db_url)
    if engine is None:
        engine = _engines[server.db_url] = create_sync_engine(server.db_url, pool_size=1)
    with engine.connect() as conn:
        return [tuple(r) for r in conn.exec_driver_sql(sql).fetchall()]


def dispose_engines() -> None:
    while _engines:
        _engines.popitem()[1].dispose()


def assert_log_well_formed(events: list[Event], task_ids: set[str] | None = None) -> None:
    """Ids strictly increase (so none repeats); every event carries an id."""
    ids = [e.id for e in events]
    assert all(i is not None for i in ids), ids
    assert ids == sorted(set(ids)), f"ids not strictly increasing: {ids}"  # type: ignore[type-var]
    if task_ids is not None:
        assert {e.data["task_id"] for e in events} <= task_ids


def types(events: list[Event]) -> list[str]:
    return [e.type for e in events]


def client(server: Server) -> httpx.AsyncClient:
    """A client of `server`, signed in with its admin token."""
    return httpx.AsyncClient(base_url=server.url, timeout=TIMEOUT, headers=server.headers)
