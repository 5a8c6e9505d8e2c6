"""The pages under hitl's Content-Security-Policy, in real headless Chromium.

Every page loads and works with the policy on, with no violation reported (Chromium's console
and a `securitypolicyviolation` listener, see `csp_violations`) and no request leaving the
server. A test shows that the listener does see what the policy refuses, so that "no
violation" means something. /docs is Swagger UI served by hitl itself: it shows the
operations and runs one. And a browser tricked by DNS rebinding into sending another host's
name to hitl (Chromium's `--host-resolver-rules`) gets 400.

Screenshots of /docs and the classic page go to /tmp/shots/.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, Response, expect

from hitl.api import security
from tests.conftest import Server
from tests.e2e.conftest import ARGS, CHROMIUM, TIMEOUT_MS, docs_drawn, js_errors

pytestmark = pytest.mark.e2e

SHOTS = Path("/tmp/shots")
StartServer = Callable[..., Server]


@pytest.fixture(scope="module")
def server(start_module_server: StartServer) -> Server:
    return start_module_server(process_delay=0.2)


def requests_made(page: Page) -> list[str]:
    """A list that fills with the URL of every request the tab makes."""
    seen: list[str] = []
    page.on("request", lambda request: seen.append(request.url))
    return seen


def elsewhere(server: Server, urls: list[str]) -> list[str]:
    """The URLs that are not this server's (data: URLs never leave the browser)."""
    return [u for u in urls if not (u.startswith(f"{server.url}/") or u.startswith("data:"))]


def wait_until(page: Page, condition: Callable[[], bool], seen: list[str]) -> None:
    """Console messages reach the test a moment after the page said them."""
    for _ in range(100):
        if condition():
            return
        page.wait_for_timeout(50)
    raise AssertionError(f"not reported: {seen}")


def assert_secured(response: Response | None) -> None:
    assert response is not None
    headers = response.headers
    assert headers["content-security-policy"] == security.CONTENT_SECURITY_POLICY
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["x-frame-options"] == "DENY"
    assert headers["referrer-policy"] == "same-origin"


def new_task(server: Server, text: str) -> str:
    response = httpx.post(
        f"{server.url}/api/v1/tasks", json={"input": text}, headers=server.headers, timeout=10
    )
    response.raise_for_status()
    return str(response.json()["id"])


def shows_the_page(page: Page, path: str) -> None:
    """What each page shows once its scripts have run."""
    if path == "/":
        expect(page.get_by_test_id("task-rows").locator("tr").first).to_be_visible()
    elif path.startswith("/tasks/"):
        expect(page.get_by_test_id("live")).to_have_text("● live")
        expect(page.get_by_test_id("input")).to_have_text("a task to look at")
    elif path == "/reviews":
        expect(page.get_by_test_id("queue").locator("li").first).to_be_visible()
    elif path == "/classic":
        expect(page.locator("#taskStatus")).to_have_text("idle")
    elif path == "/docs":
        docs_drawn(page)
    elif path == "/login":
        expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    else:
        raise AssertionError(path)


PAGES = ["/", "/tasks/{task}", "/reviews", "/classic", "/docs", "/login"]


@pytest.mark.parametrize("path", PAGES)
def test_every_page_loads_and_runs_under_the_policy(
    server: Server, page: Page, csp_violations: list[str], path: str
) -> None:
    task_id = new_task(server, "a task to look at")
    requested = requests_made(page)
    path = path.format(task=task_id)
    assert_secured(page.goto(f"{server.url}{path}"))
    shows_the_page(page, path)
    assert csp_violations == []
    assert js_errors(page) == []
    assert elsewhere(server, requested) == []


def test_the_listener_sees_what_the_policy_refuses(
    server: Server, page: Page, csp_violations: list[str]
) -> None:
    """Without this, "no violation" could mean that none was ever reported."""
    page.goto(f"{server.url}/")
    page.evaluate(
        """() => {
          const script = document.createElement("script");
          script.textContent = "window.__inline_ran = true";
          document.body.appendChild(script);
          const button = document.createElement("button");
          button.setAttribute("onclick", "window.__handler_ran = true");
          document.body.appendChild(button);
          button.click();
        }"""
    )
    assert page.evaluate("window.__inline_ran === undefined && window.__handler_ran === undefined")
    wait_until(page, lambda: sum("script-src" in v for v in csp_violations) >= 2, csp_violations)


def test_no_page_can_be_framed(server: Server, page: Page, csp_violations: list[str]) -> None:
    page.set_content(f'<iframe id="framed" src="{server.url}/"></iframe>')
    frame = page.frame_locator("#framed")
    wait_until(page, lambda: any("frame-ancestors" in v for v in csp_violations), csp_violations)
    expect(frame.get_by_test_id("submit-form")).to_have_count(0)  # Chromium shows its error page


def test_docs_show_the_api_and_try_it_offline(
    server: Server, page: Page, csp_violations: list[str]
) -> None:
    requested = requests_made(page)
    assert_secured(page.goto(f"{server.url}/docs"))
    docs_drawn(page)
    expect(page.locator(".info .title")).to_contain_text("hitl")
    operations = page.locator(".opblock-summary-path")
    paths = [p.get_attribute("data-path") for p in operations.all()]
    assert {"/submit", "/feedback/{task_id}", "/api/v1/tasks", "/healthz"} <= set(paths)
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / "docs.png"), full_page=False)

    submit = page.locator(".opblock", has=page.locator('[data-path="/submit"]'))
    submit.locator(".opblock-summary").click()
    submit.get_by_role("button", name="Try it out").click()
    submit.locator("textarea.body-param__text").fill('{"data": "sent from /docs"}')
    submit.get_by_role("button", name="Execute").click()
    live = submit.locator(".live-responses-table tbody .response-col_status")
    expect(live).to_have_text("202")
    expect(submit.locator(".live-responses-table .microlight").first).to_contain_text("task_id")
    submit.scroll_into_view_if_needed()
    page.screenshot(path=str(SHOTS / "docs-try-it.png"), full_page=False)

    assert csp_violations == []
    assert js_errors(page) == []
    assert elsewhere(server, requested) == []
    tasks = httpx.get(
        f"{server.url}/api/v1/tasks", params={"limit": 100}, headers=server.headers, timeout=10
    ).json()
    assert "sent from /docs" in [t["input"] for t in tasks["data"]]


def test_classic_page_submits_and_approves_under_the_policy(
    server: Server, page: Page, csp_violations: list[str]
) -> None:
    requested = requests_made(page)
    assert_secured(page.goto(f"{server.url}/classic"))
    page.locator("#taskInput").fill("classic under a strict policy")
    page.locator("#submitBtn").click()
    expect(page.locator("#taskStatus")).to_have_text("waiting_for_review")
    expect(page.locator("#outputToReview")).to_have_text(
        "Revision 1: Classic under a strict policy"
    )
    page.locator("#approveBtn").click()
    expect(page.locator("#taskStatus")).to_have_text("completed")
    expect(page.locator("#finalResult")).to_have_text("Revision 1: Classic under a strict policy")
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / "classic.png"), full_page=True)
    assert csp_violations == []
    assert js_errors(page) == []
    assert elsewhere(server, requested) == []


def test_a_rebound_name_gets_400(server: Server, browser: Browser) -> None:
    """DNS rebinding, as a browser meets it: a name that resolves to hitl's address."""
    rules = "--host-resolver-rules=MAP rebound.example 127.0.0.1"
    tricked = browser.browser_type.launch(executable_path=str(CHROMIUM), args=[*ARGS, rules])
    try:
        page = tricked.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        response = page.goto(f"http://rebound.example:{server.port}/api/v1/tasks")
        assert response is not None and response.status == 400
        assert response.json() == {
            "detail": "host 'rebound.example' is not allowed: add it to HITL_ALLOWED_HOSTS"
        }
        assert_secured(response)
        ok = page.goto(f"http://localhost:{server.port}/healthz")
        assert ok is not None and ok.status == 200
    finally:
        tricked.close()


def test_the_server_refuses_other_hosts_before_anything_happens(server: Server) -> None:
    def count() -> int:
        listed = httpx.get(f"{server.url}/api/v1/tasks", headers=server.headers, timeout=10)
        return int(listed.json()["count"])

    before = count()
    refused = httpx.post(
        f"{server.url}/submit",
        json={"data": "x"},
        headers={**server.headers, "Host": "evil.example:8000"},
        timeout=10,
    )
    assert refused.status_code == 400
    assert re.search(r"host 'evil\.example' is not allowed", refused.json()["detail"])
    assert refused.headers["content-security-policy"] == security.CONTENT_SECURITY_POLICY
    assert count() == before
