"""The Host check and the security headers (`hitl.api.security`), on every kind of answer.

Most tests run the whole app in-process; those about the middleware alone wrap a tiny app.
Event streams are called as raw ASGI, since httpx's ASGI transport waits for a body to end.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from starlette.types import Message, Receive, Scope, Send

from hitl.api import front, security
from hitl.api.fastpath import FastPath
from hitl.app import create_app
from hitl.config import Settings

MAX_BYTES = 1000
EXPECTED = {
    "content-security-policy": security.CONTENT_SECURITY_POLICY,
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "x-frame-options": "DENY",
}
LOOPBACK = ("127.0.0.1", "localhost", "[::1]")


def settings_for(path: Path, **settings: Any) -> Settings:
    """Settings of an app on a fresh database; without sign-in unless `auth=True` (the tests of
    answers that need no one to sign in, and of addresses other than loopback, say so)."""
    values: dict[str, Any] = {
        "database_url": f"sqlite:///{path / 'hitl.db'}",
        "process_delay": 0,
        "run_workers": False,
        "poll_interval": 0.05,
        "heartbeat_seconds": 0.2,
        "max_input_bytes": MAX_BYTES,
        "auth": False,
    }
    return Settings(**{**values, **settings})


@asynccontextmanager
async def serving(app: FastAPI, host: str = "127.0.0.1:8000") -> AsyncIterator[httpx.AsyncClient]:
    async with app.router.lifespan_context(app):
        # A 500 is answered to the client, as a server does, rather than raised in the test.
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url=f"http://{host}") as client:
            yield client


@asynccontextmanager
async def served(path: Path, fast_path: bool = True, **settings: Any) -> AsyncIterator[Any]:
    """The whole app on a fresh database, and a client that sends `Host: 127.0.0.1:8000`."""
    app = create_app(settings_for(path, **settings), fast_path=fast_path)
    async with serving(app) as client:
        yield client


def assert_secured(response: httpx.Response) -> None:
    for name, value in EXPECTED.items():
        assert response.headers.get_list(name) == [value], (name, response.request.url)


def policy_directives() -> dict[str, str]:
    parts = (d.strip().split(" ", 1) for d in security.CONTENT_SECURITY_POLICY.split(";"))
    return {name: value for name, value in parts}


# -- the headers ---------------------------------------------------------------------------


def test_the_policy_is_strict() -> None:
    directives = policy_directives()
    assert directives["default-src"] == "'self'"
    assert directives["script-src"] == "'self'"
    assert directives["style-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'"
    assert directives["base-uri"] == "'none'"
    assert directives["form-action"] == "'self'"
    assert directives["object-src"] == "'none'"
    assert "unsafe" not in security.CONTENT_SECURITY_POLICY
    assert "http" not in security.CONTENT_SECURITY_POLICY  # no CDN


@pytest.mark.parametrize(
    "method,path,kwargs,status",
    [
        ("GET", "/", {}, 200),
        ("GET", "/reviews", {}, 200),
        ("GET", "/classic", {}, 200),
        ("GET", "/tasks/0123abcd", {}, 404),  # a page that says there is no such task
        ("GET", "/docs", {}, 200),
        ("GET", "/openapi.json", {}, 200),
        ("GET", "/static/app.css", {}, 200),
        ("GET", "/favicon.ico", {}, 200),
        ("GET", "/static/classic.js", {}, 200),
        ("GET", "/static/swagger/swagger-ui-bundle.js", {}, 200),
        ("GET", "/api/v1/tasks", {}, 200),
        ("POST", "/api/v1/tasks", {"json": {"input": "x"}}, 201),
        ("POST", "/api/v1/tasks", {"json": {}}, 422),
        ("GET", "/api/v1/tasks/00000000-0000-0000-0000-000000000000", {}, 404),
        ("GET", "/healthz", {}, 200),
        ("GET", "/readyz", {}, 200),
        ("GET", "/no/such/page", {}, 404),
        ("GET", "/redoc", {}, 404),  # ReDoc loads from a CDN: not served
        ("DELETE", "/healthz", {}, 405),
        ("POST", "/submit", {"json": {"data": "x" * 2 * MAX_BYTES}}, 413),
        ("POST", "/api/v1/tasks", {"content": b"{" * 2 * MAX_BYTES, "headers": {"a": "b"}}, 413),
        ("POST", "/submit", {"json": {"data": "hello"}}, 202),
        ("POST", "/submit", {"json": {"nothing": 1}}, 422),
    ],
)
async def test_every_kind_of_answer_has_the_headers(
    tmp_path: Path, method: str, path: str, kwargs: dict[str, Any], status: int
) -> None:
    async with served(tmp_path) as client:
        response = await client.request(method, path, **kwargs)
    assert response.status_code == status, response.text
    assert_secured(response)


async def test_the_icon_is_served_to_anyone_and_every_page_names_it(tmp_path: Path) -> None:
    """A browser asks for /favicon.ico when a page names no icon (a JSON answer in a tab):
    it gets the pages' icon, signed in or not, rather than a 404 in its console."""
    async with served(tmp_path, auth=True) as client:
        icon = await client.get("/favicon.ico")
        assert icon.status_code == 200 and icon.headers["content-type"] == "image/svg+xml"
        assert icon.content == (await client.get("/static/favicon.svg")).content
        assert icon.content.startswith(b"<svg")
        assert NAMED in (await client.get("/login")).text
    (tmp_path / "open").mkdir()
    async with served(tmp_path / "open") as client:  # (pages without sign-in)
        for page in ("/", "/reviews", "/settings", "/tasks/0123abcd", "/classic"):
            assert NAMED in (await client.get(page)).text, page


NAMED = '<link rel="icon" type="image/svg+xml" href="/static/favicon.svg">'


async def test_the_cookbook_fast_path_answers_have_the_headers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    answered: list[str] = []
    submit = FastPath._submit

    async def spy(self: FastPath, *args: Any) -> Any:
        answered.append("fast path")
        return await submit(self, *args)

    monkeypatch.setattr(FastPath, "_submit", spy)
    async with served(tmp_path) as client:  # create_app's default: the fast path on
        response = await client.post("/submit", json={"data": "hello"})
        task_id = response.json()["task_id"]
        feedback = await client.post(f"/feedback/{task_id}", json={"feedback": "approved"})
    assert answered == ["fast path"]
    assert response.status_code == 202
    assert_secured(response)
    assert feedback.status_code == 409  # not waiting for review: the fast path's own answer
    assert_secured(feedback)


async def test_a_refusal_to_sign_in_has_the_headers(tmp_path: Path) -> None:
    async with served(tmp_path, auth=True) as client:
        response = await client.get("/api/v1/tasks")
        elsewhere = await client.get("/api/v1/tasks", headers={"host": "evil.example"})
    assert response.status_code == 401
    assert_secured(response)
    assert elsewhere.status_code == 400  # the Host check comes first


async def test_a_500_has_the_headers(tmp_path: Path) -> None:
    app = create_app(settings_for(tmp_path))

    async def boom() -> None:
        raise RuntimeError("a bug")

    app.add_api_route("/boom", boom)
    async with serving(app) as client:
        response = await client.get("/boom")
    assert response.status_code == 500
    assert_secured(response)


async def stream_start(app: FastAPI, path: str) -> tuple[Message, bytes]:
    """GET an event stream as raw ASGI: its `http.response.start` and its first body bytes,
    which must come while it goes on (not buffered); then the client leaves."""
    gone = asyncio.Event()
    sent: asyncio.Queue[Message] = asyncio.Queue()

    async def receive() -> Message:
        await gone.wait()
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        await sent.put(message)

    headers = [(b"host", b"127.0.0.1:8000"), (b"accept", b"text/event-stream")]
    call = asyncio.create_task(app(raw_scope(path, headers), receive, send))
    try:
        start = await asyncio.wait_for(sent.get(), 5)
        body = await asyncio.wait_for(sent.get(), 5)
        assert body["type"] == "http.response.body" and body.get("more_body"), body
        assert not call.done()  # the stream goes on after its first bytes
        return start, body["body"]
    finally:
        gone.set()
        await asyncio.wait_for(call, 5)


def raw_scope(path: str, headers: list[tuple[bytes, bytes]], method: str = "GET") -> Scope:
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8000),
    }


@pytest.mark.parametrize("stream", ["/stream/{id}", "/api/v1/tasks/{id}/events"])
async def test_an_event_stream_has_the_headers_and_still_streams(
    tmp_path: Path, stream: str
) -> None:
    app = create_app(settings_for(tmp_path))
    async with serving(app) as client:
        task_id = (await client.post("/submit", json={"data": "x"})).json()["task_id"]
        start, first = await stream_start(app, stream.format(id=task_id))
    headers = {name.decode(): value.decode() for name, value in start["headers"]}
    assert start["status"] == 200
    assert headers["content-type"].startswith("text/event-stream")
    for name, value in EXPECTED.items():
        assert headers[name] == value
    assert first  # the task's state or its first event, at once


# -- the Host check ------------------------------------------------------------------------


async def ask(tmp_path: Path, host: str, **settings: Any) -> httpx.Response:
    async with served(tmp_path, **settings) as client:
        return await client.get("/healthz", headers={"host": host})


@pytest.mark.parametrize(
    "host",
    ["127.0.0.1:8000", "127.0.0.1", "localhost", "LocalHost:9000", "localhost.", "[::1]:8000"],
)
async def test_loopback_names_are_served_by_default(tmp_path: Path, host: str) -> None:
    response = await ask(tmp_path, host)
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    "host,named",
    [
        ("evil.example", "evil.example"),
        ("evil.example:8000", "evil.example"),
        ("127.0.0.1.evil.example", "127.0.0.1.evil.example"),
        ("localhost.evil.example:80", "localhost.evil.example"),
        ("[::2]:8000", "[::2]"),
        ("0.0.0.0:8000", "0.0.0.0"),
        ("127.0.0.2", "127.0.0.2"),
    ],
)
async def test_other_hosts_get_400_with_what_to_do(tmp_path: Path, host: str, named: str) -> None:
    response = await ask(tmp_path, host)
    assert response.status_code == 400
    assert response.json() == {
        "detail": f"host '{named}' is not allowed: add it to HITL_ALLOWED_HOSTS"
    }
    assert response.headers["content-type"] == "application/json"
    assert_secured(response)


@pytest.mark.parametrize("fast_path", [True, False])
async def test_a_refused_request_changes_nothing(tmp_path: Path, fast_path: bool) -> None:
    async with served(tmp_path, fast_path=fast_path) as client:
        evil = {"host": "evil.example:8000"}
        answers = [
            await client.post("/submit", json={"data": "x"}, headers=evil),
            await client.post("/api/v1/tasks", json={"input": "x"}, headers=evil),
            await client.get("/api/v1/tasks", headers=evil),
            await client.get("/readyz", headers=evil),
        ]
        listed = await client.get("/api/v1/tasks")
    assert [a.status_code for a in answers] == [400, 400, 400, 400]
    assert listed.json()["count"] == 0


@pytest.mark.parametrize(
    "host,status",
    [
        ("hitl.example.com", 200),
        ("HITL.example.com:8443", 200),
        ("a.example.org", 200),
        ("deep.a.example.org:80", 200),
        ("example.org", 400),  # `*.example.org` is its subdomains
        ("[fe80::1]:8000", 200),
        ("localhost:8000", 200),  # the loopback names are always served
        ("[::1]", 200),
        ("hitl.example.com.evil.example", 400),
        ("other.example", 400),
    ],
)
async def test_allowed_hosts(tmp_path: Path, host: str, status: int) -> None:
    allowed = ["hitl.example.com", "*.example.org", "fe80::1"]
    response = await ask(tmp_path, host, allowed_hosts=allowed)
    assert response.status_code == status, response.text


@pytest.mark.parametrize("host", ["evil.example", "evil.example:1234", "[2001:db8::1]"])
async def test_a_star_serves_any_host(tmp_path: Path, host: str) -> None:
    response = await ask(tmp_path, host, allowed_hosts=["*"])
    assert response.status_code == 200
    assert_secured(response)


# -- the defaults, from the address listened on -------------------------------------------


@pytest.mark.parametrize(
    "host,names",
    [
        ("127.0.0.1", LOOPBACK),
        ("localhost", LOOPBACK),
        ("::1", LOOPBACK),
        ("127.0.0.2", (*LOOPBACK, "127.0.0.2")),
    ],
)
def test_listening_on_loopback_serves_loopback_names(host: str, names: tuple[str, ...]) -> None:
    policy = security.HostPolicy.of(Settings(host=host))
    assert policy.names == names
    assert not policy.any and policy.suffixes == ()
    assert policy.warning is None


@pytest.mark.parametrize(
    "host,names",
    [
        ("0.0.0.0", LOOPBACK),  # no client sends 0.0.0.0 but a browser tricked into it
        ("::", LOOPBACK),
        ("192.0.2.7", (*LOOPBACK, "192.0.2.7")),
        ("hitl.internal", (*LOOPBACK, "hitl.internal")),
        ("2001:db8::7", (*LOOPBACK, "[2001:db8::7]")),
    ],
)
def test_listening_elsewhere_adds_the_address_and_warns(host: str, names: tuple[str, ...]) -> None:
    policy = security.HostPolicy.of(Settings(host=host))
    assert policy.names == names
    assert policy.warning is not None
    assert f"hitl listens on {host} and HITL_ALLOWED_HOSTS is not set" in policy.warning
    assert f"only requests for {', '.join(names)} are served" in policy.warning


def test_allowed_hosts_replace_the_address_and_silence_the_warning() -> None:
    policy = security.HostPolicy.of(
        Settings(host="0.0.0.0", allowed_hosts=["hitl.example.com", "*.example.org"])
    )
    assert policy.names == (*LOOPBACK, "hitl.example.com")
    assert policy.suffixes == (".example.org",)
    assert policy.warning is None


async def run_lifespan(app: FastAPI) -> list[str]:
    """Start and stop `app` as a server does, through the whole ASGI app."""
    steps = iter(["lifespan.startup", "lifespan.shutdown"])
    said: list[str] = []

    async def receive() -> Message:
        return {"type": next(steps)}

    async def send(message: Message) -> None:
        said.append(message["type"])

    await app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, receive, send)
    return said


@pytest.mark.parametrize("host,warns", [("0.0.0.0", True), ("127.0.0.1", False)])
async def test_the_warning_is_logged_at_start_up(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, host: str, warns: bool
) -> None:
    app = create_app(settings_for(tmp_path, host=host, auth=True))
    with caplog.at_level(logging.WARNING, logger="hitl.api.front"):
        assert await run_lifespan(app) == [
            "lifespan.startup.complete",
            "lifespan.shutdown.complete",
        ]
    warnings = [r.getMessage() for r in caplog.records if r.name == "hitl.api.front"]
    assert len(warnings) == (1 if warns else 0)
    if warns:
        assert "set HITL_ALLOWED_HOSTS" in warnings[0]


# -- the setting ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "env,hosts",
    [
        ("hitl.example.com", ["hitl.example.com"]),
        ("hitl.example.com, Other.Example ,", ["hitl.example.com", "other.example"]),
        ('["hitl.example.com", "[::1]"]', ["hitl.example.com", "[::1]"]),
        ("[::1],[fe80::1]:8000", ["[::1]", "[fe80::1]:8000"]),  # IPv6, not a JSON list
        ("*", ["*"]),
        ("", None),
    ],
)
def test_the_variable_takes_names_or_a_json_list(
    monkeypatch: pytest.MonkeyPatch, env: str, hosts: list[str] | None
) -> None:
    monkeypatch.setenv("HITL_ALLOWED_HOSTS", env)
    assert Settings().allowed_hosts == hosts


@pytest.mark.parametrize(
    "value,message",
    [
        ("https://hitl.example.com", "is not a host name"),
        ('["a.example"', "is not a host name"),
        ("hitl.example.com/docs", "is not a host name"),
        ("user@hitl.example.com", "is not a host name"),
        ("hitl*.example.com", "a star stands alone"),
    ],
)
def test_what_is_not_a_host_name_is_refused(
    monkeypatch: pytest.MonkeyPatch, value: str, message: str
) -> None:
    monkeypatch.setenv("HITL_ALLOWED_HOSTS", value)
    with pytest.raises(ValueError, match=message):
        Settings()


# -- the middleware alone ------------------------------------------------------------------


async def hello(scope: Scope, receive: Receive, send: Send) -> None:
    """An app that sets a header of the set itself."""
    headers = [(b"content-type", b"text/plain"), (b"x-frame-options", b"SAMEORIGIN")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": b"hello"})


async def call(app: Any, scope: Scope) -> list[Message]:
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b""}

    async def send(message: Message) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent


async def test_a_header_the_app_sets_is_kept() -> None:
    guard = front.FrontDoor(hello, security.HostPolicy(LOOPBACK))
    start, body = await call(guard, raw_scope("/", [(b"host", b"localhost")]))
    headers = [(n.decode(), v.decode()) for n, v in start["headers"]]
    assert [v for n, v in headers if n == "x-frame-options"] == ["SAMEORIGIN"]
    assert ("x-content-type-options", "nosniff") in headers
    assert body["body"] == b"hello"


async def test_a_request_without_host_is_refused_unless_any_host_is() -> None:
    refused = await call(front.FrontDoor(hello, security.HostPolicy(LOOPBACK)), raw_scope("/", []))
    assert refused[0]["status"] == 400
    assert b"no Host header" in refused[1]["body"]
    anyone = front.FrontDoor(hello, security.HostPolicy(LOOPBACK, any=True))
    assert (await call(anyone, raw_scope("/", [])))[0]["status"] == 200


async def test_a_websocket_for_another_host_is_closed() -> None:
    async def never(scope: Scope, receive: Receive, send: Send) -> None:
        raise AssertionError("reached the app")

    scope = {**raw_scope("/ws", [(b"host", b"evil.example")]), "type": "websocket"}
    [closed] = await call(front.FrontDoor(never, security.HostPolicy(LOOPBACK)), scope)
    assert closed["type"] == "websocket.close"
