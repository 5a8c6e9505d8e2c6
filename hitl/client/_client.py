"""`Client` and `AsyncClient`: the hitl HTTP API from Python, sync and async.

Both take the server's base URL (else `HITL_SERVER`, else http://127.0.0.1:8000) and, to
sign in, an API token (`hitl token create` makes one): `token=`, or else the `HITL_TOKEN`
environment variable. Given either, every request sends `Authorization: Bearer <token>`; the
token is never printed, logged or put in an error message. `token=""` sends none, whatever
the environment says.

Every answer is a typed model (`hitl.client.models`); every failure a `HitlError`
(`hitl.client._exceptions` draws the tree). Each call is described once (`_Call`) and sent
by either class; the waits (`ask`, `wait_for_review`, `wait_for_result`) follow the task's
event stream, reconnecting from the last event they saw (`_Stream`) when it breaks.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import os
import re
import ssl
import time
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Generator,
    Iterable,
    Iterator,
    Mapping,
)
from dataclasses import dataclass, field
from typing import Generic, TypeGuard, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, JsonValue, ValidationError
from typing_extensions import Unpack

from hitl.client._exceptions import (
    AWAY_STATUSES,
    BadServerURL,
    HitlAPIError,
    HitlConnectionError,
    HitlError,
    HitlProtocolError,
    TaskEnded,
    WaitTimeout,
)
from hitl.client.models import (
    Answer,
    AuditLog,
    Channel,
    ChannelCreated,
    Channels,
    Deliveries,
    Delivery,
    Event,
    Review,
    ReviewCreated,
    ReviewOptions,
    ReviewPage,
    Task,
    TaskPage,
)

logger = logging.getLogger(__name__)

TOKEN_VARIABLE = "HITL_TOKEN"
SERVER_VARIABLE = "HITL_SERVER"
DEFAULT_URL = "http://127.0.0.1:8000"
# A followed stream that sends nothing, not even the server's heartbeat (every 15 s by
# default), for this long is taken as lost, and opened again.
STREAM_SILENCE = 60.0
# Pauses between attempts to reach a server that went away: doubling, up to the last.
FIRST_PAUSE, LONGEST_PAUSE = 0.05, 2.0
# Answers to a stream's request that a later attempt may not get: the database is away, a
# proxy in front lost the server, too many streams are open.
RETRIED_STATUSES = AWAY_STATUSES | {429}
FINAL_EVENTS = {"task.completed", "task.failed", "task.cancelled"}
# A wait ends at most about this late (seconds), while its stream's heartbeats keep coming.
REOPEN_SLACK = 1.0

M = TypeVar("M", bound=BaseModel)
Params = Mapping[str, str | int | bool]


# -- what every request shares -------------------------------------------------------------------


def _server_url(url: str | None) -> str:
    """The server's base URL: `url`, else HITL_SERVER, else the default; BadServerURL if it is
    not http(s)://host[:port][/path]."""
    if url is not None and not isinstance(url, str):
        raise BadServerURL(f"bad server URL {url!r}: give it as text, as http://host:port")
    url = (url or os.environ.get(SERVER_VARIABLE) or DEFAULT_URL).strip().rstrip("/")
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise BadServerURL(f"bad server URL {url!r} ({exc}): use http://host:port") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise BadServerURL(f"bad server URL {url!r}: use http://host:port (or https://)")
    if parsed.port is not None and not 0 < parsed.port < 65536:
        raise BadServerURL(f"bad server URL {url!r}: its port must be from 1 to 65535")
    if parsed.userinfo:  # httpx would send it as Basic auth, in place of the token
        raise BadServerURL(
            f"bad server URL {parsed.copy_with(username=None, password=None)!s} with a user "
            "name or password in it: give the address alone, and the token as the token"
        )
    if "?" in url or "#" in url:
        raise BadServerURL(f"bad server URL {url!r}: give the address with no '?' or '#' part")
    return url


def _headers(token: str | None, headers: Mapping[str, str] | None) -> httpx.Headers:
    """`headers`, with `Authorization: Bearer <token>` when there is a token: `token`, else
    (unless `headers` has its own `Authorization`) the `HITL_TOKEN` variable."""
    merged = httpx.Headers(headers)
    if token is None:
        if "Authorization" in merged:
            return merged
        token = os.environ.get(TOKEN_VARIABLE)
    token = (token or "").strip()
    if token:
        # httpx would put a bad header value into its error message: say what is wrong
        # here, without the token.
        if not (token.isascii() and token.isprintable()) or " " in token:
            raise ValueError(
                "the token is not one: a token is one word of printable ASCII characters, "
                "as `hitl token create` printed it"
            )
        merged["Authorization"] = f"Bearer {token}"
    return merged


NO_ID = "the id is empty: give a task's or a review's id (or a part of a task's)"
NO_CHANNEL = "the name is empty: give a channel's name"


def _id(value: str, empty: str = NO_ID) -> str:
    """An id as one path segment: whatever it holds ('/', '..') cannot reach another route;
    an empty one (which would name the list, not an item) is a ValueError saying `empty`,
    sent nowhere."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise ValueError(f"an id is text, not {type(value).__name__} {value!r}")
    if not value:
        raise ValueError(empty)
    return quote(value, safe="").replace(".", "%2E")


def _reason(exc: Exception) -> str:
    """Why a connection failed, in the system's words ("Connection refused"), the same for the
    sync client and the async one (whose own words are "All connection attempts failed")."""
    cause: BaseException = exc
    while cause.__cause__ is not None or cause.__context__ is not None:
        cause = cause.__cause__ or cause.__context__  # type: ignore[assignment]
    if isinstance(cause, ConnectionError) and cause.errno:  # not TLS's errors: its own words
        return os.strerror(cause.errno)
    text = str(exc) or type(exc).__name__
    return re.sub(r"^\[Errno -?\d+\] ", "", text)


def _unreachable(url: str, exc: httpx.RequestError) -> HitlConnectionError:
    if isinstance(exc, httpx.ConnectError):
        message = f"no hitl server answers at {url} ({_reason(exc)})"
    elif isinstance(exc, httpx.TimeoutException):
        message = f"the hitl server at {url} did not answer in time"
    else:
        message = f"talking to the hitl server at {url} failed: {_reason(exc)}"
    return HitlConnectionError(message, url, exc)


def _said(response: httpx.Response) -> str:
    """An answer with no `detail`, in one line: its text if short and plain (hitl's own 500
    says "Internal Server Error"), cut if long; a web page is named, not shown."""
    line = " ".join(response.text.split())
    if not line:
        return response.reason_phrase
    if _web_page(response):
        url = response.request.url.copy_with(query=None)
        return (
            f"{response.reason_phrase}: {url} answered with a web page, not as a hitl server "
            "does: check the server's address, or the proxy in front of it"
        )
    return line if len(line) <= 200 else line[:200] + "…"


def _web_page(response: httpx.Response) -> bool:
    kind = response.headers.get("content-type", "").partition(";")[0].strip().lower()
    return "html" in kind or response.text.lstrip().startswith("<")


def _api_error(response: httpx.Response) -> HitlAPIError | HitlProtocolError:
    """The error an error answer is: hitl's (HitlAPIError, with its status and detail), or,
    for a web page, some other server's (not hitl, or a proxy in front of it: a
    HitlProtocolError; but a gateway's 502, 503 or 504 is an HitlAPIError, which the waits
    retry, as hitl behind a proxy answers while it restarts)."""
    if _web_page(response) and response.status_code not in RETRIED_STATUSES:
        where = str(response.request.url.copy_with(query=None))
        return HitlProtocolError(f"{response.status_code} {_said(response)}", where)
    try:
        body = response.json()
    except ValueError:
        body = None
    detail = body.get("detail") if isinstance(body, dict) else None
    text = str(detail) if detail else _said(response)
    url = response.request.url.copy_with(query=None)
    segments = url.raw_path.decode("ascii").split("/")
    if any("%2F" in part or part in ("%2E", "%2E%2E") for part in segments) and (
        response.is_redirect or text == "Not Found"
    ):
        # An id given by the caller that no route can take (`_id`), answered as no route (a
        # 404, or a redirect to the path without its slash): no such item.
        return HitlAPIError(404, NO_SUCH_ID)
    if response.is_redirect:  # the API redirects nothing: this is not its address
        return HitlProtocolError(
            f"{url} answered with a redirect to {response.headers.get('location', '?')}, not "
            "as a hitl server does: give the server's own address (as http://127.0.0.1:8000)",
            str(url),
        )
    if response.status_code == 404 and text == "Not Found":  # no such route, not no such task
        text = (
            f"nothing of the hitl API is at {url}: give the server's own address (as "
            "http://127.0.0.1:8000), with no path"
        )
    return HitlAPIError(response.status_code, text)


NO_SUCH_ID = "nothing has that id: an id holds no '/', and is neither '.' nor '..'"


def _parse(response: httpx.Response, model: type[M], url: str) -> M:
    if response.is_error or response.is_redirect:
        raise _api_error(response)
    try:
        return model.model_validate_json(response.content)
    except ValidationError as exc:
        problem = exc.errors()[0]
        where = ".".join(str(part) for part in problem["loc"]) or "the body"
        raise HitlProtocolError(
            f"{url} answered, but not as a hitl server does ({where}: {problem['msg']}): "
            "check the server's URL",
            url,
        ) from None


def _params(**values: str | int | bool | None) -> dict[str, str | int | bool]:
    return {k: v for k, v in values.items() if v is not None}


def _body(**values: JsonValue) -> dict[str, JsonValue]:
    return {k: v for k, v in values.items() if v is not None}


@dataclass(frozen=True)
class _Call(Generic[M]):
    """One request, and the model of its answer."""

    method: str
    path: str
    model: type[M]
    params: Params | None = None
    body: dict[str, JsonValue] | None = None
    headers: Mapping[str, str] | None = None


def _create_task(
    input: JsonValue, flow: str | None, key: str | None, assignees: list[str] | None
) -> _Call[Task]:
    headers = {"Idempotency-Key": key} if key else None
    body = {"input": input, **_body(flow=flow, assignees=_list(assignees))}
    return _Call("POST", "/api/v1/tasks", Task, body=body, headers=headers)


def _list(values: list[str] | None) -> list[JsonValue] | None:
    return list(values) if values is not None else None


def _create_review(
    output: JsonValue, key: str | None, options: ReviewOptions
) -> _Call[ReviewCreated]:
    headers = {"Idempotency-Key": key} if key else None
    body = {"output": output, **{name: _json(value) for name, value in options.items()}}
    return _Call("POST", "/api/v1/reviews", ReviewCreated, body=body, headers=headers)


def _json(value: object) -> JsonValue:
    """An option as JSON: form fields as objects (without their defaults), tuples as lists."""
    if isinstance(value, BaseModel):
        dumped: JsonValue = value.model_dump(mode="json", exclude_defaults=True)
        return dumped
    if isinstance(value, Mapping):
        return {str(k): _json(v) for k, v in value.items()}
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    if isinstance(value, Iterable):
        return [_json(v) for v in value]
    raise TypeError(f"not a JSON value: {value!r}")


def _list_reviews(
    status: str | None,
    limit: int,
    offset: int,
    flow: str | None,
    q: str | None,
    mine: bool,
    sort: str | None,
    decidable: bool,
) -> _Call[ReviewPage]:
    params = _params(
        status=status,
        limit=limit,
        offset=offset,
        flow=flow,
        q=q,
        mine=mine or None,
        sort=sort,
        decidable=decidable or None,
    )
    return _Call("GET", "/api/v1/reviews", ReviewPage, params=params)


def _decide(
    review_id: str,
    decision: str,
    comment: str | None,
    edited_output: JsonValue,
    round: int | None,
    content_hash: str | None,
    form: Mapping[str, JsonValue] | None,
) -> _Call[Review]:
    """A decision; `round` and `content_hash` (from the review shown) make a decision on a
    newer round or other content a 409 rather than a decision on what was not seen."""
    body = _body(
        decision=decision,
        comment=comment,
        edited_output=edited_output,
        round=round,
        content_hash=content_hash,
        form=dict(form) if form is not None else None,
    )
    return _Call("POST", f"/api/v1/reviews/{_id(review_id)}/decision", Review, body=body)


def _answer(task_id: str, result: JsonValue) -> Answer:
    if not isinstance(result, dict):
        raise HitlProtocolError(f"task {task_id} has no decision for a result: is it a review?")
    return Answer.model_validate({**result, "task_id": task_id})


def _settled(task: Task) -> Answer:
    """The answer of a finished standalone review; TaskEnded if it has none."""
    if task.status == "completed":
        return _answer(task.id, task.result)
    why = f": {task.error}" if task.error else ""
    raise TaskEnded(f"task {task.id} {task.status} before its review was decided{why}", task)


def _stream_timeout(timeout: httpx.Timeout, read: float | None) -> httpx.Timeout:
    """The client's timeouts, but a stream may wait `read` seconds (None: for ever) for data."""
    if read is not None and not (_seconds(read, zero=False) and math.isfinite(read)):
        raise ValueError(
            "read_timeout: give the seconds the stream may be silent (a number above 0), or "
            f"None to wait for ever; not {read!r}"
        )
    return httpx.Timeout(connect=timeout.connect, read=read, write=timeout.write, pool=timeout.pool)


class _SSE:
    """Parses `text/event-stream` lines into events."""

    def __init__(self) -> None:
        self.id: int | None = None
        self.type = "message"
        self.data: list[str] = []

    def feed(self, line: str) -> Event | None:
        if not line:
            if not self.data:
                return None
            data = json.loads("\n".join(self.data))
            event = Event(id=self.id, type=self.type, data=data)
            self.type, self.data = "message", []
            return event
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "id" and value.isdigit():
            self.id = int(value)
        elif name == "event":
            self.type = value
        elif name == "data":
            self.data.append(value)
        return None


# -- following a task's events across reconnects -------------------------------------------------


class _Reopen(Exception):
    """Open the stream again from the last event: the wait ends before a read would."""


class _Lost(Exception):
    """The stream could not be opened now, but may be later (a 503, say): `error`."""

    def __init__(self, error: HitlAPIError, retry_after: float = 0.0) -> None:
        self.error, self.retry_after = error, retry_after
        super().__init__(str(error))


def _seconds(value: object, zero: bool) -> TypeGuard[int | float]:
    """Whether `value` is a number of seconds (a bool is not): above 0, or, with `zero`, 0 too,
    and no whole number past a float's range (that no clock can count)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    try:
        float(value)
    except OverflowError:
        return False
    return value >= 0 if zero else value > 0


def _request_timeout(timeout: object) -> float | httpx.Timeout | None:
    """A client's `timeout`, checked: seconds for each request, an httpx.Timeout, or None."""
    if timeout is None or isinstance(timeout, httpx.Timeout):
        return timeout
    if _seconds(timeout, zero=False):
        return float(timeout)
    raise ValueError(
        "timeout: give the seconds each request may take (a number above 0), an httpx.Timeout, "
        f"or None; not {timeout!r}"
    )


def _check_timeout(timeout: object) -> None:
    """A wait's `timeout`, checked before anything is done: seconds, or None (for ever)."""
    if timeout is not None and not _seconds(timeout, zero=True):
        raise ValueError(
            f"timeout: give the seconds to wait (a number, 0 or more), or None to wait for "
            f"ever; not {timeout!r}"
        )


@dataclass
class _Stream:
    """One task's stream as a waiter follows it: where it is in the log (the last event
    seen, sent as `Last-Event-ID` on reconnecting), until when it may wait, and how long to
    pause before the next attempt. `what` says what was waited for, in a WaitTimeout.
    `patience`: the seconds the server may stay away (no stream opened) before the error
    met last is raised; None: as long as the wait lasts."""

    task_id: str
    url: str
    timeout: float | None
    what: str
    last: int = 0
    patience: float | None = None
    away_since: float | None = field(default=None, init=False)
    last_type: str | None = None
    failures: int = 0
    until: float | None = field(init=False)
    read_for: float = STREAM_SILENCE  # the read timeout of the connection open now
    parser: _SSE = field(default_factory=_SSE)

    def __post_init__(self) -> None:
        _check_timeout(self.timeout)
        self.until = time.monotonic() + self.timeout if self.timeout is not None else None

    @property
    def path(self) -> str:
        return f"/api/v1/tasks/{_id(self.task_id)}/events"

    def headers(self) -> dict[str, str]:
        return {"Last-Event-ID": str(self.last)} if self.last else {}

    def remaining(self) -> float | None:
        return None if self.until is None else max(0.0, self.until - time.monotonic())

    def http_timeout(self, timeout: httpx.Timeout) -> httpx.Timeout:
        """The client's timeouts, none longer than the wait has left; a read waits at most
        STREAM_SILENCE (the stream is then taken as lost)."""
        left = self.remaining()
        self.read_for = STREAM_SILENCE if left is None else max(min(STREAM_SILENCE, left), 0.001)
        if left is None:
            return _stream_timeout(timeout, self.read_for)
        connect = min(timeout.connect or self.read_for, self.read_for)
        return httpx.Timeout(connect=connect, read=self.read_for, write=timeout.write, pool=connect)

    def refused(self, response: httpx.Response) -> None:
        """An error answer to opening the stream: HitlAPIError, or _Lost if worth retrying."""
        error = _api_error(response)
        if response.status_code not in RETRIED_STATUSES or not isinstance(error, HitlAPIError):
            raise error
        after = response.headers.get("Retry-After", "")
        raise _Lost(error, float(after) if after.isdigit() else 0)

    def opened(self) -> None:
        self.parser = _SSE()

    def heard(self) -> None:
        """The stream brought something (an event, a heartbeat): the server is back. (Not
        its opening alone: a server or proxy that opens streams and drops them at once is
        still away.)"""
        if self.failures:
            logger.info("following task %s again, from event %d", self.task_id, self.last)
        self.failures = 0
        self.away_since = None

    def feed(self, line: str) -> Event | None:
        """The event that `line` completes, if any. Past the wait's end, WaitTimeout; and a
        connection whose reads may outlast the wait (a heartbeat comes every few seconds) is
        opened again (`_Reopen`), with reads that end with the wait."""
        left = self.remaining()
        if left is not None:
            if left <= 0:
                raise self.over()
            if self.read_for - left > max(REOPEN_SLACK, left / 4):
                raise _Reopen
        if self.away_since is not None or self.failures:
            self.heard()
        event = self.parser.feed(line)
        if event is not None:
            if event.id is not None:
                self.last = event.id
            self.last_type = event.type
        return event

    def ended(self) -> bool:
        """Whether the stream, which the server closed, ended at the task's final event (the
        server ends a task's stream just after it)."""
        return self.last_type in FINAL_EVENTS

    def lost(self, error: HitlError, at_least: float = 0.0) -> float:
        """How long to pause before trying again, after `error`; WaitTimeout if the wait is
        over, and `error` itself once the server stayed away longer than `patience`."""
        left = self.remaining()
        if left is not None and left <= 0:
            raise self.over()
        now = time.monotonic()
        if self.away_since is None:
            self.away_since = now
        elif self.patience is not None and now - self.away_since >= self.patience:
            raise error from None
        if self.failures == 0:
            said = str(error)
            logger.warning(
                "lost the event stream of task %s%s (%s); trying again from event %d%s",
                self.task_id,
                "" if self.url in said else f" at {self.url}",  # (said once)
                said,
                self.last,
                "" if self.patience is None else f", for up to {self.patience:g} s",
            )
        pause = max(at_least, min(FIRST_PAUSE * 2.0**self.failures, LONGEST_PAUSE))
        self.failures += 1
        if self.patience is not None:  # a last try as the patience ends (not past it)
            pause = min(pause, max(0.0, self.away_since + self.patience - now))
        return pause if left is None else min(pause, left)

    def over(self) -> WaitTimeout:
        return WaitTimeout(f"{self.what} within {self.timeout:g} s", self.task_id)


_WHOLE_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def _following(task_id: str, url: str, after: int, give_up_after: float | None) -> _Stream:
    """The stream `follow` follows, its arguments checked before anything is sent."""
    if give_up_after is not None and not _seconds(give_up_after, zero=True):
        raise ValueError(
            "give_up_after: give the seconds the server may stay away (a number, 0 or more), "
            f"or None never to give up; not {give_up_after!r}"
        )
    if isinstance(after, bool) or not isinstance(after, int) or not 0 <= after < 2**63:
        raise ValueError(f"after: give an event id (an integer, 0 or more); not {after!r}")
    _id(task_id)  # (an id that is none: a ValueError now)
    task_id = str(task_id)
    return _Stream(task_id, url, None, f"task {task_id}", last=after, patience=give_up_after)


def _withdrawal(timeout: float | None) -> str:
    return f"nobody decided within the {timeout:g} s its asker waited"


# -- the clients ---------------------------------------------------------------------------------


class Client:
    """The hitl API at `base_url` (else HITL_SERVER, else http://127.0.0.1:8000), signed in
    with `token` (else HITL_TOKEN, if set). `timeout` bounds each request (not the waits,
    which take their own); `headers`, `transport` and `verify` go to httpx."""

    def __init__(
        self,
        base_url: str | None = None,
        token: str | None = None,
        *,
        timeout: float | httpx.Timeout = 30.0,
        headers: Mapping[str, str] | None = None,
        transport: httpx.BaseTransport | None = None,
        verify: ssl.SSLContext | str | bool = True,
    ) -> None:
        self.url = _server_url(base_url)
        self._http = httpx.Client(
            base_url=self.url,
            timeout=_request_timeout(timeout),
            headers=_headers(token, headers),
            transport=transport,
            verify=verify,
        )

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _send(self, call: _Call[M]) -> M:
        try:
            response = self._http.request(
                call.method, call.path, params=call.params, json=call.body, headers=call.headers
            )
        except httpx.RequestError as exc:
            raise _unreachable(self.url, exc) from None
        return _parse(response, call.model, self.url)

    # -- tasks

    def create_task(
        self,
        input: JsonValue,
        flow: str | None = None,
        idempotency_key: str | None = None,
        assignees: list[str] | None = None,
    ) -> Task:
        """Submit a task to `flow` (the server's default if None)."""
        return self._send(_create_task(input, flow, idempotency_key, assignees))

    def get_task(self, task_id: str) -> Task:
        """A task with its review rounds; `task_id` may be a unique part of the id."""
        return self._send(_Call("GET", f"/api/v1/tasks/{_id(task_id)}", Task))

    def list_tasks(self, status: str | None = None, limit: int = 50, offset: int = 0) -> TaskPage:
        params = _params(status=status, limit=limit, offset=offset)
        return self._send(_Call("GET", "/api/v1/tasks", TaskPage, params=params))

    def cancel(self, task_id: str, reason: str | None = None) -> Task:
        body = _body(reason=reason) or None
        return self._send(_Call("POST", f"/api/v1/tasks/{_id(task_id)}/cancel", Task, body=body))

    def retry(self, task_id: str) -> Task:
        """Queue a failed task again, from its last checkpoint."""
        return self._send(_Call("POST", f"/api/v1/tasks/{_id(task_id)}/retry", Task))

    def audit(self, task_id: str) -> AuditLog:
        """The task's audit entries: its decisions, votes, cancellations and retries."""
        return self._send(_Call("GET", f"/api/v1/tasks/{_id(task_id)}/audit", AuditLog))

    # -- reviews

    def create_review(
        self,
        output: JsonValue,
        *,
        idempotency_key: str | None = None,
        **options: Unpack[ReviewOptions],
    ) -> ReviewCreated:
        """Ask a person to review `output` (POST /api/v1/reviews), without waiting: its task
        opens the review as soon as a worker runs it. See `ask`."""
        return self._send(_create_review(output, idempotency_key, options))

    def list_reviews(
        self,
        status: str | None = "open",
        limit: int = 50,
        offset: int = 0,
        flow: str | None = None,
        q: str | None = None,
        mine: bool = False,
        sort: str | None = None,
        decidable: bool = False,
    ) -> ReviewPage:
        """The reviewers' queue: by default its open reviews, oldest first."""
        return self._send(_list_reviews(status, limit, offset, flow, q, mine, sort, decidable))

    def get_review(self, review_id: str) -> Review:
        return self._send(_Call("GET", f"/api/v1/reviews/{_id(review_id)}", Review))

    def decide(
        self,
        review_id: str,
        decision: str,
        comment: str | None = None,
        edited_output: JsonValue = None,
        round: int | None = None,
        content_hash: str | None = None,
        form: Mapping[str, JsonValue] | None = None,
    ) -> Review:
        """Approve, reject or edit (with `edited_output`); `round` and `content_hash` of the
        review as shown refuse (409) a decision on anything newer."""
        call = _decide(review_id, decision, comment, edited_output, round, content_hash, form)
        return self._send(call)

    def claim(self, review_id: str, take_over: bool = False) -> Review:
        """Claim a review while you look at it (again: renew it)."""
        path = f"/api/v1/reviews/{_id(review_id)}/claim"
        return self._send(_Call("POST", path, Review, body={"take_over": take_over}))

    def release(self, review_id: str) -> Review:
        return self._send(_Call("DELETE", f"/api/v1/reviews/{_id(review_id)}/claim", Review))

    # -- waiting for people

    def ask(
        self,
        output: JsonValue,
        *,
        timeout: float | None = None,
        idempotency_key: str | None = None,
        **options: Unpack[ReviewOptions],
    ) -> Answer:
        """Ask a person to review `output`, and wait for their decision: `create_review`, then
        the task's event stream (reconnecting, from the last event seen, if it breaks) until
        its decision is its result. `timeout` (seconds; None: for ever) ends the wait with
        WaitTimeout, and withdraws (cancels) the review. TaskEnded if the task fails (a
        deadline without `on_deadline`) or is cancelled first."""
        _check_timeout(timeout)  # (before the review is asked for)
        created = self.create_review(output, idempotency_key=idempotency_key, **options)
        task_id = created.task_id
        stream = _Stream(task_id, self.url, timeout, f"no decision on task {task_id}")
        try:
            with contextlib.closing(self._follow(stream)) as events:
                for event in events:
                    if event.type == "task.completed":  # final: a task completes once
                        return _answer(task_id, event.data.get("result"))
        except WaitTimeout:
            return self._withdraw(task_id, timeout, stream)
        return _settled(self.get_task(task_id))

    def _withdraw(self, task_id: str, timeout: float | None, stream: _Stream) -> Answer:
        """Cancel a review nobody waits for any more; if it was decided meanwhile, its answer."""
        try:
            self.cancel(task_id, reason=_withdrawal(timeout))
        except HitlAPIError as exc:
            if exc.status_code == 409:
                task = self.get_task(task_id)
                if task.status == "completed":
                    return _answer(task_id, task.result)
        except HitlError as exc:
            logger.warning("could not withdraw the review of task %s: %s", task_id, exc)
        raise stream.over()

    def wait_for_review(self, task_id: str, timeout: float | None = None) -> Review:
        """The task's open review, once it has one (at once if it has): any task's, not only
        a standalone review's. TaskEnded if the task ends with none open; WaitTimeout after
        `timeout` seconds."""
        _check_timeout(timeout)  # (before anything is sent)
        task = self.get_task(task_id)
        if task.open_review is not None:
            return task.open_review
        if not task.finished:
            stream = _Stream(task.id, self.url, timeout, f"no review of task {task.id}")
            with contextlib.closing(self._follow(stream)) as events:
                for event in events:
                    if event.type == "review.requested":
                        review = self.get_review(str(event.data.get("review_id")))
                        if review.status == "open":
                            return review
            task = self.get_task(task.id)
        raise TaskEnded(f"task {task.id} is {task.status}, with no review open", task)

    def wait_for_result(self, task_id: str, timeout: float | None = None) -> Task:
        """The task once it is finished (completed, failed or cancelled: see its `status`,
        `result` and `error`); WaitTimeout after `timeout` seconds."""
        _check_timeout(timeout)  # (before anything is sent)
        task = self.get_task(task_id)
        if task.finished:
            return task
        stream = _Stream(task.id, self.url, timeout, f"task {task.id} did not finish")
        with contextlib.closing(self._follow(stream)) as events:
            for _ in events:
                pass
        return self.get_task(task.id)

    def _follow(self, stream: _Stream) -> Generator[Event, None, None]:
        """The task's events from `stream.last` on, across reconnects, until its final one."""
        while True:
            try:
                with self._http.stream(
                    "GET",
                    stream.path,
                    headers=stream.headers(),
                    timeout=stream.http_timeout(self._http.timeout),
                ) as response:
                    if response.is_error or response.is_redirect:
                        response.read()
                        stream.refused(response)
                    stream.opened()
                    for line in response.iter_lines():
                        event = stream.feed(line)
                        if event is not None:
                            yield event
                if stream.ended() or self.get_task(stream.task_id).finished:
                    return
                pause = stream.lost(HitlError("the stream ended before the task did"))
            except _Reopen:
                continue
            except httpx.RequestError as exc:
                pause = stream.lost(_unreachable(self.url, exc))
            except HitlConnectionError as exc:
                pause = stream.lost(exc)
            except HitlAPIError as exc:  # reading the task, when the stream ended
                if exc.status_code not in RETRIED_STATUSES:
                    raise
                pause = stream.lost(exc)
            except _Lost as lost:
                pause = stream.lost(lost.error, lost.retry_after)
            time.sleep(pause)

    def follow(
        self, task_id: str, after: int = 0, give_up_after: float | None = 60.0
    ) -> Iterator[Event]:
        """The task's events after event id `after`, then live ones, until its final one, as
        `events` gives them, but across lost connections and restarts of the server (and a
        proxy's 502, 503 or 504 meanwhile): each time, it connects again and goes on after
        the last event it gave. Once the server has stayed away `give_up_after` seconds
        (None: never), it raises what it met last. A lost stream is logged (a warning of the
        `hitl.client` logger), as in the waits. `task_id` may be a unique part of the id."""
        return self._follow_id(_following(task_id, self.url, after, give_up_after))

    def _follow_id(self, stream: _Stream) -> Generator[Event, None, None]:
        while not _WHOLE_ID.match(stream.task_id):  # a part of it, which streams do not take
            try:
                stream.task_id = self.get_task(stream.task_id).id
            except (HitlConnectionError, HitlAPIError) as exc:  # away, as the stream may be
                if isinstance(exc, HitlAPIError) and exc.status_code not in RETRIED_STATUSES:
                    raise
                time.sleep(stream.lost(exc))
        yield from self._follow(stream)

    def events(
        self, task_id: str, after: int = 0, read_timeout: float | None = None
    ) -> Iterator[Event]:
        """The task's events after event id `after`, then live ones, until the final one, on
        one connection. `read_timeout`: give up (HitlConnectionError) when the server sends
        nothing, not even a heartbeat, for this long; None waits for ever."""
        timeout = _stream_timeout(self._http.timeout, read_timeout)
        path = f"/api/v1/tasks/{_id(task_id)}/events"
        parser = _SSE()
        try:
            with self._http.stream("GET", path, params={"after": after}, timeout=timeout) as answer:
                if answer.is_error or answer.is_redirect:
                    answer.read()
                    raise _api_error(answer)
                for line in answer.iter_lines():
                    event = parser.feed(line)
                    if event is not None:
                        yield event  # the server ends the stream after the task's final event
        except httpx.RequestError as exc:
            raise _unreachable(self.url, exc) from None

    # -- notifications (admins)

    def add_channel(
        self, name: str, kind: str, url: str, events: list[str] | None = None
    ) -> ChannelCreated:
        """Send events to a webhook or an Apprise URL. A webhook's signing secret is in the
        answer only."""
        body = _body(name=name, kind=kind, url=url, events=_list(events))
        return self._send(_Call("POST", "/api/v1/channels", ChannelCreated, body=body))

    def channels(self) -> Channels:
        return self._send(_Call("GET", "/api/v1/channels", Channels))

    def remove_channel(self, name: str) -> Channel:
        return self._send(_Call("DELETE", f"/api/v1/channels/{_id(name, NO_CHANNEL)}", Channel))

    def deliveries(
        self, channel: str | None = None, status: str | None = None, limit: int = 100
    ) -> Deliveries:
        """The delivery log, newest first."""
        params = _params(channel=channel, status=status, limit=limit)
        return self._send(_Call("GET", "/api/v1/deliveries", Deliveries, params=params))

    def replay(self, delivery_id: str) -> Delivery:
        """Send a delivery again, with the same idempotency id."""
        path = f"/api/v1/deliveries/{_id(delivery_id)}/replay"
        return self._send(_Call("POST", path, Delivery))


class AsyncClient:
    """As `Client`, for asyncio: the same calls, awaited."""

    def __init__(
        self,
        base_url: str | None = None,
        token: str | None = None,
        *,
        timeout: float | httpx.Timeout = 30.0,
        headers: Mapping[str, str] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        verify: ssl.SSLContext | str | bool = True,
    ) -> None:
        self.url = _server_url(base_url)
        self._http = httpx.AsyncClient(
            base_url=self.url,
            timeout=_request_timeout(timeout),
            headers=_headers(token, headers),
            transport=transport,
            verify=verify,
        )

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _send(self, call: _Call[M]) -> M:
        try:
            response = await self._http.request(
                call.method, call.path, params=call.params, json=call.body, headers=call.headers
            )
        except httpx.RequestError as exc:
            raise _unreachable(self.url, exc) from None
        return _parse(response, call.model, self.url)

    # -- tasks

    async def create_task(
        self,
        input: JsonValue,
        flow: str | None = None,
        idempotency_key: str | None = None,
        assignees: list[str] | None = None,
    ) -> Task:
        return await self._send(_create_task(input, flow, idempotency_key, assignees))

    async def get_task(self, task_id: str) -> Task:
        return await self._send(_Call("GET", f"/api/v1/tasks/{_id(task_id)}", Task))

    async def list_tasks(
        self, status: str | None = None, limit: int = 50, offset: int = 0
    ) -> TaskPage:
        params = _params(status=status, limit=limit, offset=offset)
        return await self._send(_Call("GET", "/api/v1/tasks", TaskPage, params=params))

    async def cancel(self, task_id: str, reason: str | None = None) -> Task:
        body = _body(reason=reason) or None
        path = f"/api/v1/tasks/{_id(task_id)}/cancel"
        return await self._send(_Call("POST", path, Task, body=body))

    async def retry(self, task_id: str) -> Task:
        return await self._send(_Call("POST", f"/api/v1/tasks/{_id(task_id)}/retry", Task))

    async def audit(self, task_id: str) -> AuditLog:
        return await self._send(_Call("GET", f"/api/v1/tasks/{_id(task_id)}/audit", AuditLog))

    # -- reviews

    async def create_review(
        self,
        output: JsonValue,
        *,
        idempotency_key: str | None = None,
        **options: Unpack[ReviewOptions],
    ) -> ReviewCreated:
        return await self._send(_create_review(output, idempotency_key, options))

    async def list_reviews(
        self,
        status: str | None = "open",
        limit: int = 50,
        offset: int = 0,
        flow: str | None = None,
        q: str | None = None,
        mine: bool = False,
        sort: str | None = None,
        decidable: bool = False,
    ) -> ReviewPage:
        call = _list_reviews(status, limit, offset, flow, q, mine, sort, decidable)
        return await self._send(call)

    async def get_review(self, review_id: str) -> Review:
        return await self._send(_Call("GET", f"/api/v1/reviews/{_id(review_id)}", Review))

    async def decide(
        self,
        review_id: str,
        decision: str,
        comment: str | None = None,
        edited_output: JsonValue = None,
        round: int | None = None,
        content_hash: str | None = None,
        form: Mapping[str, JsonValue] | None = None,
    ) -> Review:
        call = _decide(review_id, decision, comment, edited_output, round, content_hash, form)
        return await self._send(call)

    async def claim(self, review_id: str, take_over: bool = False) -> Review:
        path = f"/api/v1/reviews/{_id(review_id)}/claim"
        return await self._send(_Call("POST", path, Review, body={"take_over": take_over}))

    async def release(self, review_id: str) -> Review:
        path = f"/api/v1/reviews/{_id(review_id)}/claim"
        return await self._send(_Call("DELETE", path, Review))

    # -- waiting for people

    async def ask(
        self,
        output: JsonValue,
        *,
        timeout: float | None = None,
        idempotency_key: str | None = None,
        **options: Unpack[ReviewOptions],
    ) -> Answer:
        """As `Client.ask`."""
        _check_timeout(timeout)  # (before the review is asked for)
        created = await self.create_review(output, idempotency_key=idempotency_key, **options)
        task_id = created.task_id
        stream = _Stream(task_id, self.url, timeout, f"no decision on task {task_id}")
        try:
            async with contextlib.aclosing(self._follow(stream)) as events:
                async for event in events:
                    if event.type == "task.completed":  # final: a task completes once
                        return _answer(task_id, event.data.get("result"))
        except WaitTimeout:
            return await self._withdraw(task_id, timeout, stream)
        return _settled(await self.get_task(task_id))

    async def _withdraw(self, task_id: str, timeout: float | None, stream: _Stream) -> Answer:
        try:
            await self.cancel(task_id, reason=_withdrawal(timeout))
        except HitlAPIError as exc:
            if exc.status_code == 409:
                task = await self.get_task(task_id)
                if task.status == "completed":
                    return _answer(task_id, task.result)
        except HitlError as exc:
            logger.warning("could not withdraw the review of task %s: %s", task_id, exc)
        raise stream.over()

    async def wait_for_review(self, task_id: str, timeout: float | None = None) -> Review:
        """As `Client.wait_for_review`."""
        _check_timeout(timeout)  # (before anything is sent)
        task = await self.get_task(task_id)
        if task.open_review is not None:
            return task.open_review
        if not task.finished:
            stream = _Stream(task.id, self.url, timeout, f"no review of task {task.id}")
            async with contextlib.aclosing(self._follow(stream)) as events:
                async for event in events:
                    if event.type == "review.requested":
                        review = await self.get_review(str(event.data.get("review_id")))
                        if review.status == "open":
                            return review
            task = await self.get_task(task.id)
        raise TaskEnded(f"task {task.id} is {task.status}, with no review open", task)

    async def wait_for_result(self, task_id: str, timeout: float | None = None) -> Task:
        """As `Client.wait_for_result`."""
        _check_timeout(timeout)  # (before anything is sent)
        task = await self.get_task(task_id)
        if task.finished:
            return task
        stream = _Stream(task.id, self.url, timeout, f"task {task.id} did not finish")
        async with contextlib.aclosing(self._follow(stream)) as events:
            async for _ in events:
                pass
        return await self.get_task(task.id)

    async def _follow(self, stream: _Stream) -> AsyncGenerator[Event, None]:
        """As `Client._follow`."""
        while True:
            try:
                async with self._http.stream(
                    "GET",
                    stream.path,
                    headers=stream.headers(),
                    timeout=stream.http_timeout(self._http.timeout),
                ) as response:
                    if response.is_error or response.is_redirect:
                        await response.aread()
                        stream.refused(response)
                    stream.opened()
                    async for line in response.aiter_lines():
                        event = stream.feed(line)
                        if event is not None:
                            yield event
                if stream.ended() or (await self.get_task(stream.task_id)).finished:
                    return
                pause = stream.lost(HitlError("the stream ended before the task did"))
            except _Reopen:
                continue
            except httpx.RequestError as exc:
                pause = stream.lost(_unreachable(self.url, exc))
            except HitlConnectionError as exc:
                pause = stream.lost(exc)
            except HitlAPIError as exc:  # reading the task, when the stream ended
                if exc.status_code not in RETRIED_STATUSES:
                    raise
                pause = stream.lost(exc)
            except _Lost as lost:
                pause = stream.lost(lost.error, lost.retry_after)
            await asyncio.sleep(pause)

    def follow(
        self, task_id: str, after: int = 0, give_up_after: float | None = 60.0
    ) -> AsyncIterator[Event]:
        """As `Client.follow`. Close it (`contextlib.aclosing`) when leaving it before the
        task's end: its connection stays open until then."""
        return self._follow_id(_following(task_id, self.url, after, give_up_after))

    async def _follow_id(self, stream: _Stream) -> AsyncGenerator[Event, None]:
        while not _WHOLE_ID.match(stream.task_id):  # as `Client._follow_id`
            try:
                stream.task_id = (await self.get_task(stream.task_id)).id
            except (HitlConnectionError, HitlAPIError) as exc:
                if isinstance(exc, HitlAPIError) and exc.status_code not in RETRIED_STATUSES:
                    raise
                await asyncio.sleep(stream.lost(exc))
        async with contextlib.aclosing(self._follow(stream)) as events:
            async for event in events:
                yield event

    async def events(
        self, task_id: str, after: int = 0, read_timeout: float | None = None
    ) -> AsyncIterator[Event]:
        """As `Client.events`."""
        timeout = _stream_timeout(self._http.timeout, read_timeout)
        path = f"/api/v1/tasks/{_id(task_id)}/events"
        parser = _SSE()
        try:
            async with self._http.stream(
                "GET", path, params={"after": after}, timeout=timeout
            ) as answer:
                if answer.is_error or answer.is_redirect:
                    await answer.aread()
                    raise _api_error(answer)
                async for line in answer.aiter_lines():
                    event = parser.feed(line)
                    if event is not None:
                        yield event
        except httpx.RequestError as exc:
            raise _unreachable(self.url, exc) from None

    # -- notifications (admins)

    async def add_channel(
        self, name: str, kind: str, url: str, events: list[str] | None = None
    ) -> ChannelCreated:
        body = _body(name=name, kind=kind, url=url, events=_list(events))
        return await self._send(_Call("POST", "/api/v1/channels", ChannelCreated, body=body))

    async def channels(self) -> Channels:
        return await self._send(_Call("GET", "/api/v1/channels", Channels))

    async def remove_channel(self, name: str) -> Channel:
        return await self._send(
            _Call("DELETE", f"/api/v1/channels/{_id(name, NO_CHANNEL)}", Channel)
        )

    async def deliveries(
        self, channel: str | None = None, status: str | None = None, limit: int = 100
    ) -> Deliveries:
        params = _params(channel=channel, status=status, limit=limit)
        return await self._send(_Call("GET", "/api/v1/deliveries", Deliveries, params=params))

    async def replay(self, delivery_id: str) -> Delivery:
        path = f"/api/v1/deliveries/{_id(delivery_id)}/replay"
        return await self._send(_Call("POST", path, Delivery))
