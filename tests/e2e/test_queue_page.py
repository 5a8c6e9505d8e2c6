"""The reviewers' queue page in real headless Chromium against a real `hitl serve`: filters
(flow, assigned to me, text, order, status) that change the rows, live, and outlive a reload;
reviews of a bulk node ticked and approved together, each its own decision, with what became
of each; and the nav's count of the reviews the signed-in person may decide.

Assertions are Playwright's auto-waiting `expect()`; nothing sleeps. Screenshots go to
/tmp/queue_*.png.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import Page, Response, Route, expect

from tests.conftest import Server, identity_call, user_token
from tests.e2e.conftest import (
    WIDE,
    People,
    cancel_unfinished,
    js_errors,
)
from tests.e2e.test_reviewer import api, new_task, open_review

pytestmark = pytest.mark.e2e

StartServer = Callable[..., Server]
SHOT = "/tmp/queue_{}.png"
FLOWS = "tests.unit.service.flows_for_tests"
ARGS = [
    *("--flow", f"bulk={FLOWS}:create_bulk_flow"),
    *("--flow", f"careful={FLOWS}:create_careful_flow"),
    *("--flow", f"ritas={FLOWS}:create_ritas_flow"),
]
REVIEWERS = ("ann", "rita")
NARROW = {"width": 420, "height": 900}


@pytest.fixture(scope="module")
def _server(start_module_server: StartServer) -> Server:
    server = start_module_server(process_delay=0.02, args=ARGS)
    for name in REVIEWERS:
        identity_call(server.db_url, lambda i, name=name: i.add_user(name, ["reviewer"]))
    return server


@pytest.fixture(scope="module")
def rita_token(_server: Server) -> str:
    """A token of rita's, who acts behind the pages' backs."""
    return user_token(_server.db_url, "rita-api", "reviewer")


@pytest.fixture
def server(_server: Server) -> Server:
    """This module's server, with no open review until the test submits."""
    cancel_unfinished(_server)
    return _server


def waiting(server: Server, *tasks: tuple[str, str | None]) -> list[str]:
    """Submit each (text, flow) and wait until it asks for its review, one after another (the
    queue's oldest first is the order of their reviews); their task ids."""
    ids = []
    for text, flow in tasks:
        ids.append(new_task(server, text, flow))
        open_review(server, ids[-1])
    return ids


def rows(page: Page) -> list[str]:
    """The task ids of the queue's rows, top to bottom."""
    return [li.get_attribute("data-task-id") or "" for li in page.locator(".queue-item").all()]


def expect_rows(page: Page, ids: list[str]) -> None:
    items = page.locator(".queue-item")
    expect(items).to_have_count(len(ids))
    for n, task_id in enumerate(ids):
        expect(items.nth(n)).to_have_attribute("data-task-id", task_id)


def decisions_of(server: Server, task_id: str) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = api(server, "GET", f"/api/v1/tasks/{task_id}/audit")["data"]
    return [e for e in entries if e["action"] == "review.decide"]


def no_live_events(page: Page) -> None:
    """The page's stream of every event opens and then says nothing for an hour: the page
    does not hear what others do meanwhile, as a page a moment behind."""

    def quiet(route: Route) -> None:
        route.fulfill(status=200, content_type="text/event-stream", body="retry: 3600000\n\n")

    page.route(re.compile(r"/api/v1/events$"), quiet)


# --- filters ---------------------------------------------------------------------------------


def test_filters_change_the_rows_live_and_survive_a_reload(server: Server, page: Page) -> None:
    pie, jam, cherry, tart = waiting(
        server,
        ("apple pie", None),
        ("jam x kiwi", None),
        ("cherry", "careful"),
        ("apple tart", "ritas"),
    )
    page.set_viewport_size(WIDE)
    with page.expect_response(lambda r: r.url.endswith("/api/v1/events")):
        page.goto(f"{server.url}/reviews")
    expect_rows(page, [pie, jam, cherry, tart])  # the admin may decide each
    expect(page.get_by_test_id("queue-total")).to_have_text("4 open")
    expect(page.get_by_test_id("filter-clear")).to_be_hidden()

    # A flow: the rows, the address, and the words above the list change.
    page.get_by_test_id("filter-flow").select_option("careful")
    expect_rows(page, [cherry])
    expect(page).to_have_url(f"{server.url}/reviews?flow=careful")
    expect(page.get_by_test_id("queue-about")).to_contain_text("of the flow careful")
    expect(page.get_by_test_id("queue-flow")).to_have_text("careful")

    # Live, within the filter: a new review of another flow stays out, one of this flow comes in.
    [other] = waiting(server, ("not careful", None))
    later = new_task(server, "careful too", flow="careful")
    expect_rows(page, [cherry, later])  # heard after the other: that one was left out
    page.get_by_test_id("filter-flow").select_option("")
    expect_rows(page, [pie, jam, cherry, tart, other, later])

    # Text: the plain keys do nothing while the person types (j, k, x and ? are text here).
    search = page.get_by_test_id("filter-q")
    search.click()
    page.keyboard.type("jam x?k")
    expect(search).to_have_value("jam x?k")
    expect(page.get_by_test_id("help")).to_be_hidden()
    expect(page).to_have_url(f"{server.url}/reviews?q=jam+x%3Fk")
    expect(page.get_by_test_id("queue-empty")).to_have_text("No reviews match these filters.")
    search.fill("APPLE")
    expect_rows(page, [pie, tart])  # any case; the input or the output
    expect(page).to_have_url(f"{server.url}/reviews?q=APPLE")
    page.keyboard.press("Escape")  # leaves the box, and keeps what it holds
    expect(search).not_to_be_focused()
    expect(search).to_have_value("APPLE")
    page.keyboard.press("j")
    expect(page.locator(".queue-item").nth(1)).to_have_attribute("aria-selected", "true")
    page.keyboard.press("/")
    expect(search).to_be_focused()
    page.keyboard.press("Escape")

    # The order, and a reload (or the link, shared) keeps the filters.
    page.get_by_test_id("filter-sort").select_option("newest")
    expect_rows(page, [tart, pie])
    expect(page).to_have_url(f"{server.url}/reviews?q=APPLE&sort=newest")
    page.screenshot(path=SHOT.format("filters_1280"), full_page=True)
    page.reload()
    expect_rows(page, [tart, pie])
    expect(search).to_have_value("APPLE")
    expect(page.get_by_test_id("filter-sort")).to_have_value("newest")
    expect(page.get_by_test_id("filter-clear")).to_be_visible()
    page.set_viewport_size(NARROW)
    page.screenshot(path=SHOT.format("filters_420"), full_page=True)
    page.set_viewport_size(WIDE)

    # Decided reviews are a filter too: read-only rows that say who decided.
    api(server, "POST", f"/api/v1/tasks/{pie}/cancel")
    expect_rows(page, [tart])
    page.get_by_test_id("filter-clear").click()
    expect(page).to_have_url(f"{server.url}/reviews")
    expect_rows(page, [jam, cherry, tart, other, later])
    page.get_by_test_id("filter-status").select_option("cancelled")
    expect(page).to_have_url(f"{server.url}/reviews?status=cancelled")
    cancelled = page.locator(f".queue-item[data-task-id='{pie}']")
    expect(cancelled.get_by_test_id("queue-decision")).to_have_text("Cancelled with its task")
    expect(cancelled.get_by_test_id("queue-tick")).to_have_count(0)
    page.screenshot(path=SHOT.format("cancelled_1280"), full_page=True)
    expect(page.get_by_test_id("bulk")).to_be_hidden()

    # A value the page does not offer is left out of the address, not sent.
    page.goto(f"{server.url}/reviews?flow=nope&sort=sideways&q=cherry")
    expect_rows(page, [cherry])
    expect(page).to_have_url(f"{server.url}/reviews?q=cherry")
    assert js_errors(page) == []


def test_assigned_to_me_and_the_count_of_what_one_may_decide(
    server: Server, people: People
) -> None:
    anyones, ritas = waiting(server, ("for anyone", None), ("for rita", "ritas"))
    ann, rita = people("ann"), people("rita")

    # The nav's count: ann may not decide rita's review, so she does not count it.
    expect(ann.get_by_test_id("queue-count")).to_have_text("1")
    expect(rita.get_by_test_id("queue-count")).to_have_text("2")
    ann.goto(f"{server.url}/reviews")
    expect_rows(ann, [anyones])
    expect(ann.get_by_test_id("queue-total")).to_have_text("1 open")
    expect(ann.get_by_test_id("queue-hidden")).to_contain_text("1 more is not shown")

    # Rita's own: the ones assigned to her by name.
    rita.goto(f"{server.url}/reviews")
    expect_rows(rita, [anyones, ritas])
    rita.get_by_test_id("filter-mine").check()
    expect_rows(rita, [ritas])
    expect(rita).to_have_url(f"{server.url}/reviews?mine=true")
    rita.reload()
    expect(rita.get_by_test_id("filter-mine")).to_be_checked()
    expect_rows(rita, [ritas])

    # Live: another of rita's counts for her alone; one for anyone counts for both.
    more_ritas = new_task(server, "for rita again", flow="ritas")
    expect(rita.get_by_test_id("queue-count")).to_have_text("3")
    expect_rows(rita, [ritas, more_ritas])
    new_task(server, "for anyone again")
    expect(ann.get_by_test_id("queue-count")).to_have_text("2")
    expect(rita.get_by_test_id("queue-count")).to_have_text("4")
    expect_rows(rita, [ritas, more_ritas])  # not assigned to her: not in "mine"
    expect(ann.get_by_test_id("queue-hidden")).to_contain_text("2 more are not shown")
    assert ann.errors == [] and rita.errors == []  # type: ignore[attr-defined]


# --- several at once -------------------------------------------------------------------------


def test_bulk_approve_records_a_decision_for_each(server: Server, page: Page) -> None:
    first, single, second, third = waiting(
        server, ("bulk one", "bulk"), ("alone", None), ("bulk two", "bulk"), ("bulk three", "bulk")
    )
    page.set_viewport_size(WIDE)
    page.goto(f"{server.url}/reviews")
    expect_rows(page, [first, single, second, third])
    bar = page.get_by_test_id("bulk")
    expect(bar).to_be_visible()
    expect(page.get_by_test_id("bulk-approve")).to_be_disabled()
    items = page.locator(".queue-item")
    # The review whose node does not allow it has no box to tick, and `x` skips it.
    expect(items.nth(1).get_by_test_id("queue-tick")).to_have_count(0)
    page.keyboard.press("j")
    page.keyboard.press("x")
    expect(page.get_by_test_id("bulk-count")).to_have_text("None selected")

    # Ticked with the mouse and from the keyboard; the keys still work from a ticked box.
    items.nth(0).get_by_test_id("queue-tick").check()
    page.keyboard.press("j")
    page.keyboard.press("j")
    expect(items.nth(2)).to_have_attribute("aria-selected", "true")
    page.keyboard.press("x")
    page.keyboard.press("j")
    page.keyboard.press("x")
    expect(page.get_by_test_id("bulk-count")).to_have_text("3 selected")
    expect(page.get_by_test_id("bulk-all")).to_be_checked()
    approve = page.get_by_test_id("bulk-approve")
    expect(approve).to_have_text("Approve 3 selected")
    page.screenshot(path=SHOT.format("bulk_1280"), full_page=True)
    page.set_viewport_size(NARROW)
    page.screenshot(path=SHOT.format("bulk_420"), full_page=True)
    page.set_viewport_size(WIDE)

    with page.expect_request(lambda r: r.url.endswith("/api/v1/reviews/decisions")) as sent:
        approve.click()
    body = sent.value.post_data_json
    assert body["decision"] == "approve" and len(body["review_ids"]) == 3
    assert all(s["round"] == 1 and len(s["content_hash"]) == 64 for s in body["seen"].values())
    results = page.get_by_test_id("bulk-result")
    expect(results).to_have_count(3)
    for n in range(3):
        expect(results.nth(n)).to_have_attribute("data-outcome", "decided")
    expect(page.get_by_test_id("bulk-summary")).to_have_text("3 approved.")
    expect_rows(page, [single])
    expect(bar).to_be_hidden()
    page.screenshot(path=SHOT.format("bulk_done_1280"), full_page=True)

    # Among the decided reviews now, each said as whose decision.
    page.get_by_test_id("filter-status").select_option("decided")
    done = page.locator(f".queue-item[data-task-id='{first}']").get_by_test_id("queue-decision")
    expect(done).to_have_text(re.compile(r"^Approved by test-\w+ at "))

    actors = set()
    for task_id in (first, second, third):
        [entry] = decisions_of(server, task_id)
        assert entry["detail"]["decision"] == "approve"
        actors.add(entry["actor"])
    assert len(actors) == 1 and None not in actors  # three decisions, each by the person
    assert decisions_of(server, single) == []
    assert js_errors(page) == []


def test_bulk_controls_are_absent_without_bulk_reviews(server: Server, page: Page) -> None:
    alone, careful = waiting(server, ("alone", None), ("careful one", "careful"))
    page.goto(f"{server.url}/reviews")
    expect_rows(page, [alone, careful])
    expect(page.get_by_test_id("bulk")).to_be_hidden()
    expect(page.get_by_test_id("queue-tick")).to_have_count(0)
    page.keyboard.press("x")  # nothing to tick
    expect(page.get_by_test_id("bulk-results")).to_be_hidden()
    assert js_errors(page) == []


def test_bulk_decisions_ask_a_comment_where_the_server_says(server: Server, page: Page) -> None:
    """Which decisions need a comment is each review's `comment_asked`, as the API answers it
    (here it says approval does): the queue holds no rule of its own."""
    [task_id] = waiting(server, ("bulk asked", "bulk"))

    def answered(route: Route) -> None:
        signed = {**route.request.headers, "authorization": f"Bearer {server.token}"}
        listed = route.fetch(headers=signed).json()
        for r in listed["data"]:
            r["comment_asked"] = ["approve"]
        route.fulfill(json=listed)

    page.route(re.compile(r"/api/v1/reviews\?"), answered)
    page.goto(f"{server.url}/reviews")
    expect_rows(page, [task_id])
    page.get_by_test_id("bulk-all").check()
    page.get_by_test_id("bulk-approve").click()
    expect(page.get_by_test_id("ask")).to_contain_text("Approve 1 review?")
    page.get_by_test_id("ask-reason").fill("checked")
    with page.expect_request(lambda r: r.url.endswith("/api/v1/reviews/decisions")) as sent:
        page.get_by_test_id("ask-confirm").click()
    assert sent.value.post_data_json["comment"] == "checked"
    expect(page.get_by_test_id("bulk-summary")).to_have_text("1 approved.")
    assert js_errors(page) == []


def test_bulk_reject_asks_for_a_comment_and_reports_the_refused(
    server: Server, page: Page, rita_token: str
) -> None:
    good, stale, held = waiting(
        server, ("bulk good", "bulk"), ("bulk stale", "bulk"), ("bulk held", "bulk")
    )
    reviews = {t: open_review(server, t)["id"] for t in (good, stale, held)}
    no_live_events(page)
    loads: list[str] = []

    def loaded_twice(response: Response) -> bool:
        """The first page of rows, loaded as the script starts and again as its stream opens."""
        if "decidable=true" in response.url and "limit=50" in response.url:
            loads.append(response.url)
        return len(loads) == 2

    with page.expect_response(loaded_twice):
        page.goto(f"{server.url}/reviews")
    expect_rows(page, [good, stale, held])
    page.get_by_test_id("bulk-all").check()
    expect(page.get_by_test_id("bulk-count")).to_have_text("3 selected")

    # Behind the page's back: one is decided by someone else, one is claimed by someone else.
    decision = {"decision": "approve"}
    api(server, "POST", f"/api/v1/reviews/{reviews[stale]}/decision", rita_token, json=decision)
    api(server, "POST", f"/api/v1/reviews/{reviews[held]}/claim", rita_token)

    page.get_by_test_id("bulk-reject").click()
    ask = page.get_by_test_id("ask")
    expect(ask).to_be_visible()
    expect(ask).to_contain_text("Reject 3 reviews?")
    page.get_by_test_id("ask-confirm").click()  # a rejection needs a comment
    expect(page.get_by_test_id("ask-error")).to_contain_text("Give a reason")
    page.get_by_test_id("ask-reason").fill("too short")
    with page.expect_request(lambda r: r.url.endswith("/api/v1/reviews/decisions")) as sent:
        page.get_by_test_id("ask-confirm").click()
    assert sent.value.post_data_json["comment"] == "too short"

    outcome = {
        r: page.locator(f"[data-testid=bulk-result][data-review-id='{reviews[r]}']")
        for r in reviews
    }
    expect(outcome[good]).to_have_attribute("data-outcome", "decided")
    expect(outcome[good]).to_contain_text(": rejected")
    expect(outcome[stale]).to_have_attribute("data-outcome", "refused")
    expect(outcome[stale]).to_contain_text("already decided (approve)")
    expect(outcome[held]).to_have_attribute("data-outcome", "refused")
    expect(outcome[held]).to_contain_text("rita-api is reviewing this")
    expect(page.get_by_test_id("bulk-summary")).to_have_text("1 rejected, 2 refused.")
    page.screenshot(path=SHOT.format("bulk_refused_1280"), full_page=True)

    # The page loads again: the decided ones leave; the held one stays, still ticked.
    expect_rows(page, [held])
    expect(page.locator(".queue-item").get_by_test_id("queue-tick")).to_be_checked()
    expect(page.get_by_test_id("bulk-count")).to_have_text("1 selected")
    [entry] = decisions_of(server, good)
    assert entry["detail"]["decision"] == "reject" and entry["detail"]["comment"] == "too short"
    assert [e["actor"] for e in decisions_of(server, stale)] == ["rita-api"]
    assert decisions_of(server, held) == []
    assert js_errors(page) == []
