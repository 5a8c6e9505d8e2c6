"""Signing in through an OpenID Connect provider, as a person does: a real provider
(`oidc-provider-mock`) on 127.0.0.1, a real `hitl serve`, and Chromium between them."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import BrowserContext, Page, expect

from tests.conftest import Server
from tests.e2e.test_browser import TASK_URL
from tests.unit.api.test_oidc import provider, set_user

SHOTS = Path("/tmp/shots")
StartServer = Callable[..., Server]
# Anything but this machine: the provider's pages ask for a stylesheet from a CDN.
ELSEWHERE = re.compile(r"^(?!https?://127\.0\.0\.1[:/])")

__all__ = ["provider"]  # a fixture, used by name


@pytest.fixture(scope="module")
def server(start_module_server: StartServer, provider: str) -> Server:
    return start_module_server(
        process_delay=0.2,
        oidc_issuer=provider,
        oidc_client_id="hitl",
        oidc_client_secret="s3cret",
    )


@pytest.fixture
def tab(anonymous: BrowserContext) -> Page:
    """A tab of a browser that is not signed in, and reaches nothing but this machine."""
    anonymous.route(ELSEWHERE, lambda route: route.abort())
    return anonymous.new_page()


def through_provider(tab: Page, sub: str | None, shot: str | None = None) -> None:
    """From hitl's sign-in page to the provider's, and back: signed in there as `sub`, or,
    with None, saying no."""
    tab.get_by_test_id("sign-in-oidc").click()
    tab.wait_for_url(re.compile(r"/oauth2/authorize\?"))
    if sub is None:
        tab.get_by_role("button", name="Deny").click()
        return
    tab.locator("input[name=sub]").fill(sub)
    if shot:
        tab.screenshot(path=str(SHOTS / shot), full_page=True)
    tab.get_by_role("button", name="Authorize").click()


def test_a_reviewer_signs_in_lands_on_the_page_asked_for_and_decides(
    server: Server, provider: str, tab: Page
) -> None:
    created = httpx.post(
        f"{server.url}/api/v1/tasks",
        json={"input": "Release notes for José"},
        headers=server.headers,
    )
    assert created.status_code == 201, created.text
    task_id = created.json()["id"]
    sub = set_user(
        provider,
        {
            "preferred_username": "José 李雷",
            "email": "jose@example.com",
            "hitl_roles": ["reviewer"],
        },
    )

    tab.goto(f"{server.url}/reviews")
    tab.wait_for_url(re.compile(r"/login\?next=%2Freviews$"))
    expect(tab.get_by_test_id("sign-in-oidc")).to_have_text("Sign in with 127.0.0.1")
    tab.screenshot(path=str(SHOTS / "oidc-login.png"), full_page=True)
    through_provider(tab, sub, shot="oidc-provider.png")

    tab.wait_for_url(f"{server.url}/reviews")
    expect(tab.get_by_test_id("signed-in-as")).to_have_text("signed in as José 李雷")
    session = next(c for c in tab.context.cookies() if c["name"] == "hitl_session")
    assert session["httpOnly"] and session["sameSite"] == "Lax"
    assert not [c for c in tab.context.cookies() if c["name"] == "hitl_oidc"]  # flow over
    tab.locator(f'[data-task-id="{task_id}"] a').click()
    tab.wait_for_url(TASK_URL)
    expect(tab.get_by_test_id("status")).to_have_text("waiting for review")
    tab.screenshot(path=str(SHOTS / "oidc-signed-in.png"), full_page=True)
    tab.get_by_test_id("approve").click()
    expect(tab.get_by_test_id("status")).to_have_text("completed")
    expect(tab.get_by_text("Approved by José 李雷")).to_be_visible()
    tab.screenshot(path=str(SHOTS / "oidc-decided.png"), full_page=True)

    review = httpx.get(f"{server.url}/api/v1/tasks/{task_id}", headers=server.headers).json()
    assert review["status"] == "completed"


def test_someone_the_provider_gives_no_role_is_refused(
    server: Server, provider: str, tab: Page
) -> None:
    sub = set_user(provider, {"preferred_username": "nobody", "hitl_roles": ["billing"]})
    tab.goto(f"{server.url}/reviews")
    tab.wait_for_url(re.compile(r"/login\?next="))
    through_provider(tab, sub)
    problem = tab.get_by_test_id("login-problem")
    expect(problem).to_have_text(
        "your identity provider gives you no hitl role: ask for one of submitter, reviewer, admin."
    )
    expect(tab.get_by_test_id("signed-in-as")).to_have_count(0)
    tab.screenshot(path=str(SHOTS / "oidc-no-role.png"), full_page=True)
    assert not [c for c in tab.context.cookies() if c["name"] == "hitl_session"]
    tab.goto(f"{server.url}/reviews")
    tab.wait_for_url(re.compile(r"/login\?next="))  # still not signed in


def test_a_forged_or_denied_callback_gets_a_page_that_says_how_to_retry(
    server: Server, provider: str, tab: Page
) -> None:
    answer = tab.goto(f"{server.url}/auth/oidc/callback?code=stolen&state=forged")
    assert answer is not None and answer.status == 400
    expect(tab.get_by_test_id("login-problem")).to_contain_text(
        "belongs to no sign-in started in this browser"
    )
    expect(tab.get_by_test_id("login-problem")).to_contain_text("Sign in again below.")
    tab.screenshot(path=str(SHOTS / "oidc-forged.png"), full_page=True)

    # At the provider, the person says no: back at hitl, the page says so, and retrying works.
    sub = set_user(provider, {"preferred_username": "ann", "hitl_roles": "submitter"})
    tab.goto(f"{server.url}/")
    tab.wait_for_url(re.compile(r"/login\?next="))
    through_provider(tab, None)
    expect(tab.get_by_test_id("login-problem")).to_contain_text(
        "127.0.0.1 did not sign you in: access_denied"
    )
    tab.screenshot(path=str(SHOTS / "oidc-denied.png"), full_page=True)
    through_provider(tab, sub)
    tab.wait_for_url(f"{server.url}/")
    expect(tab.get_by_test_id("signed-in-as")).to_have_text("signed in as ann")
