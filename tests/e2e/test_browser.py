"""The web pages in real headless Chromium against a real `hitl serve` process.

Every test drives the pages the way a reviewer would: typing, clicking, reloading, opening a
second tab, and living through a server crash. Assertions are Playwright's auto-waiting
`expect()`, so nothing here sleeps.

Tests share a server unless they crash or restart it or need settings of their own: starting
one costs seconds. The review queue's tests share one whose queue is emptied before each.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import BrowserContext, Page, Request, expect

from tests.conftest import Server
from tests.e2e.conftest import js_errors

pytestmark = pytest.mark.e2e

TASK_SCREENSHOT = Path("/tmp/hitl-task.png")
REVIEW_SCREENSHOT = Path("/tmp/hitl-review.png")
TASK_URL = re.compile(r"/tasks/(?P<id>[0-9a-f-]{8,})$")

StartServer = Callable[..., Server]


@pytest.fixture(scope="module")
def server(start_module_server: StartServer) -> Server:
    """The server of this module's tests that can share one."""
    return start_module_server(process_delay=0.2)


@pytest.fixture(scope="module")
def _queue_server(start_module_server: StartServer) -> Server:
    return start_module_server(process_delay=0.3)


@pytest.fixture
def queue_server(_queue_server: Server) -> Server:
    """A server with no open review, and none to come until the test submits work."""
    unfinished = ("queued", "running", "waiting_for_review")
    with httpx.Client(
        base_url=_queue_server.url, timeout=10, headers=_queue_server.headers
    ) as http:
        while True:
            ids = [
                task["id"]
                for status in unfinished
                for task in http.get("/api/v1/tasks", params={"status": status}).json()["data"]
            ]
            if not ids:
                return _queue_server
            for task_id in ids:
                response = http.post(f"/api/v1/tasks/{task_id}/cancel")
                assert response.status_code in (200, 409), response.text  # 409: it finished


# --- helpers -------------------------------------------------------------------------------


def api_task(server: Server, task_id: str) -> dict[str, Any]:
    response = httpx.get(f"{server.url}/api/v1/tasks/{task_id}", timeout=10, headers=server.headers)
    response.raise_for_status()
    data: dict[str, Any] = response.json()
    return data


def submit_on_index(page: Page, server: Server, text: str) -> str:
    """Type `text` on the submit page and press Submit; returns the id of the task page."""
    page.goto(f"{server.url}/")
    page.get_by_test_id("input").fill(text)
    page.get_by_test_id("submit").click()
    page.wait_for_url(TASK_URL)
    match = TASK_URL.search(page.url)
    assert match is not None
    return match["id"]


def expect_waiting(page: Page, round_no: int) -> None:
    """The page shows the open review of round `round_no`."""
    expect(page.get_by_test_id("status")).to_have_text("waiting for review")
    expect(page.get_by_test_id("review-form")).to_be_visible()
    expect(page.locator("#review-round")).to_have_text(str(round_no))
    expect(page.get_by_test_id("round")).to_have_count(round_no)


def reject(page: Page, comment: str) -> None:
    page.get_by_test_id("comment").fill(comment)
    page.get_by_test_id("reject").click()


def mark_page(page: Page) -> None:
    """Leave a mark in the window: it survives only as long as the page is not reloaded."""
    page.evaluate("window.__e2e_mark = 'still the same page'")


def expect_not_reloaded(page: Page) -> None:
    assert page.evaluate("window.__e2e_mark") == "still the same page"


def decision_requests(page: Page) -> list[str]:
    """A list that fills with the URL of every request the page makes to decide a review."""
    seen: list[str] = []

    def on_request(request: Request) -> None:
        if "/decision" in request.url or "/feedback/" in request.url:
            seen.append(f"{request.method} {request.url}")

    page.on("request", on_request)
    return seen


def no_js_errors(page: Page) -> None:
    assert js_errors(page) == []


# --- 1. the whole review loop, live -----------------------------------------------------------


def test_submit_reject_with_comment_then_approve_live(
    start_server: StartServer, page: Page, tmp_path: Path
) -> None:
    # The default flow, its processor held until the page has shown the task queued or
    # running (a timer lost that race on a busy machine): the review then arrives live.
    gate = tmp_path / "gate"
    gate.mkdir()
    flow = "feedback=tests.unit.service.flows_for_tests:create_gated_flow"
    server = start_server(flows=json.dumps([flow]), test_gate=gate)
    task_id = submit_on_index(page, server, "the quick brown fox jumps over the lazy dog")
    mark_page(page)

    status = page.get_by_test_id("status")
    expect(status).to_have_text(re.compile(r"^(queued|running)$"))
    expect(page.get_by_test_id("live")).to_have_text("● live")
    expect(page.get_by_test_id("input")).to_have_text("the quick brown fox jumps over the lazy dog")
    for revision in ("1", "2"):
        (gate / revision).touch()

    # Round 1 arrives by itself: no reload.
    expect_waiting(page, 1)
    first = page.get_by_test_id("round").nth(0)
    expect(first.get_by_test_id("round-output")).to_have_text(
        "Revision 1: The quick brown fox jumps over the lazy dog"
    )
    expect(page.get_by_test_id("edit")).to_have_value(
        "Revision 1: The quick brown fox jumps over the lazy dog"
    )
    expect(first.get_by_test_id("round-diff")).to_have_count(0)
    expect_not_reloaded(page)

    comment = "mention that the dog was asleep"
    reject(page, comment)

    # The decision shows on round 1, and round 2 comes back with the comment addressed.
    expect(page.get_by_test_id("round")).to_have_count(2)
    decision = first.get_by_test_id("round-decision")
    expect(decision).to_contain_text("Rejected")
    expect(decision).to_contain_text(comment)
    expect_waiting(page, 2)
    second = page.get_by_test_id("round").nth(1)
    output = second.get_by_test_id("round-output")
    expect(output).to_contain_text("Revision 2: The quick brown fox")
    expect(output).to_contain_text(comment)
    expect(page.get_by_test_id("comment")).to_have_value("")  # a fresh form for the new round

    # The diff against round 1: the revision number changed, the comment was added.
    diff = second.get_by_test_id("round-diff")
    expect(diff).to_be_visible()
    expect(diff.locator("del").first).to_be_visible()
    expect(diff.locator("ins").first).to_be_visible()
    expect(diff.locator("del")).to_contain_text(["1:"])
    assert comment in " ".join(diff.locator("ins").all_inner_texts())
    expect(second.locator(".decision")).to_have_text("waiting for a decision")
    expect_not_reloaded(page)

    page.screenshot(path=str(REVIEW_SCREENSHOT), full_page=True)

    page.get_by_test_id("approve").click()
    expect(status).to_have_text("completed")
    expect(page.get_by_test_id("review-form")).to_be_hidden()
    expect(page.get_by_test_id("result-card")).to_be_visible()
    result = page.get_by_test_id("result")
    expect(result).to_contain_text("Revision 2: The quick brown fox")
    expect(result).to_contain_text(comment)
    expect(second.get_by_test_id("round-decision")).to_contain_text("Approved")
    expect(page.get_by_test_id("live")).to_have_text("finished")
    expect(page.get_by_test_id("timeline")).to_contain_text("task.completed")
    expect_not_reloaded(page)
    no_js_errors(page)

    page.screenshot(path=str(TASK_SCREENSHOT), full_page=True)
    task = api_task(server, task_id)
    assert task["status"] == "completed"
    assert comment in task["result"]


# --- 2. reload and a second tab -------------------------------------------------------------


def test_reload_mid_review_and_second_tab_follow_live(
    server: Server, context: BrowserContext, page: Page
) -> None:
    task_id = submit_on_index(page, server, "draft the release notes")
    expect_waiting(page, 1)
    reject(page, "add the date")
    expect_waiting(page, 2)

    page.reload()
    # The same history is rebuilt from the event stream.
    expect_waiting(page, 2)
    rounds = page.get_by_test_id("round")
    expect(rounds.nth(0).get_by_test_id("round-decision")).to_contain_text("Rejected")
    expect(rounds.nth(0).get_by_test_id("round-decision")).to_contain_text("add the date")
    expect(rounds.nth(1).get_by_test_id("round-output")).to_contain_text("add the date")
    expect(rounds.nth(1).get_by_test_id("round-diff").locator("ins").first).to_be_visible()
    expect(rounds.nth(1).locator(".decision")).to_have_text("waiting for a decision")

    # A second tab on the same task shows the same page…
    other = context.new_page()
    other.goto(f"{server.url}/tasks/{task_id}")
    expect_waiting(other, 2)
    expect(other.get_by_test_id("round").nth(0).get_by_test_id("round-decision")).to_contain_text(
        "add the date"
    )
    expect(other.get_by_test_id("live")).to_have_text("● live")

    # …and follows a decision made in the first tab.
    page.get_by_test_id("approve").click()
    expect(page.get_by_test_id("status")).to_have_text("completed")
    expect(other.get_by_test_id("status")).to_have_text("completed")
    expect(other.get_by_test_id("review-form")).to_be_hidden()
    expect(other.get_by_test_id("result")).to_contain_text("Revision 2: Draft the release notes")
    expect(other.get_by_test_id("round").nth(1).get_by_test_id("round-decision")).to_contain_text(
        "Approved"
    )
    assert api_task(server, task_id)["status"] == "completed"
    no_js_errors(page)
    other.close()


# --- 3. a server crash while the task waits --------------------------------------------------


def test_page_survives_server_restart_while_waiting(start_server: StartServer, page: Page) -> None:
    server = start_server(process_delay=0.2)
    task_id = submit_on_index(page, server, "survive a crash")
    expect_waiting(page, 1)
    expect(page.get_by_test_id("live")).to_have_text("● live")
    mark_page(page)

    server.kill9()
    # The stream broke: the page says so, and keeps what it had.
    expect(page.get_by_test_id("live")).to_have_text("reconnecting…")
    expect_waiting(page, 1)
    # Approving now fails visibly, and leaves the form there to try again.
    page.get_by_test_id("approve").click()
    expect(page.get_by_test_id("review-error")).not_to_be_empty()
    expect(page.get_by_test_id("approve")).to_be_enabled()
    expect_waiting(page, 1)

    server.start()  # the same port and database: together with kill9(), server.restart()
    # EventSource reconnects by itself (retry: 1000, Last-Event-ID): no reload, no duplicates.
    expect(page.get_by_test_id("live")).to_have_text("● live")
    expect_waiting(page, 1)
    expect(page.get_by_test_id("round")).to_have_count(1)
    expect_not_reloaded(page)

    page.get_by_test_id("approve").click()
    expect(page.get_by_test_id("status")).to_have_text("completed")
    expect(page.get_by_test_id("result")).to_have_text("Revision 1: Survive a crash")
    expect(page.get_by_test_id("round")).to_have_count(1)
    expect_not_reloaded(page)
    assert api_task(server, task_id)["status"] == "completed"

    # After the crash, a reload shows the whole history once.
    page.reload()
    expect(page.get_by_test_id("status")).to_have_text("completed")
    expect(page.get_by_test_id("round")).to_have_count(1)
    expect(page.get_by_test_id("timeline").locator("li.ev.review-requested")).to_have_count(1)
    no_js_errors(page)


def test_restart_then_reload_and_approve(start_server: StartServer, page: Page) -> None:
    server = start_server(process_delay=0.2)
    task_id = submit_on_index(page, server, "reload after a crash")
    expect_waiting(page, 1)
    server.restart()
    page.reload()
    expect_waiting(page, 1)
    expect(page.get_by_test_id("live")).to_have_text("● live")
    page.get_by_test_id("approve").click()
    expect(page.get_by_test_id("status")).to_have_text("completed")
    assert api_task(server, task_id)["status"] == "completed"


# --- 4. the review queue --------------------------------------------------------------------


def test_review_queue_updates_live(
    queue_server: Server, context: BrowserContext, page: Page
) -> None:
    server = queue_server
    # Wait until the queue's event stream is open, so it hears everything that follows.
    with page.expect_response(lambda r: r.url.endswith("/api/v1/events")):
        page.goto(f"{server.url}/reviews")
    mark_page(page)
    expect(page.get_by_test_id("queue-empty")).to_be_visible()
    expect(page.locator(".queue-item")).to_have_count(0)
    expect(page.get_by_test_id("queue-count")).to_have_text("")

    # Someone submits work in another tab: the review shows up in the queue by itself.
    author = context.new_page()
    task_id = submit_on_index(author, server, "queue me")
    item = page.locator(f".queue-item[data-task-id='{task_id}']")
    expect(item).to_be_visible()
    # A short id is the end of the task's id: ids made close in time share their start.
    expect(item.get_by_test_id("short-id")).to_have_text(task_id[-8:])
    expect(item.get_by_test_id("queue-round")).to_have_text("round 1")
    expect(item.get_by_test_id("queue-output")).to_have_text("Revision 1: Queue me")
    expect(page.get_by_test_id("queue-empty")).to_be_hidden()
    expect(page.get_by_test_id("queue-count")).to_have_text("1")
    expect(item.get_by_role("link")).to_have_attribute("href", f"/tasks/{task_id}")

    # It is approved on the task page: it leaves the queue by itself.
    expect_waiting(author, 1)
    author.get_by_test_id("approve").click()
    expect(author.get_by_test_id("status")).to_have_text("completed")
    expect(item).to_have_count(0)
    expect(page.get_by_test_id("queue-empty")).to_be_visible()
    expect(page.get_by_test_id("queue-count")).to_have_text("")
    expect_not_reloaded(page)
    no_js_errors(page)
    author.close()

    # A fresh load agrees: nothing is open.
    page.reload()
    expect(page.get_by_test_id("queue-empty")).to_be_visible()


def test_review_queue_drops_an_approved_review_live(queue_server: Server, page: Page) -> None:
    server = queue_server
    with page.expect_response(lambda r: r.url.endswith("/api/v1/events")):
        page.goto(f"{server.url}/reviews")
    mark_page(page)
    ids = []
    for text in ("first", "second"):
        response = httpx.post(
            f"{server.url}/api/v1/tasks",
            json={"input": text},
            timeout=10,
            headers=server.headers,
        )
        response.raise_for_status()
        ids.append(response.json()["id"])
    items = page.locator(".queue-item")
    expect(items).to_have_count(2)
    expect(page.get_by_test_id("queue-count")).to_have_text("2")

    review_id = page.locator(f".queue-item[data-task-id='{ids[0]}']").get_attribute(
        "data-review-id"
    )
    response = httpx.post(
        f"{server.url}/api/v1/reviews/{review_id}/decision",
        json={"decision": "approve"},
        timeout=10,
        headers=server.headers,
    )
    response.raise_for_status()
    expect(items).to_have_count(1)
    expect(page.locator(f".queue-item[data-task-id='{ids[1]}']")).to_be_visible()
    expect(page.get_by_test_id("queue-count")).to_have_text("1")
    expect(page.get_by_test_id("queue-empty")).to_be_hidden()
    expect_not_reloaded(page)
    no_js_errors(page)


# --- 5. the cookbook-API-only page -------------------------------------------------------------


def test_classic_page_submit_and_approve(server: Server, page: Page) -> None:
    page.goto(f"{server.url}/classic")
    expect(page.locator("#taskStatus")).to_have_text("idle")
    page.locator("#taskInput").fill("classic cookbook flow")
    page.locator("#submitBtn").click()

    expect(page.locator("#taskId")).not_to_be_empty()
    expect(page.locator("#taskStatus")).to_have_text("waiting_for_review")
    expect(page.locator("#outputToReview")).to_have_text("Revision 1: Classic cookbook flow")
    expect(page.locator("#approveBtn")).to_be_visible()
    expect(page.locator("#finalResult")).to_be_hidden()

    page.locator("#approveBtn").click()
    expect(page.locator("#taskStatus")).to_have_text("completed")
    expect(page.locator("#finalResult")).to_be_visible()
    expect(page.locator("#finalResult")).to_have_text("Revision 1: Classic cookbook flow")
    expect(page.locator("#approveBtn")).to_be_hidden()
    expect(page.locator("#log")).to_contain_text("stream_closed")
    task_id = page.locator("#taskId").inner_text()
    assert api_task(server, task_id)["status"] == "completed"
    no_js_errors(page)


def test_classic_page_reject_then_approve(server: Server, page: Page) -> None:
    page.goto(f"{server.url}/classic")
    page.locator("#taskInput").fill("classic rejection")
    page.locator("#submitBtn").click()
    expect(page.locator("#taskStatus")).to_have_text("waiting_for_review")
    expect(page.locator("#outputToReview")).to_have_text("Revision 1: Classic rejection")
    page.locator("#rejectBtn").click()
    expect(page.locator("#outputToReview")).to_have_text("Revision 2: Classic rejection")
    expect(page.locator("#taskStatus")).to_have_text("waiting_for_review")
    page.locator("#approveBtn").click()
    expect(page.locator("#taskStatus")).to_have_text("completed")
    expect(page.locator("#finalResult")).to_have_text("Revision 2: Classic rejection")
    task_id = page.locator("#taskId").inner_text()
    assert api_task(server, task_id)["round"] == 2
    no_js_errors(page)


# --- 6. rejecting needs a comment ------------------------------------------------------------


def test_reject_without_comment_explains_and_sends_nothing(server: Server, page: Page) -> None:
    task_id = submit_on_index(page, server, "needs a comment")
    expect_waiting(page, 1)
    sent = decision_requests(page)

    error = page.get_by_test_id("review-error")
    expect(error).to_be_empty()
    page.get_by_test_id("reject").click()
    expect(error).to_have_text("Write a comment so the next revision knows what to change.")
    expect(page.get_by_test_id("comment")).to_be_focused()

    # Only spaces is no comment either.
    page.get_by_test_id("comment").fill("   ")
    page.get_by_test_id("reject").click()
    expect(error).to_contain_text("Write a comment")

    expect_waiting(page, 1)
    expect(page.get_by_test_id("round").nth(0).locator(".decision")).to_have_text(
        "waiting for a decision"
    )
    assert sent == []
    task = api_task(server, task_id)
    assert task["status"] == "waiting_for_review"
    assert [r["status"] for r in task["reviews"]] == ["open"]

    # With a comment, the rejection goes through and the message goes away.
    reject(page, "be more specific")
    expect_waiting(page, 2)
    expect(error).to_be_empty()
    assert len(sent) == 1 and sent[0].startswith("POST ")
    no_js_errors(page)


# --- edits and unknown tasks ------------------------------------------------------------------


def test_edit_the_output_and_approve_the_edit(server: Server, page: Page) -> None:
    task_id = submit_on_index(page, server, "fix my typo")
    expect_waiting(page, 1)
    edit = page.get_by_test_id("edit")
    expect(page.get_by_test_id("approve-edited")).to_be_hidden()
    edit.fill("Revision 1: Fix my typo, edited by hand")
    expect(page.get_by_test_id("approve-edited")).to_be_visible()
    edit.fill("Revision 1: Fix my typo")  # back to the original: nothing to approve as an edit
    expect(page.get_by_test_id("approve-edited")).to_be_hidden()
    edit.fill("Revision 1: Fix my typo, edited by hand")
    page.get_by_test_id("approve-edited").click()

    expect(page.get_by_test_id("status")).to_have_text("completed")
    expect(page.get_by_test_id("result")).to_have_text("Revision 1: Fix my typo, edited by hand")
    first = page.get_by_test_id("round").nth(0)
    expect(first.get_by_test_id("round-decision")).to_contain_text("Edited and approved")
    expect(first.locator("pre.edited")).to_have_text("Revision 1: Fix my typo, edited by hand")
    assert api_task(server, task_id)["result"] == "Revision 1: Fix my typo, edited by hand"
    no_js_errors(page)


def test_unknown_task_page_says_so(server: Server, page: Page) -> None:
    response = page.goto(f"{server.url}/tasks/00000000-0000-0000-0000-000000000000")
    assert response is not None and response.status == 404
    expect(page.get_by_text("No such task.")).to_be_visible()
    expect(page.get_by_test_id("review-form")).to_have_count(0)
    no_js_errors(page)


def test_the_submit_page_keeps_to_a_phone_s_width(server: Server, page: Page) -> None:
    """On a phone (390 px), the recent tasks' table stays within its card: the page does not
    scroll sideways, each task still shows its id, input and status, and the page asks for no
    icon it does not have."""
    answers: list[str] = []
    page.on("response", lambda r: answers.append(f"{r.status} {r.url}"))
    for words in ("a note on durable queues and what they cost", "the quarterly letter"):
        httpx.post(
            f"{server.url}/api/v1/tasks", json={"input": words}, headers=server.headers
        ).raise_for_status()
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{server.url}/")
    rows = page.get_by_test_id("task-rows").locator("tr")
    expect(rows.filter(has_text="the quarterly letter").locator(".badge")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    # Measured in one go in the page: the list is drawn again as its tasks move on, and a row
    # looked up, then measured, may be gone in between.
    badges_fit = """() => {
        const card = document.querySelector("table.tasks").closest("section");
        const right = card.getBoundingClientRect().right;
        const badges = [...document.querySelectorAll("#task-rows .badge")];
        return badges.length > 0 && badges.every(b => b.getBoundingClientRect().right <= right);
    }"""
    assert page.evaluate(badges_fit)
    page.screenshot(path="/tmp/hitl-phone.png", full_page=True)
    assert not [a for a in answers if a.startswith("404 ")], answers
    no_js_errors(page)


def test_review_deadline_is_shown_and_fires(
    start_server: StartServer, context: BrowserContext, page: Page
) -> None:
    server = start_server(review_deadline_seconds=4, on_deadline="approve", poll_interval=0.2)
    # The queue listens before the task exists, so both pages show the review while it is
    # open, however long a page takes to load on a busy machine.
    queue = context.new_page()
    with queue.expect_response(lambda r: r.url.endswith("/api/v1/events")):
        queue.goto(f"{server.url}/reviews")
    task_id = submit_on_index(page, server, "nobody looks")
    expect_waiting(page, 1)
    expect(page.get_by_test_id("review-deadline")).to_contain_text(
        "Decided “approve” automatically at"
    )
    expect(queue.get_by_test_id("queue-deadline")).to_contain_text("“approve” automatically")
    # Nobody decides: the deadline approves, live, on the open page.
    expect(page.get_by_test_id("status")).to_have_text("completed")
    expect(page.get_by_test_id("round-decision")).to_contain_text("by deadline")
    task = api_task(server, task_id)
    assert task["reviews"][0]["decided_by"] == "deadline"
    assert task["result"] == task["reviews"][0]["output"]
    # …and the queue lets it go by itself.
    expect(queue.locator(f".queue-item[data-task-id='{task_id}']")).to_have_count(0)
    no_js_errors(page)
    queue.close()


def test_a_retried_task_is_followed_past_its_failure(start_server: StartServer, page: Page) -> None:
    server = start_server(review_deadline_seconds=6, poll_interval=0.2)
    task_id = submit_on_index(page, server, "nobody looks, then someone retries")
    expect_waiting(page, 1)
    # Nobody decides: the deadline fails the task, live, and the page is finished with it.
    expect(page.get_by_test_id("status")).to_have_text("failed")
    expect(page.locator("#live")).to_have_text("finished")
    retried = httpx.post(
        f"{server.url}/api/v1/tasks/{task_id}/retry", timeout=10, headers=server.headers
    )
    assert retried.status_code == 200, retried.text
    # The replayed failure is history: the page follows the task into its second round.
    page.reload()
    expect_waiting(page, 2)
    expect(page.locator("#live")).to_have_text("● live")
    expect(page.get_by_test_id("round").first).to_contain_text("no decision by its deadline")
    expect(page.locator("#result-card")).to_be_hidden()
    no_js_errors(page)
