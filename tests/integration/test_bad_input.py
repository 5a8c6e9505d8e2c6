"""Bad requests get the right 4xx, a `detail` that says what to do, and change nothing."""

from __future__ import annotations

import contextlib
import json
import re
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import Server
from tests.integration.flows import GATE_FLOW
from tests.integration.helpers import (
    client,
    create_task,
    db_rows,
    decide,
    get_task,
    open_review,
    read_stream,
    wait_for,
    wait_status,
    wait_until,
)

MAX_BYTES = 1000
NO_SUCH = str(uuid.UUID(int=0))
JSON = {"content-type": "application/json"}
TEXT = {"content-type": "text/plain"}


# What a worker logs when the task it runs was cancelled under it (at INFO): it stops there.
WORKER_LET_GO = r"lease lost|task abandoned"


@pytest.fixture(scope="module")
def server(start_module_server: Callable[..., Server]) -> Server:
    args = ["--flow", GATE_FLOW, "--log-level", "info"]  # info: see WORKER_LET_GO
    return start_module_server(max_input_bytes=MAX_BYTES, args=args)


def count_in_log(server: Server, pattern: str) -> int:
    assert server.log is not None
    return len(re.findall(pattern, server.log.read_text(errors="replace")))


@pytest.fixture(autouse=True)
def no_server_errors(server: Server) -> Iterator[None]:
    """Never a 500, and nothing the server had to log as an unhandled error."""
    yield
    assert server.log is not None
    log = server.log.read_text()
    assert not re.search(r"Traceback|\bERROR\b", log), log


async def state(c: httpx.AsyncClient, server: Server) -> dict[str, Any]:
    """What a rejected request must not change: tasks, reviews, events."""
    listed = await c.get("/api/v1/tasks", params={"limit": 1})
    assert listed.status_code == 200, listed.text
    return {
        "api task count": listed.json()["count"],
        "tasks": db_rows(server, "SELECT id, status, round, result FROM tasks ORDER BY id"),
        "reviews": db_rows(server, "SELECT id, status, decision, comment FROM reviews ORDER BY id"),
        "events": db_rows(server, "SELECT count(*), max(id) FROM events"),
    }


@contextlib.asynccontextmanager
async def unchanged(c: httpx.AsyncClient, server: Server) -> AsyncIterator[None]:
    before = await state(c, server)
    yield
    assert await state(c, server) == before


def check(response: httpx.Response, status: int, *needles: str) -> dict[str, Any]:
    """The status, a JSON body whose `detail` is a sentence naming each needle."""
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/json"), response.headers
    body: dict[str, Any] = response.json()
    detail = body.get("detail")
    assert isinstance(detail, str) and len(detail) > 10, body
    for needle in needles:
        assert needle.lower() in detail.lower(), (needle, detail)
    return body


async def chunks(data: bytes, size: int = 100) -> AsyncIterator[bytes]:
    """A body sent with Transfer-Encoding: chunked, so with no Content-Length to check first."""
    for i in range(0, len(data), size):
        yield data[i : i + size]


BIG_SUBMIT = json.dumps({"data": "x" * 2 * MAX_BYTES}).encode()
BIG_TASK = json.dumps({"input": "x" * 2 * MAX_BYTES}).encode()

# (method, path, request kwargs, status, words the detail must contain)
CASES: list[tuple[str, str, dict[str, Any], int, tuple[str, ...]]] = [
    # the cookbook's /submit
    ("POST", "/submit", {"json": {"data": ""}}, 422, ("data", "at least 1 character")),
    ("POST", "/submit", {"json": {}}, 422, ("data", "required")),
    ("POST", "/submit", {}, 422, ("body", "required")),
    ("POST", "/submit", {"json": {"data": 5}}, 422, ("data", "string")),
    ("POST", "/submit", {"json": {"data": None}}, 422, ("data", "string")),
    ("POST", "/submit", {"json": {"data": ["a", "b"]}}, 422, ("data", "string")),
    ("POST", "/submit", {"json": ["data"]}, 422, ("body",)),
    ("POST", "/submit", {"content": b"data=hello", "headers": JSON}, 422, ("not valid JSON",)),
    ("POST", "/submit", {"content": b'{"data": "x"', "headers": JSON}, 422, ("not valid JSON",)),
    ("POST", "/submit", {"content": BIG_SUBMIT, "headers": JSON}, 413, (str(MAX_BYTES), "bytes")),
    ("POST", "/submit", {"content": b'{"data": "x"}', "headers": TEXT}, 422, ("body",)),
    ("POST", "/submit", {"content": b"[" * 999, "headers": JSON}, 400, ("parsing the body",)),
    ("POST", "/feedback/x", {"content": b"[" * 999, "headers": JSON}, 400, ("parsing the body",)),
    ("POST", "/submit", {"content": b"[" * 999, "headers": JSON}, 400, ("nested no deeper",)),
    # the v1 API's task creation
    ("POST", "/api/v1/tasks", {"json": {"input": ""}}, 422, ("input is empty",)),
    ("POST", "/api/v1/tasks", {"json": {"input": None}}, 422, ("input is empty",)),
    ("POST", "/api/v1/tasks", {"json": {"input": {}}}, 422, ("input is empty",)),
    ("POST", "/api/v1/tasks", {"json": {"input": []}}, 422, ("input is empty",)),
    ("POST", "/api/v1/tasks", {"json": {}}, 422, ("input", "required")),
    ("POST", "/api/v1/tasks", {"json": {"input": "x", "flow": "nope"}}, 422, ("nope", "feedback")),
    ("POST", "/api/v1/tasks", {"json": {"input": "x", "flow": 5}}, 422, ("flow", "string")),
    ("POST", "/api/v1/tasks", {"json": {"input": "x", "colour": 1}}, 422, ("colour", "extra")),
    ("POST", "/api/v1/tasks", {"content": b"input: x", "headers": JSON}, 422, ("not valid JSON",)),
    ("POST", "/api/v1/tasks", {"content": b'{"input": NaN}', "headers": JSON}, 422, ("NaN",)),
    ("POST", "/api/v1/tasks", {"content": b'{"input": [1e999]}', "headers": JSON}, 422, ("JSON",)),
    ("POST", "/api/v1/tasks", {"content": BIG_TASK, "headers": JSON}, 413, (str(MAX_BYTES),)),
    (
        "POST",
        "/api/v1/tasks",
        {"json": {"input": "x"}, "headers": {"Idempotency-Key": ""}},
        422,
        ("idempotency-key",),
    ),
    (
        "POST",
        "/api/v1/tasks",
        {"json": {"input": "x"}, "headers": {"Idempotency-Key": "k" * 201}},
        422,
        ("idempotency-key",),
    ),
    # filters and paging
    ("GET", "/api/v1/tasks", {"params": {"status": "done"}}, 422, ("status", "waiting_for_review")),
    ("GET", "/api/v1/tasks", {"params": {"limit": 0}}, 422, ("limit",)),
    ("GET", "/api/v1/tasks", {"params": {"limit": "many"}}, 422, ("limit", "integer")),
    ("GET", "/api/v1/tasks", {"params": {"offset": -1}}, 422, ("offset",)),
    ("GET", "/api/v1/reviews", {"params": {"status": "pending"}}, 422, ("status", "open")),
    # unknown tasks and reviews
    ("GET", f"/api/v1/tasks/{NO_SUCH}", {}, 404, ("task", NO_SUCH)),
    ("GET", f"/api/v1/tasks/{NO_SUCH}/events", {}, 404, ("task", NO_SUCH)),
    ("POST", f"/api/v1/tasks/{NO_SUCH}/cancel", {}, 404, ("task", NO_SUCH)),
    ("GET", f"/stream/{NO_SUCH}", {}, 404, ("task", "not found")),
    ("POST", f"/feedback/{NO_SUCH}", {"json": {"feedback": "approved"}}, 404, ("task", NO_SUCH)),
    ("GET", f"/api/v1/reviews/{NO_SUCH}", {}, 404, ("review", NO_SUCH)),
    (
        "POST",
        f"/api/v1/reviews/{NO_SUCH}/decision",
        {"json": {"decision": "approve"}},
        404,
        ("review", NO_SUCH),
    ),
    # bad cursors
    ("GET", f"/api/v1/tasks/{NO_SUCH}/events", {"params": {"after": -1}}, 422, ("after",)),
    ("GET", "/api/v1/events", {"params": {"after": "start"}}, 422, ("after 'start' is not",)),
    ("GET", "/api/v1/events", {"params": {"after": 2**63}}, 422, ("at most 9223372036854775807",)),
    ("GET", "/api/v1/events", {"params": {"after": "١٢"}}, 422, ("after '١٢' is not an event id",)),
    # As Last-Event-ID: digits only, no sign, point or underscore (1_0 read as 10 before).
    *[
        ("GET", "/api/v1/events", {"params": {"after": bad}}, 422, ("digits 0-9",))
        for bad in ("+5", "5.0", "1_0", "-0", " 5", "")
    ],
    ("GET", "/api/v1/events", {"headers": {"Last-Event-ID": "x1"}}, 422, ("Last-Event-ID",)),
    ("GET", "/api/v1/events", {"headers": {"Last-Event-ID": "-1"}}, 422, ("Last-Event-ID",)),
    ("GET", "/api/v1/events", {"headers": {"Last-Event-ID": "9" * 30}}, 422, ("Last-Event-ID",)),
    ("GET", "/api/v1/events", {"headers": {"Last-Event-ID": b"\xb2"}}, 422, ("Last-Event-ID",)),
    (
        "GET",
        f"/api/v1/tasks/{NO_SUCH}/events",
        {"headers": {"Last-Event-ID": str(2**63)}},
        422,
        ("Last-Event-ID", str(2**63 - 1)),
    ),
    # text no id could be, and NUL characters (PostgreSQL cannot store them in text)
    ("GET", "/api/v1/tasks/%00", {}, 404, ("task",)),
    ("GET", "/api/v1/reviews/%00", {}, 404, ("review",)),
    ("POST", "/api/v1/tasks/%00/cancel", {}, 404, ("task",)),
    ("GET", "/api/v1/tasks/%00/events", {}, 404, ("task",)),
    ("GET", "/stream/%00", {}, 404, ("task",)),
    ("POST", "/feedback/%00", {"json": {"feedback": "approved"}}, 404, ("task",)),
    (
        "POST",
        f"/api/v1/reviews/{NO_SUCH}/decision",
        {"json": {"decision": "reject", "comment": "bad\u0000"}},
        422,
        ("comment",),
    ),
    # every number a client sends: served, or a 4xx
    ("GET", "/api/v1/tasks", {"params": {"offset": 2**63}}, 422, ("offset", "less than")),
    ("GET", "/api/v1/tasks", {"params": {"offset": "1" * 400}}, 422, ("offset",)),
    ("GET", "/api/v1/reviews", {"params": {"limit": "²"}}, 422, ("limit", "integer")),
    ("GET", "/api/v1/reviews", {"params": {"limit": 501}}, 422, ("limit", "500")),
    # text that cannot be stored faithfully: not UTF-8, or a lone surrogate
    (
        "POST",
        "/api/v1/tasks",
        {"content": b'{"input": "\\ud800"}', "headers": JSON},
        422,
        ("Unicode",),
    ),
    (
        "POST",
        "/api/v1/tasks",
        {"content": b'{"input": {"\\udc00": 1}}', "headers": JSON},
        422,
        ("Unicode",),
    ),
    ("POST", "/api/v1/tasks", {"content": b'{"input": "\xff"}', "headers": JSON}, 422, ("UTF-8",)),
    ("POST", "/submit", {"content": b'{"data": "a\\udfff"}', "headers": JSON}, 422, ("Unicode",)),
    (
        "POST",
        f"/api/v1/reviews/{NO_SUCH}/decision",
        {"content": b'{"decision": "reject", "comment": "\\ud83d"}', "headers": JSON},
        422,
        ("Unicode",),
    ),
    (
        "POST",
        f"/feedback/{NO_SUCH}",
        {"content": b'{"feedback": "approved", "x": "\\ud83d"}', "headers": JSON},
        422,
        ("Unicode",),
    ),
]


def case_id(case: tuple[str, str, dict[str, Any], int, tuple[str, ...]]) -> str:
    method, path, kwargs, status, _ = case
    what = ",".join(f"{k}={str(v)[:24]}" for k, v in kwargs.items() if k != "headers")
    return f"{method} {path.replace(NO_SUCH, '<unknown>')} {what} -> {status}"


@pytest.mark.parametrize("case", CASES, ids=[case_id(c) for c in CASES])
async def test_bad_request(server: Server, case: tuple[Any, ...]) -> None:
    method, path, kwargs, status, needles = case
    async with client(server) as c, unchanged(c, server):
        check(await c.request(method, path, **kwargs), status, *needles)


@pytest.mark.parametrize("path,body", [("/submit", BIG_SUBMIT), ("/api/v1/tasks", BIG_TASK)])
async def test_oversized_chunked_body_is_413(server: Server, path: str, body: bytes) -> None:
    """Without a Content-Length the limit is enforced while the body is read: still a 413."""
    async with client(server) as c, unchanged(c, server):
        response = await c.post(path, content=chunks(body), headers=JSON)
        assert "content-length" not in response.request.headers
        check(response, 413, str(MAX_BYTES), "HITL_MAX_INPUT_BYTES")


async def test_bad_decisions_on_an_open_review(server: Server) -> None:
    async with client(server) as c:
        task = await create_task(c, "to be decided properly")
        review = await open_review(c, task["id"])
        path = f"/api/v1/reviews/{review['id']}/decision"
        bad: list[tuple[dict[str, Any], int, tuple[str, ...]]] = [
            ({"json": {"decision": "edit"}}, 422, ("edited_output",)),
            ({"json": {"decision": "edit", "edited_output": None}}, 422, ("edited_output",)),
            ({"json": {"decision": "maybe"}}, 422, ("decision", "approve", "reject", "edit")),
            ({"json": {}}, 422, ("decision", "required")),
            ({"json": {"decision": "approve", "score": 5}}, 422, ("score", "extra")),
            ({"json": {"decision": "reject", "comment": 5}}, 422, ("comment", "string")),
            ({"json": {"decision": "reject", "comment": "x" * 2000}}, 413, (str(MAX_BYTES),)),
            ({"content": b"approve", "headers": JSON}, 422, ("not valid JSON",)),
            (
                {"content": b'{"decision": "edit", "edited_output": NaN}', "headers": JSON},
                422,
                ("edited_output", "NaN"),
            ),
        ]
        for kwargs, status, needles in bad:
            async with unchanged(c, server):
                check(await c.post(path, **kwargs), status, *needles)
        for body in [{"feedback": "maybe"}, {"feedback": True}, {}, {"feedback": "approve"}]:
            async with unchanged(c, server):
                check(await c.post(f"/feedback/{task['id']}", json=body), 422, "feedback")

        # None of that touched the review: it is still open, and a good decision still works.
        current = await get_task(c, task["id"])
        assert [(r["id"], r["status"]) for r in current["reviews"]] == [(review["id"], "open")]
        await decide(c, review["id"], "approve")
        await wait_status(c, task["id"], "completed")

        # A decision after one won: 409, saying what the review already is.
        for body in [{"decision": "approve"}, {"decision": "reject", "comment": "too late"}]:
            async with unchanged(c, server):
                answer = check(await c.post(path, json=body), 409, "already decided", "approve")
                assert answer["review_status"] == "decided" and answer["decision"] == "approve"
        async with unchanged(c, server):
            response = await c.post(f"/feedback/{task['id']}", json={"feedback": "rejected"})
            check(response, 409, "already decided")
        # Cancelling a completed task: 409, saying it is completed.
        async with unchanged(c, server):
            answer = check(await c.post(f"/api/v1/tasks/{task['id']}/cancel"), 409, "completed")
            assert answer["status"] == "completed"


async def test_decisions_when_no_review_is_open(server: Server, tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    async with client(server) as c:
        # A task that is running (held in its first node), with no review round yet.
        held = await create_task(c, {"gate": str(gate)}, flow="gate")
        await wait_for(
            lambda: _is(c, held["id"], "running", "gate"), what="the gated task to be in its node"
        )
        async with unchanged(c, server):
            response = await c.post(f"/feedback/{held['id']}", json={"feedback": "approved"})
            check(response, 409, "running", "no review")

        # A task cancelled while its review was open: its review is cancelled, not decidable.
        task = await create_task(c, "cancelled while waiting")
        review = await open_review(c, task["id"])
        cancelled = await c.post(f"/api/v1/tasks/{task['id']}/cancel")
        assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
        async with unchanged(c, server):
            response = await c.post(
                f"/api/v1/reviews/{review['id']}/decision", json={"decision": "approve"}
            )
            answer = check(response, 409, "cancelled")
            assert answer["review_status"] == "cancelled"
        async with unchanged(c, server):
            response = await c.post(f"/feedback/{task['id']}", json={"feedback": "approved"})
            check(response, 409, "cancelled")
        async with unchanged(c, server):
            answer = check(await c.post(f"/api/v1/tasks/{task['id']}/cancel"), 409, "cancelled")
            assert answer["status"] == "cancelled"

        # Cancel the held task while its node runs; opening the gate afterwards changes nothing.
        let_go = count_in_log(server, WORKER_LET_GO)
        response = await c.post(f"/api/v1/tasks/{held['id']}/cancel")
        assert response.status_code == 200 and response.json()["status"] == "cancelled"
        async with unchanged(c, server):
            gate.touch()
            # The node returns; its worker finds the task cancelled at its next write and
            # stops without writing anything (or had stopped already, on renewing its lease).
            await wait_until(
                lambda: count_in_log(server, WORKER_LET_GO) > let_go,
                what="the held task's worker to let it go",
            )
        assert (await get_task(c, held["id"]))["status"] == "cancelled"


async def _is(c: httpx.AsyncClient, task_id: str, status: str, node: str) -> bool:
    task = await get_task(c, task_id)
    return bool(task["status"] == status and task["node"] == node)


async def test_idempotency_key(server: Server) -> None:
    async with client(server) as c:
        key = f"key-{uuid.uuid4()}"
        headers = {"Idempotency-Key": key}
        first = await c.post("/api/v1/tasks", json={"input": "only once"}, headers=headers)
        assert first.status_code == 201, first.text
        assert "idempotent-replayed" not in first.headers
        task = first.json()
        await open_review(c, task["id"])  # settle, so that the replays can be compared

        async with unchanged(c, server):
            again = await c.post("/api/v1/tasks", json={"input": "only once"}, headers=headers)
            assert again.status_code == 201, again.text
            assert again.headers["idempotent-replayed"] == "true"
            assert again.json()["id"] == task["id"]
            assert again.headers["location"] == f"/api/v1/tasks/{task['id']}"

        async with unchanged(c, server):
            response = await c.post(
                "/api/v1/tasks", json={"input": "something else"}, headers=headers
            )
            answer = check(response, 409, "Idempotency-Key", "different request")
            assert answer["task_id"] == task["id"]

        # The key names this task only: other keys and no key still create tasks.
        other = await c.post("/api/v1/tasks", json={"input": "only once"})
        assert other.status_code == 201 and other.json()["id"] != task["id"]
        for created in (task, other.json()):
            review = await open_review(c, created["id"])
            await decide(c, review["id"], "approve")


async def test_the_largest_offsets_and_cursors_are_served(server: Server) -> None:
    """Numbers at the top of their range are not errors: an empty page, a quiet stream."""
    top = 2**63 - 1
    async with client(server) as c, unchanged(c, server):
        for path in ("/api/v1/tasks", "/api/v1/reviews"):
            page = await c.get(path, params={"offset": top, "limit": 500})
            assert page.status_code == 200, page.text
            assert page.json()["data"] == []
        stream = await read_stream(
            c, "/api/v1/events", headers={"Last-Event-ID": str(top)}, until=lambda s: True
        )
        assert stream.events == []
