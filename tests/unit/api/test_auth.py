"""Authentication at its one enforcement point, and the permission rules behind it."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from starlette.routing import Mount

from hitl.app import create_app
from hitl.config import Settings
from hitl.service.identity import CACHE_SECONDS
from hitl.store import PrincipalRow

OPEN = {"/healthz", "/readyz", "/login", "/login/{secret}", "/logout", "/favicon.ico"}


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[FastAPI]:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'auth.db'}",
        process_delay=0,
        auth=True,
        rate_limit=0,
        flows=["strict=tests.unit.service.flows_for_tests:create_strict_flow"],
    )
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


def client(app: FastAPI, token: str | None = None, **headers: str) -> httpx.AsyncClient:
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    transport = httpx.ASGITransport(app=app)
    return httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1", headers=headers)


async def token(app: FastAPI, name: str, *roles: str, user: bool = True, **kw: Any) -> str:
    identity = app.state.service.identity
    if user:
        await identity.add_user(name, roles)
    secret, _ = await identity.create_token(f"{name}-token", roles, name if user else None, **kw)
    return str(secret)


def routes(app: FastAPI) -> list[tuple[str, str]]:
    """Every (method, path) the app routes, through the routers it includes."""

    def walk(items: list[Any], prefix: str) -> list[tuple[str, str]]:
        found = []
        for route in items:
            if hasattr(route, "original_router"):
                inner = prefix + route.include_context.prefix
                found += walk(route.original_router.routes, inner)
            elif not isinstance(route, Mount):
                path = prefix + getattr(route, "path", "")
                found += [(m, path) for m in sorted(getattr(route, "methods", None) or [])]
        return found

    return walk(app.routes, "")


async def test_every_route_refuses_anonymous_callers_but_the_open_ones(app: FastAPI) -> None:
    """Both the FastAPI routes and the cookbook fast path (which answers /submit, /feedback
    and /stream first) pass through authentication: no route answers an anonymous call."""
    seen = routes(app)
    assert ("POST", "/submit") in seen and ("GET", "/api/v1/events") in seen
    async with client(app) as anonymous:
        for method, path in seen:
            if path in OPEN or method == "HEAD":
                continue
            url = path.replace("{task_id}", "0" * 36).replace("{review_id}", "0" * 36)
            kwargs = {"json": {"data": "x", "feedback": "approved"}} if method == "POST" else {}
            response = await anonymous.request(method, url, **kwargs)
            assert response.status_code == 401, (method, path, response.text)
            assert response.headers["www-authenticate"].startswith("Bearer")
            assert "hitl token create" in response.json()["detail"]
        assert (await anonymous.get("/healthz")).status_code == 200
        page = await anonymous.get("/reviews", headers={"Accept": "text/html"})
        assert page.status_code == 303 and page.headers["location"] == "/login?next=%2Freviews"


async def test_the_health_checks_answer_a_token_that_cannot_be_looked_up(
    app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the database away, a token not looked up before cannot be checked. The health checks
    need nobody: they answer as they would anyone, in their own words, and other paths 503."""
    secret = await token(app, "probe", "admin")  # made, never looked up: not in the cache

    def refuse() -> Any:
        raise sqlite3.OperationalError("unable to open database file")

    monkeypatch.setattr(app.state.service.store.engine, "raw_connection", refuse)
    async with client(app, secret) as c:
        live = await c.get("/healthz")
        assert (live.status_code, live.json()) == (200, {"status": "ok"})
        ready = await c.get("/readyz")
        assert ready.status_code == 503 and ready.json()["status"] == "unavailable", ready.text
        assert "unable to open database file" in ready.json()["database"]
        tasks = await c.get("/api/v1/tasks")
        assert tasks.status_code == 503 and "unavailable right now" in tasks.json()["detail"]


async def test_tokens_revoked_expired_or_of_disabled_users_are_refused(app: FastAPI) -> None:
    identity = app.state.service.identity
    good = await token(app, "ann", "submitter")
    async with client(app, good) as ann:
        assert (await ann.post("/submit", json={"data": "x"})).status_code == 202
    await identity.revoke_token("ann-token")
    async with client(app, good) as ann:
        refused = await ann.post("/submit", json={"data": "x"})
        assert refused.status_code == 401 and "revoked" in refused.json()["detail"]
        assert 'error="invalid_token"' in refused.headers["www-authenticate"]

    # It works until it expires, then no more: 2 s is for the first request to come first on a
    # busy machine (two test suites at once took 0.2 s past it).
    lifetime = 2.0
    short = await token(app, "bob", "submitter", expires_in=lifetime)
    async with client(app, short) as bob:
        assert (await bob.get("/api/v1/tasks")).status_code == 200
        deadline = time.time() + lifetime + CACHE_SECONDS + 5
        while (await bob.get("/api/v1/tasks")).status_code == 200:
            assert time.time() < deadline, "an expired token still works"
            await asyncio.sleep(0.05)

    kept = await token(app, "cy", "submitter")
    await identity.disable_user("cy")
    async with client(app, kept) as cy:
        assert (await cy.get("/api/v1/tasks")).status_code == 401
    async with client(app, "hitl_" + "x" * 43) as nobody:
        assert (await nobody.get("/api/v1/tasks")).status_code == 401


async def test_roles_separation_of_duties_and_hidden_tasks(app: FastAPI) -> None:
    sam = await token(app, "sam", "submitter")
    other = await token(app, "sue", "submitter")
    rita = await token(app, "rita", "reviewer")
    both = await token(app, "bo", "submitter", "reviewer")
    admin = await token(app, "ops", "admin", user=False)
    async with contextlib.AsyncExitStack() as stack:
        s, o, r, b, a = [
            await stack.enter_async_context(client(app, t)) for t in (sam, other, rita, both, admin)
        ]
        created = await s.post("/api/v1/tasks", json={"input": "draft"})
        assert created.status_code == 201, created.text
        task_id = created.json()["id"]
        assert created.json()["created_by"] == "sam"
        # Reviewers may not submit; submitters may not read the queue.
        refused = await r.post("/api/v1/tasks", json={"input": "x"})
        assert refused.status_code == 403 and "submitter role" in refused.json()["detail"]
        queue = await s.get("/api/v1/reviews")
        assert queue.status_code == 403 and "reviewer role" in queue.json()["detail"]
        # Another submitter does not see it, nor can they act on it: 404, not 403.
        assert (await o.get(f"/api/v1/tasks/{task_id}")).status_code == 404
        assert (await o.post(f"/api/v1/tasks/{task_id}/cancel")).status_code == 404
        assert (await o.get("/api/v1/tasks")).json()["count"] == 0
        # Wait for its review; then a reviewer sees it and the submitter can't decide it.
        while (await s.get(f"/api/v1/tasks/{task_id}")).json()["status"] != ("waiting_for_review"):
            pass
        assert (await r.get(f"/api/v1/tasks/{task_id}")).status_code == 200
        review_id = (await s.get(f"/api/v1/tasks/{task_id}")).json()["reviews"][0]["id"]
        mine = await s.post(f"/api/v1/reviews/{review_id}/decision", json={"decision": "approve"})
        assert mine.status_code == 403 and "reviewer role" in mine.json()["detail"]
        # The reviewer may not cancel; the admin may not be impersonated by a reviewer.
        no = await r.post(f"/api/v1/tasks/{task_id}/cancel")
        assert no.status_code == 403 and "admin role" in no.json()["detail"]
        behalf = await r.post(
            f"/api/v1/reviews/{review_id}/decision",
            json={"decision": "approve", "on_behalf_of": "bo"},
        )
        assert behalf.status_code == 403 and "admins only" in behalf.json()["detail"]
        # An admin decides on behalf of a reviewer: both names are kept.
        done = await a.post(
            f"/api/v1/reviews/{review_id}/decision",
            json={"decision": "reject", "comment": "again", "on_behalf_of": "rita"},
        )
        assert done.status_code == 200, done.text
        assert done.json()["decided_by"] == "ops-token"
        assert done.json()["on_behalf_of"] == "rita"
        # Someone who submitted and reviews may not decide their own task's review, unless
        # its review node allows it (the default flow, a one-person demo, does).
        own = await b.post("/api/v1/tasks", json={"input": "mine", "flow": "strict"})
        own_id = own.json()["id"]
        while not (await b.get(f"/api/v1/tasks/{own_id}")).json()["reviews"]:
            pass
        own_review = (await b.get(f"/api/v1/tasks/{own_id}")).json()["reviews"][0]["id"]
        self_review = await b.post(
            f"/api/v1/reviews/{own_review}/decision", json={"decision": "approve"}
        )
        assert self_review.status_code == 403
        assert "bo submitted this task" in self_review.json()["detail"]
        other_review = await r.post(
            f"/api/v1/reviews/{own_review}/decision", json={"decision": "approve"}
        )
        assert other_review.status_code == 200, other_review.text
        demo = await b.post("/api/v1/tasks", json={"input": "demo"})
        demo_id = demo.json()["id"]
        while not (await b.get(f"/api/v1/tasks/{demo_id}")).json()["reviews"]:
            pass
        demo_review = (await b.get(f"/api/v1/tasks/{demo_id}")).json()["reviews"][0]["id"]
        allowed = await b.post(
            f"/api/v1/reviews/{demo_review}/decision", json={"decision": "approve"}
        )
        assert allowed.status_code == 200, allowed.text
        audit = await app.state.service.identity.audit_log(0)
        assert any(a.action == "review.decide" and a.actor == "ops-token" for a in audit)


async def test_a_cookie_session_needs_a_same_origin_request_to_change_anything(
    app: FastAPI,
) -> None:
    identity = app.state.service.identity
    await identity.add_user("ann", ["submitter"])
    link = await identity.login_link("ann")
    async with client(app) as browser:
        # Opening the link only asks; another site's form cannot use it for the visitor.
        asked = await browser.get(f"/login/{link}?next=/reviews")
        assert asked.status_code == 200 and "set-cookie" not in asked.headers
        assert "Sign in as ann" in asked.text
        forged = await browser.post(
            f"/login/{link}?next=/reviews", headers={"Origin": "http://evil.example"}
        )
        assert forged.status_code == 403 and "set-cookie" not in forged.headers
        here = {"Origin": "http://127.0.0.1"}
        signed = await browser.post(f"/login/{link}?next=/reviews", headers=here)
        assert signed.status_code == 303 and signed.headers["location"] == "/reviews"
        cookie = signed.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=lax" in cookie
        assert (await browser.get(f"/login/{link}")).status_code == 400  # a link works once
        assert (await browser.post(f"/login/{link}", headers=here)).status_code == 400
        cross = await browser.post(
            "/submit", json={"data": "x"}, headers={"Origin": "http://evil.example"}
        )
        assert cross.status_code == 403 and "CSRF" in cross.json()["detail"]
        bare = await browser.post("/submit", json={"data": "x"})
        assert bare.status_code == 403
        same = await browser.post(
            "/submit", json={"data": "x"}, headers={"Origin": "http://127.0.0.1"}
        )
        assert same.status_code == 202, same.text
        page = await browser.get("/", headers={"Accept": "text/html"})
        assert "signed in as" in page.text and "ann" in page.text
        out = await browser.post("/logout", headers={"Origin": "http://127.0.0.1"})
        assert out.status_code == 303
        assert (await browser.get("/api/v1/tasks")).status_code == 401


async def test_a_trusted_proxy_may_name_the_user_and_no_one_else_may(tmp_path: Path) -> None:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'proxy.db'}",
        process_delay=0,
        proxy_user_header="X-Forwarded-User",
        trusted_proxies=["10.0.0.2"],
    )
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        await application.state.service.identity.add_user("José", ["submitter"])

        def via(address: str) -> httpx.AsyncClient:
            transport = httpx.ASGITransport(app=application, client=(address, 40000))
            return httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1")

        async with via("10.0.0.2") as proxy, via("10.0.0.3") as other:
            named = {"X-Forwarded-User": "José".encode()}  # proxies send UTF-8
            created = await proxy.post("/api/v1/tasks", json={"input": "x"}, headers=named)
            assert created.status_code == 201 and created.json()["created_by"] == "José"
            unknown = await proxy.get("/api/v1/tasks", headers={"X-Forwarded-User": "nobody"})
            assert unknown.status_code == 401 and "not a user here" in unknown.json()["detail"]
            forged = await other.get("/api/v1/tasks", headers=named)
            assert forged.status_code == 401


async def test_a_users_token_loses_the_roles_its_user_lost(app: FastAPI) -> None:
    """A token carries its user's roles as they are now, not as they were when it was made."""
    identity = app.state.service.identity
    secret = await token(app, "bea", "submitter", "reviewer")
    async with client(app, secret) as bea:
        assert (await bea.get("/api/v1/reviews")).status_code == 200
        await app.state.service.store.write(
            lambda tx: tx.change(PrincipalRow, {"name": "bea"}, roles="submitter")
        )
        identity._cache.clear()  # as CACHE_SECONDS later, or at once in the changing process
        refused = await bea.get("/api/v1/reviews")
        assert refused.status_code == 403 and "reviewer role" in refused.json()["detail"]
        assert (await bea.post("/submit", json={"data": "still"})).status_code == 202


async def test_an_expired_session_signs_nobody_in(app: FastAPI) -> None:
    identity = app.state.service.identity
    await identity.add_user("eve", ["submitter"])
    session, _ = await identity.sign_in(await identity.login_link("eve"), 0.3)
    async with client(app, **{"Cookie": f"hitl_session={session}"}) as browser:
        assert (await browser.get("/api/v1/tasks")).status_code == 200
        deadline = time.time() + 0.3 + CACHE_SECONDS + 5
        while (ended := await browser.get("/api/v1/tasks")).status_code == 200:
            assert time.time() < deadline, "an expired session still signs in"
        assert ended.status_code == 401 and "session has ended" in ended.json()["detail"]


async def test_the_audit_log_s_since_takes_what_the_cli_takes(app: FastAPI) -> None:
    """`GET /api/v1/audit?since=` reads a date, a duration or seconds since the epoch, with the
    same parser as `hitl audit export --since`, and answers 422 naming the fix otherwise."""
    admin = await token(app, "ada", "admin")
    await app.state.service.identity.add_user("rita", ["reviewer"])  # audited: user.add
    next_year = time.gmtime().tm_year + 1
    async with client(app, admin) as c:

        async def actions(since: str | None) -> list[str]:
            answer = await c.get("/api/v1/audit", params={"since": since} if since else {})
            assert answer.status_code == 200, answer.text
            return [entry["action"] for entry in answer.json()["data"]]

        everything = await actions(None)
        assert "user.add" in everything
        assert await actions("1h") == everything
        assert await actions("0") == await actions("2000-01-01") == everything
        assert await actions(str(int(time.time()) + 3600)) == []
        assert await actions(f"{next_year}0101") == []  # a date, not seconds since 1970
        assert await actions(f"{next_year}-01-01") == []
        assert await actions(f"{next_year}-01-01T00:00+14:00") == []
        for bad, says in [
            ("yesterday", "'yesterday' is neither a date nor a duration: write e.g. 2026-11-01"),
            ("2026-13-01", "'2026-13-01' is neither a date nor a duration"),
            ("9" * 30 + "d", "is longer than 36500 days"),
            ("9" * 30, "is too far in the future"),
            ("1764547200000", "give seconds since the epoch (not milliseconds)"),
            ("2026", "'2026' is neither a date nor seconds since the epoch (nine digits or more)"),
            ("2026-11-01T09:30 02:00", "a '+' is read as a space, so write it as %2B"),
            ("0d", "'0d' is no time at all: give a duration longer than 0"),
            ("\u0661\u0662", "is neither a date nor a duration"),
        ]:
            answer = await c.get("/api/v1/audit", params={"since": bad})
            assert answer.status_code == 422, (bad, answer.text)
            assert says in answer.json()["detail"], answer.text
        too_long = await c.get("/api/v1/audit", params={"since": "1" * 65})
        assert too_long.status_code == 422 and "query.since" in too_long.json()["detail"]
