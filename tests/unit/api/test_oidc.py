"""OpenID Connect sign-in: the roles claim, the settings, and the flow against a real provider
(`oidc-provider-mock` on 127.0.0.1), driven without a browser: every way it can go wrong is a
page that says so, never a 500. `tests/e2e/test_oidc.py` walks it in Chromium."""

from __future__ import annotations

import contextlib
import html
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from fastapi import FastAPI
from joserfc.jwk import KeySet, RSAKey
from pydantic import ValidationError
from starlette.routing import Mount

from hitl.app import create_app
from hitl.config import Settings
from hitl.web.oidc import roles_from_claim
from tests.conftest import Stub, free_port

OIDC = {"oidc_client_id": "hitl", "oidc_client_secret": "s3cret"}
DISCOVERY = {
    "issuer": "https://other.example",
    "authorization_endpoint": "https://other.example/authorize",
    "token_endpoint": "https://other.example/token",
    "jwks_uri": "https://other.example/jwks",
}


# -- a real provider ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real OpenID Connect provider on 127.0.0.1 for the module; its issuer URL. Any client
    id and secret will do; `set_user` gives a subject its claims. It runs in a process of its
    own: it serves with Authlib APIs that Authlib deprecates, which pytest makes errors here."""
    port = free_port()
    log = tmp_path_factory.mktemp("oidc") / "provider.log"
    command = [sys.executable, "-m", "oidc_provider_mock", "--require-nonce"]
    command += ["--host", "127.0.0.1", "--port", str(port)]
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "NO_COLOR": "1"}
        )
    issuer = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while not _answers(issuer):
            assert process.poll() is None, f"the provider exited: {log.read_text()}"
            assert time.monotonic() < deadline, f"the provider did not start: {log.read_text()}"
            time.sleep(0.05)
        yield issuer
    finally:
        process.terminate()
        process.wait(10)


def _answers(issuer: str) -> bool:
    try:
        return httpx.get(f"{issuer}/.well-known/openid-configuration").status_code == 200
    except httpx.HTTPError:
        return False


def set_user(issuer: str, claims: dict[str, Any]) -> str:
    """A new subject at the provider, with `claims`; its `sub`."""
    sub = f"sub-{uuid.uuid4().hex[:12]}"
    response = httpx.put(f"{issuer}/users/{sub}", json=claims)
    assert response.status_code == 204, response.text
    return sub


# -- parsing and settings ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "value,roles",
    [
        (["reviewer"], {"reviewer"}),
        (["submitter", "reviewer", "admin"], {"submitter", "reviewer", "admin"}),
        ("reviewer submitter", {"reviewer", "submitter"}),
        ("reviewer,submitter", {"reviewer", "submitter"}),
        (" reviewer , admin ", {"reviewer", "admin"}),
        ([" reviewer "], {"reviewer"}),
        (["reviewer", "billing-admin", 3, None], {"reviewer"}),  # another application's
        (["Reviewer", "ADMIN"], set()),  # names are exact
        ("", set()),
        ([], set()),
        (None, set()),
        (7, set()),
        ({"reviewer": True}, set()),
    ],
)
def test_roles_claim(value: object, roles: set[str]) -> None:
    assert roles_from_claim(value) == roles


@pytest.mark.parametrize(
    "given,message",
    [
        ({"oidc_issuer": "https://idp.example"}, "HITL_OIDC_ISSUER needs HITL_OIDC_CLIENT_ID and"),
        (
            {"oidc_issuer": "https://idp.example", "oidc_client_id": "hitl"},
            "HITL_OIDC_ISSUER and HITL_OIDC_CLIENT_ID need HITL_OIDC_CLIENT_SECRET",
        ),
        (
            {"oidc_issuer": "https://idp.example", "oidc_client_secret": "x"},
            "need HITL_OIDC_CLIENT_ID:",
        ),
        ({"oidc_client_id": "hitl"}, "HITL_OIDC_CLIENT_ID needs HITL_OIDC_ISSUER and"),
        ({"oidc_issuer": "http://idp.example", **OIDC}, "is not an issuer URL"),
        ({"oidc_issuer": "idp.example", **OIDC}, "is not an issuer URL"),
        ({"oidc_issuer": "https://idp.example/?x=1", **OIDC}, "is not an issuer URL"),
        ({"oidc_issuer": "https://idp.example", "oidc_scopes": "email", **OIDC}, "lacks openid"),
        ({"oidc_issuer": "https://idp.example", "oidc_roles_claim": "", **OIDC}, "at least 1"),
    ],
)
def test_settings_say_what_is_missing(given: dict[str, str], message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        Settings(**given)  # type: ignore[arg-type]
    assert message in str(caught.value)


def test_settings_turn_oidc_on_with_issuer_and_client() -> None:
    assert not Settings().oidc
    on = Settings(oidc_issuer="https://idp.example/realms/x", **OIDC)  # type: ignore[arg-type]
    assert on.oidc and on.oidc_scopes == "openid email profile"
    assert "s3cret" not in repr(on)  # the secret is not shown where settings are
    assert Settings(oidc_issuer="http://127.0.0.1:9000", **OIDC).oidc  # type: ignore[arg-type]


# -- the flow, without a browser -------------------------------------------------------------


@pytest.fixture
async def make_app(tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
    """A factory of apps (started) with OpenID Connect sign-in at `issuer`."""
    async with contextlib.AsyncExitStack() as stack:
        count = iter(range(1000))

        async def make(issuer: str, **settings: Any) -> FastAPI:
            app = create_app(
                Settings(
                    database_url=f"sqlite:///{tmp_path / f'oidc-{next(count)}.db'}",
                    process_delay=0,
                    rate_limit=0,
                    oidc_issuer=issuer,
                    **OIDC,
                    **settings,
                )
            )
            await stack.enter_async_context(app.router.lifespan_context(app))
            return app

        yield make


def browser(app: FastAPI) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=("127.0.0.7", 50000))
    return httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1")


async def to_provider(hitl: httpx.AsyncClient, next: str = "/reviews") -> str:
    """Start a sign-in; the provider's authorization URL it sends the browser to."""
    start = await hitl.get("/auth/oidc/login", params={"next": next})
    assert start.status_code == 302, start.text
    assert "hitl_oidc" in hitl.cookies
    return start.headers["location"]


def authorize(url: str, sub: str) -> str:
    """The person signs in at the provider as `sub`: the callback URL it sends them back to."""
    answer = httpx.post(url, data={"sub": sub})
    assert answer.status_code == 302, answer.text
    return answer.headers["location"]


async def sign_in(hitl: httpx.AsyncClient, sub: str) -> httpx.Response:
    url = await to_provider(hitl)
    return await hitl.get(authorize(url, sub))


async def test_a_sign_in_makes_the_user_with_the_claims_roles(
    provider: str, make_app: Callable[..., Any]
) -> None:
    app = await make_app(provider)
    sub = set_user(
        provider,
        {
            "preferred_username": "José 李雷",
            "email": "jose@example.com",
            "hitl_roles": ["reviewer"],
        },
    )
    async with browser(app) as hitl:
        url = await to_provider(hitl)
        query = parse_qs(urlsplit(url).query)
        assert url.startswith(f"{provider}/oauth2/authorize?")
        assert query["redirect_uri"] == ["http://127.0.0.1/auth/oidc/callback"]
        assert query["scope"] == ["openid email profile"] and query["client_id"] == ["hitl"]
        assert query["code_challenge_method"] == ["S256"] and query["code_challenge"]
        assert query["state"] and query["nonce"]
        done = await hitl.get(authorize(url, sub))
        assert done.status_code == 303, done.text
        assert done.headers["location"] == "/reviews"
        assert "HttpOnly" in done.headers["set-cookie"]
        queue = await hitl.get("/api/v1/reviews")
        assert queue.status_code == 200, queue.text  # a reviewer's session
    identity = app.state.service.identity
    [user] = [u for u in await identity.users() if u.name == "José 李雷"]
    assert (user.roles, user.email, user.kind) == ("reviewer", "jose@example.com", "user")
    audit = await identity.audit_log(0)
    added = next(a for a in audit if a.action == "user.add" and a.target == "José 李雷")
    assert json.loads(added.detail or "{}") == {
        "roles": "reviewer",
        "kind": "user",
        "via": "oidc",
        "subject": sub,
    }
    assert added.address == "127.0.0.7"
    signed = [a for a in audit if a.action == "sign_in" and a.target == "José 李雷"]
    assert [json.loads(a.detail or "{}") for a in signed] == [{"via": "oidc"}]


async def test_roles_follow_the_claim_at_each_sign_in(
    provider: str, make_app: Callable[..., Any]
) -> None:
    app = await make_app(provider, oidc_roles_claim="groups")
    sub = set_user(provider, {"preferred_username": "rita", "groups": "reviewer,other-app"})
    async with browser(app) as hitl:
        assert (await sign_in(hitl, sub)).status_code == 303
    # The provider now says otherwise: the next sign-in takes its word, and says so.
    put = httpx.put(f"{provider}/users/{sub}", json={"preferred_username": "rita", "groups": []})
    assert put.status_code == 204
    async with browser(app) as hitl:
        refused = await sign_in(hitl, sub)
        assert refused.status_code == 403
        assert "gives you no hitl role: ask for one of submitter, reviewer, admin" in refused.text
        assert "hitl_session" not in hitl.cookies
    httpx.put(f"{provider}/users/{sub}", json={"preferred_username": "rita", "groups": "admin"})
    async with browser(app) as hitl:
        assert (await sign_in(hitl, sub)).status_code == 303
    identity = app.state.service.identity
    [rita] = [u for u in await identity.users() if u.name == "rita"]
    assert rita.roles == "admin"
    changes = [json.loads(a.detail or "{}") for a in await identity.audit_log(0)]
    assert {"roles": "admin", "was": "reviewer", "via": "oidc", "subject": sub} in changes


async def test_a_disabled_user_or_a_service_account_is_refused(
    provider: str, make_app: Callable[..., Any]
) -> None:
    app = await make_app(provider)
    identity = app.state.service.identity
    await identity.add_user("dora", ["reviewer"])
    await identity.disable_user("dora")
    await identity.create_token("robot", ["submitter"])
    for name, says in (("dora", "'dora' is disabled in hitl"), ("robot", "service account")):
        sub = set_user(provider, {"preferred_username": name, "hitl_roles": ["admin"]})
        async with browser(app) as hitl:
            refused = await sign_in(hitl, sub)
            assert refused.status_code == 403 and says in html.unescape(refused.text)
    assert {u.name: u.roles for u in await identity.users()} == {
        "dora": "reviewer",
        "robot": "submitter",
    }


async def test_a_name_comes_from_a_verified_email_or_the_sign_in_is_refused(
    provider: str, make_app: Callable[..., Any]
) -> None:
    app = await make_app(provider)
    by_email = set_user(provider, {"email": "ann@example.com", "hitl_roles": "submitter"})
    unverified = {"email": "boss@example.com", "email_verified": False, "hitl_roles": "admin"}
    for claims in ({"hitl_roles": "submitter"}, unverified):
        async with browser(app) as hitl:
            refused = await sign_in(hitl, set_user(provider, claims))
            assert refused.status_code == 502
            assert "no preferred_username, nor a verified email" in refused.text
    async with browser(app) as hitl:
        assert (await sign_in(hitl, by_email)).status_code == 303
    assert [u.name for u in await app.state.service.identity.users()] == ["ann@example.com"]


async def test_a_forged_or_refused_callback_is_a_page_that_says_so(
    provider: str, make_app: Callable[..., Any]
) -> None:
    app = await make_app(provider)
    sub = set_user(provider, {"preferred_username": "ann", "hitl_roles": "reviewer"})
    async with browser(app) as hitl:
        # No sign-in started in this browser.
        forged = await hitl.get("/auth/oidc/callback", params={"code": "x", "state": "forged"})
        assert forged.status_code == 400
        assert "belongs to no sign-in started in this browser" in forged.text
        assert "Sign in again below" in forged.text and "/auth/oidc/login?next=" in forged.text
        # A real code, but another state: refused before the code is used.
        callback = authorize(await to_provider(hitl), sub)
        query = parse_qs(urlsplit(callback).query)
        wrong = await hitl.get(
            "/auth/oidc/callback", params={"code": query["code"][0], "state": "other"}
        )
        assert wrong.status_code == 400 and "belongs to no sign-in" in wrong.text
        missing = await hitl.get("/auth/oidc/callback", params={"state": query["state"][0]})
        assert missing.status_code == 400 and "has no code or no state" in missing.text
        denied = await hitl.get(
            "/auth/oidc/callback",
            params={"error": "access_denied", "error_description": "the user said no"},
        )
        assert denied.status_code == 400
        assert "did not sign you in: access_denied (the user said no)" in denied.text
        # A code used twice: the provider refuses the second exchange.
        url = await to_provider(hitl)
        callback = authorize(url, sub)
        assert (await hitl.get(callback)).status_code == 303
        hitl.cookies.delete("hitl_session")
        again = await hitl.get(callback)
        assert again.status_code == 400, again.text
        assert "hitl_session" not in hitl.cookies
    assert [u.name for u in await app.state.service.identity.users()] == ["ann"]


async def test_an_id_token_that_does_not_verify_signs_nobody_in(
    provider: str, make_app: Callable[..., Any]
) -> None:
    """hitl checks the ID token's signature: here against a key of the provider's key id that
    is not the provider's, as if someone else had signed it."""
    app = await make_app(provider)
    [mount] = [r for r in app.routes if isinstance(r, Mount) and r.name == "oidc"]
    client = mount.routes[0].endpoint.__self__.client  # type: ignore[attr-defined]
    [real] = httpx.get(f"{provider}/jwks").json()["keys"]
    other = RSAKey.generate_key(2048, parameters={"kid": real["kid"]})
    sub = set_user(provider, {"preferred_username": "eve", "hitl_roles": "admin"})
    async with browser(app) as hitl:
        url = await to_provider(hitl)  # the provider's metadata is read by now
        client.server_metadata["jwks"] = KeySet([other]).as_dict(private=False)
        refused = await hitl.get(authorize(url, sub))
        assert refused.status_code == 400, refused.text
        assert "the ID token from 127.0.0.1 does not verify" in refused.text
        assert "hitl_session" not in hitl.cookies
    assert await app.state.service.identity.users() == []


async def test_a_provider_that_does_not_answer_is_a_502_page(
    make_app: Callable[..., Any],
) -> None:
    app = await make_app(f"http://127.0.0.1:{free_port()}")
    async with browser(app) as hitl:
        down = await hitl.get("/auth/oidc/login", params={"next": "/reviews"})
        assert down.status_code == 502
        assert "did not answer as it should (ConnectError" in down.text
        assert "ask an admin to check HITL_OIDC_ISSUER" in down.text
        assert "/auth/oidc/login?next=/reviews" in down.text  # the button to try again


@pytest.mark.parametrize(
    "status,body,says",
    [
        (500, b"{}", "(500 from http://127.0.0.1:"),
        (200, b"<html>not JSON</html>", "JSONDecodeError"),
        (200, json.dumps({"issuer": "https://other.example"}).encode(), "lacks authorization_"),
        (200, json.dumps(DISCOVERY).encode(), "names the issuer 'https://other.example'"),
    ],
)
async def test_a_provider_that_answers_wrongly_is_a_502_page(
    make_app: Callable[..., Any], stub: tuple[Stub, str], status: int, body: bytes, says: str
) -> None:
    answer, url = stub
    answer.status, answer.body = status, body
    app = await make_app(url)
    async with browser(app) as hitl:
        wrong = await hitl.get("/auth/oidc/login")
        assert wrong.status_code == 502 and says in html.unescape(wrong.text), wrong.text
        # Read again at the next try, not kept: once it is right, the sign-in starts.
        answer.status, answer.body = 200, json.dumps(DISCOVERY | {"issuer": url}).encode()
        assert (await hitl.get("/auth/oidc/login")).status_code == 302


async def test_the_login_page_offers_the_provider_only_when_configured(
    provider: str, make_app: Callable[..., Any], tmp_path: Path
) -> None:
    app = await make_app(provider)
    async with browser(app) as hitl:
        page = await hitl.get("/login", params={"next": "/tasks/x?a=1&b=2"})
        assert "Sign in with 127.0.0.1" in page.text
        assert 'href="/auth/oidc/login?next=/tasks/x%3Fa%3D1%26b%3D2"' in page.text
    plain = create_app(Settings(database_url=f"sqlite:///{tmp_path / 'plain.db'}"))
    async with plain.router.lifespan_context(plain), browser(plain) as hitl:
        page = await hitl.get("/login")
        assert page.status_code == 200 and "Sign in with" not in page.text
        assert (await hitl.get("/auth/oidc/login")).status_code == 404
