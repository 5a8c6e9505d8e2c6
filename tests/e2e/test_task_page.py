"""The task page in real headless Chromium against a real `hitl serve`: a review that three
reviewers share (two approvals decide it: both votes show, with who and when), a failed task
retried from its page by its submitter (and no Retry for a reviewer, a traceback for admins
only), every round beside the one before it with what changed, and the flow drawn with the
task's node marked.

Reviewers sign in with their own one-time links, each in a browser profile of their own; the
`page` fixture's profile is the admin. Assertions are Playwright's auto-waiting `expect()`;
nothing sleeps. Screenshots go to /tmp/taskpage_*.png.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from playwright.sync_api import Locator, Page, expect

from tests.conftest import Server, identity_call
from tests.e2e.conftest import (
    WIDE,
    People,
    cancel_unfinished,
    js_errors,
)
from tests.e2e.test_reviewer import api, new_task, open_review, wait_task

pytestmark = pytest.mark.e2e

StartServer = Callable[..., Server]
SHOT = "/tmp/taskpage_{}.png"
FLOWS = "tests.unit.service.flows_for_tests"
ARGS = ["--flow", f"panel={FLOWS}:create_panel_flow"]
ARGS += ["--flow", f"publishing={FLOWS}:create_publishing_flow"]
REVIEWERS = ("ann", "bob", "cid")
SUBMITTER = "sam"
AGO = re.compile(r"^(just now|\d+ s ago|\d+ min ago)$")
NARROW = {"width": 420, "height": 900}


@pytest.fixture(scope="module")
def _server(start_module_server: StartServer) -> Server:
    server = start_module_server(process_delay=0.05, args=ARGS)
    for name in (*REVIEWERS, "rita"):  # (rita phones her decisions in: an admin records them)
        identity_call(server.db_url, lambda i, name=name: i.add_user(name, ["reviewer"]))
    identity_call(server.db_url, lambda i: i.add_user(SUBMITTER, ["submitter"]))
    return server


@pytest.fixture
def server(_server: Server) -> Server:
    """This module's server, with no unfinished task until the test submits one."""
    cancel_unfinished(_server)
    return _server


def token_of(server: Server, name: str, *roles: str) -> str:
    """A token of the user `name` (already added), with `roles`."""
    made = identity_call(server.db_url, lambda i: i.create_token(f"{name}-e2e", roles, user=name))
    return str(made[0])


def open_page(tab: Page, server: Server, task_id: str) -> None:
    tab.goto(f"{server.url}/tasks/{task_id}")
    expect(tab.get_by_test_id("live")).to_have_text(re.compile("● live|finished"))


def flow_node(tab: Page, node: str) -> Locator:
    return tab.locator(f"[data-testid=flow-node][data-node='{node}']")


# --- (a) a review that two of three reviewers decide --------------------------------------------


def test_two_of_three_reviewers_decide_and_both_votes_show(server: Server, people: People) -> None:
    task_id = new_task(server, "the panel's memo: we move to Thursdays", "panel")
    review = open_review(server, task_id)
    ann, bob, cid = (people(name) for name in REVIEWERS)

    # Ann opens the review (her page claims it) and votes.
    with ann.expect_response(lambda r: r.url.endswith("/claim") and r.status == 200):
        open_page(ann, server, task_id)
    expect(ann.get_by_test_id("review-controls")).to_be_visible()
    ann.get_by_test_id("comment").fill("Thursdays suit everyone")
    with ann.expect_response(lambda r: r.url.endswith("/claim") and r.request.method == "DELETE"):
        ann.get_by_test_id("approve").click()
    voted = ann.get_by_test_id("review-voted")
    expect(voted).to_contain_text("You approved")
    expect(voted).to_contain_text("It takes 2 approvals from different people; it has 1.")
    expect(ann.get_by_test_id("review-controls")).to_be_hidden()  # one vote each
    expect(ann.locator("#queue-count")).to_have_text("")  # hers no more to decide: not counted
    ann.screenshot(path=SHOT.format("quorum_voted"), full_page=True)
    assert api(server, "GET", f"/api/v1/reviews/{review['id']}")["status"] == "open"

    # Bob opens it next: Ann gave her claim up when she voted, so his page claims it.
    with bob.expect_response(lambda r: r.url.endswith("/claim") and r.status == 200):
        open_page(bob, server, task_id)
    votes = bob.get_by_test_id("round-votes")
    expect(votes).to_contain_text("Votes: 2 approvals from different people decide it; 1 so far")
    expect(votes.get_by_test_id("vote")).to_have_count(1)
    expect(votes.get_by_test_id("vote")).to_contain_text("ann approved")
    expect(votes.get_by_test_id("vote")).to_contain_text("“Thursdays suit everyone”")

    # Cid, third, finds Bob reviewing it.
    open_page(cid, server, task_id)
    expect(cid.get_by_test_id("review-claim-text")).to_contain_text("Being reviewed by bob")
    cid.screenshot(path=SHOT.format("quorum_open"), full_page=True)

    # Bob's approval is the second: the round is decided, on every page, live.
    bob.get_by_test_id("approve").click()
    for tab in (ann, bob, cid):
        expect(tab.get_by_test_id("status")).to_have_text("completed")
        decision = tab.get_by_test_id("round-decision")
        expect(decision).to_have_text("Approved by bob")
        expect(tab.get_by_test_id("round-decided-at")).to_have_text(AGO)
        expect(tab.get_by_test_id("review-form")).to_be_hidden()
        votes = tab.get_by_test_id("round-votes").get_by_test_id("vote")
        expect(votes).to_have_count(2)
        expect(votes.nth(0)).to_contain_text("ann approved")
        expect(votes.nth(1)).to_contain_text("bob approved")
        for n in range(2):
            when = votes.nth(n).locator("time")
            expect(when).to_have_text(AGO)
            expect(when).to_have_attribute("title", re.compile(r"\d"))  # the date and time
    task = wait_task(server, task_id, "completed")
    assert [v["voter"] for v in task["reviews"][0]["votes"]] == ["ann", "bob"]
    cid.screenshot(path=SHOT.format("quorum"), full_page=True)


# --- (b) a failed task, retried from its page ----------------------------------------------------


def test_a_failed_task_is_retried_by_its_submitter_from_its_page(
    server: Server, people: People, page: Page
) -> None:
    sam_token = token_of(server, SUBMITTER, "submitter")
    task_id = new_task(server, "the annual report", "publishing", sam_token)
    review = open_review(server, task_id)
    api(server, "POST", f"/api/v1/reviews/{review['id']}/decision", json={"decision": "approve"})
    failed = wait_task(server, task_id, "failed")
    assert failed["node"] == "publish"

    # The admin sees where and why, the traceback, and Retry.
    page.set_viewport_size(WIDE)
    open_page(page, server, task_id)
    failure = page.get_by_test_id("failure")
    expect(failure).to_be_visible()
    expect(page.get_by_test_id("failure-node")).to_have_text(" in node publish")
    expect(page.get_by_test_id("failure-error")).to_have_text("RuntimeError: the printer is jammed")
    expect(page.get_by_test_id("failure-traceback")).to_be_visible()
    expect(page.get_by_test_id("failure-traceback")).to_contain_text("raise RuntimeError")
    expect(page.get_by_test_id("retry")).to_be_visible()
    expect(page.get_by_test_id("cancel")).to_be_hidden()  # a failed task is not cancelled
    expect(flow_node(page, "publish")).to_have_class(re.compile(r"\bcurrent\b.*\bis-failed\b"))
    page.screenshot(path=SHOT.format("failed_admin"), full_page=True)

    # A reviewer sees the failure, but no traceback and no Retry: the server says they may not.
    ann = people("ann", NARROW)
    open_page(ann, server, task_id)
    expect(ann.get_by_test_id("failure-error")).to_have_text("RuntimeError: the printer is jammed")
    expect(ann.get_by_test_id("failure-traceback")).to_be_hidden()
    expect(ann.get_by_test_id("retry")).to_be_hidden()
    ann.screenshot(path=SHOT.format("failed_reviewer_narrow"), full_page=True)

    # The submitter may retry: no traceback for them either, but Retry, and the page follows
    # the task on to its end.
    sam = people(SUBMITTER)
    open_page(sam, server, task_id)
    expect(sam.get_by_test_id("live")).to_have_text("finished")
    expect(sam.get_by_test_id("failure-traceback")).to_be_hidden()
    sam.screenshot(path=SHOT.format("failed_submitter"), full_page=True)
    with sam.expect_response(lambda r: r.url.endswith("/retry") and r.status == 200):
        sam.get_by_test_id("retry").click()
    expect(sam.get_by_test_id("status")).to_have_text("completed")
    expect(sam.get_by_test_id("failure")).to_be_hidden()
    expect(sam.get_by_test_id("result")).to_have_text("A draft of the annual report.")
    expect(sam.get_by_test_id("timeline")).to_contain_text("task.retried")
    assert wait_task(server, task_id, "completed")["result"] == "A draft of the annual report."
    entries = api(server, "GET", f"/api/v1/tasks/{task_id}/audit")["data"]
    assert [(e["actor"], e["action"]) for e in entries][-1] == (SUBMITTER, "task.retry")


# --- (c) rounds side by side, with what changed -------------------------------------------------


def test_rounds_stand_side_by_side_with_what_changed(server: Server, people: People) -> None:
    task_id = new_task(server, "the quarterly letter")
    bob = people("bob")
    open_page(bob, server, task_id)
    expect(bob.get_by_test_id("round")).to_have_count(1)
    bob.get_by_test_id("comment").fill("thank the volunteers")
    bob.get_by_test_id("reject").click()
    expect(bob.locator("#review-round")).to_have_text("2")

    rounds = bob.get_by_test_id("round")
    expect(rounds).to_have_count(2)
    first, second = rounds.nth(0), rounds.nth(1)
    expect(first.get_by_test_id("round-decision")).to_have_text(
        "Rejected by bob — “thank the volunteers”"
    )
    expect(first.get_by_test_id("round-decided-at")).to_have_text(AGO)
    expect(first.get_by_test_id("round-diff")).to_have_count(0)  # nothing before it
    sides = second.get_by_test_id("round-diff")
    before, after = sides.locator("figure.before"), sides.locator("figure.after")
    expect(before.locator("figcaption")).to_have_text("Round 1")
    expect(after.locator("figcaption")).to_have_text("Round 2")
    # Round 1's text on the left, what went struck out; round 2's on the right, what came marked.
    expect(before.locator("pre")).to_have_text(first.get_by_test_id("round-output").inner_text())
    expect(before.locator("del")).to_contain_text(["1:"])
    expect(before.locator("ins")).to_have_count(0)
    expect(after.get_by_test_id("round-output")).to_contain_text("Revision 2")
    expect(after.locator("del")).to_have_count(0)
    assert "thank the volunteers" in " ".join(after.locator("ins").all_inner_texts())
    box = before.bounding_box(), after.bounding_box()
    assert box[0] and box[1] and box[0]["x"] + box[0]["width"] <= box[1]["x"]  # side by side
    assert box[0]["y"] == box[1]["y"]

    # Round 2 is approved by an admin on rita's behalf (taking over Bob's claim first): the
    # page says so, and when.
    round_two = open_review(server, task_id)
    url = f"/api/v1/reviews/{round_two['id']}"
    api(server, "POST", f"{url}/claim", json={"take_over": True})
    decided = {"decision": "approve", "on_behalf_of": "rita"}
    api(server, "POST", f"{url}/decision", json=decided)
    expect(bob.get_by_test_id("status")).to_have_text("completed")
    expect(second.get_by_test_id("round-decision")).to_have_text(
        re.compile(r"^Approved by \S+ for rita$")
    )
    expect(second.get_by_test_id("round-decided-at")).to_have_text(AGO)
    bob.screenshot(path=SHOT.format("rounds"), full_page=True)

    # On a narrow screen the two stand one above the other, and still read.
    bob.set_viewport_size(NARROW)
    expect(sides).to_be_visible()
    box = before.bounding_box(), after.bounding_box()
    assert box[0] and box[1] and box[0]["y"] + box[0]["height"] <= box[1]["y"]
    bob.screenshot(path=SHOT.format("rounds_narrow"), full_page=True)


# --- (d) the flow, drawn, with the task's node marked ------------------------------------------


def test_the_flow_is_drawn_with_the_task_s_node_marked(
    server: Server, people: People, page: Page, csp_violations: list[str]
) -> None:
    task_id = new_task(server, "the newsletter", "publishing")
    open_review(server, task_id)
    ann = people("ann")
    open_page(ann, server, task_id)
    graph = ann.get_by_test_id("flow-graph")
    expect(graph.get_by_test_id("flow-node")).to_have_count(5)
    review = flow_node(ann, "drafting/approval")
    expect(review).to_have_class(re.compile(r"\bcurrent\b.*\bis-waiting_for_review\b"))
    expect(review).to_have_attribute("aria-current", "step")
    expect(flow_node(ann, "drafting")).to_have_class(re.compile(r"\bholds-current\b"))
    expect(flow_node(ann, "drafting/draft")).to_have_class(re.compile(r"\bvisited\b"))
    expect(flow_node(ann, "publish")).not_to_have_class(re.compile(r"\b(current|visited)\b"))
    expect(graph.locator("[aria-current]")).to_have_count(1)
    expect(ann.get_by_test_id("flow-now")).to_have_text(
        "Waiting for a review at: drafting › approval"
    )
    edge = graph.locator("[data-testid=flow-edge][data-source='drafting/approval']")
    expect(edge.locator("text")).to_have_text(["approved", "rejected"])
    ann.screenshot(path=SHOT.format("flow_waiting"), full_page=True)

    # Approved: the task moves on to publish, which fails once; the mark follows, live.
    ann.get_by_test_id("approve").click()
    expect(flow_node(ann, "publish")).to_have_class(re.compile(r"\bcurrent\b.*\bis-failed\b"))
    expect(review).not_to_have_class(re.compile(r"\bcurrent\b"))
    expect(ann.get_by_test_id("flow-now")).to_have_text("Failed at: publish")

    # A narrow screen draws it top to bottom.
    page.set_viewport_size(NARROW)
    open_page(page, server, task_id)
    expect(page.locator("[data-testid=flow-graph] svg")).to_have_class(re.compile(r"\bvertical\b"))
    expect(flow_node(page, "publish")).to_have_class(re.compile(r"\bcurrent\b"))
    svg = page.locator("[data-testid=flow-graph] svg").bounding_box()
    assert svg is not None and svg["width"] <= 420
    page.screenshot(path=SHOT.format("flow_narrow"), full_page=True)
    assert js_errors(page) == []
    assert csp_violations == []  # drawn without inline script or style
