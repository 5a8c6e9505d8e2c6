"""Signing in to the pages as a person does: a one-time link, a session cookie, sign-out; and a
second user who is refused what is not theirs."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import httpx
from playwright.sync_api import BrowserContext, Page, expect

from tests.conftest import Server, identity_call, login_link
from tests.e2e.conftest import open_sign_in_link
from tests.e2e.test_browser import TASK_URL

SHOTS = Path("/tmp/shots")
StartServer = Callable[..., Server]


def test_sign_in_by_link_decide_and_sign_out(
    start_server: StartServer, anonymous: BrowserContext
) -> None:
    server = start_server(process_delay=0.2)
    page = anonymous.new_page()
    # Not signed in: every page leads to sign-in, and says how.
    page.goto(f"{server.url}/reviews")
    page.wait_for_url(re.compile(r"/login\?next=%2Freviews$"))
    expect(page.get_by_text("hitl login-link YOUR-NAME")).to_be_visible()

    secret = login_link(server.db_url, "admin")
    page.goto(f"{server.url}/login/{secret}?next=/")
    expect(page.get_by_test_id("sign-in-name")).to_have_text("admin")  # it asks first
    assert not [c for c in anonymous.cookies() if c["name"] == "hitl_session"]
    page.get_by_test_id("sign-in-confirm").click()
    expect(page.get_by_test_id("signed-in-as")).to_have_text("signed in as admin")
    cookie = next(c for c in anonymous.cookies() if c["name"] == "hitl_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"
    assert cookie["value"] != secret

    page.get_by_test_id("input").fill("signed-in work")
    page.get_by_test_id("submit").click()
    page.wait_for_url(TASK_URL)
    expect(page.get_by_test_id("status")).to_have_text("waiting for review")
    page.get_by_test_id("approve").click()
    expect(page.get_by_test_id("status")).to_have_text("completed")
    expect(page.get_by_text("Approved by admin")).to_be_visible()
    page.screenshot(path=str(SHOTS / "signed-in-task.png"), full_page=True)

    # The link worked once.
    again = anonymous.new_page()
    again.goto(f"{server.url}/login/{secret}")
    expect(again.get_by_test_id("login-problem")).to_contain_text("unknown, used or expired")
    again.close()

    page.get_by_test_id("sign-out").click()
    page.wait_for_url(re.compile(r"/login$"))
    page.goto(f"{server.url}/")
    page.wait_for_url(re.compile(r"/login\?next="))


def test_a_second_user_is_refused_what_is_not_theirs(
    start_server: StartServer, anonymous: BrowserContext
) -> None:
    server = start_server(process_delay=0.2)
    admin = anonymous.browser.new_context()  # type: ignore[union-attr]
    try:
        first = admin.new_page()
        open_sign_in_link(first, f"{server.url}/login/{login_link(server.db_url, 'admin')}?next=/")
        first.get_by_test_id("input").fill("the admin's task")
        first.get_by_test_id("submit").click()
        first.wait_for_url(TASK_URL)
        task_url = first.url
    finally:
        admin.close()

    identity_call(server.db_url, lambda i: i.add_user("José 李雷", ["submitter"]))
    page = anonymous.new_page()
    link = login_link(server.db_url, "José 李雷")
    open_sign_in_link(page, f"{server.url}/login/{link}?next=/reviews")
    expect(page.get_by_test_id("signed-in-as")).to_have_text("signed in as José 李雷")
    # The queue is for reviewers: the page says what is missing.
    expect(page.get_by_text("needs the reviewer role")).to_be_visible()
    page.screenshot(path=str(SHOTS / "second-user-queue.png"), full_page=True)
    # Another user's task does not exist, for this user.
    page.goto(task_url)
    expect(page.get_by_text("No such task.")).to_be_visible()
    page.screenshot(path=str(SHOTS / "second-user-task.png"), full_page=True)


def test_a_decision_made_on_behalf_of_someone_names_both(
    start_server: StartServer, page: Page
) -> None:
    server = start_server(process_delay=0.1)
    identity_call(server.db_url, lambda i: i.add_user("rita", ["reviewer"]))
    api = httpx.Client(base_url=server.url, headers=server.headers, timeout=10)
    with api:
        task = api.post("/api/v1/tasks", json={"input": "phoned in"}).json()["id"]
        page.goto(f"{server.url}/tasks/{task}")
        expect(page.get_by_test_id("status")).to_have_text("waiting for review")
        review = api.get(f"/api/v1/tasks/{task}").json()["reviews"][0]["id"]
        decided = api.post(
            f"/api/v1/reviews/{review}/decision",
            json={"decision": "approve", "on_behalf_of": "rita"},
        )
        assert decided.status_code == 200, decided.text
    expect(page.get_by_test_id("status")).to_have_text("completed")
    expect(page.get_by_text(re.compile(r"^Approved by test-\w+ for rita$"))).to_be_visible()
    page.reload()  # and from the log, not only live
    expect(page.get_by_text(re.compile(r"^Approved by test-\w+ for rita$"))).to_be_visible()
