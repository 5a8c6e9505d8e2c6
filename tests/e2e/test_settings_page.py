"""The notifications settings page (/settings) in real headless Chromium against a real `hitl
serve`, sending to real HTTP receivers on 127.0.0.1 (tests/receiver.py): an admin adds a
webhook and sees its signing secret once, a task's event reaches the receiver signed with it,
and the delivery log says so; a receiver that fails shows failed, and Replay delivers it; the
server's refusals show at the form; Remove asks first; a reviewer is told it needs the admin
role, and someone not signed in is sent to sign in.

Assertions are Playwright's auto-waiting `expect()`; nothing sleeps. Screenshots go to
/tmp/settings_*.png.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from playwright.sync_api import BrowserContext, Locator, Page, expect
from standardwebhooks.webhooks import Webhook

from tests.conftest import Server, identity_call, login_link
from tests.e2e.conftest import js_errors, open_sign_in_link
from tests.e2e.test_reviewer import api, open_review
from tests.receiver import Receiver, receiver

pytestmark = pytest.mark.e2e

StartServer = Callable[..., Server]
SHOT = "/tmp/settings_{}.png"
WIDE = {"width": 1280, "height": 900}
NARROW = {"width": 420, "height": 900}
SLACK_TOKEN = "TIiajkdnlazkcOXrIdevi7FQ"  # an Apprise URL's secret: the page shows it hidden
RETRY_SECONDS = 3  # a delivery that keeps failing is marked failed after this long


@pytest.fixture(scope="module")
def _server(start_module_server: StartServer) -> Server:
    server = start_module_server(delivery_retry_seconds=RETRY_SECONDS)
    identity_call(server.db_url, lambda i: i.add_user("rita", ["reviewer"]))
    return server


@pytest.fixture
def server(_server: Server) -> Iterator[Server]:
    """This module's server; the channels a test adds are removed after it, so that the next
    test's events go to its own receivers only."""
    yield _server
    for channel in api(_server, "GET", "/api/v1/channels")["data"]:
        if channel["removed_at"] is None:
            api(_server, "DELETE", f"/api/v1/channels/{channel['name']}")


@pytest.fixture
def hook() -> Iterator[Receiver]:
    with receiver() as r:
        yield r


def submit(server: Server, text: str) -> str:
    """A task of the default flow, once it waits for its review (`review.requested`)."""
    task_id = str(api(server, "POST", "/api/v1/tasks", json={"input": text})["id"])
    open_review(server, task_id)
    return task_id


def add_by_api(server: Server, name: str, url: str, kind: str = "webhook", **more: Any) -> None:
    body = {"name": name, "kind": kind, "url": url, **more}
    api(server, "POST", "/api/v1/channels", json=body)


def channel_of(page: Page, name: str) -> Locator:
    return page.locator(f'.channel[data-name="{name}"]')


def delivery_of(page: Page, task_id: str) -> Locator:
    return page.get_by_test_id("delivery").filter(has=page.locator(f'a[href="/tasks/{task_id}"]'))


def add_channel(page: Page, name: str, url: str, kind: str = "webhook") -> None:
    page.get_by_test_id(f"kind-{kind}").check()
    page.get_by_test_id("ch-name").fill(name)
    page.get_by_test_id("ch-url").fill(url)
    page.get_by_test_id("add-submit").click()


def test_an_admin_adds_a_webhook_sees_its_secret_once_and_its_deliveries(
    server: Server, page: Page, context: BrowserContext, hook: Receiver, csp_violations: list[str]
) -> None:
    page.set_viewport_size(WIDE)
    page.goto(f"{server.url}/")
    page.get_by_test_id("nav-settings").click()
    page.wait_for_url(f"{server.url}/settings")
    expect(page.get_by_role("heading", name="Notifications")).to_be_visible()

    # A webhook's defaults are ticked; Apprise ticks its own, and a webhook's come back.
    webhook_defaults = [
        "review.requested",
        "review.escalated",
        "review.deadline_near",
        "review.decided",
        "task.completed",
        "task.failed",
    ]
    for event in ("task.created", *webhook_defaults, "task.cancelled"):
        box = expect(page.get_by_test_id(f"event-{event}"))
        (box.to_be_checked if event in webhook_defaults else box.not_to_be_checked)()
    page.get_by_test_id("kind-apprise").check()
    expect(page.get_by_test_id("event-review.decided")).not_to_be_checked()
    expect(page.get_by_test_id("event-review.requested")).to_be_checked()
    expect(page.get_by_test_id("ch-url")).to_have_attribute("placeholder", re.compile("^slack://"))
    page.get_by_test_id("kind-webhook").check()
    expect(page.get_by_test_id("event-review.decided")).to_be_checked()
    # Ticked by hand: changing the kind keeps the person's choice.
    page.get_by_test_id("event-task.created").check()
    page.get_by_test_id("kind-apprise").check()
    page.get_by_test_id("kind-webhook").check()
    expect(page.get_by_test_id("event-task.created")).to_be_checked()
    page.get_by_test_id("event-task.created").uncheck()

    add_channel(page, "ops", f"{hook.url}/in")
    box = page.get_by_test_id("secret-box")
    expect(box).to_be_visible()
    expect(box).to_contain_text("shown only now")
    expect(page.get_by_test_id("secret-name")).to_have_text("ops")
    secret = page.get_by_test_id("secret-value").input_value()
    assert secret.startswith("whsec_")
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.url)
    page.get_by_test_id("secret-copy").click()
    expect(page.get_by_test_id("secret-copied")).to_have_text("Copied.")
    assert page.evaluate("() => navigator.clipboard.readText()") == secret
    expect(page.get_by_test_id("add-done")).to_contain_text("Added ops (webhook)")
    expect(page.get_by_test_id("ch-name")).to_have_value("")  # the form is ready for the next

    ops = channel_of(page, "ops")
    expect(ops.get_by_test_id("channel-url")).to_have_text(f"{hook.url}/in")
    expect(ops).to_contain_text("review.requested")
    expect(ops).not_to_contain_text("task.created")
    expect(ops).to_contain_text(re.compile(r"Added by test-\w+ (just now|\d+ s ago)"))
    listed = api(server, "GET", "/api/v1/channels")["data"]
    assert [c["events"] for c in listed if c["name"] == "ops"] == [webhook_defaults]

    # A task's review request reaches the receiver, signed with that secret...
    task_id = submit(server, "tell ops")
    got = hook.wait_for(1)[0]
    payload = Webhook(secret).verify(got.body, got.headers)
    assert payload["type"] == "review.requested" and payload["data"]["task_id"] == task_id
    # ...and the log says so, newest first, without a reload.
    row = delivery_of(page, task_id)
    expect(row.get_by_test_id("delivery-status")).to_have_text("delivered")
    expect(row).to_contain_text("review.requested")
    expect(row).to_contain_text("ops")
    expect(row.get_by_test_id("delivery-tries")).to_have_text("1")
    expect(row.locator("td.answer")).to_have_text("200")
    expect(row.locator("time")).to_have_attribute("title", re.compile(r"\d"))
    expect(row.get_by_test_id("replay")).to_be_visible()
    expect(row.get_by_test_id("delivery-task")).to_have_text(task_id[-8:])
    page.screenshot(path=SHOT.format("added"), full_page=True)
    page.set_viewport_size(NARROW)
    expect(row.get_by_test_id("delivery-status")).to_be_visible()
    page.screenshot(path=SHOT.format("added_narrow"), full_page=True)
    page.set_viewport_size(WIDE)

    # The secret was shown once: a reload shows it nowhere.
    page.reload()
    expect(channel_of(page, "ops")).to_be_visible()
    expect(page.get_by_test_id("secret-box")).to_be_hidden()
    assert page.get_by_test_id("secret-value").input_value() == ""
    assert secret not in page.content()
    assert "secret" not in api(server, "GET", "/api/v1/channels")["data"][0]

    # The task's link opens its page.
    delivery_of(page, task_id).get_by_test_id("delivery-task").click()
    page.wait_for_url(f"{server.url}/tasks/{task_id}")
    assert csp_violations == [] and js_errors(page) == []


def test_a_failing_receiver_shows_failed_and_replay_delivers_it(
    server: Server, page: Page, hook: Receiver
) -> None:
    hook.script = [500] * 1000  # down for longer than the retry time
    add_by_api(server, "flaky", hook.url, events=["review.requested"])
    page.set_viewport_size(WIDE)
    page.goto(f"{server.url}/settings?channel=flaky")
    expect(page.get_by_test_id("log-channel")).to_have_value("flaky")

    hook.release.clear()  # the first try waits for its answer: the delivery stays pending
    task_id = submit(server, "to a receiver that is down")
    hook.wait_for(1)
    row = delivery_of(page, task_id)
    expect(row.get_by_test_id("delivery-status")).to_have_text("pending")
    expect(row.get_by_test_id("replay")).to_have_count(0)
    # Retried until the retry time ran out, then failed: no event says so, the page follows
    # the pending delivery by itself.
    hook.release.set()
    expect(row.get_by_test_id("delivery-status")).to_have_text("failed")
    expect(row.locator("td.answer")).to_contain_text("500")
    expect(row.locator("td.answer")).to_contain_text("not now")  # what the receiver said
    tries = int(row.get_by_test_id("delivery-tries").inner_text())
    assert tries >= 1 and len(hook.received) == tries

    # The status filter: the failed one is listed under "Failed", not under "Delivered".
    page.get_by_test_id("log-status").select_option("delivered")
    expect(page).to_have_url(f"{server.url}/settings?channel=flaky&status=delivered")
    expect(page.get_by_test_id("log-empty")).to_have_text("No deliveries match these filters.")
    page.get_by_test_id("log-status").select_option("failed")
    expect(page.get_by_test_id("delivery")).to_have_count(1)
    page.screenshot(path=SHOT.format("failed"), full_page=True)

    hook.script.clear()  # the receiver is back: replay it
    page.get_by_test_id("log-status").select_option("")
    row.get_by_test_id("replay").click()
    expect(row.get_by_test_id("delivery-status")).to_have_text("delivered")
    expect(row.get_by_test_id("delivery-tries")).to_have_text(str(tries + 1))
    expect(row.locator("td.answer")).to_have_text("200")
    received = hook.wait_for(tries + 1)
    assert len({r.headers["webhook-id"] for r in received}) == 1  # one delivery, its own id
    audit = api(server, "GET", "/api/v1/audit", params={"limit": 1000})["data"]
    assert "delivery.replay" in {entry["action"] for entry in audit}
    assert js_errors(page) == []


def test_the_servers_refusals_show_at_the_form(server: Server, page: Page) -> None:
    page.set_viewport_size(WIDE)
    page.goto(f"{server.url}/settings")
    expect(page.get_by_test_id("channels")).to_be_attached()

    # From the keyboard: Enter in the URL box sends the form.
    page.get_by_test_id("ch-name").fill("bad")
    page.get_by_test_id("ch-url").fill("ftp://example.com/hook")
    page.get_by_test_id("ch-url").press("Enter")
    error = page.get_by_test_id("add-error")
    expect(error).to_have_text(
        "url: a webhook needs an http:// or https:// URL with a host, not 'ftp://example.com/hook'"
    )
    expect(page.get_by_test_id("ch-url")).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_test_id("ch-url")).to_be_focused()
    expect(page.get_by_test_id("ch-url")).to_have_value("ftp://example.com/hook")  # kept
    page.screenshot(path=SHOT.format("refused"), full_page=True)

    add_channel(page, "bad", "nosuchservice://token", kind="apprise")
    expect(error).to_contain_text("url: Apprise does not know 'nosuchservice://")
    add_channel(page, "bad/name", "https://example.com/hook")
    expect(error).to_contain_text("invalid request: body.name:")
    expect(page.get_by_test_id("ch-name")).to_have_attribute("aria-invalid", "true")

    # A name taken (409).
    add_by_api(server, "taken", "https://example.com/hook")
    add_channel(page, "taken", "https://example.com/other")
    expect(error).to_have_text("there is a channel named 'taken' already: choose another name")
    expect(page.get_by_test_id("ch-name")).to_be_focused()

    # The page's own: no event ticked.
    for box in page.locator("input[name=events]").all():
        box.uncheck()
    add_channel(page, "quiet", "https://example.com/hook")
    expect(error).to_have_text("Tick at least one event for it to receive.")

    names = [c["name"] for c in api(server, "GET", "/api/v1/channels")["data"]]
    assert "bad" not in names and "bad/name" not in names and "quiet" not in names
    expect(page.get_by_test_id("secret-box")).to_be_hidden()


def test_remove_asks_first_and_shows_the_channel_greyed_at_the_end(
    server: Server, page: Page
) -> None:
    add_by_api(server, "old", "https://old.example.com/hook")
    add_by_api(server, "new", "https://new.example.com/hook")
    add_by_api(server, "team", f"slack://T1JJ3T3L2/A1BRTD4JD/{SLACK_TOKEN}/#general", "apprise")
    page.set_viewport_size(WIDE)
    page.goto(f"{server.url}/settings")
    team = channel_of(page, "team")
    expect(team).to_contain_text("Apprise")
    expect(team.get_by_test_id("channel-url")).not_to_contain_text(SLACK_TOKEN)

    old = channel_of(page, "old")
    old.get_by_test_id("remove").focus()
    page.keyboard.press("Enter")
    dialog = page.get_by_test_id("ask")
    expect(dialog).to_contain_text("Remove the channel “old”?")
    expect(page.get_by_test_id("ask-back")).to_be_focused()  # the safe choice
    page.screenshot(path=SHOT.format("remove_ask"))
    page.keyboard.press("Escape")
    expect(dialog).to_have_count(0)
    expect(old.get_by_test_id("remove")).to_be_focused()
    listed = api(server, "GET", "/api/v1/channels")["data"]
    assert [c["removed_at"] for c in listed if c["name"] == "old"] == [None]

    old.get_by_test_id("remove").click()
    page.get_by_test_id("ask-confirm").click()
    expect(old).to_have_class(re.compile(r"\bremoved\b"))
    expect(old).to_contain_text("removed")
    expect(old.get_by_test_id("remove")).to_have_count(0)
    names = page.get_by_test_id("channel").evaluate_all("els => els.map(e => e.dataset.name)")
    assert names[-1] == "old" and names.index("new") < names.index("old")
    removed = {c["name"]: c["removed_at"] for c in api(server, "GET", "/api/v1/channels")["data"]}
    assert removed["old"] is not None and removed["new"] is None
    # Its log can still be read: the filter offers it, marked.
    options = page.get_by_test_id("log-channel").locator("option")
    expect(options.filter(has_text="old (removed)")).to_have_count(1)
    page.screenshot(path=SHOT.format("removed"), full_page=True)
    page.set_viewport_size(NARROW)
    page.screenshot(path=SHOT.format("removed_narrow"), full_page=True)


def test_a_reviewer_is_told_it_needs_the_admin_role(
    server: Server, anonymous: BrowserContext
) -> None:
    page = anonymous.new_page()
    page.set_viewport_size(WIDE)
    open_sign_in_link(page, f"{server.url}/login/{login_link(server.db_url, 'rita')}?next=/reviews")
    expect(page.get_by_test_id("signed-in-as")).to_have_text("signed in as rita")
    expect(page.get_by_test_id("nav-settings")).to_have_count(0)

    answer = page.goto(f"{server.url}/settings")
    assert answer is not None and answer.status == 403
    expect(page.get_by_role("heading")).to_have_text("Settings need the admin role")
    expect(page.get_by_test_id("refused-why")).to_have_text(
        "rita may not manage notification channels: that needs the admin role."
    )
    expect(page.get_by_test_id("nav-settings")).to_have_count(0)
    expect(page.get_by_test_id("add-form")).to_have_count(0)
    page.screenshot(path=SHOT.format("reviewer"))
    # The API says the same to her session.
    status = page.evaluate("() => fetch('/api/v1/channels').then(r => r.status)")
    assert status == 403


def test_someone_not_signed_in_is_sent_to_sign_in_and_back(
    server: Server, anonymous: BrowserContext
) -> None:
    page = anonymous.new_page()
    page.goto(f"{server.url}/settings?status=failed")
    page.wait_for_url(re.compile(r"/login\?next=%2Fsettings%3Fstatus%3Dfailed$"))
    expect(page.get_by_test_id("nav-settings")).to_have_count(0)
    answer = httpx.get(f"{server.url}/api/v1/channels", timeout=10)
    assert answer.status_code == 401

    identity_call(server.db_url, lambda i: i.add_user("ada", ["admin"]))
    link = login_link(server.db_url, "ada")
    open_sign_in_link(page, f"{server.url}/login/{link}?next=/settings%3Fstatus%3Dfailed")
    page.wait_for_url(f"{server.url}/settings?status=failed")
    expect(page.get_by_test_id("nav-settings")).to_be_visible()
    expect(page.get_by_test_id("log-status")).to_have_value("failed")
    # A cookie session adds a channel from its own page (the CSRF check lets it through).
    add_channel(page, "ada's", "https://example.com/ada")
    expect(page.get_by_test_id("secret-box")).to_be_visible()
    expect(channel_of(page, "ada's")).to_contain_text("Added by ada")
