"""The cookbook fast path answers exactly as the FastAPI routes do.

One table of requests, good and bad, goes through the app with the fast path and through the
app without it (every request then served by the FastAPI routes). Status, headers and body must
be the same, byte for byte once task ids are masked, and so must what the request recorded.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from hitl.app import create_app
from hitl.config import Settings

MAX_BYTES = 1000
UUID = re.compile(rb"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
JSON = {"content-type": "application/json"}
NO_SUCH = "00000000-0000-0000-0000-000000000000"

Answer = tuple[int, list[tuple[str, str]], bytes]


@asynccontextmanager
async def served(path: Path, fast_path: bool, **settings: Any) -> AsyncIterator[httpx.AsyncClient]:
    app: FastAPI = create_app(
        Settings(
            **{
                "database_url": f"sqlite:///{path}",
                "process_delay": 0,
                "max_input_bytes": MAX_BYTES,
                "poll_interval": 0.05,
                "auth": True,
                **settings,
            }
        ),
        fast_path=fast_path,
    )
    async with app.router.lifespan_context(app):
        identity = app.state.service.identity
        for name, role in (("sam", "submitter"), ("rita", "reviewer")):
            await identity.add_user(name, [role])
            TOKENS[f"{fast_path}-{role}"] = (await identity.create_token(name, [role], name))[0]
        admin, _ = await identity.create_token("admin-token", ["admin", "submitter", "reviewer"])
        transport = httpx.ASGITransport(app=app)
        headers = {"Authorization": f"Bearer {admin}"}
        async with httpx.AsyncClient(
            transport=transport, base_url="http://127.0.0.1", headers=headers
        ) as client:
            client.fast_path = fast_path  # type: ignore[attr-defined]
            yield client


TOKENS: dict[str, str] = {}


def signed_in(client: httpx.AsyncClient, kwargs: dict[str, Any]) -> dict[str, Any]:
    """The request's arguments, with the credentials its `as` names (default: the admin's)."""
    kwargs = dict(kwargs)
    who = kwargs.pop("as", None)
    if who is None:
        return kwargs
    headers = dict(kwargs.pop("headers", {}))
    if who == "anonymous":
        headers["Authorization"] = ""
    elif who == "bad token":
        headers["Authorization"] = "Bearer hitl_not-a-token"
    else:
        headers["Authorization"] = f"Bearer {TOKENS[f'{client.fast_path}-{who}']}"  # type: ignore[attr-defined]
    return {**kwargs, "headers": headers}


def masked(response: httpx.Response) -> Answer:
    headers = [(k, v) for k, v in response.headers.multi_items() if k != "content-length"]
    body = UUID.sub(b"<id>", response.content)
    # The event ids differ with the order of earlier writes; the stream's shape must not.
    body = re.sub(rb"(?m)^id: \d+$", b"id: <n>", body)
    return response.status_code, headers, body


# (method, path, request kwargs): {task} is a queued task of the app under test.
CASES: list[tuple[str, str, dict[str, Any]]] = [
    ("POST", "/submit", {"json": {"data": "hello"}}),
    (
        "POST",
        "/submit",
        {
            "content": b'{"data":"x"}',
            "headers": {"content-type": "application/json; charset=utf-8"},
        },
    ),
    ("POST", "/submit", {"json": {"data": "ünïcødé 李雷"}}),
    ("POST", "/submit", {"json": {"data": "x", "extra": 1}}),
    ("POST", "/submit", {"json": {"data": ""}}),
    ("POST", "/submit", {"json": {}}),
    ("POST", "/submit", {}),
    ("POST", "/submit", {"json": {"data": 5}}),
    ("POST", "/submit", {"json": {"data": None}}),
    ("POST", "/submit", {"json": ["data"]}),
    ("POST", "/submit", {"json": "data"}),
    ("POST", "/submit", {"content": b"data=hello", "headers": JSON}),
    ("POST", "/submit", {"content": b'{"data": "x"', "headers": JSON}),
    ("POST", "/submit", {"content": b'{"data": NaN}', "headers": JSON}),
    ("POST", "/submit", {"content": b'{"data": "\\ud800"}', "headers": JSON}),
    ("POST", "/submit", {"content": b'{"data": "\xff"}', "headers": JSON}),
    ("POST", "/submit", {"content": b"[" * 999, "headers": JSON}),
    (
        "POST",
        "/submit",
        {"content": json.dumps({"data": "x" * 2 * MAX_BYTES}).encode(), "headers": JSON},
    ),
    ("POST", "/submit", {"content": b'{"data": "x"}', "headers": {"content-type": "text/plain"}}),
    (
        "POST",
        "/submit",
        {"content": b'{"data": "x"}', "headers": {"content-type": "application/vnd.x+json"}},
    ),
    # Who may: every cookbook route, anonymous, with a bad token, and with each role.
    ("POST", "/submit", {"json": {"data": "x"}, "as": "anonymous"}),
    ("POST", "/submit", {"json": {"data": "x"}, "as": "bad token"}),
    ("POST", "/submit", {"json": {"data": "x"}, "as": "submitter"}),
    ("POST", "/submit", {"json": {"data": "x"}, "as": "reviewer"}),
    ("POST", "/submit", {"json": {"data": "x"}, "headers": {"x-hitl-user": "mallory"}}),
    ("POST", "/feedback/{task}", {"json": {"feedback": "approved"}, "as": "anonymous"}),
    ("POST", "/feedback/{task}", {"json": {"feedback": "approved"}, "as": "bad token"}),
    ("POST", "/feedback/{task}", {"json": {"feedback": "approved"}, "as": "submitter"}),
    ("GET", "/stream/{task}", {"as": "anonymous"}),
    ("GET", "/stream/{task}", {"as": "bad token"}),
    ("GET", "/stream/{task}", {"as": "submitter"}),
    ("GET", "/stream/{task}", {"as": "reviewer"}),
    ("GET", "/submit", {}),
    ("POST", "/feedback/{task}", {"json": {"feedback": "approved"}}),
    ("POST", "/feedback/{task}", {"json": {"feedback": "maybe"}}),
    ("POST", "/feedback/{task}", {"json": {"feedback": "approved", "round": 0}}),
    ("POST", "/feedback/{task}", {"json": {"feedback": "approved", "content_hash": "ab"}}),
    ("POST", "/feedback/{task}", {"json": {"feedback": "approved", "round": 1}}),
    ("POST", "/feedback/{task}", {"json": {}}),
    ("POST", "/feedback/{task}", {"content": b"[" * 999, "headers": JSON}),
    ("POST", f"/feedback/{NO_SUCH}", {"json": {"feedback": "approved"}}),
    ("POST", "/feedback/short", {"json": {"feedback": "rejected"}}),
    ("POST", "/feedback/", {"json": {"feedback": "rejected"}}),
    ("POST", "/feedback/{task}/x", {"json": {"feedback": "rejected"}}),
    ("GET", f"/stream/{NO_SUCH}", {}),
    ("GET", "/stream/short", {}),
    ("GET", "/stream/{cancelled}", {}),
    ("POST", "/stream/{task}", {}),
]


async def answers(client: httpx.AsyncClient) -> list[Answer]:
    async def task() -> str:
        response = await client.post("/submit", json={"data": "a task"})
        return str(response.json()["task_id"])

    queued = await task()
    cancelled = await task()
    assert (await client.post(f"/api/v1/tasks/{cancelled}/cancel")).status_code == 200
    got = []
    for method, path, kwargs in CASES:
        url = path.format(task=queued, cancelled=cancelled)
        got.append(masked(await client.request(method, url, **signed_in(client, kwargs))))
    # What the requests recorded: who submitted each task.
    listed = await client.get("/api/v1/tasks", params={"limit": 100})
    got.append(
        (
            listed.status_code,
            [],
            json.dumps([t["created_by"] for t in listed.json()["data"]]).encode(),
        )
    )
    return got


async def test_every_case_is_answered_alike_with_and_without_the_fast_path(tmp_path: Path) -> None:
    async with served(tmp_path / "fast.db", fast_path=True, run_workers=False) as fast:
        with_fast = await answers(fast)
    async with served(tmp_path / "slow.db", fast_path=False, run_workers=False) as slow:
        without = await answers(slow)
    for case, a, b in zip(
        [*CASES, ("recorded", "created_by", {})], with_fast, without, strict=True
    ):
        assert a == b, case
    statuses = {a[0] for a in with_fast}
    assert {200, 202, 400, 401, 403, 404, 405, 409, 413, 422} <= statuses  # the table covers them


async def lifecycle(client: httpx.AsyncClient) -> list[Answer]:
    """A whole cookbook lifecycle, through its review, as a cookbook client makes it."""
    submitted = await client.post("/submit", json={"data": "review me"})
    task_id = submitted.json()["task_id"]
    async with asyncio.timeout(15):
        while (await client.get(f"/api/v1/tasks/{task_id}")).json()[
            "status"
        ] != "waiting_for_review":
            await asyncio.sleep(0.02)
    stale = await client.post(f"/feedback/{task_id}", json={"feedback": "approved", "round": 2})
    decided = await client.post(f"/feedback/{task_id}", json={"feedback": "approved"})
    again = await client.post(f"/feedback/{task_id}", json={"feedback": "rejected"})
    async with asyncio.timeout(15):  # the stream of a finished task: its state, then closed
        while (await client.get(f"/api/v1/tasks/{task_id}")).json()["status"] != "completed":
            await asyncio.sleep(0.02)
        stream = await client.get(f"/stream/{task_id}")
    return [masked(r) for r in (submitted, stale, decided, again, stream)]


async def test_a_lifecycle_is_answered_alike(tmp_path: Path) -> None:
    async with served(tmp_path / "fast.db", fast_path=True) as fast:
        with_fast = await lifecycle(fast)
    async with served(tmp_path / "slow.db", fast_path=False) as slow:
        without = await lifecycle(slow)
    assert with_fast == without
    assert [a[0] for a in with_fast] == [202, 409, 200, 409, 200]
    assert b"made on round 2, but the review open now is round 1" in with_fast[1][2]


@pytest.mark.parametrize("fast_path", [True, False])
async def test_the_parity_test_can_fail(tmp_path: Path, fast_path: bool) -> None:
    """Different answers are told apart: a task that exists and one that does not."""
    async with served(tmp_path / "a.db", fast_path=fast_path, run_workers=False) as client:
        real = (await client.post("/submit", json={"data": "x"})).json()["task_id"]
        found = masked(await client.post(f"/feedback/{real}", json={"feedback": "approved"}))
        missing = masked(await client.post(f"/feedback/{NO_SUCH}", json={"feedback": "approved"}))
    assert found != missing


@pytest.mark.parametrize("fast_path", [True, False])
async def test_a_number_past_pythons_digit_limit_is_named(tmp_path: Path, fast_path: bool) -> None:
    """Python reads no integer of more than 4,300 digits: the 400 says that, not that the
    body is nested too deeply."""
    huge = b"9" * 4301
    async with served(tmp_path / "h.db", fast_path, max_input_bytes=100_000) as client:
        for path, body in (
            ("/submit", b'{"data": ' + huge + b"}"),
            ("/api/v1/tasks", b'{"input": ' + huge + b"}"),
        ):
            answer = await client.post(path, content=body, headers=JSON)
            assert answer.status_code == 400, answer.text
            assert "send numbers of at most 4300 digits" in answer.json()["detail"], answer.text
        deep = await client.post("/submit", content=b"[" * 5000, headers=JSON)
        assert deep.status_code == 400 and "nested no deeper" in deep.json()["detail"]
