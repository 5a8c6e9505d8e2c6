"""Fixtures for the browser tests: a real `hitl serve` and one headless Chromium per module.

The pages are the same whatever the database, and every backend runs the same integration
tests, so the browser tests run on SQLite only.

Playwright drives the system browser (`/usr/bin/chromium`, from Debian's `chromium` package);
its own browser downloads are never used. `make test` installs it; without it the tests fail.
"""

from __future__ import annotations

import asyncio
import gc
import os
import re
import sys
import threading
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from greenlet import greenlet
from playwright.sync_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Page,
    Request,
    Response,
    Route,
    expect,
    sync_playwright,
)

from tests.conftest import TOKENS_BY_PORT, Server, login_link

CHROMIUM = Path(os.environ.get("HITL_E2E_CHROMIUM", "/usr/bin/chromium"))
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TIMEOUT_MS = 15_000
WIDE = {"width": 1280, "height": 900}
# people("ann") or people("ann", viewport): a tab of ann's own (the `people` fixture).
People = Callable[..., Page]

# Auto-waiting assertions give a page this long to get there.
expect.set_options(timeout=TIMEOUT_MS)


# A browser test still running after this long says where it waits. Playwright's sync calls
# wait in a greenlet of their own, which the stack dump of a hung process (pyproject.toml:
# faulthandler_timeout) does not show: it shows only Playwright's event loop, waiting.
HUNG_SECONDS = 120.0


def _where_greenlets_wait(test: str) -> None:
    waiting = [
        "".join(traceback.format_stack(g.gr_frame))
        for g in gc.get_objects()
        if isinstance(g, greenlet) and g.gr_frame is not None
    ]
    sys.stderr.write(
        f"\n{test} is still running after {HUNG_SECONDS:.0f} s. Where its greenlets wait:\n"
        + "\n".join(waiting)
    )
    sys.stderr.flush()


@pytest.fixture(autouse=True)
def _say_where_a_hung_test_waits(request: pytest.FixtureRequest) -> Iterator[None]:
    """Set up before, and torn down after, every other fixture of the test (closing its
    browser profile included)."""
    timer = threading.Timer(HUNG_SECONDS, _where_greenlets_wait, (request.node.nodeid,))
    timer.daemon = True
    timer.start()
    yield
    timer.cancel()


# What the browser met during the test, said when it fails: each answer of 400 or more, each
# request that got no answer, each console error or warning, and where each tab was. A test
# that waited for something the page never showed then says whether the page's own requests
# failed (and how) or were never made.
BROWSER_NOTES = pytest.StashKey[list[str]]()
_notes: list[str] = []


def watch(ctx: BrowserContext) -> None:
    """Keep what `ctx`'s pages meet in the running test's browser notes."""
    notes = _notes

    def answered(response: Response) -> None:
        if response.status >= 400:
            notes.append(f"{response.status} {response.request.method} {response.url}")

    def unanswered(request: Request) -> None:
        notes.append(f"no answer ({request.failure}): {request.method} {request.url}")

    def console(message: ConsoleMessage) -> None:
        if message.type in ("error", "warning"):
            notes.append(f"console {message.type}: {message.text} ({message.location['url']})")

    ctx.on("response", answered)
    ctx.on("requestfailed", unanswered)
    ctx.on("console", console)
    ctx.on("page", lambda tab: notes.append(f"tab opened: {tab.url}"))


@pytest.fixture(autouse=True)
def _browser_notes(request: pytest.FixtureRequest) -> Iterator[None]:
    global _notes
    _notes = request.node.stash[BROWSER_NOTES] = []
    yield


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    notes = item.stash.get(BROWSER_NOTES, None)
    if report.failed and notes is not None:
        tabs = [f"tab at {tab.url}" for ctx in _contexts_of(item) for tab in ctx.pages]
        report.sections.append(("what the browser met", "\n".join([*notes, *tabs]) or "nothing"))
    return report


def _contexts_of(item: pytest.Item) -> list[BrowserContext]:
    """The test's browser's profiles (Playwright's own list: no call to the browser, which
    may have closed)."""
    browser = getattr(item, "funcargs", {}).get("browser")
    return [] if browser is None else list(browser.contexts)


# Closing a browser profile has been seen to wait for ever: in teardown, three times in about
# twelve runs of these tests on a busy machine, Playwright's BrowserContext.close (which takes
# no timeout) never returned. A profile not closed by then is left to its browser, whose own close
# (bounded too) or Playwright's end takes it down; the test's result stands.
CLOSE_SECONDS = 30.0


def close_within(thing: Browser | BrowserContext, what: str) -> None:
    """`thing.close()`, given up after `CLOSE_SECONDS`, saying so."""
    # The sync API's own call, `thing._sync(thing._impl_obj.close(...))`, with a time limit
    # (Playwright's private names: without them, a close without one).
    run, impl = getattr(thing, "_sync", None), getattr(thing, "_impl_obj", None)
    if run is None or impl is None:
        thing.close()
        return
    try:
        run(asyncio.wait_for(impl.close(reason=None), CLOSE_SECONDS))
    except TimeoutError:
        sys.stderr.write(f"\n{what}: not closed after {CLOSE_SECONDS:.0f} s; left as it is\n")


@pytest.fixture(scope="module")
def backend() -> str:
    """The servers of the browser tests keep their data in SQLite."""
    return "sqlite"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """A headless Chromium shared by one test module, closed (with Playwright) afterwards."""
    assert CHROMIUM.exists(), (
        f"no Chromium at {CHROMIUM}: run `make test` or apt-get install chromium"
    )
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        try:
            yield chromium
        finally:
            close_within(chromium, "the browser")


def _signed_in(route: Route, request: Request) -> None:
    """Every request to a test server carries that server's admin token (unless the page set
    credentials of its own): the pages' tests are not about signing in; `test_sign_in` is."""
    token = TOKENS_BY_PORT.get(urlsplit(request.url).port or 0)
    if token is None or "authorization" in request.headers:
        route.continue_()
        return
    route.continue_(headers={**request.headers, "authorization": f"Bearer {token}"})


@pytest.fixture
def context(request: pytest.FixtureRequest, browser: Browser) -> Iterator[BrowserContext]:
    """A fresh browser profile per test (its own localStorage), signed in to every test
    server with its admin token, closed afterwards."""
    ctx = browser.new_context(viewport={"width": 1100, "height": 900})
    ctx.set_default_timeout(TIMEOUT_MS)
    watch(ctx)
    ctx.route(re.compile(r"^http://127\.0\.0\.1:\d+/"), _signed_in)
    try:
        yield ctx
    finally:
        # A test's route handler still at work as the test ends (its page reloading, say)
        # fails on the closing profile, and Playwright raises that in the next test: let go.
        for tab in ctx.pages:
            tab.unroute_all(behavior="ignoreErrors")
        ctx.unroute_all(behavior="ignoreErrors")
        close_within(ctx, f"{request.node.nodeid}: its browser profile")


def open_sign_in_link(page: Page, url: str) -> None:
    """Open a one-time sign-in link and answer its question, as a person does."""
    page.goto(url)
    page.get_by_test_id("sign-in-confirm").click()
    page.wait_for_load_state()


def signed_in_tab(
    browser: Browser, server: Server, name: str, viewport: dict[str, int]
) -> tuple[BrowserContext, Page]:
    """A tab in a browser profile of `name`'s own, signed in with a one-time link of theirs as
    a person does (no admin token), its page errors kept in `tab.errors`; and its profile, for
    the caller to close."""
    ctx = browser.new_context(viewport=viewport)  # type: ignore[arg-type]
    ctx.set_default_timeout(TIMEOUT_MS)
    watch(ctx)
    tab = ctx.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    tab.errors = errors  # type: ignore[attr-defined]
    open_sign_in_link(tab, f"{server.url}/login/{login_link(server.db_url, name)}?next=/")
    expect(tab.get_by_test_id("signed-in-as")).to_have_text(f"signed in as {name}")
    return ctx, tab


@pytest.fixture
def people(browser: Browser, server: Server) -> Iterator[People]:
    """A factory: people("ann") → a tab in a browser profile of ann's own, signed in with her
    one-time link (no admin token); `viewport` sizes its window. No tab may have met a page
    error by the end of the test."""
    contexts: list[BrowserContext] = []
    tabs: list[Page] = []

    def sign_in(name: str, viewport: dict[str, int] = WIDE) -> Page:
        ctx, tab = signed_in_tab(browser, server, name, viewport)
        contexts.append(ctx)
        tabs.append(tab)
        return tab

    try:
        yield sign_in
        for tab in tabs:
            assert tab.errors == [], tab.errors  # type: ignore[attr-defined]
    finally:
        for ctx in contexts:
            close_within(ctx, "a person's browser profile")


def cancel_unfinished(server: Server) -> None:
    """Cancel every task not finished yet (and any a finishing one starts), so that a test on
    a shared server starts with no open review."""
    with httpx.Client(base_url=server.url, timeout=10, headers=server.headers) as http:
        while True:
            ids = [
                task["id"]
                for status in ("queued", "running", "waiting_for_review")
                for task in http.get("/api/v1/tasks", params={"status": status}).json()["data"]
            ]
            if not ids:
                return
            for task_id in ids:
                response = http.post(f"/api/v1/tasks/{task_id}/cancel")
                assert response.status_code in (200, 409), response.text  # 409: it finished


@pytest.fixture
def anonymous(browser: Browser) -> Iterator[BrowserContext]:
    """A fresh browser profile that signs in by itself, as a person does."""
    ctx = browser.new_context(viewport={"width": 1100, "height": 900})
    ctx.set_default_timeout(TIMEOUT_MS)
    watch(ctx)
    try:
        yield ctx
    finally:
        close_within(ctx, "the anonymous browser profile")


JS_ERRORS = "_hitl_js_errors"


@pytest.fixture
def page(context: BrowserContext) -> Page:
    """A tab in this test's context, recording uncaught JavaScript errors (see `js_errors`)."""
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    setattr(tab, JS_ERRORS, errors)
    return tab


# Swagger UI draws /docs only once it has parsed its 1.5 MB bundle and resolved the OpenAPI 3.1
# document: about 2 s of the browser's CPU on an idle machine, 13 s with the CPU throttled 6x
# (CDP's Emulation.setCPUThrottlingRate), and past the 15 s the other pages get on a loaded one
# (CI failed so). It draws every operation at once.
DOCS_MS = 90_000


def docs_drawn(page: Page) -> None:
    """Wait until /docs shows the API's operations (the cookbook's /submit among them)."""
    expect(page.locator('.opblock [data-path="/submit"]')).to_be_visible(timeout=DOCS_MS)


def js_errors(page: Page) -> list[str]:
    """The uncaught JavaScript errors of a tab made by the `page` fixture."""
    errors: list[str] = getattr(page, JS_ERRORS)
    return errors


# Each `securitypolicyviolation` event, said on the console (where Chromium also says, in its
# own words, what the policy refused). Run before the page's own scripts, outside its policy.
REPORT_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", function (e) {
  console.error("securitypolicyviolation: " + e.effectiveDirective + " refused " +
                (e.blockedURI || "inline") + " at " + e.sourceFile + ":" + e.lineNumber);
});
"""


@pytest.fixture
def csp_violations(page: Page) -> list[str]:
    """A list that fills with every Content-Security-Policy violation in the `page` tab."""
    seen: list[str] = []
    page.add_init_script(REPORT_VIOLATIONS)

    def on_console(message: ConsoleMessage) -> None:
        text = message.text
        if "Content Security Policy" in text or text.startswith("securitypolicyviolation"):
            seen.append(text)

    page.on("console", on_console)
    return seen
