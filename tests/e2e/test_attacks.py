"""Attacks on hitl in a real browser, by someone who is not supposed to get anywhere.

1. **CSRF.** A victim signs in with a one-time link (a cookie session) and then visits a page
   of the attacker's, which tries every state-changing endpoint with auto-submitted forms (in
   hidden frames and at the top level), `fetch(..., {mode: "no-cors", credentials:
   "include"})`, a CORS "simple" `fetch(..., {credentials: "include"})` and a preflighted JSON
   one. The attacker's page is served from two places:

   - `127.0.0.2` — **another site** (for cookies and SameSite an IP address is its own site,
     so 127.0.0.2 is cross-site to 127.0.0.1). `hitl_session` is a host cookie of 127.0.0.1
     and every attack targets 127.0.0.1, so the browser *would* send it if `SameSite=Lax` did
     not stop it: the server's access log shows each request arrive without it (401; /logout,
     open to all, refuses every other origin with 403). Proof that SameSite holds.
   - `127.0.0.1` on another port — **the same site, another origin** (SameSite ignores
     ports; cookies ignore ports too). Here the browser *does* send the cookie, so only the
     server's Origin check stands between the attacker and the session: every request must be
     refused with 403.

   Afterwards the API (admin token) shows that nothing changed — no task created, nothing
   cancelled, decided or retried, no audit entry — and the victim is still signed in, in the
   browser and on the server. Python then sends each request itself *with* the cookie and a
   foreign (or missing, or `null`) Origin: 403 every time, so the CSRF check holds without
   SameSite too.

2. **XSS.** Script-shaped text in everything a person or a program can put into hitl — a
   task's input (typed on the page, sent through the API as text and as JSON keys and values,
   and through the cookbook's /submit), the output the default flow makes from it, a
   rejection comment, edited outputs (text and JSON), a user's name (shown as "signed in as"
   and as who decided), an `on_behalf_of` name, a task id in the URL, a notification
   channel's name and URL, and a webhook receiver's answer (in the delivery log of
   /settings). Every page is visited;
   nothing runs (`window.__xss`, dialogs), nothing is parsed into elements (the DOM has no
   `img[src=x]`, inline script, event-handler attribute or `javascript:` link), the
   Content-Security-Policy never had to refuse anything, and the text is shown literally.

3. **No secret leaks.** After a session of use — tokens of three kinds, a revoked token, a
   sign-in link used (and reused), a session cookie used by the browser and by a script,
   malformed credentials — neither the server's debug log, nor the whole event log, nor the
   audit log, nor any error body holds a token, a session secret or a link secret.

How each test was shown to fail without its defence (in a scratch copy of the tree, so that
other runs were not disturbed; the tree here was never changed):

- CSRF, same-site: `same_origin` in hitl/api/auth.py made to return True → cancel, retry and
  logout go through (the access log shows 200/303, the task is cancelled) → fails.
- CSRF, cross-site: `samesite="lax"` in hitl/web/routes.py made `samesite="none", secure=True`
  (Chromium keeps Secure cookies of http://127.0.0.1) → the requests arrive with the cookie
  (403s instead of 401s) → fails.
- CSRF from Python: the same `same_origin` change → 200/201/202 instead of 403 → fails;
  with only the notification endpoints in its list (adding and removing a channel, replaying
  a delivery), each of them fails the same way.
- XSS: `node.textContent = ...` in `hitl.el` (hitl/web/static/common.js) made `innerHTML`,
  and `{{ who.name }}` in base.html made `{{ who.name|safe }}` → each makes elements of the
  payloads (and the CSP reports refusing them) → fails.
- Secrets: the `HideSecrets` filter of the access log (hitl/server.py) disabled → the link
  secret shows in the debug log → fails.
"""

from __future__ import annotations

import html
import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from playwright.sync_api import BrowserContext, ConsoleMessage, Dialog, Page, expect

from tests.conftest import Server, Stub, identity_call, login_link, user_token
from tests.e2e.conftest import REPORT_VIOLATIONS, docs_drawn, open_sign_in_link
from tests.e2e.test_browser import TASK_URL
from tests.receiver import Receiver, receiver

pytestmark = pytest.mark.e2e

SHOTS = Path("/tmp/shots")
StartServer = Callable[..., Server]
FLAKY = "flaky=tests.unit.service.flows_for_tests:create_flaky_flow"  # fails once, then works
EVIL_HOOK = "https://evil.example/hook"  # where an attacker would have events sent
# uvicorn's access log: `127.0.0.1:5000 - "POST /submit HTTP/1.1" 403 Forbidden`.
ACCESS = re.compile(r'"(?P<method>[A-Z]+) (?P<path>\S+) HTTP/[0-9.]+" (?P<status>\d{3})')


# --- helpers ----------------------------------------------------------------------------------


def api(server: Server, method: str, path: str, **kwargs: Any) -> httpx.Response:
    """A request with the admin token."""
    return httpx.request(
        method, f"{server.url}{path}", headers=server.headers, timeout=10, **kwargs
    )


def wait_task(server: Server, task_id: str, *statuses: str, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        task: dict[str, Any] = api(server, "GET", f"/api/v1/tasks/{task_id}").json()
        if task["status"] in statuses:
            return task
        assert time.monotonic() < deadline, f"task {task_id} is {task['status']}, not {statuses}"
        time.sleep(0.05)


def new_task(server: Server, value: Any, **extra: Any) -> str:
    response = api(server, "POST", "/api/v1/tasks", json={"input": value, **extra})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def open_review(server: Server, task_id: str) -> str:
    task = wait_task(server, task_id, "waiting_for_review")
    return str(next(r["id"] for r in task["reviews"] if r["status"] == "open"))


def audit(server: Server) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = []
    after = 0
    while True:
        page = api(server, "GET", "/api/v1/audit", params={"after": after, "limit": 1000}).json()
        entries += page["data"]
        if page["next_after"] is None:
            return entries
        after = page["next_after"]


@pytest.fixture
def hook() -> Iterator[Receiver]:
    """A webhook receiver: the channel whose delivery the attacker tries to replay."""
    with receiver() as r:
        yield r


def delivered(server: Server, hook: Receiver) -> str:
    """Add a channel that hears of new tasks, and the id of a delivery sent to it once one
    is: something an attacker could replay."""
    body = {"name": "ops", "kind": "webhook", "url": hook.url, "events": ["task.created"]}
    assert api(server, "POST", "/api/v1/channels", json=body).status_code == 201
    heard = new_task(server, "a task that ops hears of")
    deadline = time.monotonic() + 30
    while True:
        params = {"status": "delivered"}
        rows = api(server, "GET", "/api/v1/deliveries", params=params).json()["data"]
        if rows:
            # Out of the way: the queue holds the review the attacker goes for, only.
            assert api(server, "POST", f"/api/v1/tasks/{heard}/cancel").status_code == 200
            return str(rows[0]["id"])
        assert time.monotonic() < deadline, "no delivery was delivered"
        time.sleep(0.05)


def log_text(server: Server) -> str:
    assert server.log is not None
    return server.log.read_text(errors="replace")


@dataclass
class Site:
    """A web server of the attacker's: it serves `pages` (path → HTML) and nothing else."""

    url: str
    pages: dict[str, str] = field(default_factory=dict)


@contextmanager
def attacker_site(host: str) -> Iterator[Site]:
    site = Site("")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            page = site.pages.get(self.path.split("?")[0])
            body = (page or "not here").encode()
            self.send_response(200 if page is not None else 404)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer((host, 0), Handler)
    site.url = f"http://{host}:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield site
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def sign_in(context: BrowserContext, server: Server, user: str = "admin") -> Page:
    """A person opens a sign-in link: a cookie session in `context`."""
    page = context.new_page()
    open_sign_in_link(page, f"{server.url}/login/{login_link(server.db_url, user)}?next=/")
    expect(page.get_by_test_id("signed-in-as")).to_have_text(f"signed in as {user}")
    return page


def session_cookie(context: BrowserContext) -> str:
    return next(c["value"] for c in context.cookies() if c["name"] == "hitl_session")


# --- 1. CSRF -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """A state-changing endpoint, and a body that would be valid (if it came as JSON)."""

    path: str
    body: dict[str, Any] | None = None

    @property
    def json(self) -> str:
        return json.dumps(self.body or {})

    def plain_field(self) -> tuple[str, str]:
        """A text/plain form field whose `name=value` is JSON: `{..., "pad": "="}`."""
        text = json.dumps({**(self.body or {}), "pad": ""})
        return text[:-2], '"}'


# Run in the attacker's page: every endpoint, every way; the title says when all were tried.
ATTACK_JS = """
const BASE = %(base)s, TARGETS = %(targets)s;
let frames = 0;
function formInFrame(target, enctype) {
  return new Promise(function (done) {
    const name = "f" + (frames++), frame = document.createElement("iframe");
    frame.name = name;
    frame.onload = done;
    setTimeout(done, 5000);
    document.body.appendChild(frame);
    const form = document.createElement("form");
    form.method = "POST"; form.action = BASE + target.path; form.target = name;
    form.enctype = enctype;
    const fields = enctype === "text/plain" ? [target.plain] : Object.entries(target.fields);
    fields.forEach(function (f) {
      const input = document.createElement("input");
      input.type = "hidden"; input.name = f[0]; input.value = f[1];
      form.appendChild(input);
    });
    document.body.appendChild(form);
    form.submit();
  });
}
async function attack() {
  for (const t of TARGETS) {
    const url = BASE + t.path;
    await formInFrame(t, "application/x-www-form-urlencoded");
    await formInFrame(t, "text/plain");
    await fetch(url, {method: "POST", mode: "no-cors", credentials: "include", body: t.json})
      .catch(function () {});
    await fetch(url, {method: "POST", credentials: "include", body: t.json})
      .catch(function () {});
    await fetch(url, {method: "POST", credentials: "include", body: t.json,
                      headers: {"Content-Type": "application/json"}}).catch(function () {});
  }
  document.title = "attacked";
}
attack();
"""
# The same, as a top-level navigation: the form posts and the tab goes to hitl.
TOP_LEVEL = """<!doctype html><title>win a prize</title>
<form method="POST" action="%(action)s">%(fields)s</form>
<script>document.forms[0].submit();</script>"""
# Each endpoint sees: 2 framed forms, a no-cors fetch, a simple fetch, a top-level form.
POSTS_PER_TARGET = 5


def attack_pages(base: str, targets: list[Target]) -> dict[str, str]:
    described = [
        {
            "path": t.path,
            "fields": {k: str(v) for k, v in (t.body or {"x": "1"}).items()},
            "plain": t.plain_field(),
            "json": t.json,
        }
        for t in targets
    ]
    script = ATTACK_JS % {"base": json.dumps(base), "targets": json.dumps(described)}
    pages = {"/": f"<!doctype html><title>cute cats</title><body><script>{script}</script>"}
    for i, t in enumerate(targets):
        fields = "".join(
            f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(str(v))}">'
            for k, v in (t.body or {"x": "1"}).items()
        )
        pages[f"/top/{i}"] = TOP_LEVEL % {"action": html.escape(base + t.path), "fields": fields}
    return pages


def posts_logged(server: Server, since: int) -> list[tuple[str, str, int]]:
    """(method, path, status) of the POST and OPTIONS requests logged after offset `since`."""
    found = []
    for match in ACCESS.finditer(log_text(server)[since:]):
        if match["method"] in ("POST", "OPTIONS"):
            found.append((match["method"], match["path"], int(match["status"])))
    return found


@pytest.mark.parametrize("where", ["cross-site", "same-site"])
def test_csrf_from_another_origin_changes_nothing(
    start_server: StartServer, anonymous: BrowserContext, hook: Receiver, where: str
) -> None:
    # The access log (info) shows how the server answered each of the attacker's requests.
    server = start_server(args=["--flow", FLAKY, "--log-level", "info"])
    delivery = delivered(server, hook)
    waiting = new_task(server, "a task waiting for its review")
    review = open_review(server, waiting)
    failed = new_task(server, "a task that failed", flow="flaky")
    wait_task(server, failed, "failed")

    victim = sign_in(anonymous, server)  # the admin, signed in with a link: a cookie session
    cookie = session_cookie(anonymous)
    tasks_before = api(server, "GET", "/api/v1/tasks", params={"limit": 500}).json()
    channels_before = api(server, "GET", "/api/v1/channels").json()
    audit_before = audit(server)
    targets = [
        Target("/submit", {"data": "csrf via /submit"}),
        Target(f"/feedback/{waiting}", {"feedback": "approved"}),
        Target("/api/v1/tasks", {"input": "csrf via the API"}),
        Target(f"/api/v1/tasks/{waiting}/cancel"),
        Target(f"/api/v1/tasks/{failed}/retry"),
        Target(f"/api/v1/reviews/{review}/decision", {"decision": "approve"}),
        Target("/api/v1/channels", {"name": "evil", "kind": "webhook", "url": EVIL_HOOK}),
        Target(f"/api/v1/deliveries/{delivery}/replay"),
        Target("/logout"),  # last: had it worked, it would hide what came after
    ]

    host = "127.0.0.2" if where == "cross-site" else "127.0.0.1"
    with attacker_site(host) as site:
        site.pages = attack_pages(server.url, targets)
        mark = len(log_text(server))
        evil = anonymous.new_page()
        evil.goto(f"{site.url}/")
        expect(evil).to_have_title("attacked", timeout=60_000)
        for i in range(len(targets)):
            evil.goto(f"{site.url}/top/{i}")
            evil.wait_for_url(lambda url: url.startswith(server.url))
        SHOTS.mkdir(exist_ok=True)
        evil.screenshot(path=str(SHOTS / f"attack-csrf-{where}.png"))

    # The server saw every attempt (the preflighted JSON fetches only as OPTIONS, refused).
    deadline = time.monotonic() + 20
    while True:
        logged = posts_logged(server, mark)
        posts = [(path, status) for method, path, status in logged if method == "POST"]
        if len(posts) >= POSTS_PER_TARGET * len(targets) or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    for target in targets:
        statuses = [status for path, status in posts if path == target.path]
        assert len(statuses) == POSTS_PER_TARGET, (target.path, logged)
        if where == "cross-site":
            # SameSite=Lax: the browser did not send the cookie, so the server saw anonymous
            # requests: 401. /logout is open to all, and refuses any other origin's request
            # whether a cookie came or not: it used to answer a cookie-less one with a
            # redirect that deleted the cookie, which the browser applied to the top-level
            # form's answer, signing the victim out.
            anonymous_answer = 403 if target.path == "/logout" else 401
            assert statuses == [anonymous_answer] * POSTS_PER_TARGET, (target.path, logged)
        else:
            # Same site: the cookie went along; the Origin check refused every one.
            assert statuses == [403] * POSTS_PER_TARGET, (target.path, logged)
    preflights = [status for method, _, status in logged if method == "OPTIONS"]
    assert len(preflights) == len(targets) and all(s >= 400 for s in preflights), logged

    # Nothing changed.
    tasks_after = api(server, "GET", "/api/v1/tasks", params={"limit": 500}).json()
    assert tasks_after["count"] == tasks_before["count"]
    assert {t["id"] for t in tasks_after["data"]} == {t["id"] for t in tasks_before["data"]}
    assert wait_task(server, waiting, "waiting_for_review")["reviews"][0]["status"] == "open"
    assert wait_task(server, failed, "failed")["status"] == "failed"  # a retry would complete it
    assert api(server, "GET", "/api/v1/channels").json() == channels_before  # none added
    # No decision, cancellation, retry, channel, replay or sign-out.
    assert audit(server) == audit_before
    # The victim is still signed in: on the server, and in the browser (its cookie kept).
    still = httpx.get(f"{server.url}/api/v1/tasks", cookies={"hitl_session": cookie}, timeout=10)
    assert still.status_code == 200, still.text
    assert session_cookie(anonymous) == cookie
    victim.goto(f"{server.url}/reviews")
    expect(victim.get_by_test_id("signed-in-as")).to_have_text("signed in as admin")
    expect(victim.get_by_test_id("queue").locator("li")).to_have_count(1)


def test_csrf_refused_even_when_the_cookie_is_sent(
    start_server: StartServer, anonymous: BrowserContext, hook: Receiver
) -> None:
    """No SameSite to help: Python sends the cookie with each request, and well-formed JSON
    bodies, from a foreign origin or none: 403 each time, and nothing changes."""
    server = start_server(args=["--flow", FLAKY])
    delivery = delivered(server, hook)
    waiting = new_task(server, "a task waiting for its review")
    review = open_review(server, waiting)
    failed = new_task(server, "a task that failed", flow="flaky")
    wait_task(server, failed, "failed")
    sign_in(anonymous, server)
    cookie = {"hitl_session": session_cookie(anonymous)}
    tasks_before = api(server, "GET", "/api/v1/tasks").json()["count"]
    audit_before = audit(server)

    port = server.port
    foreign: list[dict[str, str]] = [
        {"Origin": "http://127.0.0.2:8000"},
        {"Origin": f"http://127.0.0.1:{port + 1}"},  # same host, another port: another origin
        {"Origin": f"http://localhost:{port}"},  # another name for the same server
        {"Origin": "null"},  # a sandboxed frame, a data: URL
        {"Origin": f"http://127.0.0.1:{port}.evil.example"},
        {"Origin": f"http://evil.example@127.0.0.1:{port}"},
        {"Referer": "http://127.0.0.2:8000/cats"},  # no Origin: the Referer decides
        {"Referer": f"http://127.0.0.1:{port}.evil.example/"},
        {},  # neither
    ]
    requests: list[tuple[str, str, dict[str, Any] | None]] = [
        ("POST", "/submit", {"data": "csrf via /submit"}),
        ("POST", f"/feedback/{waiting}", {"feedback": "approved"}),
        ("POST", "/api/v1/tasks", {"input": "csrf via the API"}),
        ("POST", f"/api/v1/tasks/{waiting}/cancel", None),
        ("POST", f"/api/v1/tasks/{failed}/retry", None),
        ("POST", f"/api/v1/reviews/{review}/decision", {"decision": "approve"}),
        ("POST", "/api/v1/channels", {"name": "evil", "kind": "webhook", "url": EVIL_HOOK}),
        ("DELETE", "/api/v1/channels/ops", None),
        ("POST", f"/api/v1/deliveries/{delivery}/replay", None),
        ("POST", "/logout", None),
    ]
    channels_before = api(server, "GET", "/api/v1/channels").json()
    with httpx.Client(base_url=server.url, cookies=cookie, timeout=10) as client:
        for method, path, body in requests:
            for headers in foreign:
                answer = client.request(method, path, json=body, headers=headers)
                assert answer.status_code == 403, (method, path, headers, answer.text)
                assert "cross-site request refused" in answer.json()["detail"]
                assert "set-cookie" not in answer.headers
    assert api(server, "GET", "/api/v1/tasks").json()["count"] == tasks_before
    assert wait_task(server, waiting, "waiting_for_review")["reviews"][0]["status"] == "open"
    assert wait_task(server, failed, "failed")["status"] == "failed"
    assert api(server, "GET", "/api/v1/channels").json() == channels_before
    assert audit(server) == audit_before
    # The same request from the server's own origin goes through: the 403s were the CSRF check.
    with httpx.Client(base_url=server.url, cookies=cookie, timeout=10) as client:
        own = client.post(
            f"/api/v1/tasks/{failed}/retry", headers={"Origin": f"http://127.0.0.1:{port}"}
        )
        assert own.status_code == 200, own.text
        assert client.get("/api/v1/tasks").status_code == 200


# --- 2. XSS ------------------------------------------------------------------------------------

PAYLOADS = (
    "<script>window.__xss=1</script>",
    '<img src=x onerror="window.__xss=1">',
    '"><svg onload=window.__xss=1>',
    "javascript:window.__xss=1",
    "{{7*7}}",
    "</textarea></pre><script>alert(1)</script>",
    "<iframe src=javascript:alert(1)>",
    "'-alert(1)-'",
)
# One line, single spaces: the default flow's draft keeps it as it is.
PAYLOAD = " ".join(PAYLOADS)
NAME = '<img src=x onerror="window.__xss=1">"><svg onload=window.__xss=1>{{7*7}}'
JSON_PAYLOAD = {PAYLOAD: [PAYLOAD, {"href": "javascript:window.__xss=1", "<b>bold</b>": 7}]}

# What a payload would leave in the DOM had it been parsed as HTML.
INJECTED = """() => {
  const found = [];
  document.querySelectorAll("*").forEach(function (el) {
    const tag = el.tagName.toLowerCase();
    if (tag === "script" && !el.src) found.push("inline script");
    if (tag === "img" && el.getAttribute("src") === "x") found.push("img src=x");
    if (tag === "iframe") found.push("iframe");
    if (tag === "b" && el.textContent === "bold") found.push("<b>");
    Array.from(el.attributes).forEach(function (a) {
      if (/^on/i.test(a.name)) found.push(tag + " " + a.name);
      if (/^\\s*javascript:/i.test(a.value)) found.push(tag + " " + a.name + "=javascript:");
    });
  });
  return found;
}"""


@dataclass
class Watched:
    """A tab that records what an injection would set off: dialogs, CSP refusals, errors."""

    page: Page
    dialogs: list[str] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)


def watched(context: BrowserContext) -> Watched:
    page = context.new_page()
    seen = Watched(page)
    page.add_init_script(REPORT_VIOLATIONS)

    def on_dialog(dialog: Dialog) -> None:
        seen.dialogs.append(dialog.message)
        dialog.dismiss()

    def on_console(message: ConsoleMessage) -> None:
        text = message.text
        if "Content Security Policy" in text or text.startswith("securitypolicyviolation"):
            seen.violations.append(text)

    page.on("dialog", on_dialog)
    page.on("console", on_console)
    return seen


def assert_inert(tab: Watched, shot: str) -> None:
    """Nothing ran, nothing was parsed into elements, nothing was refused."""
    page = tab.page
    page.wait_for_timeout(300)  # time for an onerror/onload to fire, and be reported
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / f"attack-xss-{shot}.png"), full_page=True)
    assert page.evaluate("() => window.__xss") is None, shot
    assert tab.dialogs == [], shot
    assert page.evaluate(INJECTED) == [], shot
    assert tab.violations == [], shot
    protocols = page.evaluate("() => Array.from(document.links, a => a.protocol)")
    assert set(protocols) <= {"http:"}, (shot, protocols)


def literal_json(value: Any) -> str:
    """A string as JSON.stringify shows it inside a JSON document (quotes escaped)."""
    return json.dumps(value, ensure_ascii=False)[1:-1]


def test_script_shaped_text_is_shown_never_run(
    start_server: StartServer, anonymous: BrowserContext, stub: tuple[Stub, str]
) -> None:
    server = start_server()
    identity_call(server.db_url, lambda i: i.add_user(NAME, ["admin"]))
    SHOTS.mkdir(exist_ok=True)

    # Typed on the page by a user whose name is a payload: input, output, comment, edit.
    tab = watched(anonymous)
    page = tab.page
    page.goto(f"{server.url}/login/{login_link(server.db_url, NAME)}?next=/")
    expect(page.get_by_test_id("sign-in-name")).to_have_text(NAME)  # the question, literally
    page.get_by_test_id("sign-in-confirm").click()
    expect(page.get_by_test_id("signed-in-as")).to_have_text(f"signed in as {NAME}")
    page.get_by_test_id("input").fill(PAYLOAD)
    page.get_by_test_id("submit").click()
    page.wait_for_url(TASK_URL)
    typed = page.url
    expect(page.get_by_test_id("status")).to_have_text("waiting for review")
    expect(page.get_by_test_id("input")).to_have_text(PAYLOAD)
    expect(page.get_by_test_id("round-output")).to_have_text(f"Revision 1: {PAYLOAD}")
    expect(page.get_by_test_id("edit")).to_have_value(f"Revision 1: {PAYLOAD}")
    page.get_by_test_id("comment").fill(PAYLOAD)
    page.get_by_test_id("reject").click()
    expect(page.get_by_test_id("round-output")).to_have_count(2)
    expect(page.get_by_test_id("review-changes")).to_contain_text(f"(you asked: “{PAYLOAD}”)")
    expect(page.get_by_test_id("round-output").nth(1)).to_contain_text(
        f"Addressed 1 comment(s): {PAYLOAD}"
    )
    page.get_by_test_id("edit").fill(f"Edited: {PAYLOAD}")
    page.get_by_test_id("approve-edited").click()
    expect(page.get_by_test_id("status")).to_have_text("completed")
    expect(page.get_by_test_id("result")).to_have_text(f"Edited: {PAYLOAD}")
    expect(page.get_by_test_id("round-decision").first).to_have_text(
        f"Rejected by {NAME} — “{PAYLOAD}”"
    )
    expect(page.get_by_test_id("round-decision").nth(1)).to_have_text(
        f"Edited and approved by {NAME}"
    )
    expect(page.get_by_test_id("timeline")).to_contain_text(f"reject: “{PAYLOAD}” by {NAME}")
    assert_inert(tab, "typed-task")

    # Through the API: JSON input (payload keys and values), JSON and text edits, a comment,
    # and decisions on behalf of the payload-named user.
    as_json = new_task(server, JSON_PAYLOAD)
    api(
        server,
        "POST",
        f"/api/v1/reviews/{open_review(server, as_json)}/decision",
        json={"decision": "edit", "edited_output": JSON_PAYLOAD, "on_behalf_of": NAME},
    ).raise_for_status()
    as_text = new_task(server, PAYLOAD)
    decided = api(
        server,
        "POST",
        f"/api/v1/reviews/{open_review(server, as_text)}/decision",
        json={"decision": "reject", "comment": PAYLOAD, "on_behalf_of": NAME},
    )
    assert decided.json()["on_behalf_of"] == NAME
    edited_text = new_task(server, "to be edited")
    api(
        server,
        "POST",
        f"/api/v1/reviews/{open_review(server, edited_text)}/decision",
        json={"decision": "edit", "edited_output": PAYLOAD},
    ).raise_for_status()
    cookbook = api(server, "POST", "/submit", json={"data": PAYLOAD}).json()["task_id"]
    wait_task(server, as_json, "completed")
    wait_task(server, edited_text, "completed")
    open_review(server, as_text)  # round 2 waits, its output quoting the comment
    open_review(server, cookbook)

    # Every page, as the payload-named user.
    tab = watched(anonymous)
    page = tab.page
    page.goto(f"{server.url}/")
    expect(page.get_by_test_id("signed-in-as")).to_have_text(f"signed in as {NAME}")
    rows = page.get_by_test_id("task-rows")
    expect(rows).to_contain_text(PAYLOAD[:60])
    expect(rows).to_contain_text(literal_json(PAYLOAD)[:20])  # the JSON input
    assert_inert(tab, "index")

    page.goto(typed)
    expect(page.get_by_test_id("result")).to_have_text(f"Edited: {PAYLOAD}")
    expect(page.get_by_test_id("live")).to_have_text("finished")
    assert_inert(tab, "task-typed")

    page.goto(f"{server.url}/tasks/{as_json}")
    expect(page.get_by_test_id("status")).to_have_text("completed")
    expect(page.get_by_test_id("input")).to_contain_text(literal_json(PAYLOAD))
    expect(page.get_by_test_id("result")).to_contain_text(literal_json(PAYLOAD))
    expect(page.get_by_test_id("result")).to_contain_text('"<b>bold</b>": 7')
    # The draft is str(dict): Python's quoting, but the tags as they came.
    expect(page.get_by_test_id("round-output")).to_contain_text(PAYLOADS[0])
    assert_inert(tab, "task-json")

    page.goto(f"{server.url}/tasks/{as_text}")
    expect(page.get_by_test_id("round-output")).to_have_count(2)
    expect(page.get_by_test_id("round-decision").first).to_contain_text(f"“{PAYLOAD}”")
    expect(page.get_by_test_id("edit")).to_have_value(re.compile(re.escape(PAYLOAD)))
    assert_inert(tab, "task-comment")

    page.goto(f"{server.url}/tasks/{edited_text}")
    expect(page.get_by_test_id("result")).to_have_text(PAYLOAD)
    assert_inert(tab, "task-edited")

    page.goto(f"{server.url}/reviews")
    queue = page.get_by_test_id("queue")
    expect(queue.locator("li")).to_have_count(2)
    expect(queue).to_contain_text(f"Revision 1: {PAYLOAD}")
    expect(queue).to_contain_text(f"Revision 2: {PAYLOAD}")
    assert_inert(tab, "reviews")

    # The cookbook's page: what it submits comes back to it in the stream.
    page.goto(f"{server.url}/classic")
    page.locator("#taskInput").fill(PAYLOAD)
    page.locator("#submitBtn").click()
    expect(page.locator("#outputToReview")).to_have_text(f"Revision 1: {PAYLOAD}")
    page.locator("#approveBtn").click()
    expect(page.locator("#finalResult")).to_have_text(f"Revision 1: {PAYLOAD}")
    assert_inert(tab, "classic")

    # Reflected: a task id and a `next` shaped like payloads (a path segment has no "/").
    reflected = '"><img src=x onerror=window.__xss=1>'
    answer = page.goto(f"{server.url}/tasks/{quote(reflected, safe='')}")
    assert answer is not None and answer.status == 404
    expect(page.get_by_test_id("missing-id")).to_have_text(reflected)  # as text, escaped
    assert_inert(tab, "task-reflected")

    page.goto(f"{server.url}/login?next={quote(PAYLOAD, safe='')}")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    expect(page.get_by_test_id("signed-in-as")).to_have_text(f"signed in as {NAME}")
    assert_inert(tab, "login")
    page.goto(f"{server.url}/login/{quote(reflected, safe='')}?next={quote(PAYLOAD, safe='')}")
    expect(page.get_by_test_id("login-problem")).to_contain_text("unknown, used or expired")
    assert_inert(tab, "login-link")

    page.goto(f"{server.url}/docs")
    docs_drawn(page)
    assert_inert(tab, "docs")

    # The settings page: a refusal that quotes the URL typed, a channel named and addressed
    # by payloads, and a receiver that answers with one (the delivery log shows the answer).
    receiver_answer, receiver_url = stub
    receiver_answer.status, receiver_answer.body = 500, PAYLOAD.encode()
    page.goto(f"{server.url}/settings")
    page.get_by_test_id("ch-name").fill(NAME)
    page.get_by_test_id("ch-url").fill("javascript:window.__xss=1")
    page.get_by_test_id("add-submit").click()
    expect(page.get_by_test_id("add-error")).to_contain_text("not 'javascript:window.__xss=1'")
    hook_url = f'{receiver_url}/?q="><svg/onload=window.__xss=1>'
    page.get_by_test_id("ch-url").fill(hook_url)
    page.get_by_test_id("add-submit").click()
    expect(page.get_by_test_id("secret-name")).to_have_text(NAME)
    expect(page.get_by_test_id("channel-url")).to_have_text(hook_url)
    expect(page.get_by_test_id("channels")).to_contain_text(f"Added by {NAME}")
    new_task(server, "heard by the payload-named channel")
    answer = page.get_by_test_id("delivery-rows").locator(".why")
    expect(answer).to_have_attribute("title", PAYLOAD)
    expect(answer).to_have_text(PAYLOAD[:79] + "…")
    assert_inert(tab, "settings")


# --- 3. secrets --------------------------------------------------------------------------------

SECRET_SHAPED = re.compile(r"hitl_[A-Za-z0-9_-]{20,}")


def read_events(server: Server, until: Callable[[dict[str, Any]], bool]) -> str:
    """The whole event log as SSE text, from the first event up to the one `until` picks."""
    text: list[str] = []
    deadline = time.monotonic() + 30
    with httpx.stream(
        "GET", f"{server.url}/api/v1/events?after=0", headers=server.headers, timeout=10
    ) as stream:
        for line in stream.iter_lines():
            text.append(line)
            if line.startswith("data: ") and until(json.loads(line[6:])):
                return "\n".join(text)
            assert time.monotonic() < deadline, "\n".join(text)
    raise AssertionError("the event stream ended early:\n" + "\n".join(text))


def test_no_secret_in_logs_events_or_answers(
    start_server: StartServer, anonymous: BrowserContext
) -> None:
    server = start_server(args=["--log-level", "debug"], heartbeat_seconds=1)
    admin = server.token
    assert admin is not None
    rita = user_token(server.db_url, "rita", "reviewer", "submitter")
    service, _ = identity_call(server.db_url, lambda i: i.create_token("ci-bot", ["submitter"]))
    old, _ = identity_call(server.db_url, lambda i: i.create_token("old-bot", ["submitter"]))
    identity_call(server.db_url, lambda i: i.revoke_token("old-bot"))
    bodies: list[str] = []

    def call(method: str, path: str, headers: dict[str, str], **kw: Any) -> httpx.Response:
        response = httpx.request(method, f"{server.url}{path}", headers=headers, timeout=10, **kw)
        bodies.append(response.text + json.dumps(dict(response.headers)))
        return response

    # Tokens at work; and the ways to get them wrong.
    mine = call("POST", "/api/v1/tasks", {"Authorization": f"Bearer {rita}"}, json={"input": "r"})
    assert mine.status_code == 201
    task = mine.json()["id"]
    assert call(
        "POST", "/submit", {"Authorization": f"Bearer {service}"}, json={"data": "s"}
    ).is_success
    for headers in (
        {"Authorization": f"Bearer {old}"},  # revoked
        {"Authorization": f"Bearer {admin}x"},
        {"Authorization": f"Basic {admin}"},
        {"Authorization": f"{admin}"},
        {"Authorization": f"Bearer {admin} {rita}"},
    ):
        refused = call("GET", "/api/v1/tasks", headers)
        assert refused.status_code == 401, refused.text
    refused = call(
        "GET", "/api/v1/tasks", {"Authorization": f"Bearer {old}", "Accept": "text/html"}
    )
    assert refused.status_code == 401

    # A person: a sign-in link, a session cookie (the browser's, then a script's), sign-out.
    link = login_link(server.db_url, "rita")
    page = anonymous.new_page()
    open_sign_in_link(page, f"{server.url}/login/{link}?next=/tasks/{task}")
    expect(page.get_by_test_id("signed-in-as")).to_have_text("signed in as rita")
    session = session_cookie(anonymous)
    assert page.evaluate("() => document.cookie") == ""  # HttpOnly: no script reads it
    # The default flow lets the submitter decide her own review (the cookbook's demo).
    expect(page.get_by_test_id("approve")).to_be_visible()
    page.get_by_test_id("approve").click()
    expect(page.get_by_test_id("status")).to_have_text("completed")
    shown = [page.content()]
    cookie = {"Cookie": f"hitl_session={session}"}
    assert call("GET", "/api/v1/tasks", cookie).status_code == 200
    cross = call("POST", "/api/v1/tasks", {**cookie, "Origin": "http://evil"}, json={"input": 1})
    assert cross.status_code == 403
    reused = anonymous.new_page()
    reused.goto(f"{server.url}/login/{link}")
    expect(reused.get_by_test_id("login-problem")).to_be_visible()
    shown.append(reused.content())
    page.get_by_test_id("sign-out").click()
    page.wait_for_url(re.compile(r"/login$"))
    shown.append(page.content())
    ended = call("GET", "/api/v1/tasks", cookie)
    assert ended.status_code == 401 and "session has ended" in ended.text
    assert call("GET", "/api/v1/tasks", {**cookie, "Accept": "text/html"}).status_code == 303
    wrong_link = call("GET", f"/login/{link}x", {})
    assert wrong_link.status_code == 400

    # A last event to read up to: the whole log is then behind it.
    marker = new_task(server, "the last one")
    open_review(server, marker)
    api(server, "POST", f"/api/v1/tasks/{marker}/cancel").raise_for_status()
    events = read_events(
        server, lambda data: data.get("task_id") == marker and data.get("status") == "cancelled"
    )
    assert events.count("event: task.created") == 3  # all of it: rita's, the service's, the last
    trail = json.dumps(audit(server))
    assert "sign_in" in trail and "sign_out" in trail and "token.revoke" in trail

    time.sleep(0.5)  # the last access-log lines
    log = log_text(server)
    assert '"GET /api/v1/tasks HTTP/1.1" 401' in log  # the access log was on
    secrets = {"admin token": admin, "rita's token": rita, "service token": service}
    secrets |= {"revoked token": old, "sign-in link": link, "session": session}
    places = {"log": log, "events": events, "audit": trail, "answers": "\n".join(bodies)}
    places["pages"] = "\n".join(shown)
    for place, text in places.items():
        for what, secret in secrets.items():
            assert secret not in text, f"the {what} is in the {place}"
        assert not SECRET_SHAPED.search(text), (place, SECRET_SHAPED.search(text))
    # The link asked (GET), used (POST), asked again once used, and a wrong one.
    assert log.count("/login/[secret]") == 4
