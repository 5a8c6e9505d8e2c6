"""The OpenAPI document is true: every answer the API gives is declared, with the body it has.

The document checked is the one the app serves. One test sends every operation a request for
each status it declares and checks each answer against the declaration: status, media type,
body (every event, for a stream), required headers. It fails on an answer that is not declared,
and on a declared status that no request in its table brings about. A second test is
schemathesis over the whole document, seeded and bounded, as the admin: no 5xx, and no answer
that breaks the document. Its coverage phase sends every schema's boundary values. A third runs
schemathesis as each other kind of caller, without that phase: what they may not do is refused
before their data is read, and what they may do is checked as the admin's. A fourth shows that
the checks fail on a document that lies.

The app runs in-process, behind schemathesis's ASGI client. An event stream is read until
`max-stream-events` events arrived or for `STREAM_SECONDS` after it began, and what arrived is
checked. schemathesis's pytest plugin ends the app's lifespan after every test, so every
test (and every operation of the schemathesis run) gets an app of its own. Those apps share one
database.
"""

from __future__ import annotations

import asyncio
import copy
import json
import logging
import os
import re
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import hypothesis
import hypothesis.strategies as st
import jsonschema_rs
import pytest
import requests
import schemathesis
from fastapi import FastAPI
from schemathesis import checks
from schemathesis.core.failures import FailureGroup
from schemathesis.python import asgi
from starlette.types import Message, Receive, Scope, Send

from hitl.app import create_app
from hitl.config import Settings
from hitl.service.identity import Identity
from hitl.store import migrate
from tests.conftest import identity_call
from tests.receiver import receiver

FLOWS = "tests.unit.service.flows_for_tests"
MAX_BYTES = 10_000
NO_SUCH = "00000000-0000-0000-0000-000000000000"
JSON = {"content-type": "application/json"}


def settings(database: Path) -> Settings:
    return Settings(
        database_url=f"sqlite:///{database}",
        process_delay=0,
        poll_interval=0.05,
        heartbeat_seconds=0.2,
        max_input_bytes=MAX_BYTES,
        flows=[f"{FLOWS}:create_exploding_flow"],
        allowed_hosts=["testserver"],  # the name schemathesis's ASGI client sends
        rate_limit=0,  # the limits have tests of their own (test_limits.py)
    )


def served_document() -> dict[str, Any]:
    app = create_app(settings(Path("never-opened.db")))
    document = app.openapi()
    asyncio.run(app.state.service.store.close())  # its database threads
    return document


# How long an event stream is read once it has begun: some end only when their task does, and
# `/api/v1/events` never does.
STREAM_SECONDS = 1.0


class AppUnderTest:
    """The ASGI app that schemathesis calls. Each test puts in an app of its own.

    It ends an event stream `STREAM_SECONDS` after the stream began, as a client that has read
    enough would. The clients' own timeout (`request-timeout`) also counts the time until an
    answer begins, which a busy machine can stretch past a second."""

    app: FastAPI | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert self.app is not None, "no app: the test must use a fixture that serves one"
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        with anyio.CancelScope() as reading:

            async def watched(message: Message) -> None:
                if message["type"] == "http.response.start":
                    headers = dict(message.get("headers", []))
                    if headers.get(b"content-type", b"").startswith(b"text/event-stream"):
                        reading.deadline = anyio.current_time() + STREAM_SECONDS
                await send(message)

            await self.app(scope, receive, watched)
        if reading.cancelled_caught:  # the stream, ended as the client goes
            await send({"type": "http.response.body", "body": b"", "more_body": False})


UNDER_TEST = AppUnderTest()
DOCUMENT = served_document()


def config(*, coverage: bool) -> schemathesis.Config:
    """The run's settings; `coverage`: the coverage phase too (every schema's boundary values)."""
    return schemathesis.Config.from_dict(
        {
            "seed": 20_240_601,
            "generation": {"max-examples": 40, "deterministic": True, "database": "none"},
            "phases": {"stateful": {"enabled": False}, "coverage": {"enabled": coverage}},
            "request-timeout": 60,  # a bound on a hang; a loaded machine took over 10 s once
            # A body over HITL_MAX_INPUT_BYTES is refused before anyone reads it, invalid or not.
            "checks": {
                # A caller who is not signed in, or may not do this, is told so before anything
                # looks at the request's data.
                "negative_data_rejection": {
                    "expected-statuses": [400, 401, 403, 404, 405, 409, 413, 422]
                }
            },
            "operations": [
                # This stream never ends: each of its examples is read for STREAM_SECONDS.
                {
                    "include-path": "/api/v1/events",
                    "max-stream-events": 3,
                    "generation": {"max-examples": 10},
                },
            ],
        }
    )


CONFIG = config(coverage=True)
schema = schemathesis.openapi.from_dict(DOCUMENT, config=CONFIG)
schema.app = UNDER_TEST
# The runs as each kind of caller check who gets past the door. What is checked past it does not
# depend on who calls, and the run as the admin goes through every schema's boundary values.
as_callers = schemathesis.openapi.from_dict(DOCUMENT, config=config(coverage=False))
as_callers.app = UNDER_TEST


# -- the app, with tasks in every state ---------------------------------------------------------


@dataclass(frozen=True)
class Seeds:
    waiting: str  # waiting for its review
    review: str  # that open review
    waiting_too: str  # waiting too, for the cookbook's /feedback
    to_cancel: str  # waiting too, to be cancelled
    completed: str
    decided: str  # the completed task's review
    cancelled: str
    failed: str
    prefix: str  # a prefix that all of these ids share
    submitters: str  # waiting for its review; submitted by the submitter, not the admin
    submitters_review: str  # its open review, which the submitter sees but may not decide
    delivered: str  # a delivery its receiver took
    sending: str  # a delivery still being tried (its receiver refuses connections)


def task_in(client: requests.Session, task_id: str, status: str) -> dict[str, Any]:
    deadline = time.monotonic() + 15
    while True:
        task: dict[str, Any] = client.get(f"/api/v1/tasks/{task_id}").json()
        if task["status"] == status:
            return task
        assert time.monotonic() < deadline, f"task {task_id} is {task['status']}, not {status}"
        time.sleep(0.02)


def seed(client: requests.Session) -> Seeds:
    def submit(flow: str | None = None, who: str | None = None) -> str:
        body = {"input": "seed", "flow": flow}
        response = client.post("/api/v1/tasks", json=body, headers=signed_in(who))
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    def waiting() -> tuple[str, str]:
        task_id = submit()
        return task_id, str(task_in(client, task_id, "waiting_for_review")["reviews"][-1]["id"])

    (waiting_task, review), (waiting_too, _) = waiting(), waiting()
    (to_cancel, _), (completed, decided) = waiting(), waiting()
    approved = client.post(f"/api/v1/reviews/{decided}/decision", json={"decision": "approve"})
    assert approved.status_code == 200, approved.text
    cancelled = submit()
    assert client.post(f"/api/v1/tasks/{cancelled}/cancel").status_code == 200
    failed = submit("exploding")
    task_in(client, completed, "completed")
    task_in(client, failed, "failed")
    tasks = [waiting_task, waiting_too, to_cancel, completed, cancelled, failed]
    # A version-7 id begins with the time: ids made seconds apart share 4 to 8 characters.
    prefix = os.path.commonprefix(tasks)[:8]
    assert len(prefix) >= 4, tasks
    submitters = submit(who="submitter")
    submitters_review = task_in(client, submitters, "waiting_for_review")["reviews"][-1]["id"]
    delivered, sending = deliveries(client, submit)
    return Seeds(
        waiting_task,
        review,
        waiting_too,
        to_cancel,
        completed,
        decided,
        cancelled,
        failed,
        prefix,
        submitters,
        str(submitters_review),
        delivered,
        sending,
    )


def deliveries(client: requests.Session, submit: Any) -> tuple[str, str]:
    """A delivered delivery (to a real receiver), and one still being tried."""

    def channel(name: str, url: str) -> None:
        body = {"name": name, "kind": "webhook", "url": url, "events": ["task.created"]}
        assert client.post("/api/v1/channels", json=body).status_code == 201

    def one(name: str, status: str) -> str:
        deadline = time.monotonic() + 15
        while True:
            query = {"channel": name, "status": status}
            rows = client.get("/api/v1/deliveries", params=query).json()["data"]
            if rows:
                return str(rows[0]["id"])
            assert time.monotonic() < deadline, f"no {status} delivery to {name}"
            time.sleep(0.02)

    with receiver() as hook:
        channel("taken", hook.url)
        channel("refused", "http://127.0.0.1:9/")  # nothing listens on the discard port
        submit()
        delivered = one("taken", "delivered")
    return delivered, one("refused", "pending")


# A token of each kind of caller, by name, for the database being served: each database gets
# its own before it is first served.
TOKENS: dict[str, str] = {}
TOKENS_OF: dict[Path, dict[str, str]] = {}
ROLES = {"admin": ("admin",), "submitter": ("submitter",), "reviewer": ("reviewer",)}


def signed_in(who: str | None) -> dict[str, str]:
    """The headers of a request as `who` (None: the admin; "anonymous": no credentials)."""
    if who == "anonymous":
        return {"Authorization": ""}
    return {"Authorization": f"Bearer {TOKENS[who or 'admin']}"}


def make_tokens(database: Path) -> None:
    url = f"sqlite:///{database}"
    migrate.upgrade(url)

    async def make(identity: Identity) -> None:
        made = TOKENS_OF[database] = {}
        for who, roles in ROLES.items():
            await identity.add_user(who, roles)
            made[who] = (await identity.create_token(f"{who}-token", roles, who))[0]

    identity_call(url, make)


@contextmanager
def serving(database: Path) -> Iterator[FastAPI]:
    if database not in TOKENS_OF:
        make_tokens(database)
    TOKENS.clear()
    TOKENS.update(TOKENS_OF[database])
    UNDER_TEST.app = create_app(settings(database))
    try:
        yield UNDER_TEST.app
    finally:
        UNDER_TEST.app = None


@pytest.fixture
def app(tmp_path: Path) -> Iterator[FastAPI]:
    with serving(tmp_path / "hitl.db") as app:
        yield app


@pytest.fixture
def client(app: FastAPI) -> Iterator[requests.Session]:
    with asgi.get_client(UNDER_TEST) as session:
        session.headers.update(signed_in(None))
        yield session


@pytest.fixture
def no_error_logged(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """A stream that fails after its 200 has begun is not a 5xx: the log shows it."""
    yield
    errors = [r for r in caplog.get_records("call") if r.levelno >= logging.ERROR]
    assert not errors, [r.getMessage() for r in errors]


# -- one request for every declared status -------------------------------------------------------

# (operation, path, request keywords, status). A `{name}` in the path is a field of Seeds.
Row = tuple[str, str, dict[str, Any], int]

BIG = {"data": b'{"x": "' + b"x" * MAX_BYTES + b'"}', "headers": JSON}
DEEP = {"data": b"[" * 5_000, "headers": JSON}  # too deep for the JSON parser: FastAPI's 400
ANONYMOUS = {"as": "anonymous"}
BAD_TOKEN = {"headers": {"Authorization": "Bearer hitl_not-a-token"}}
SUBMITTER = {"as": "submitter"}
REVIEWER = {"as": "reviewer"}
DECISION = "POST /api/v1/reviews/{review_id}/decision"
CLAIM = "POST /api/v1/reviews/{review_id}/claim"
TASK_AUDIT = "GET /api/v1/tasks/{task_id}/audit"
BULK = "POST /api/v1/reviews/decisions"
BULK_BODY = {"review_ids": [NO_SUCH], "decision": "approve"}
RELEASE = "DELETE /api/v1/reviews/{review_id}/claim"
REVIEWS = "POST /api/v1/reviews"
REVIEW = {"output": "a", "form": [{"name": "score", "type": "integer", "min": 1, "max": 5}]}
REPLAY = "POST /api/v1/deliveries/{delivery_id}/replay"
HOOK = {"name": "hook", "kind": "webhook", "url": "http://127.0.0.1:9/", "events": ["task.failed"]}

CASES: list[Row] = [
    ("POST /api/v1/tasks", "/api/v1/tasks", {"json": {"input": "a"}}, 201),
    (
        "POST /api/v1/tasks",
        "/api/v1/tasks",
        {"json": {"input": "a"}, "headers": {"idempotency-key": "k"}},
        201,
    ),
    (  # a replay: the same task, `Idempotent-Replayed: true`
        "POST /api/v1/tasks",
        "/api/v1/tasks",
        {"json": {"input": "a"}, "headers": {"idempotency-key": "k"}},
        201,
    ),
    (
        "POST /api/v1/tasks",
        "/api/v1/tasks",
        {"json": {"input": "b"}, "headers": {"idempotency-key": "k"}},
        409,
    ),
    ("POST /api/v1/tasks", "/api/v1/tasks", DEEP, 400),
    ("POST /api/v1/tasks", "/api/v1/tasks", BIG, 413),
    ("POST /api/v1/tasks", "/api/v1/tasks", {"json": {"input": "a", "extra": 1}}, 422),
    ("POST /api/v1/tasks", "/api/v1/tasks", {"json": {"input": ""}}, 422),
    ("POST /api/v1/tasks", "/api/v1/tasks", {"json": {"input": "a", "flow": "nope"}}, 422),
    ("GET /api/v1/tasks", "/api/v1/tasks?status=completed", {}, 200),
    ("GET /api/v1/tasks", "/api/v1/tasks?limit=0", {}, 422),
    ("GET /api/v1/tasks", "/api/v1/tasks", ANONYMOUS, 401),
    ("POST /api/v1/tasks", "/api/v1/tasks", {"json": {"input": "a"}, **ANONYMOUS}, 401),
    ("POST /api/v1/tasks", "/api/v1/tasks", {"json": {"input": "a"}, **REVIEWER}, 403),
    ("GET /api/v1/tasks/{task_id}", "/api/v1/tasks/{completed}", BAD_TOKEN, 401),
    ("GET /api/v1/tasks/{task_id}", "/api/v1/tasks/{completed}", SUBMITTER, 404),
    ("GET /api/v1/tasks/{task_id}", "/api/v1/tasks/{completed}", {}, 200),
    ("GET /api/v1/tasks/{task_id}", f"/api/v1/tasks/{NO_SUCH}", {}, 404),
    ("GET /api/v1/tasks/{task_id}", "/api/v1/tasks/{prefix}", {}, 409),
    (TASK_AUDIT, "/api/v1/tasks/{completed}/audit", {}, 200),
    (TASK_AUDIT, "/api/v1/tasks/{completed}/audit", ANONYMOUS, 401),
    (TASK_AUDIT, f"/api/v1/tasks/{NO_SUCH}/audit", {}, 404),
    (TASK_AUDIT, "/api/v1/tasks/{completed}/audit", SUBMITTER, 404),  # not theirs: unseen
    (TASK_AUDIT, "/api/v1/tasks/{prefix}/audit", {}, 409),
    ("POST /api/v1/tasks/{task_id}/cancel", "/api/v1/tasks/{to_cancel}/cancel", {}, 200),
    ("POST /api/v1/tasks/{task_id}/cancel", f"/api/v1/tasks/{NO_SUCH}/cancel", {}, 404),
    ("POST /api/v1/tasks/{task_id}/cancel", "/api/v1/tasks/{completed}/cancel", {}, 409),
    ("POST /api/v1/tasks/{task_id}/cancel", "/api/v1/tasks/{waiting}/cancel", BIG, 413),
    ("POST /api/v1/tasks/{task_id}/cancel", "/api/v1/tasks/{waiting}/cancel", ANONYMOUS, 401),
    ("POST /api/v1/tasks/{task_id}/cancel", "/api/v1/tasks/{waiting}/cancel", REVIEWER, 403),
    ("POST /api/v1/tasks/{task_id}/cancel", "/api/v1/tasks/{waiting}/cancel", DEEP, 400),
    (
        "POST /api/v1/tasks/{task_id}/cancel",
        "/api/v1/tasks/{waiting}/cancel",
        {"json": {"reason": "x" * 1001}},
        422,
    ),
    ("POST /api/v1/tasks/{task_id}/retry", "/api/v1/tasks/{failed}/retry", {}, 200),
    ("POST /api/v1/tasks/{task_id}/retry", f"/api/v1/tasks/{NO_SUCH}/retry", {}, 404),
    ("POST /api/v1/tasks/{task_id}/retry", "/api/v1/tasks/{completed}/retry", {}, 409),
    ("POST /api/v1/tasks/{task_id}/retry", "/api/v1/tasks/{failed}/retry", BIG, 413),
    ("POST /api/v1/tasks/{task_id}/retry", "/api/v1/tasks/{failed}/retry", BAD_TOKEN, 401),
    # A reviewer sees a task that reached a review, but may not retry it.
    ("POST /api/v1/tasks/{task_id}/retry", "/api/v1/tasks/{completed}/retry", REVIEWER, 403),
    (REVIEWS, "/api/v1/reviews", {"json": {"output": {"to": "ops"}, "prompt": "Send?"}}, 201),
    (REVIEWS, "/api/v1/reviews", {"json": REVIEW, "headers": {"idempotency-key": "r"}}, 201),
    (  # a replay: the same task, `Idempotent-Replayed: true`
        REVIEWS,
        "/api/v1/reviews",
        {"json": REVIEW, "headers": {"idempotency-key": "r"}},
        201,
    ),
    (REVIEWS, "/api/v1/reviews", {"json": {"output": 2}, "headers": {"idempotency-key": "r"}}, 409),
    (REVIEWS, "/api/v1/reviews", DEEP, 400),
    (REVIEWS, "/api/v1/reviews", BIG, 413),
    (REVIEWS, "/api/v1/reviews", {"json": REVIEW, **ANONYMOUS}, 401),
    (REVIEWS, "/api/v1/reviews", {"json": REVIEW, **REVIEWER}, 403),
    (REVIEWS, "/api/v1/reviews", {"json": {"output": 1, "on_deadline": "approve"}}, 422),
    ("GET /api/v1/reviews", "/api/v1/reviews?status=decided", {}, 200),
    ("GET /api/v1/reviews", "/api/v1/reviews?status=maybe", {}, 422),
    ("GET /api/v1/reviews", "/api/v1/reviews?flow=feedback&q=seed&sort=deadline&mine=1", {}, 200),
    ("GET /api/v1/reviews", "/api/v1/reviews?flow=nope", {}, 422),
    ("GET /api/v1/reviews", "/api/v1/reviews", ANONYMOUS, 401),
    ("GET /api/v1/reviews", "/api/v1/reviews", SUBMITTER, 403),
    ("GET /api/v1/reviews/{review_id}", "/api/v1/reviews/{decided}", ANONYMOUS, 401),
    ("GET /api/v1/reviews/{review_id}", "/api/v1/reviews/{decided}", {}, 200),
    ("GET /api/v1/reviews/{review_id}", f"/api/v1/reviews/{NO_SUCH}", {}, 404),
    # Bulk: the default flow's reviews are not decided in bulk (each result says so).
    (
        BULK,
        "/api/v1/reviews/decisions",
        {"json": BULK_BODY},
        200,
    ),
    (BULK, "/api/v1/reviews/decisions", DEEP, 400),
    (BULK, "/api/v1/reviews/decisions", {**ANONYMOUS, "json": {}}, 401),
    (
        BULK,
        "/api/v1/reviews/decisions",
        {"json": BULK_BODY, **SUBMITTER},
        403,
    ),
    (BULK, "/api/v1/reviews/decisions", BIG, 413),
    (BULK, "/api/v1/reviews/decisions", {"json": {"review_ids": [], "decision": "approve"}}, 422),
    # Claims, before the review is decided: the admin holds it, then gives it up.
    (CLAIM, "/api/v1/reviews/{review}/claim", {}, 200),
    (CLAIM, "/api/v1/reviews/{review}/claim", REVIEWER, 409),  # the admin is reviewing it
    (CLAIM, "/api/v1/reviews/{submitters_review}/claim", SUBMITTER, 403),
    (CLAIM, f"/api/v1/reviews/{NO_SUCH}/claim", {}, 404),
    (CLAIM, "/api/v1/reviews/{review}/claim", ANONYMOUS, 401),
    (CLAIM, "/api/v1/reviews/{review}/claim", BIG, 413),
    (CLAIM, "/api/v1/reviews/{review}/claim", DEEP, 400),
    (CLAIM, "/api/v1/reviews/{review}/claim", {"json": {"take_over": "maybe"}}, 422),
    (RELEASE, "/api/v1/reviews/{review}/claim", REVIEWER, 409),
    (RELEASE, f"/api/v1/reviews/{NO_SUCH}/claim", {}, 404),
    (RELEASE, "/api/v1/reviews/{review}/claim", ANONYMOUS, 401),
    (RELEASE, "/api/v1/reviews/{review}/claim", {}, 200),
    (
        DECISION,
        "/api/v1/reviews/{review}/decision",
        {"json": {"decision": "reject", "comment": "shorter"}},
        200,
    ),
    (DECISION, "/api/v1/reviews/{review}/decision", DEEP, 400),
    (
        DECISION,
        "/api/v1/reviews/{review}/decision",
        {"json": {"decision": "approve"}, **ANONYMOUS},
        401,
    ),
    (
        DECISION,
        "/api/v1/reviews/{review}/decision",
        {"json": {"decision": "approve", "on_behalf_of": "x"}, **REVIEWER},
        403,
    ),
    (DECISION, f"/api/v1/reviews/{NO_SUCH}/decision", {"json": {"decision": "approve"}}, 404),
    (DECISION, "/api/v1/reviews/{decided}/decision", {"json": {"decision": "approve"}}, 409),
    (DECISION, "/api/v1/reviews/{review}/decision", BIG, 413),
    (DECISION, "/api/v1/reviews/{review}/decision", {"json": {"decision": "maybe"}}, 422),
    (DECISION, "/api/v1/reviews/{decided}/decision", {"json": {"decision": "edit"}}, 422),
    ("GET /api/v1/tasks/{task_id}/events", "/api/v1/tasks/{completed}/events", {}, 200),
    ("GET /api/v1/tasks/{task_id}/events", f"/api/v1/tasks/{NO_SUCH}/events", {}, 404),
    ("GET /api/v1/tasks/{task_id}/events", "/api/v1/tasks/{completed}/events", ANONYMOUS, 401),
    (
        "GET /api/v1/tasks/{task_id}/events",
        "/api/v1/tasks/{completed}/events",
        {"headers": {"last-event-id": "one"}},
        422,
    ),
    # It never ends: the client keeps what came in its first second.
    ("GET /api/v1/events", "/api/v1/events?after=0", {}, 200),
    ("GET /api/v1/events", "/api/v1/events?after=-1", {}, 422),
    ("GET /api/v1/events", "/api/v1/events", ANONYMOUS, 401),
    ("GET /api/v1/events", "/api/v1/events", {"headers": {"last-event-id": "one"}}, 422),
    ("POST /submit", "/submit", {"json": {"data": "hello"}}, 202),
    ("POST /submit", "/submit", DEEP, 400),
    ("POST /submit", "/submit", BIG, 413),
    ("POST /submit", "/submit", {"json": {"data": ""}}, 422),
    ("POST /submit", "/submit", {"json": {"data": "hello"}, **ANONYMOUS}, 401),
    ("POST /submit", "/submit", {"json": {"data": "hello"}, **REVIEWER}, 403),
    (
        "POST /feedback/{task_id}",
        "/feedback/{waiting_too}",
        {"json": {"feedback": "approved"}},
        200,
    ),
    ("POST /feedback/{task_id}", "/feedback/{waiting_too}", DEEP, 400),
    ("POST /feedback/{task_id}", f"/feedback/{NO_SUCH}", {"json": {"feedback": "approved"}}, 404),
    ("POST /feedback/{task_id}", "/feedback/{completed}", {"json": {"feedback": "approved"}}, 409),
    ("POST /feedback/{task_id}", "/feedback/{waiting_too}", BIG, 413),
    ("POST /feedback/{task_id}", "/feedback/{waiting_too}", {"json": {"feedback": "maybe"}}, 422),
    (
        "POST /feedback/{task_id}",
        "/feedback/{waiting_too}",
        {"json": {"feedback": "approved"}, **ANONYMOUS},
        401,
    ),
    (
        "POST /feedback/{task_id}",
        "/feedback/{waiting}",
        {"json": {"feedback": "approved"}, **SUBMITTER},
        404,
    ),
    (  # the submitter sees their own task, but deciding needs the reviewer role
        "POST /feedback/{task_id}",
        "/feedback/{submitters}",
        {"json": {"feedback": "approved"}, **SUBMITTER},
        403,
    ),
    ("GET /stream/{task_id}", "/stream/{completed}", {}, 200),
    ("GET /stream/{task_id}", f"/stream/{NO_SUCH}", {}, 404),
    ("GET /stream/{task_id}", "/stream/{completed}", ANONYMOUS, 401),
    ("GET /api/v1/audit", "/api/v1/audit?limit=5", {}, 200),
    ("GET /api/v1/audit", "/api/v1/audit", ANONYMOUS, 401),
    ("GET /api/v1/audit", "/api/v1/audit", REVIEWER, 403),
    ("GET /api/v1/audit", "/api/v1/audit?limit=0", {}, 422),
    ("POST /api/v1/channels", "/api/v1/channels", {"json": HOOK}, 201),
    ("POST /api/v1/channels", "/api/v1/channels", {"json": HOOK}, 409),
    ("POST /api/v1/channels", "/api/v1/channels", {"json": {**HOOK, "url": "ftp://x"}}, 422),
    ("POST /api/v1/channels", "/api/v1/channels", DEEP, 400),
    ("POST /api/v1/channels", "/api/v1/channels", BIG, 413),
    ("POST /api/v1/channels", "/api/v1/channels", {"json": HOOK, **ANONYMOUS}, 401),
    ("POST /api/v1/channels", "/api/v1/channels", {"json": HOOK, **REVIEWER}, 403),
    ("GET /api/v1/channels", "/api/v1/channels", {}, 200),
    ("GET /api/v1/channels", "/api/v1/channels", ANONYMOUS, 401),
    ("GET /api/v1/channels", "/api/v1/channels", REVIEWER, 403),
    ("DELETE /api/v1/channels/{name}", "/api/v1/channels/hook", {}, 200),
    ("DELETE /api/v1/channels/{name}", "/api/v1/channels/nope", {}, 404),
    ("DELETE /api/v1/channels/{name}", "/api/v1/channels/a%01b", {}, 422),
    ("DELETE /api/v1/channels/{name}", "/api/v1/channels/hook", ANONYMOUS, 401),
    ("DELETE /api/v1/channels/{name}", "/api/v1/channels/hook", REVIEWER, 403),
    ("GET /api/v1/deliveries", "/api/v1/deliveries?status=failed", {}, 200),
    ("GET /api/v1/deliveries", "/api/v1/deliveries?channel=nope", {}, 404),
    ("GET /api/v1/deliveries", "/api/v1/deliveries?status=lost", {}, 422),
    ("GET /api/v1/deliveries", "/api/v1/deliveries", ANONYMOUS, 401),
    ("GET /api/v1/deliveries", "/api/v1/deliveries", REVIEWER, 403),
    (REPLAY, "/api/v1/deliveries/{delivered}/replay", {}, 200),
    (REPLAY, "/api/v1/deliveries/{sending}/replay", {}, 409),
    (REPLAY, f"/api/v1/deliveries/{NO_SUCH}/replay", {}, 404),
    (REPLAY, "/api/v1/deliveries/not%20an%20id/replay", {}, 422),
    (REPLAY, "/api/v1/deliveries/{delivered}/replay", ANONYMOUS, 401),
    (REPLAY, "/api/v1/deliveries/{delivered}/replay", REVIEWER, 403),
    ("GET /metrics", "/metrics", {}, 200),
    ("GET /metrics", "/metrics", ANONYMOUS, 401),
    ("GET /metrics", "/metrics", REVIEWER, 403),
    ("GET /api/v1/flows/{name}", "/api/v1/flows/feedback", {}, 200),
    ("GET /api/v1/flows/{name}", "/api/v1/flows/exploding", REVIEWER, 200),
    ("GET /api/v1/flows/{name}", "/api/v1/flows/nope", {}, 404),
    ("GET /api/v1/flows/{name}", "/api/v1/flows/feedback", ANONYMOUS, 401),
    ("GET /healthz", "/healthz", {}, 200),
    ("GET /readyz", "/readyz", {}, 200),
]

# The same, with the database away: every operation that uses it before it answers.
OUTAGE: list[Row] = [
    ("POST /api/v1/tasks", "/api/v1/tasks", {"json": {"input": "a"}}, 503),
    ("GET /api/v1/tasks", "/api/v1/tasks", {}, 503),
    ("GET /api/v1/tasks/{task_id}", "/api/v1/tasks/{completed}", {}, 503),
    ("POST /api/v1/tasks/{task_id}/cancel", "/api/v1/tasks/{waiting}/cancel", {}, 503),
    ("POST /api/v1/tasks/{task_id}/retry", "/api/v1/tasks/{failed}/retry", {}, 503),
    ("GET /api/v1/reviews", "/api/v1/reviews", {}, 503),
    (REVIEWS, "/api/v1/reviews", {"json": REVIEW}, 503),
    ("GET /api/v1/reviews/{review_id}", "/api/v1/reviews/{review}", {}, 503),
    (DECISION, "/api/v1/reviews/{review}/decision", {"json": {"decision": "approve"}}, 503),
    (CLAIM, "/api/v1/reviews/{review}/claim", {}, 503),
    (TASK_AUDIT, "/api/v1/tasks/{completed}/audit", {}, 503),
    (
        BULK,
        "/api/v1/reviews/decisions",
        {"json": BULK_BODY},
        503,
    ),
    (RELEASE, "/api/v1/reviews/{review}/claim", {}, 503),
    ("GET /api/v1/tasks/{task_id}/events", "/api/v1/tasks/{completed}/events", {}, 503),
    ("POST /submit", "/submit", {"json": {"data": "hello"}}, 503),
    ("POST /feedback/{task_id}", "/feedback/{waiting}", {"json": {"feedback": "approved"}}, 503),
    ("GET /stream/{task_id}", "/stream/{completed}", {}, 503),
    ("GET /api/v1/audit", "/api/v1/audit", {}, 503),
    ("POST /api/v1/channels", "/api/v1/channels", {"json": HOOK}, 503),
    ("GET /api/v1/channels", "/api/v1/channels", {}, 503),
    ("DELETE /api/v1/channels/{name}", "/api/v1/channels/hook", {}, 503),
    ("GET /api/v1/deliveries", "/api/v1/deliveries", {}, 503),
    (REPLAY, "/api/v1/deliveries/{delivered}/replay", {}, 503),
    ("GET /metrics", "/metrics", {}, 503),
    ("GET /readyz", "/readyz", {}, 503),
]

# FastAPI declares a 422 for every operation with a parameter. These three take only a path
# parameter, and any string will do for it, so no request to them is invalid.
NEVER_ANSWERED = {
    ("POST /api/v1/tasks/{task_id}/retry", 422),
    ("GET /api/v1/tasks/{task_id}", 422),
    ("GET /api/v1/reviews/{review_id}", 422),
    (RELEASE, 422),
    (TASK_AUDIT, 422),
    ("GET /stream/{task_id}", 422),
    ("GET /api/v1/flows/{name}", 422),
}


def declared(document: dict[str, Any]) -> set[tuple[str, int]]:
    return {
        (f"{method.upper()} {path}", int(status))
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
        for status in operation["responses"]
    }


def sse_events(text: str) -> list[dict[str, str]]:
    """The events of a text/event-stream: its blocks with `data:`. A comment (`: ping`) or a
    lone `retry:` is no event."""
    events = []
    for block in text.split("\n\n"):
        fields: dict[str, list[str]] = {}
        for line in block.split("\n"):
            name, _, value = line.partition(":")
            if name:
                fields.setdefault(name, []).append(value.removeprefix(" "))
        if "data" in fields:
            events.append({name: "\n".join(values) for name, values in fields.items()})
    return events


def check_answer(
    response: requests.Response,
    label: str,
    status: int,
    document: dict[str, Any] = DOCUMENT,
    loaded: schemathesis.BaseSchema = schema,
) -> None:
    """The answer is what the document declares for this operation and status."""
    assert response.status_code == status, (label, response.status_code, response.text)
    method, path = label.split(" ", 1)
    declaration = document["paths"][path][method.lower()]["responses"].get(str(status))
    assert declaration is not None, f"{label} answered {status}, which it does not declare"
    media_type = response.headers["content-type"].split(";")[0]
    assert media_type in declaration["content"], (label, status, media_type)
    # Raises if the body, or any event of a stream, breaks its declared schema.
    loaded[path][method].validate_response(response)
    for name, header in declaration.get("headers", {}).items():
        if name in response.headers:
            jsonschema_rs.validate(header["schema"], response.headers[name])
        else:
            assert not header.get("required"), (label, status, name)
    if media_type == "text/event-stream":
        events = sse_events(response.text)
        assert events, (label, response.text)
        data = declaration["content"][media_type]["itemSchema"]["properties"]["data"]
        validator = jsonschema_rs.validator_for(data["contentSchema"])
        for event in events:
            validator.validate(json.loads(event["data"]))
    elif status >= 400 and label != "GET /readyz":
        assert response.json()["detail"], (label, status)  # it says what to fix


def send(client: requests.Session, seeds: Seeds, row: Row) -> requests.Response:
    label, path, kwargs, _ = row
    names = re.findall(r"{(\w+)}", path)
    url = path.format(**{name: getattr(seeds, name) for name in names})
    kwargs = dict(kwargs)
    if "as" in kwargs:
        kwargs["headers"] = {**kwargs.get("headers", {}), **signed_in(kwargs.pop("as"))}
    return client.request(label.split(" ", 1)[0], url, **kwargs)


def database_away(app: FastAPI, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every new connection to the database fails, as when its server is down."""

    def refuse() -> Any:
        raise sqlite3.OperationalError("unable to open database file")

    monkeypatch.setattr(app.state.service.store.engine, "raw_connection", refuse)


def test_every_declared_status_is_answered_as_declared(
    app: FastAPI, client: requests.Session, monkeypatch: pytest.MonkeyPatch, no_error_logged: None
) -> None:
    assert client.get("/openapi.json").json() == DOCUMENT
    seeds = seed(client)
    for row in CASES:
        check_answer(send(client, seeds, row), row[0], row[3])
    database_away(app, monkeypatch)
    for row in OUTAGE:
        response = send(client, seeds, row)
        check_answer(response, row[0], row[3])
        if row[0] != "GET /readyz":
            assert response.headers["retry-after"].isdigit(), (row, response.headers)
    proven = {(label, status) for label, _, _, status in CASES + OUTAGE}
    limited = {(label, status) for label, status in declared(DOCUMENT) if status == 429}
    assert limited, "429 is declared"  # and answered in tests/unit/api/test_limits.py
    assert proven == declared(DOCUMENT) - NEVER_ANSWERED - limited


# -- schemathesis over the whole document --------------------------------------------------------

# The ids that exist, by path parameter; the `seeded` fixture fills it in.
EXISTING: dict[str, list[str]] = {}


def before_generate_path_parameters(
    context: schemathesis.HookContext, strategy: st.SearchStrategy[dict[str, Any]]
) -> st.SearchStrategy[dict[str, Any]]:
    """Generated ids, and ids that exist, so that requests also get past the 404."""
    assert context.operation is not None
    names = re.findall(r"{(\w+)}", context.operation.path)
    existing = st.fixed_dictionaries(
        {name: st.deferred(lambda name=name: st.sampled_from(EXISTING[name])) for name in names}
    )
    return st.one_of(strategy, existing)


for _schema in (schema, as_callers):
    _schema.hook(before_generate_path_parameters)


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A database with tasks in every state."""
    database = tmp_path_factory.mktemp("schemathesis") / "hitl.db"
    with serving(database), asgi.get_client(UNDER_TEST) as client:
        client.headers.update(signed_in(None))
        seeds = seed(client)
    asgi.shutdown_lifespans()
    tasks = [seeds.waiting, seeds.completed, seeds.cancelled, seeds.failed, seeds.prefix]
    EXISTING.update(task_id=tasks, review_id=[seeds.review, seeds.decided])
    EXISTING.update(name=["feedback", "exploding"], delivery_id=[seeds.delivered])
    return database


@pytest.fixture
def seeded_app(seeded: Path) -> Iterator[FastAPI]:
    with serving(seeded) as app:
        yield app


# Not positive_data_acceptance: the service refuses some requests that the schemas allow (an
# empty input, an edit without edited_output, a Last-Event-ID that is not digits), with a 422.
# Not allow_header_conformance: Starlette's 405 names only the methods of the first route with
# that path (OPTIONS /api/v1/tasks: `Allow: POST`, though GET is served too).
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
    checks.response_headers_conformance,
    checks.negative_data_rejection,
    checks.missing_required_header,
    checks.unsupported_method,
]


@schema.parametrize()
# Who calls is named in each test's id, as in the test below: with no parameter of pytest's,
# schemathesis gives every operation's test the function's node id, and pytest-xdist (which tells
# tests apart by it) would run one operation's.
@pytest.mark.parametrize("who", ["admin"])
# One app serves all of an operation's examples: it is the server under test, not state to reset.
@hypothesis.settings(suppress_health_check=[hypothesis.HealthCheck.function_scoped_fixture])
def test_schemathesis_finds_no_server_error_and_no_undeclared_answer(
    case: schemathesis.Case, who: str, seeded_app: FastAPI, no_error_logged: None
) -> None:
    case.call_and_validate(checks=CHECKS, headers=signed_in(who))


# -- the checks can fail -------------------------------------------------------------------------


def lying(document: dict[str, Any]) -> dict[str, Any]:
    """The document, less one declared status, with a wrong error body and a wrong event."""
    document = copy.deepcopy(document)
    del document["paths"]["/api/v1/reviews/{review_id}"]["get"]["responses"]["404"]
    schemas = document["components"]["schemas"]
    schemas["ValidationErrorPublic"]["properties"]["detail"] = {"type": "integer"}
    events = document["paths"]["/api/v1/tasks/{task_id}/events"]["get"]["responses"]["200"]
    events["content"]["text/event-stream"]["itemSchema"]["properties"]["event"]["enum"].pop(0)
    return document


def test_the_checks_can_fail(client: requests.Session) -> None:
    """Each lie of `lying` is caught: by the table's checks, and by schemathesis's."""
    document = lying(DOCUMENT)
    loaded = schemathesis.openapi.from_dict(document, config=CONFIG)
    loaded.app = UNDER_TEST
    task = client.post("/api/v1/tasks", json={"input": "x"}).json()["id"]
    task_in(client, task, "waiting_for_review")
    cases = [
        ("GET /api/v1/reviews/{review_id}", {"review_id": NO_SUCH}, {}, 404, "not declare|Undoc"),
        ("GET /api/v1/tasks", {}, {"limit": 0}, 422, "Response violates schema"),
        ("GET /api/v1/tasks/{task_id}/events", {"task_id": task}, {}, 200, "SSE event violates"),
    ]
    for label, path_parameters, query, status, reason in cases:
        method, path = label.split(" ", 1)
        response = client.get(path.format(**path_parameters), params=query)
        with pytest.raises(AssertionError, match=reason):
            check_answer(response, label, status, document, loaded)
        case = loaded[path][method].Case(path_parameters=path_parameters, query=query)
        with pytest.raises(FailureGroup, match=reason):
            case.call_and_validate(checks=CHECKS, headers=signed_in(None))


OPEN_PATHS = {"/healthz", "/readyz"}


@as_callers.parametrize()
@pytest.mark.parametrize("who", ["submitter", "reviewer", "anonymous"])
@hypothesis.settings(
    suppress_health_check=[hypothesis.HealthCheck.function_scoped_fixture], max_examples=15
)
def test_schemathesis_as_every_kind_of_caller(
    case: schemathesis.Case, who: str, seeded_app: FastAPI, no_error_logged: None
) -> None:
    """Signed in with each role's token, and anonymous: no 5xx, no undeclared answer, and no
    anonymous 2xx but from the health checks."""
    headers = {} if who == "anonymous" else signed_in(who)
    # Nobody anonymous gets further than 401, not even to learn which methods a path has.
    chosen = [c for c in CHECKS if who != "anonymous" or c is not checks.unsupported_method]
    response = case.call_and_validate(checks=chosen, headers=headers)
    if who == "anonymous" and case.operation.path not in OPEN_PATHS:
        assert not 200 <= response.status_code < 300, (case.operation.label, response.text)
