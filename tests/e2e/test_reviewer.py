"""The reviewer's day, in real headless Chromium against a real `hitl serve`: a queue cleared
from the keyboard, the edit trap, drafts that outlive a reload and someone else's decision, a
stale decision (409) said plainly, a cancel that asks first, and pages for tasks that do not
exist.

Assertions are Playwright's auto-waiting `expect()`; nothing sleeps. Screenshots of the pages
go to /tmp/hitl-*.png.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from playwright.sync_api import Dialog, Page, Request, Route, expect

from tests.conftest import Server, user_token
from tests.e2e.conftest import cancel_unfinished, js_errors

pytestmark = pytest.mark.e2e

StartServer = Callable[..., Server]
SHOT = "/tmp/hitl-{}.png"
UNKNOWN = "ffffffff-ffff-7fff-bfff-ffffffffffff"
TASK_PATH = re.compile(r"/tasks/(?P<id>[0-9a-f-]{36})$")
REVIEWER = "rita"
TAKE_OVER = {"take_over": True}


@pytest.fixture(scope="module")
def _server(start_module_server: StartServer) -> Server:
    return start_module_server(process_delay=0.05)


@pytest.fixture(scope="module")
def rita(_server: Server) -> str:
    """A token of another reviewer, who decides behind the page's back."""
    return user_token(_server.db_url, REVIEWER, "reviewer")


@pytest.fixture
def server(_server: Server) -> Server:
    """This module's server, with no open review and none to come until the test submits."""
    cancel_unfinished(_server)
    return _server


# --- helpers -----------------------------------------------------------------------------------


def api(server: Server, method: str, path: str, token: str | None = None, **kw: Any) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else server.headers
    response = httpx.request(method, f"{server.url}{path}", headers=headers, timeout=10, **kw)
    response.raise_for_status()
    return response.json()


def new_task(server: Server, text: str, flow: str | None = None, token: str | None = None) -> str:
    """Submit `text` (to `flow`, as the owner of `token`: by default the admin); its id."""
    body: dict[str, Any] = {"input": text}
    if flow:
        body["flow"] = flow
    return str(api(server, "POST", "/api/v1/tasks", token, json=body)["id"])


def wait_task(server: Server, task_id: str, *statuses: str) -> dict[str, Any]:
    """The task, once its status is one of `statuses` (the API has no long poll for this)."""
    deadline = time.monotonic() + 30
    while True:
        task: dict[str, Any] = api(server, "GET", f"/api/v1/tasks/{task_id}")
        if task["status"] in statuses:
            return task
        assert time.monotonic() < deadline, f"task {task_id} is {task['status']}, not {statuses}"
        time.sleep(0.05)


def open_review(server: Server, task_id: str) -> dict[str, Any]:
    task = wait_task(server, task_id, "waiting_for_review")
    review: dict[str, Any] = next(r for r in task["reviews"] if r["status"] == "open")
    return review


def open_task_page(page: Page, server: Server, task_id: str) -> None:
    page.goto(f"{server.url}/tasks/{task_id}")
    expect(page.get_by_test_id("review-form")).to_be_visible()
    expect(page.get_by_test_id("live")).to_have_text("● live")


def stored_drafts(page: Page) -> dict[str, Any]:
    drafts: dict[str, Any] = page.evaluate(
        """() => Object.fromEntries(Object.keys(localStorage)
              .filter(k => k.startsWith("hitl.draft."))
              .map(k => [k.slice(11), JSON.parse(localStorage.getItem(k))]))"""
    )
    return drafts


def frames_up_to_review(server: Server, task_id: str) -> str:
    """The task's event stream as SSE text, up to its first `review.requested`, with a retry
    of an hour: served to the page in place of the live stream, it shows the page an open
    review and then nothing more, as a page that has not heard of a decision yet."""
    lines = ["retry: 3600000", ""]
    url = f"{server.url}/api/v1/tasks/{task_id}/events"
    seen = False
    with httpx.stream("GET", url, headers=server.headers, timeout=10) as stream:
        for line in stream.iter_lines():
            if line.startswith("retry:"):
                continue
            lines.append(line)
            seen = seen or line == "event: review.requested"
            if seen and line == "":
                break
    return "\n".join(lines) + "\n"


def no_js_errors(page: Page) -> None:
    assert js_errors(page) == []


# --- the queue, from the keyboard -------------------------------------------------------------


def test_ten_reviews_cleared_from_the_keyboard(server: Server, page: Page) -> None:
    for n in range(10):
        new_task(server, f"keyboard item {n}")
    with page.expect_response(lambda r: r.url.endswith("/api/v1/events")):
        page.goto(f"{server.url}/reviews")
    items = page.locator(".queue-item")
    expect(items).to_have_count(10)
    expect(page.get_by_test_id("queue-total")).to_have_text("10 open")
    order = [li.get_attribute("data-task-id") for li in items.all()]
    assert len(set(order)) == 10

    # Each row: a short id from the END of the task id (ids made together share their start),
    # the round, the prompt, the output, how long it has waited.
    first = items.nth(0)
    assert order[0] is not None
    expect(first.get_by_test_id("short-id")).to_have_text(order[0][-8:])
    short_ids = [code.inner_text() for code in page.get_by_test_id("short-id").all()]
    assert len(set(short_ids)) == 10
    expect(first.get_by_test_id("queue-round")).to_have_text("round 1")
    expect(first.get_by_test_id("queue-output")).to_contain_text("Revision 1: Keyboard item")
    expect(first.get_by_test_id("queue-waited")).to_have_text(re.compile(r"^waiting \d+ s$"))
    expect(first.get_by_test_id("queue-prompt")).not_to_be_empty()
    oldest = api(server, "GET", "/api/v1/reviews", params={"limit": 1})["data"][0]
    assert oldest["task_id"] == order[0]
    if oldest.get("flow") is not None:  # a server that lists each review with its task's
        expect(first.get_by_test_id("queue-flow")).to_have_text(oldest["flow"])
        expect(first.get_by_test_id("queue-input")).to_have_text(oldest["input"])

    # j/k move the selection, and stop at the ends.
    expect(first).to_have_attribute("aria-selected", "true")
    page.keyboard.press("j")
    page.keyboard.press("j")
    expect(items.nth(2)).to_have_attribute("aria-selected", "true")
    expect(first).to_have_attribute("aria-selected", "false")
    page.keyboard.press("k")
    page.keyboard.press("k")
    page.keyboard.press("k")
    expect(first).to_have_attribute("aria-selected", "true")
    expect(page.locator(".queue-item.selected")).to_have_count(1)
    page.screenshot(path=SHOT.format("queue"), full_page=True)

    # Enter opens the selected review; a, Ctrl+Enter approve it; the next one opens by itself.
    page.keyboard.press("Enter")
    for task_id in order:
        page.wait_for_url(f"{server.url}/tasks/{task_id}")
        expect(page.get_by_test_id("review-form")).to_be_visible()
        page.keyboard.press("a")
        expect(page.get_by_test_id("choice")).to_have_text("Ctrl+Enter sends: Approve")
        expect(page.get_by_test_id("approve")).to_have_class(re.compile(r"\bchosen\b"))
        page.keyboard.press("Control+Enter")

    # The last one: the queue is empty, and its link has the focus.
    expect(page.get_by_test_id("queue-done")).to_be_visible()
    expect(page.get_by_test_id("queue-link")).to_be_focused()
    page.screenshot(path=SHOT.format("queue-done"), full_page=True)
    for task_id in order:
        assert task_id is not None
        task = wait_task(server, task_id, "completed")
        assert task["reviews"][0]["decision"] == "approve"
    page.keyboard.press("Enter")
    page.wait_for_url(f"{server.url}/reviews")
    expect(page.get_by_test_id("queue-empty")).to_be_visible()
    no_js_errors(page)


def test_help_overlay_lists_the_keys(server: Server, page: Page) -> None:
    for n in range(2):
        new_task(server, f"help item {n}")
    page.goto(f"{server.url}/reviews")
    items = page.locator(".queue-item")
    expect(items).to_have_count(2)
    help_box = page.get_by_test_id("help")
    expect(help_box).to_be_hidden()
    page.keyboard.press("?")
    expect(help_box).to_be_visible()
    for key in ("j", "k", "Enter", "?", "Esc"):
        expect(help_box.locator("dt", has_text=re.compile(f"^{re.escape(key)}$"))).to_have_count(1)
    page.screenshot(path=SHOT.format("queue-help"), full_page=False)
    page.keyboard.press("j")  # the help is open: the queue does not move under it
    expect(items.nth(0)).to_have_attribute("aria-selected", "true")
    page.keyboard.press("Escape")
    expect(help_box).to_be_hidden()
    page.keyboard.press("j")
    expect(items.nth(1)).to_have_attribute("aria-selected", "true")

    # The task page has its own.
    items.nth(1).get_by_role("link").click()
    page.wait_for_url(TASK_PATH)
    expect(page.get_by_test_id("review-form")).to_be_visible()
    page.keyboard.press("?")
    expect(page.get_by_test_id("help")).to_contain_text("send the chosen decision")
    page.keyboard.press("Escape")
    expect(page.get_by_test_id("help")).to_be_hidden()
    no_js_errors(page)


def test_queue_pages_past_the_first_fifty(server: Server, page: Page) -> None:
    ids = [new_task(server, f"paged item {n}") for n in range(53)]
    for task_id in ids:
        wait_task(server, task_id, "waiting_for_review")
    page.goto(f"{server.url}/reviews")
    items = page.locator(".queue-item")
    expect(items).to_have_count(50)
    expect(page.get_by_test_id("queue-total")).to_have_text("53 open, 50 shown")
    more = page.get_by_test_id("load-more")
    expect(more).to_have_text("Show 3 more")
    more.click()
    expect(items).to_have_count(53)
    expect(more).to_be_hidden()
    # The rows loaded stay loaded when the list refreshes live.
    api(server, "POST", f"/api/v1/tasks/{ids[0]}/cancel")
    expect(items).to_have_count(52)
    expect(page.get_by_test_id("queue-total")).to_have_text("52 open")
    no_js_errors(page)


# --- the review form ---------------------------------------------------------------------------


def test_edit_trap_and_approve_my_edit(server: Server, page: Page) -> None:
    task_id = new_task(server, "trap me")
    review = open_review(server, task_id)
    open_task_page(page, server, task_id)
    original = "Revision 1: Trap me"
    edit, approve = page.get_by_test_id("edit"), page.get_by_test_id("approve")
    approve_edit = page.get_by_test_id("approve-edited")
    expect(edit).to_have_value(original)
    expect(approve).to_be_enabled()
    expect(approve_edit).to_be_hidden()

    # Typing in the output turns plain Approve off, and shows the edit as a diff.
    edit.fill("Revision 1: Trap me gently")
    expect(approve).to_be_disabled()
    expect(approve_edit).to_be_visible()
    expect(page.get_by_test_id("edit-hint")).to_be_visible()
    diff = page.get_by_test_id("edit-diff")
    expect(diff).to_be_visible()
    expect(diff.locator("ins")).to_have_text(re.compile(r"gently"))
    # Putting the text back turns it on again.
    edit.fill(original)
    expect(approve).to_be_enabled()
    expect(approve_edit).to_be_hidden()
    expect(diff).to_be_hidden()

    edited = "Revision 1: Trap me, gently and by hand"
    edit.fill(edited)
    expect(approve).to_be_disabled()
    # Keys do nothing while typing ("a" typed into the text is text).
    edit.press("a")
    expect(edit).to_have_value(edited + "a")
    expect(page.get_by_test_id("choice")).to_have_text("")
    edit.press("Backspace")
    page.screenshot(path=SHOT.format("edit-trap"), full_page=True)
    with page.expect_request(lambda r: r.url.endswith("/decision")) as sent:
        approve_edit.click()
    assert json.loads(sent.value.post_data or "") == {
        "decision": "edit",
        "comment": None,
        "edited_output": edited,
        "round": 1,  # what was shown: a newer round, or other content, is refused (409)
        "content_hash": review["content_hash"],
    }
    expect(page.get_by_test_id("status")).to_have_text("completed")
    task = wait_task(server, task_id, "completed")
    assert task["result"] == edited
    assert task["reviews"][0]["decision"] == "edit"
    assert task["reviews"][0]["edited_output"] == edited
    assert stored_drafts(page) == {}  # sent: the draft is gone
    no_js_errors(page)


def test_keys_reject_and_edit_focus_their_boxes(server: Server, page: Page) -> None:
    task_id = new_task(server, "keys on the form")
    open_review(server, task_id)
    open_task_page(page, server, task_id)
    page.keyboard.press("e")
    expect(page.get_by_test_id("edit")).to_be_focused()
    expect(page.get_by_test_id("choice")).to_have_text("Ctrl+Enter sends: Approve my edit")
    page.keyboard.press("Escape")  # out of the text box: keys work again
    page.keyboard.press("r")
    comment = page.get_by_test_id("comment")
    expect(comment).to_be_focused()
    expect(page.get_by_test_id("choice")).to_have_text("Ctrl+Enter sends: Reject with comment")
    # Ctrl+Enter works while typing; a rejection without a comment is refused on the page.
    page.keyboard.press("Control+Enter")
    expect(page.get_by_test_id("review-error")).to_have_text(
        "Write a comment so the next revision knows what to change."
    )
    page.keyboard.type("say more")
    page.keyboard.press("Control+Enter")
    expect(page.locator("#review-round")).to_have_text("2")
    assert wait_task(server, task_id, "waiting_for_review")["reviews"][0]["comment"] == "say more"
    no_js_errors(page)


def test_drafts_survive_a_reload_and_someone_elses_decision(
    server: Server, rita: str, page: Page
) -> None:
    task_id = new_task(server, "draft me")
    review = open_review(server, task_id)
    open_task_page(page, server, task_id)
    page.get_by_test_id("comment").fill("half a thought")
    page.get_by_test_id("edit").fill("Revision 1: Draft me, half edited")
    expect(page.get_by_test_id("approve")).to_be_disabled()

    page.reload()
    expect(page.get_by_test_id("review-form")).to_be_visible()
    expect(page.get_by_test_id("draft-restored")).to_contain_text("Your unsent draft from")
    expect(page.get_by_test_id("comment")).to_have_value("half a thought")
    expect(page.get_by_test_id("edit")).to_have_value("Revision 1: Draft me, half edited")
    expect(page.get_by_test_id("approve")).to_be_disabled()  # the edit trap comes back too
    expect(page.get_by_test_id("edit-diff")).to_be_visible()
    expect(page.get_by_test_id("live")).to_have_text("● live")

    # Another reviewer takes the review over (the page holds its claim) and decides while the
    # page is open: the draft stays, and the page says who.
    claim = api(server, "POST", f"/api/v1/reviews/{review['id']}/claim", rita, json=TAKE_OVER)
    assert claim["claimed_by"] == REVIEWER
    expect(page.get_by_test_id("review-claim-text")).to_contain_text(
        f"{REVIEWER} took over this review."
    )
    expect(page.get_by_test_id("comment")).to_have_value("half a thought")
    decision = {"decision": "reject", "comment": "rita's own reason"}
    api(server, "POST", f"/api/v1/reviews/{review['id']}/decision", rita, json=decision)
    kept = page.get_by_test_id("draft-kept")
    expect(kept).to_be_visible()
    expect(page.get_by_test_id("draft-kept-why")).to_contain_text(
        f"{REVIEWER} rejected this review before you sent yours."
    )
    expect(page.get_by_test_id("kept-comment")).to_have_text("half a thought")
    expect(page.get_by_test_id("kept-edit")).to_have_text("Revision 1: Draft me, half edited")
    # Round 2 comes with a fresh form; the kept draft stays on show, and stored.
    expect(page.locator("#review-round")).to_have_text("2")
    expect(page.get_by_test_id("comment")).to_have_value("")
    expect(kept).to_be_visible()
    assert stored_drafts(page)[review["id"]]["comment"] == "half a thought"
    page.screenshot(path=SHOT.format("draft-kept"), full_page=True)
    page.get_by_test_id("draft-discard").click()
    expect(kept).to_be_hidden()
    assert review["id"] not in stored_drafts(page)
    no_js_errors(page)


def test_a_stale_decision_says_why_and_keeps_the_draft(
    server: Server, rita: str, page: Page
) -> None:
    task_id = new_task(server, "too late")
    review = open_review(server, task_id)
    # The page hears of the review, then of nothing more: as if the next events were late.
    stream = frames_up_to_review(server, task_id)
    events = re.compile(rf"/api/v1/tasks/{task_id}/events")

    def late(route: Route) -> None:
        route.fulfill(status=200, headers={"Content-Type": "text/event-stream"}, body=stream)

    page.route(events, late)
    with page.expect_response(lambda r: r.url.endswith("/claim")):
        page.goto(f"{server.url}/tasks/{task_id}")
    expect(page.get_by_test_id("review-form")).to_be_visible()
    page.get_by_test_id("comment").fill("my careful objection")

    approve = {"decision": "approve"}
    # The page holds the review's claim: rita takes it over, and decides.
    api(server, "POST", f"/api/v1/reviews/{review['id']}/claim", rita, json=TAKE_OVER)
    api(server, "POST", f"/api/v1/reviews/{review['id']}/decision", rita, json=approve)
    page.get_by_test_id("reject").click()
    error = page.get_by_test_id("review-error")
    expect(error).to_have_text("review round 1 is already decided (approve); nothing to decide")
    expect(page.get_by_test_id("review-stale")).to_be_visible()
    expect(page.get_by_test_id("comment")).to_have_value("my careful objection")
    assert stored_drafts(page)[review["id"]]["comment"] == "my careful objection"
    page.screenshot(path=SHOT.format("stale"), full_page=True)

    # Reloaded with the live stream: the decision shows, and so does the draft.
    page.unroute(events)
    page.get_by_test_id("reload").click()
    expect(page.get_by_test_id("status")).to_have_text("completed")
    expect(page.get_by_test_id("draft-kept-why")).to_contain_text(f"{REVIEWER} approved")
    expect(page.get_by_test_id("kept-comment")).to_have_text("my careful objection")
    no_js_errors(page)


@pytest.fixture(scope="module")
def sam(_server: Server) -> str:
    """A token of a submitter: a standalone review is decided by someone other than whoever
    asked for it."""
    return user_token(_server.db_url, "sam", "submitter")


def test_review_rules_from_the_review_object(server: Server, page: Page, sam: str) -> None:
    """A review's `comment_required` and `dangerous` ask for a comment and a confirmation on
    the page: which decisions need a comment is the API's `comment_asked` (those the review
    names, and a rejection), the one rule the CLI follows too."""
    rules = {"comment_required": ["approve"], "dangerous": ["reject"]}
    body = {"output": "handle with care", **rules}
    created = api(server, "POST", "/api/v1/reviews", sam, json=body)
    task_id = created["task_id"]
    review = open_review(server, task_id)
    assert review["comment_asked"] == ["approve", "reject"]

    sent: list[dict[str, Any]] = []

    def record(route: Route, request: Request) -> None:
        sent.append(json.loads(request.post_data or "{}"))
        route.fallback()  # on to the context's sign-in

    page.route(re.compile(r"/api/v1/reviews/[^/]+/decision$"), record)
    dialogs: list[Dialog] = []
    page.on("dialog", lambda dialog: dialogs.append(dialog))
    open_task_page(page, server, task_id)
    expect(page.get_by_text("Comment (required to approve or reject)")).to_be_visible()

    page.get_by_test_id("approve").click()
    expect(page.get_by_test_id("review-error")).to_have_text(
        "This review needs a comment to approve: say why."
    )
    page.get_by_test_id("comment").fill("checked twice")
    page.get_by_test_id("reject").click()
    ask = page.get_by_test_id("ask")
    expect(ask).to_be_visible()
    expect(ask).to_contain_text("Really reject?")
    page.screenshot(path=SHOT.format("dangerous"), full_page=False)
    page.keyboard.press("Escape")
    expect(ask).to_have_count(0)
    assert sent == []
    page.get_by_test_id("reject").click()
    page.get_by_test_id("ask-confirm").click()
    expected = {"decision": "reject", "comment": "checked twice", "round": 1}
    result = wait_task(server, task_id, "completed")["result"]
    assert result["decision"] == "reject" and result["comment"] == "checked twice"
    assert sent == [{**expected, "content_hash": review["content_hash"]}]
    assert dialogs == []  # no window.confirm
    no_js_errors(page)


def test_the_page_asks_a_comment_where_the_server_says_and_sends_nothing_blind(
    server: Server, page: Page
) -> None:
    """Which decisions need a comment is the review's `comment_asked`, as the API answers
    it; the page holds no rule of its own. Without it, nothing is sent."""
    task_id = new_task(server, "ask me why")
    review = open_review(server, task_id)
    assert review["comment_asked"] == ["reject"]
    said: dict[str, Any] = {}

    def answered(route: Route) -> None:  # the task's reviews as `said` has them
        signed = {**route.request.headers, "authorization": f"Bearer {server.token}"}
        task = route.fetch(headers=signed).json()
        for r in task["reviews"]:
            r.pop("comment_asked")
            r.update(said)
        route.fulfill(json=task)

    sent: list[dict[str, Any]] = []

    def record(route: Route, request: Request) -> None:
        sent.append(json.loads(request.post_data or "{}"))
        route.fallback()

    page.route(re.compile(rf"/api/v1/tasks/{task_id}$"), answered)
    page.route(re.compile(r"/api/v1/reviews/[^/]+$"), lambda route: route.fulfill(status=503))
    page.route(re.compile(r"/api/v1/reviews/[^/]+/decision$"), record)
    open_task_page(page, server, task_id)
    expect(page.get_by_test_id("comment")).to_be_visible()
    page.get_by_test_id("reject").click()
    expect(page.get_by_test_id("review-error")).to_have_text(
        "This review's details did not load, so nothing was sent: try again in a moment."
    )
    assert sent == []

    # A server that asks a comment to approve, and none to reject: the page does as it says.
    said["comment_asked"] = ["approve"]
    page.reload()
    expect(page.get_by_text("Comment (required to approve)")).to_be_visible()
    page.get_by_test_id("approve").click()
    expect(page.get_by_test_id("review-error")).to_have_text(
        "This review needs a comment to approve: say why."
    )
    page.get_by_test_id("reject").click()
    expect(page.locator("#review-round")).to_have_text("2")
    assert sent == [
        {"decision": "reject", "comment": None, "round": 1, "content_hash": review["content_hash"]}
    ]
    no_js_errors(page)


def test_cancel_asks_for_confirmation_and_a_reason(server: Server, page: Page) -> None:
    task_id = new_task(server, "maybe cancel me")
    open_review(server, task_id)
    open_task_page(page, server, task_id)
    dialogs: list[Dialog] = []
    page.on("dialog", lambda dialog: dialogs.append(dialog))
    # Cancel comes after the decisions, in the page and in the tab order.
    after = page.evaluate(
        """() => {
          const cancel = document.querySelector("[data-testid=cancel]");
          return ["approve", "approve-edited", "reject"].every(id =>
            document.querySelector(`[data-testid=${id}]`).compareDocumentPosition(cancel)
              & Node.DOCUMENT_POSITION_FOLLOWING)
            && !document.querySelector("[tabindex]:not([tabindex='-1']):not([tabindex='0'])");
        }"""
    )
    assert after
    cancel = page.get_by_test_id("cancel")
    cancel.click()
    ask = page.get_by_test_id("ask")
    expect(ask).to_be_visible()
    expect(page.get_by_test_id("ask-reason")).to_be_focused()
    page.get_by_test_id("ask-confirm").click()  # no reason: refused
    expect(page.get_by_test_id("ask-error")).to_contain_text("Give a reason")
    page.get_by_test_id("ask-back").click()
    expect(ask).to_have_count(0)
    assert wait_task(server, task_id, "waiting_for_review")["status"] == "waiting_for_review"

    cancel.click()
    page.get_by_test_id("ask-reason").fill("submitted twice")
    page.screenshot(path=SHOT.format("cancel"), full_page=False)
    with page.expect_request(lambda r: r.url.endswith("/cancel")) as sent:
        page.get_by_test_id("ask-confirm").click()
    assert json.loads(sent.value.post_data or "") == {"reason": "submitted twice"}
    expect(page.get_by_test_id("status")).to_have_text("cancelled")
    expect(page.get_by_test_id("review-form")).to_be_hidden()
    expect(cancel).to_be_hidden()
    assert wait_task(server, task_id, "cancelled")["status"] == "cancelled"
    assert dialogs == []
    no_js_errors(page)


# --- task pages by id --------------------------------------------------------------------------


def test_unknown_task_is_a_404_page(server: Server, page: Page) -> None:
    response = page.goto(f"{server.url}/tasks/{UNKNOWN}")
    assert response is not None and response.status == 404
    expect(page.get_by_role("heading")).to_have_text("This task does not exist")
    expect(page.get_by_test_id("missing-id")).to_have_text(UNKNOWN)
    expect(page.get_by_test_id("signed-in-as")).to_be_visible()
    page.screenshot(path=SHOT.format("404"), full_page=True)
    no_js_errors(page)


def test_a_task_page_by_the_end_of_its_id(server: Server, page: Page) -> None:
    task_id = new_task(server, "short and sweet")
    open_review(server, task_id)
    response = page.goto(f"{server.url}/tasks/{task_id[-8:]}")
    assert response is not None and response.status == 200
    expect(page.get_by_test_id("short-id")).to_have_text(task_id[-8:])
    expect(page.locator("#task")).to_have_attribute("data-task-id", task_id)
    expect(page.get_by_test_id("review-form")).to_be_visible()
    expect(page.get_by_test_id("input")).to_have_text("short and sweet")
    no_js_errors(page)
