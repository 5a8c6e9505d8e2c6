"""A streaming client of an OpenAI-compatible chat completions endpoint.

`ChatClient.complete` posts `{"model", "messages", "stream": true, "stream_options":
{"include_usage": true}}` to `<base_url>/chat/completions`, reads the answer's Server-Sent
Events as they come (`data: {chunk}` … `data: [DONE]`), hands each piece of text to `on_delta`,
and returns the whole text with the token usage of the final chunk. A 429 (waiting its
`Retry-After`), a 408, a 5xx, a connection error, a timeout or a stream that breaks off are
tried again, up to `max_retries` times with exponential backoff and jitter; then it raises
`LLMUnavailable`. Any other refusal raises `LLMRefused` at once. Cancelling the call closes
the connection: the endpoint sees the client go.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random as random_module
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from hitl.llm.config import LLMConfig
from hitl.llm.errors import LLMRefused, LLMUnavailable, Retryable
from hitl.llm.retry import Backoff, retry_after

log = logging.getLogger(__name__)

Message = dict[str, str]
ERROR_BYTES = 4096  # of an error's body, read to say what went wrong


_JITTER = random_module.Random()  # its own: nothing else's random state is touched or seen


@dataclass(frozen=True)
class Completion:
    text: str
    usage: dict[str, Any] | None  # the final chunk's: prompt_tokens, completion_tokens, ...
    finish_reason: str | None
    model: str | None
    attempts: int = 1


@dataclass(frozen=True)
class Retrying:
    """An attempt failed: retry `retry` of `of` comes after `wait` seconds."""

    retry: int
    of: int
    wait: float
    reason: str


@dataclass
class _Answer:
    parts: list[str] = field(default_factory=list)
    usage: dict[str, Any] | None = None
    finish_reason: str | None = None
    model: str | None = None
    done: bool = False


class ChatClient:
    """`sleep`, `random` and `now` are the clock's and the dice's: tests pass their own."""

    def __init__(
        self,
        config: LLMConfig,
        *,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        random: Callable[[], float] = _JITTER.random,
        now: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.backoff = Backoff(config.backoff_seconds, config.max_wait_seconds)
        self.sleep = sleep
        self.random = random
        self.now = now

    async def complete(
        self,
        messages: list[Message],
        *,
        on_delta: Callable[[str], None] | None = None,
        on_retry: Callable[[Retrying], None] | None = None,
        **options: Any,
    ) -> Completion:
        """Ask the model; `options` go into the request's body (`temperature=0.2`)."""
        config = self.config
        body = {
            **options,
            "model": config.model,
            "messages": messages,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        timeout = httpx.Timeout(config.timeout_seconds, connect=min(10.0, config.timeout_seconds))
        async with httpx.AsyncClient(timeout=timeout) as http:
            for attempt in range(config.max_retries + 1):
                try:
                    answer = await self._attempt(http, body, on_delta)
                except Retryable as exc:
                    failure = exc
                else:
                    return Completion(
                        "".join(answer.parts),
                        answer.usage,
                        answer.finish_reason,
                        answer.model,
                        attempt + 1,
                    )
                wait = await self._wait(attempt, failure, on_retry)
                if wait is None:
                    break
        raise LLMUnavailable(
            f"{config.where} failed {attempt + 1} time{'s' if attempt else ''}; the last: "
            f"{failure.reason}"
            + (
                f" (it asked to wait {failure.retry_after:g} s, more than the "
                f"{config.max_wait_seconds:g} s hitl waits)"
                if failure.retry_after is not None and failure.retry_after > self.backoff.cap
                else ""
            )
        )

    async def _wait(
        self, attempt: int, failure: Retryable, on_retry: Callable[[Retrying], None] | None
    ) -> float | None:
        """Wait before the next attempt; None: there is none."""
        if attempt >= self.config.max_retries:
            return None
        wait = self.backoff.delay(attempt, failure.retry_after, self.random)
        if wait is None:
            return None
        retrying = Retrying(attempt + 1, self.config.max_retries, wait, failure.reason)
        log.warning(
            "%s: %s; retry %d of %d in %.2f s",
            self.config.where,
            failure.reason,
            retrying.retry,
            retrying.of,
            wait,
            extra={"action": "llm_retry"},
        )
        if on_retry is not None:
            on_retry(retrying)
        await self.sleep(wait)
        return wait

    async def _attempt(
        self, http: httpx.AsyncClient, body: dict[str, Any], on_delta: Callable[[str], None] | None
    ) -> _Answer:
        headers = {"Accept": "text/event-stream"}
        if self.config.api_key:
            headers["Authorization"] = f"Bearer {self.config.api_key}"
        try:
            async with http.stream("POST", self.config.url, json=body, headers=headers) as response:
                if response.status_code != 200:
                    raise await self._refusal(response)
                return await self._read(response, on_delta)
        except httpx.TransportError as exc:
            raise Retryable(_transport(exc)) from None

    async def _refusal(self, response: httpx.Response) -> Exception:
        status = response.status_code
        text = b""
        async for piece in response.aiter_bytes():
            text += piece
            if len(text) >= ERROR_BYTES:
                break
        said = f"{status} {response.reason_phrase}".strip()
        detail = self.config.scrub(_detail(text[:ERROR_BYTES]))
        reason = f"{said}: {detail}" if detail else said
        if status in (408, 429) or status >= 500:
            return Retryable(reason, retry_after(response.headers.get("retry-after"), self.now))
        return LLMRefused(f"{self.config.where} answered {reason}{_hint(status)}")

    async def _read(
        self, response: httpx.Response, on_delta: Callable[[str], None] | None
    ) -> _Answer:
        answer = _Answer()
        data: list[str] = []
        async for line in response.aiter_lines():
            if line:
                name, _, value = line.partition(":")
                if name == "data":
                    data.append(value.removeprefix(" "))
                continue  # a comment (": ping"), or a field the chunks do not use
            if data:
                self._chunk("\n".join(data), answer, on_delta)
                data = []
                if answer.done:
                    return answer
        if data:
            self._chunk("\n".join(data), answer, on_delta)
        if not answer.done and answer.finish_reason is None:
            raise Retryable("the stream broke off before the answer was complete")
        return answer

    def _chunk(self, payload: str, answer: _Answer, on_delta: Callable[[str], None] | None) -> None:
        if payload.strip() == "[DONE]":
            answer.done = True
            return
        try:
            chunk = json.loads(payload)
        except ValueError:
            raise Retryable(f"the stream sent a chunk that is not JSON: {payload[:80]!r}") from None
        if not isinstance(chunk, dict):
            raise Retryable(f"the stream sent a chunk that is not an object: {payload[:80]!r}")
        if chunk.get("error"):
            raise Retryable(f"the stream broke off with an error: {_message(chunk['error'])}")
        answer.model = chunk.get("model") or answer.model
        for choice in chunk.get("choices") or ():
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue
            delta = (choice.get("delta") or {}).get("content")
            if isinstance(delta, str) and delta:
                answer.parts.append(delta)
                if on_delta is not None:
                    on_delta(delta)
            answer.finish_reason = choice.get("finish_reason") or answer.finish_reason
        if isinstance(chunk.get("usage"), dict):
            answer.usage = chunk["usage"]


def _transport(exc: httpx.TransportError) -> str:
    if isinstance(exc, httpx.TimeoutException):
        return f"no answer in time ({type(exc).__name__})"
    said = str(exc)
    return f"{type(exc).__name__}: {said}" if said else f"{type(exc).__name__} (connection failed)"


def _detail(body: bytes) -> str:
    """What an error's body says: OpenAI's `{"error": {"message"}}`, or its first line."""
    text = body.decode("utf-8", errors="replace").strip()
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if isinstance(data, dict) and data.get("error"):
        return _message(data["error"])
    first = text.splitlines()[0] if text else ""
    return first[:200]


def _message(error: Any) -> str:
    if isinstance(error, dict):
        return str(error.get("message") or error.get("type") or error)[:300]
    return str(error)[:300]


def _hint(status: int) -> str:
    if status in (401, 403):
        return " (check HITL_LLM_API_KEY)"
    if status == 404:
        return (
            " (check HITL_LLM_BASE_URL, which ends where /chat/completions follows, and "
            "HITL_LLM_MODEL)"
        )
    return ""
