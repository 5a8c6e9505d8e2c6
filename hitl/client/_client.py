"""`Client` and `AsyncClient`: the hitl HTTP API from Python, sync and async.

Both take the server's base URL and, to sign in, an API token (`hitl token create` makes one):
`token=`, or else the `HITL_TOKEN` environment variable. Given either, every request sends
`Authorization: Bearer <token>`; the token is never printed, logged or put in an error message.
`token=""` sends none, whatever the environment says. Other keyword arguments go to the
underlying `httpx.Client` / `httpx.AsyncClient` (`timeout`, `headers`, `transport`, ...).

An error answer raises `HitlAPIError` (its `status_code` and the server's `detail`): 401 when
the server wants a token or refuses the one sent, 403 when the token may not do that.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import quote

import httpx


class HitlAPIError(Exception):
    """The server answered with an error."""

    def __init__(self, status_code: int, detail: Any) -> None:
        self.status_code = status_code
        self.detail = detail
        super().__init__(f"{status_code}: {detail}")


TOKEN_VARIABLE = "HITL_TOKEN"


def _headers(token: str | None, headers: Any) -> httpx.Headers:
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


def _check(response: httpx.Response) -> Any:
    if response.is_error:
        try:
            body = response.json()
        except ValueError:
            body = None
        detail = body.get("detail") if isinstance(body, dict) else None
        raise HitlAPIError(response.status_code, detail or response.text or response.reason_phrase)
    return response.json()


def _id(value: str) -> str:
    """An id as one path segment: whatever it holds ('/', '..') cannot reach another route."""
    return quote(value, safe="").replace(".", "%2E")


def _task_body(input: Any, flow: str | None, assignees: list[str] | None) -> dict[str, Any]:
    return {"input": input, **_params(flow=flow or None, assignees=assignees)}


def _params(**values: Any) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


def _decision(
    decision: str,
    comment: str | None,
    edited_output: Any,
    round: int | None = None,
    content_hash: str | None = None,
    form: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A decision's body; `round` and `content_hash` (from the review shown) make a decision
    on a newer round or other content a 409 rather than a decision on what was not seen."""
    return _params(
        decision=decision,
        comment=comment,
        edited_output=edited_output,
        round=round,
        content_hash=content_hash,
        form=form,
    )


def _queue(
    status: str | None,
    limit: int,
    offset: int,
    flow: str | None,
    q: str | None,
    mine: bool,
    sort: str | None,
) -> dict[str, Any]:
    return _params(
        status=status, limit=limit, offset=offset, flow=flow, q=q, mine=mine or None, sort=sort
    )


def _stream_timeout(timeout: httpx.Timeout, read: float | None) -> httpx.Timeout:
    """The client's timeouts, but a stream may wait `read` seconds (None: for ever) for data."""
    return httpx.Timeout(connect=timeout.connect, read=read, write=timeout.write, pool=timeout.pool)


class _SSE:
    """Parses `text/event-stream` lines into events: {id, type, data}."""

    def __init__(self) -> None:
        self.id: int | None = None
        self.type = "message"
        self.data: list[str] = []

    def feed(self, line: str) -> dict[str, Any] | None:
        if not line:
            if not self.data:
                return None
            event = {"id": self.id, "type": self.type, "data": json.loads("\n".join(self.data))}
            self.type, self.data = "message", []
            return event
        if line.startswith(":"):
            return None
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "id" and value.isdigit():
            self.id = int(value)
        elif field == "event":
            self.type = value
        elif field == "data":
            self.data.append(value)
        return None


class Client:
    """The hitl API at `base_url`, signed in with `token` (else `HITL_TOKEN`, if set)."""

    def __init__(
        self, base_url: str = "http://127.0.0.1:8000", token: str | None = None, **kwargs: Any
    ) -> None:
        headers = _headers(token, kwargs.pop("headers", None))
        timeout = kwargs.pop("timeout", 30.0)
        self._http = httpx.Client(base_url=base_url, timeout=timeout, headers=headers, **kwargs)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def create_task(
        self,
        input: Any,
        flow: str | None = None,
        idempotency_key: str | None = None,
        assignees: list[str] | None = None,
    ) -> Any:
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        body = _task_body(input, flow, assignees)
        return _check(self._http.post("/api/v1/tasks", json=body, headers=headers))

    def get_task(self, task_id: str) -> Any:
        return _check(self._http.get(f"/api/v1/tasks/{_id(task_id)}"))

    def list_tasks(self, status: str | None = None, limit: int = 50, offset: int = 0) -> Any:
        params = _params(status=status, limit=limit, offset=offset)
        return _check(self._http.get("/api/v1/tasks", params=params))

    def list_reviews(
        self,
        status: str | None = "open",
        limit: int = 50,
        offset: int = 0,
        flow: str | None = None,
        q: str | None = None,
        mine: bool = False,
        sort: str | None = None,
    ) -> Any:
        params = _queue(status, limit, offset, flow, q, mine, sort)
        return _check(self._http.get("/api/v1/reviews", params=params))

    def decide(
        self,
        review_id: str,
        decision: str,
        comment: str | None = None,
        edited_output: Any = None,
        round: int | None = None,
        content_hash: str | None = None,
        form: dict[str, Any] | None = None,
    ) -> Any:
        body = _decision(decision, comment, edited_output, round, content_hash, form)
        return _check(self._http.post(f"/api/v1/reviews/{_id(review_id)}/decision", json=body))

    def claim(self, review_id: str, take_over: bool = False) -> Any:
        """Claim a review while you look at it (again: renew it)."""
        url = f"/api/v1/reviews/{_id(review_id)}/claim"
        return _check(self._http.post(url, json={"take_over": take_over}))

    def release(self, review_id: str) -> Any:
        return _check(self._http.delete(f"/api/v1/reviews/{_id(review_id)}/claim"))

    def audit(self, task_id: str) -> Any:
        """The task's audit entries: its decisions, votes, cancellations and retries."""
        return _check(self._http.get(f"/api/v1/tasks/{_id(task_id)}/audit"))

    def cancel(self, task_id: str, reason: str | None = None) -> Any:
        body = _params(reason=reason)
        return _check(self._http.post(f"/api/v1/tasks/{_id(task_id)}/cancel", json=body or None))

    def events(
        self, task_id: str, after: int = 0, read_timeout: float | None = None
    ) -> Iterator[dict[str, Any]]:
        """The task's events after event id `after`, then live ones, until the final one.
        `read_timeout`: give up (`httpx.ReadTimeout`) when the server sends nothing, not even
        a heartbeat, for this long; None waits for ever."""
        parser = _SSE()
        url = f"/api/v1/tasks/{_id(task_id)}/events"
        timeout = _stream_timeout(self._http.timeout, read_timeout)
        with self._http.stream("GET", url, params={"after": after}, timeout=timeout) as response:
            if response.is_error:
                response.read()
                _check(response)
            for line in response.iter_lines():
                event = parser.feed(line)
                if event is not None:
                    yield event  # the server ends the stream after the task's final event


class AsyncClient:
    """As `Client`, for asyncio."""

    def __init__(
        self, base_url: str = "http://127.0.0.1:8000", token: str | None = None, **kwargs: Any
    ) -> None:
        headers = _headers(token, kwargs.pop("headers", None))
        timeout = kwargs.pop("timeout", 30.0)
        self._http = httpx.AsyncClient(
            base_url=base_url, timeout=timeout, headers=headers, **kwargs
        )

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def create_task(
        self,
        input: Any,
        flow: str | None = None,
        idempotency_key: str | None = None,
        assignees: list[str] | None = None,
    ) -> Any:
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        body = _task_body(input, flow, assignees)
        return _check(await self._http.post("/api/v1/tasks", json=body, headers=headers))

    async def get_task(self, task_id: str) -> Any:
        return _check(await self._http.get(f"/api/v1/tasks/{_id(task_id)}"))

    async def list_tasks(self, status: str | None = None, limit: int = 50, offset: int = 0) -> Any:
        params = _params(status=status, limit=limit, offset=offset)
        return _check(await self._http.get("/api/v1/tasks", params=params))

    async def list_reviews(
        self,
        status: str | None = "open",
        limit: int = 50,
        offset: int = 0,
        flow: str | None = None,
        q: str | None = None,
        mine: bool = False,
        sort: str | None = None,
    ) -> Any:
        params = _queue(status, limit, offset, flow, q, mine, sort)
        return _check(await self._http.get("/api/v1/reviews", params=params))

    async def decide(
        self,
        review_id: str,
        decision: str,
        comment: str | None = None,
        edited_output: Any = None,
        round: int | None = None,
        content_hash: str | None = None,
        form: dict[str, Any] | None = None,
    ) -> Any:
        body = _decision(decision, comment, edited_output, round, content_hash, form)
        return _check(
            await self._http.post(f"/api/v1/reviews/{_id(review_id)}/decision", json=body)
        )

    async def claim(self, review_id: str, take_over: bool = False) -> Any:
        url = f"/api/v1/reviews/{_id(review_id)}/claim"
        return _check(await self._http.post(url, json={"take_over": take_over}))

    async def release(self, review_id: str) -> Any:
        return _check(await self._http.delete(f"/api/v1/reviews/{_id(review_id)}/claim"))

    async def audit(self, task_id: str) -> Any:
        return _check(await self._http.get(f"/api/v1/tasks/{_id(task_id)}/audit"))

    async def cancel(self, task_id: str, reason: str | None = None) -> Any:
        body = _params(reason=reason)
        url = f"/api/v1/tasks/{_id(task_id)}/cancel"
        return _check(await self._http.post(url, json=body or None))

    async def events(
        self, task_id: str, after: int = 0, read_timeout: float | None = None
    ) -> AsyncIterator[dict[str, Any]]:
        """As `Client.events`."""
        parser = _SSE()
        url = f"/api/v1/tasks/{_id(task_id)}/events"
        timeout = _stream_timeout(self._http.timeout, read_timeout)
        params = {"after": after}
        async with self._http.stream("GET", url, params=params, timeout=timeout) as response:
            if response.is_error:
                await response.aread()
                _check(response)
            async for line in response.aiter_lines():
                event = parser.feed(line)
                if event is not None:
                    yield event  # the server ends the stream after the task's final event
