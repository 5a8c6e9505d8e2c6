"""A fake OpenAI-compatible chat completions endpoint: a real HTTP server (uvicorn) on 127.0.0.1.

`POST /v1/chat/completions` answers with the next reply of its `script` (a `Stream` or a
`Fail`), or, once the script is used up, with `default`. A `Stream` sends its text a word per
SSE chunk, `delay` seconds apart, then (when asked for, with `stream_options.include_usage`)
a chunk with the usage, then `data: [DONE]`; `break_after` cuts the connection after that many
words instead, and `hold_after` stops after that many until the test sets `release`. A `Fail`
answers a status with an OpenAI-style error and its headers (`Retry-After`). Every request is
recorded in `requests`, with how it ended: `done` (all sent), `gone` (the client went away
mid-stream: cancelled, or killed), `broken` (`break_after`) or `failed`.

It runs in a thread of its own, with its own event loop, so tests (sync or async) and the
processes they start can use it alike; its state is read and changed under `lock`.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import uvicorn

Scope = dict[str, Any]


@dataclass
class Stream:
    """A streamed answer. `text` None: made from the request (`Draft <n>: ...`)."""

    text: str | None = None
    delay: float = 0.0
    usage: bool = True
    break_after: int | None = None
    finish_reason: str = "stop"
    hold_after: int | None = None
    release: threading.Event = field(default_factory=threading.Event)


@dataclass
class Fail:
    status: int = 500
    message: str = "the fake model is down"
    headers: dict[str, str] = field(default_factory=dict)


Reply = Stream | Fail


@dataclass
class Seen:
    """One request, as the fake received it."""

    body: dict[str, Any]
    headers: dict[str, str]
    reply: Reply
    at: float = field(default_factory=time.monotonic)
    sent: list[str] = field(default_factory=list)  # the words sent so far
    ended: str = "open"  # open, done, gone, broken, failed

    @property
    def messages(self) -> list[dict[str, str]]:
        return list(self.body.get("messages") or [])

    @property
    def prompt(self) -> str:
        return "\n".join(m.get("content", "") for m in self.messages)


class FakeLLM:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.script: deque[Reply] = deque()
        self.default: Reply = Stream()
        self.requests: list[Seen] = []
        self.url = ""  # the base URL, up to /chat/completions: http://127.0.0.1:<port>/v1

    # -- the test's side -------------------------------------------------------------------

    def then(self, *replies: Reply) -> FakeLLM:
        with self.lock:
            self.script.extend(replies)
        return self

    def seen(self) -> list[Seen]:
        with self.lock:
            return list(self.requests)

    def ended(self) -> list[str]:
        with self.lock:
            return [r.ended for r in self.requests]

    # -- the server's side -----------------------------------------------------------------

    def _next(self, body: dict[str, Any], headers: dict[str, str]) -> Seen:
        with self.lock:
            reply = self.script.popleft() if self.script else self.default
            seen = Seen(body, headers, reply)
            self.requests.append(seen)
            return seen

    def _end(self, seen: Seen, how: str) -> None:
        with self.lock:
            seen.ended = how

    def _words(self, seen: Seen, stream: Stream) -> list[str]:
        if stream.text is not None:
            text = stream.text
        else:
            n = len(self.requests)
            asked = next(
                (m["content"] for m in seen.messages if m.get("role") == "user"), "nothing"
            )
            text = (
                f"Draft {n}: {asked.strip()}. Queues hold the work while people decide; "
                "nothing waits in memory, and every step is written down before the next."
            )
        words = text.split(" ")
        return [w + " " for w in words[:-1]] + [words[-1]]

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        raw = b""
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            raw += message.get("body", b"")
            if not message.get("more_body"):
                break
        if scope["method"] != "POST" or scope["path"] != "/v1/chat/completions":
            await _json(send, 404, {"error": {"message": f"no route {scope['path']}"}})
            return
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        seen = self._next(json.loads(raw), headers)
        reply = seen.reply
        if isinstance(reply, Fail):
            error = {"error": {"message": reply.message, "type": "fake_error"}}
            await _json(send, reply.status, error, reply.headers)
            self._end(seen, "failed")
            return
        await self._stream(seen, reply, receive, send)

    async def _stream(self, seen: Seen, reply: Stream, receive: Any, send: Any) -> None:
        gone = asyncio.Event()

        async def watch() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            gone.set()

        watcher = asyncio.ensure_future(watch())
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-type", b"text/event-stream")],
                }
            )
            words = self._words(seen, reply)
            model = seen.body.get("model", "fake")
            await _chunk(send, model, {"role": "assistant", "content": ""})
            for i, word in enumerate(words):
                if reply.break_after is not None and i >= reply.break_after:
                    self._end(seen, "broken")
                    return  # uvicorn closes the connection: the body never completed
                if i == reply.hold_after:
                    while not reply.release.is_set() and not gone.is_set():
                        await _waits(gone, 0.01)
                if reply.delay and await _waits(gone, reply.delay):
                    self._end(seen, "gone")
                    return
                if gone.is_set():
                    self._end(seen, "gone")
                    return
                await _chunk(send, model, {"content": word})
                with self.lock:
                    seen.sent.append(word)
            await _chunk(send, model, {}, finish_reason=reply.finish_reason)
            options = seen.body.get("stream_options") or {}
            if reply.usage and options.get("include_usage"):
                prompt = sum(len(m.get("content", "").split()) for m in seen.messages)
                usage = {
                    "prompt_tokens": prompt,
                    "completion_tokens": len(words),
                    "total_tokens": prompt + len(words),
                }
                await _data(
                    send, {"object": "chat.completion.chunk", "choices": [], "usage": usage}
                )
            frame = {"type": "http.response.body", "body": b"data: [DONE]\n\n", "more_body": True}
            await send(frame)
            self._end(seen, "done")  # all of it sent; the client may hang up now
            await send({"type": "http.response.body", "body": b""})
        except OSError:  # uvicorn's ClientDisconnected: the client went away as we wrote
            pass
        finally:
            watcher.cancel()
            if seen.ended == "open":
                self._end(seen, "gone")


async def _waits(gone: asyncio.Event, seconds: float) -> bool:
    """Wait `seconds`; True if the client went away meanwhile."""
    try:
        await asyncio.wait_for(gone.wait(), seconds)
    except TimeoutError:
        return False
    return True


async def _json(send: Any, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
    data = json.dumps(body).encode()
    pairs = [(b"content-type", b"application/json")]
    pairs += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": pairs})
    await send({"type": "http.response.body", "body": data})


async def _chunk(
    send: Any, model: str, delta: dict[str, str], finish_reason: str | None = None
) -> None:
    choice = {"index": 0, "delta": delta, "finish_reason": finish_reason}
    body = {
        "id": "chatcmpl-fake",
        "object": "chat.completion.chunk",
        "model": model,
        "choices": [choice],
    }
    await _data(send, body)


async def _data(send: Any, body: Any) -> None:
    frame = f"data: {json.dumps(body)}\n\n".encode()
    await send({"type": "http.response.body", "body": frame, "more_body": True})


@contextmanager
def serve_fake_llm() -> Iterator[FakeLLM]:
    """Run a `FakeLLM` on a free port of 127.0.0.1 until the block ends."""
    fake = FakeLLM()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(fake, log_level="critical", lifespan="off", timeout_graceful_shutdown=1)
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="fake-llm", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the fake LLM server did not start")
        time.sleep(0.01)
    fake.url = f"http://127.0.0.1:{port}/v1"
    try:
        yield fake
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()
