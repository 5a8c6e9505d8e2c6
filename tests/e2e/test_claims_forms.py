"""Claims, forms and read-only reviews in real headless Chromium against a real `hitl serve`:
two reviewers on one review (one holds it, the other sees who and takes it over), a typed form
whose bad value the server refuses (and the page says so, by the form), and a review assigned
to someone else that is read-only and left out of the queue.

Whether a person may decide is the server's word (`may_decide`); the pages keep no rules.
Assertions are Playwright's auto-waiting `expect()`; nothing sleeps. Screenshots go to
/tmp/hitl-*.png.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.conftest import Server, identity_call
from tests.e2e.conftest import (
    People,
    cancel_unfinished,
    js_errors,
)
from tests.e2e.test_reviewer import api, new_task, open_review, wait_task

pytestmark = pytest.mark.e2e

StartServer = Callable[..., Server]
SHOT = "/tmp/hitl-{}.png"
FLOWS = [
    "--flow",
    "careful=tests.unit.service.flows_for_tests:create_careful_flow",
    "--flow",
    "ritas=tests.unit.service.flows_for_tests:create_ritas_flow",
]
REVIEWERS = ("ann", "bob", "sam")


@pytest.fixture(scope="module")
def _server(start_module_server: StartServer) -> Server:
    server = start_module_server(process_delay=0.05, args=FLOWS)
    for name in REVIEWERS:
        identity_call(server.db_url, lambda i, name=name: i.add_user(name, ["reviewer"]))
    return server


@pytest.fixture
def server(_server: Server) -> Server:
    """This module's server, with no open review until the test submits."""
    cancel_unfinished(_server)
    return _server


def review_now(server: Server, review_id: str) -> dict[str, Any]:
    review: dict[str, Any] = api(server, "GET", f"/api/v1/reviews/{review_id}")
    return review


# --- two reviewers, one review -------------------------------------------------------------------


def test_a_claim_is_seen_live_and_taken_over(server: Server, people: People) -> None:
    task_id = new_task(server, "one review, two reviewers")
    review = open_review(server, task_id)
    ann, bob = people("ann"), people("bob")

    # Bob's queue lists it, claimed by nobody yet.
    bob.goto(f"{server.url}/reviews")
    row = bob.locator(f".queue-item[data-task-id='{task_id}']")
    expect(row).to_be_visible()
    expect(row.get_by_test_id("queue-claim")).to_be_hidden()

    # Ann opens it: her page claims it, and Bob's queue says so without a reload.
    with ann.expect_response(lambda r: r.url.endswith("/claim") and r.status == 200):
        ann.goto(f"{server.url}/tasks/{task_id}")
    expect(ann.get_by_test_id("review-controls")).to_be_visible()
    expect(ann.get_by_test_id("review-claim")).to_be_hidden()
    expect(ann.get_by_test_id("approve")).to_be_enabled()
    expect(row.get_by_test_id("queue-claim")).to_have_text("being reviewed by ann")
    assert review_now(server, review["id"])["claimed_by"] == "ann"
    bob.screenshot(path=SHOT.format("queue-claimed"), full_page=True)
    ann.get_by_test_id("comment").fill("ann's half thought")

    # Bob opens it too: it is Ann's, so his buttons are off and he is offered to take over.
    row.get_by_role("link").click()
    bob.wait_for_url(f"{server.url}/tasks/{task_id}")
    claim = bob.get_by_test_id("review-claim")
    expect(claim).to_be_visible()
    expect(bob.get_by_test_id("review-claim-text")).to_contain_text("Being reviewed by ann")
    for button in ("approve", "reject"):
        expect(bob.get_by_test_id(button)).to_be_disabled()
    bob.screenshot(path=SHOT.format("claimed"), full_page=True)

    # Taking over asks first, in the page; going back changes nothing.
    bob.get_by_test_id("take-over").click()
    expect(bob.get_by_test_id("ask")).to_contain_text("Take over this review?")
    bob.get_by_test_id("ask-back").click()
    expect(bob.get_by_test_id("ask")).to_have_count(0)
    assert review_now(server, review["id"])["claimed_by"] == "ann"
    bob.get_by_test_id("take-over").click()
    with bob.expect_response(lambda r: r.url.endswith("/claim") and r.status == 200) as taken:
        bob.get_by_test_id("ask-confirm").click()
    assert json.loads(taken.value.request.post_data or "") == {"take_over": True}
    expect(claim).to_be_hidden()
    expect(bob.get_by_test_id("approve")).to_be_enabled()

    # Ann's page hears of it: a notice, her buttons off, her comment still there.
    expect(ann.get_by_test_id("review-claim-text")).to_have_text(
        re.compile(r"^bob took over this review\.")
    )
    expect(ann.get_by_test_id("review-claim")).to_have_class(re.compile(r"\btaken\b"))
    expect(ann.get_by_test_id("take-over")).to_have_text("Take it back…")
    for button in ("approve", "reject"):
        expect(ann.get_by_test_id(button)).to_be_disabled()
    expect(ann.get_by_test_id("comment")).to_have_value("ann's half thought")
    ann.screenshot(path=SHOT.format("taken-over"), full_page=True)

    # Bob decides; Ann's draft is kept, and says who decided.
    bob.get_by_test_id("approve").click()
    expect(bob.get_by_test_id("status")).to_have_text("completed")
    decided = wait_task(server, task_id, "completed")["reviews"][0]
    assert (decided["decision"], decided["decided_by"]) == ("approve", "bob")
    expect(ann.get_by_test_id("draft-kept-why")).to_contain_text("bob approved this review")
    expect(ann.get_by_test_id("kept-comment")).to_have_text("ann's half thought")
    assert ann.errors == [] and bob.errors == []  # type: ignore[attr-defined]


def test_leaving_the_page_gives_the_claim_up(server: Server, people: People) -> None:
    task_id = new_task(server, "look and leave")
    review = open_review(server, task_id)
    ann, bob = people("ann"), people("bob")
    bob.goto(f"{server.url}/reviews")
    row = bob.locator(f".queue-item[data-task-id='{task_id}']")
    with ann.expect_response(lambda r: r.url.endswith("/claim") and r.status == 200):
        ann.goto(f"{server.url}/tasks/{task_id}")
    expect(row.get_by_test_id("queue-claim")).to_have_text("being reviewed by ann")
    ann.goto(f"{server.url}/reviews")  # pagehide: the claim is given up
    expect(row.get_by_test_id("queue-claim")).to_be_hidden()
    assert review_now(server, review["id"])["claimed_by"] is None
    assert ann.errors == [] and bob.errors == []  # type: ignore[attr-defined]


# --- a typed form --------------------------------------------------------------------------------


def test_a_form_value_the_server_refuses_is_shown_by_the_form(server: Server, page: Page) -> None:
    task_id = new_task(server, "the essay", flow="careful")
    review = open_review(server, task_id)
    page.goto(f"{server.url}/tasks/{task_id}")
    fields = page.get_by_test_id("review-fields")
    expect(fields).to_be_visible()
    score = page.get_by_test_id("field-score")
    expect(score).to_have_attribute("type", "number")
    expect(score).to_have_attribute("min", "1")
    expect(score).to_have_attribute("max", "5")
    expect(score).to_have_attribute("step", "1")
    expect(score).to_have_attribute("aria-required", "true")
    expect(fields.locator("[data-field=score]")).to_contain_text("required")
    expect(page.get_by_test_id("field-note")).to_have_attribute("maxlength", "20")
    reason = page.get_by_test_id("field-reason")
    expect(reason.locator("option")).to_have_text(["—", "tone", "facts"])

    # Approve shows approve's fields only (the reason is for a rejection).
    score.fill("9")
    with page.expect_request(lambda r: r.url.endswith("/decision")) as sent:
        page.get_by_test_id("approve").click()
    assert json.loads(sent.value.post_data or "")["form"] == {"score": 9}
    error = page.get_by_test_id("form-error")
    expect(error).to_contain_text("form.score")
    expect(error).to_contain_text("at most 5")
    expect(score).to_have_value("9")  # what was typed stays
    expect(score).to_have_attribute("aria-invalid", "true")
    expect(score).to_be_focused()
    expect(reason).to_be_hidden()
    expect(page.get_by_test_id("review-error")).to_have_text("")
    page.screenshot(path=SHOT.format("form-error"), full_page=True)

    score.fill("4")
    with page.expect_request(lambda r: r.url.endswith("/decision")) as sent:
        page.get_by_test_id("approve").click()
    assert json.loads(sent.value.post_data or "")["form"] == {"score": 4}  # empty note: left out
    expect(page.get_by_test_id("status")).to_have_text("completed")
    assert review_now(server, review["id"])["form_values"] == {"score": 4}
    assert wait_task(server, task_id, "completed")["result"]["form"] == {"score": 4}
    assert js_errors(page) == []


# --- a review assigned to someone else ---------------------------------------------------------


def test_a_review_assigned_to_someone_else_is_read_only(server: Server, people: People) -> None:
    ritas = new_task(server, "for rita's eyes", flow="ritas")
    anyones = new_task(server, "for anyone")
    ritas_review = open_review(server, ritas)
    open_review(server, anyones)
    sam = people("sam")

    # The queue lists only what sam may decide, and says that one more is left out.
    sam.goto(f"{server.url}/reviews")
    expect(sam.locator(f".queue-item[data-task-id='{anyones}']")).to_be_visible()
    expect(sam.locator(".queue-item")).to_have_count(1)
    expect(sam.get_by_test_id("queue-hidden")).to_contain_text("1 more is not shown")

    # Its page shows the review, read-only, and says why; nothing claims it.
    claims: list[str] = []
    sam.on("request", lambda r: claims.append(r.url) if r.url.endswith("/claim") else None)
    sam.goto(f"{server.url}/tasks/{ritas}")
    expect(sam.get_by_test_id("review-form")).to_be_visible()
    readonly = sam.get_by_test_id("review-readonly")
    expect(readonly).to_have_text(
        "Read only: this review is assigned to rita. You may read it but not decide it."
    )
    expect(sam.get_by_test_id("review-controls")).to_be_hidden()
    expect(sam.get_by_test_id("edit")).to_have_value("for rita's eyes")
    expect(sam.get_by_test_id("edit")).not_to_be_editable()
    expect(sam.get_by_test_id("live")).to_have_text("● live")
    sam.keyboard.press("a")
    expect(sam.get_by_test_id("choice")).to_have_text("")
    sam.screenshot(path=SHOT.format("read-only"), full_page=True)
    assert claims == []
    assert review_now(server, ritas_review["id"])["claimed_by"] is None
    assert sam.errors == []  # type: ignore[attr-defined]
