"""Serving the app with uvicorn, with limits on what one client can hold.

uvicorn's httptools protocol puts no bound on a request's head: the parser joins a header's
pieces by copying the whole value again at every read, so one 64 MiB header kept the event loop
busy for seconds and every other client waited. Nor does it time a head that never ends: a
client that sends its headers a byte at a time (or nothing at all) keeps its connection for
ever. `LimitedHttpProtocol` is that protocol with both limits:

- a request line and headers over `max_header_bytes` are answered 431, having fed the parser
  no more than that; the rest the client sends is read and dropped for a moment so that it can
  read the answer, then the connection is closed;
- a head not complete `header_timeout` seconds after the connection opened, or after its first
  byte on a kept-alive connection, is answered 408 (or, if not a byte of it came, the
  connection is closed), after one last look for bytes that came but were not read yet.

Its transport sends a response's head with the first of its body, in one write (`Corked`).

Everything else — keep-alive, pipelining, flow control, SSE streams — is uvicorn's own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from typing import Any, ClassVar

import uvicorn
from uvicorn.config import STARTUP_FAILURE
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from hitl.api import security
from hitl.config import Settings

log = logging.getLogger(__name__)

# After an error answer, how long to read and drop what the client still sends before closing:
# closing with unread data makes the kernel send a reset, and the client may lose the answer.
LINGER_SECONDS = 2.0
LAST_LOOK_SECONDS = 0.01  # after a head's deadline, for what came but was not read yet


class LimitedHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, with a size and a time limit on each request's head."""

    max_header_bytes: ClassVar[int] = 32 * 1024
    header_timeout: ClassVar[float] = 10.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._in_head = True  # the next bytes are (part of) a request line or headers
        self._head_started = False  # the parser has seen the first byte of that request
        self._head_bytes = 0  # bytes read while in the head (from a read's start: an upper bound)
        self._head_timer: asyncio.TimerHandle | None = None
        self._refused = False  # an error answer was sent: whatever comes now is dropped
        self._linger: asyncio.TimerHandle | None = None
        self._completed = 0  # requests whose whole message the parser has read
        self._due: tuple[int, str] | None = None  # a refusal that waits for a response to end
        self._event_stream: object = None  # the cycle whose response is an event stream
        self._looked = False  # the head's deadline passed once (`_head_timed_out`)

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.transport = Corked(transport, self.loop)  # type: ignore[assignment]
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        if self._linger is not None:
            self._linger.cancel()
            self._linger = None
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        while data and not self._refused:
            if not self._in_head:
                super().data_received(data)
                break
            room = self.max_header_bytes - self._head_bytes
            if len(data) <= room:
                self._head_bytes += len(data)
                super().data_received(data)
                break
            # Feed the parser no more of the head than the limit: if the head is not complete
            # by then, it is too large.
            self._head_bytes = self.max_header_bytes
            completed = self._completed
            if room:
                super().data_received(data[:room])
            if self.transport.is_closing() or self.transport.get_protocol() is not self:
                return  # a malformed request (answered 400), the client left, or an upgrade
            if self._in_head and self._completed == completed:
                self._refuse(431, "Request header fields too large")
                return
            if self._in_head:
                # The read held the end of one request and the start of the next one's head,
                # less than `room` of it: that head is counted from here (so it may run to
                # twice the limit before it is refused, never further).
                self._head_bytes = 0
            data = data[room:]
        # Most heads come in one read: a timer is armed only for one that did not.
        if self._head_timer is None and self._waiting_for_head():
            self._arm()

    # Parser callbacks

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_started = True

    def on_headers_complete(self) -> None:
        self._in_head = self._head_started = False
        self._disarm()
        super().on_headers_complete()
        cycle = self.cycle
        if cycle is None or cycle.response_started:  # (a refused request's cycle answered)
            return
        send = cycle.send

        async def first(message: Any) -> None:
            """The response's start: note whether it is an event stream (`shutdown`); the
            rest of the messages go to uvicorn's `send` directly."""
            cycle.send = send  # type: ignore[method-assign]
            if message["type"] == "http.response.start" and any(
                name.lower() == b"content-type" and value.startswith(b"text/event-stream")
                for name, value in message.get("headers") or ()
            ):
                self._event_stream = cycle
            await send(message)

        cycle.send = first  # type: ignore[method-assign]

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._in_head, self._head_bytes = True, 0
        self._completed += 1

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self._due is not None:
            status, message = self._due
            self._due = None
            self._answer(status, message)
            return
        # A pipelined request's head that began while the response was being sent is timed
        # from now: until then, the connection was busy, not stalled.
        if self._head_timer is None and self._waiting_for_head():
            self._arm()

    def shutdown(self) -> None:
        """A graceful stop: an event stream still being sent (it would never end by itself)
        ends now, as if its client had gone, and the connection closes; any other response
        is let finish, as uvicorn does.
        uvicorn would otherwise cancel it after its grace period, writing a traceback to the
        log; its client reconnects to the server's next run (EventSource, `hitl watch`)."""
        cycle = self.cycle
        if cycle is not None and cycle is self._event_stream and not cycle.response_complete:
            cycle.disconnected = True
            cycle.message_event.set()
            self.transport.close()
            return
        super().shutdown()

    # The head's deadline

    def _waiting_for_head(self) -> bool:
        """Part of a request's head came, not all of it, and no response is being sent."""
        return (
            self._in_head
            and (self._head_started or self._head_bytes > 0)
            and not self._refused
            and not self.transport.is_closing()
            and (self.cycle is None or self.cycle.response_complete)
        )

    def _arm(self) -> None:
        self._looked = False
        self._head_timer = self.loop.call_later(self.header_timeout, self._head_timed_out)

    def _disarm(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if not self._looked:
            # One last look first: bytes that came while the loop was busy may wait unread
            # (uvloop runs due timers before it reads), and closing a socket with unread
            # bytes resets the connection under a request that came in time.
            self._looked = True
            self._head_timer = self.loop.call_later(LAST_LOOK_SECONDS, self._head_timed_out)
            return
        if self._waiting_for_head():
            self._refuse(408, "Request header timeout")
        elif self.cycle is None and not self.transport.is_closing():
            # Not a byte since the connection opened: closed, as an idle kept-alive one is.
            self.transport.close()

    def _refuse(self, status: int, message: str) -> None:
        """Answer `status` with a one-line body, close, and drop what the client still sends.
        A pipelined request's refusal waits for the answer to the request before it."""
        self._disarm()
        self._refused = True
        if self.cycle is not None and not self.cycle.response_complete:
            self._due = (status, message)
            return
        self._answer(status, message)

    def _answer(self, status: int, message: str) -> None:
        client = f"{self.client[0]}:{self.client[1]}" if self.client else "?"
        log.info("%s: %s, answered %d", client, message.lower(), status, extra={"status": status})
        body = message.encode("ascii")
        head = [STATUS_LINE[status]]
        for name, value in (*self.server_state.default_headers, *security.HEADERS):
            head += [name, b": ", value, b"\r\n"]
        head += [
            b"content-type: text/plain; charset=utf-8\r\n",
            b"content-length: %d\r\n" % len(body),
            b"connection: close\r\n\r\n",
        ]
        self.transport.write(b"".join(head) + body)
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self.flow.resume_reading()
        self._linger = self.loop.call_later(LINGER_SECONDS, self.transport.close)


class Corked:
    """A connection's transport that sends a response's head with the first of its body.

    uvicorn writes a response's status line and headers with one write and each body message
    with another: two system calls for a JSON answer, and two segments for the client to wake
    up for. Here a write that begins with a status line is held until the next write, which
    takes it along, or until the event loop's turn ends; every other write goes at once (so an
    SSE stream's events are not delayed: holding them all to the turn's end made 1,000 streams
    on one task get each event later, p99 25 -> 42-67 ms). Closing, or ending the writes,
    sends what is held first."""

    __slots__ = ("_transport", "_loop", "_head")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._head = b""

    def write(self, data: bytes) -> None:
        if not data:
            return
        if self._head:
            data, self._head = self._head + data, b""
        elif data[:5] == b"HTTP/":  # (a memoryview has no startswith)
            self._head = data
            self._loop.call_soon(self.flush)
            return
        self._transport.write(data)

    def writelines(self, data: Any) -> None:
        for piece in data:
            self.write(piece)

    def flush(self) -> None:
        head, self._head = self._head, b""
        if head and not self._transport.is_closing():
            self._transport.write(head)

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def abort(self) -> None:
        self._head = b""
        self._transport.abort()

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + len(self._head)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


def protocol_class(max_header_bytes: int, header_timeout: float) -> type[LimitedHttpProtocol]:
    """`LimitedHttpProtocol` with these limits, for uvicorn's `http=`."""
    limits = {"max_header_bytes": max_header_bytes, "header_timeout": header_timeout}
    return type("LimitedHttpProtocol", (LimitedHttpProtocol,), limits)


class HideSecrets(logging.Filter):
    """The access log names the path of each request; a sign-in link's path is a secret."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            path = args[2]
            if path.startswith("/login/"):
                record.args = (*args[:2], "/login/[secret]", *args[3:])
        return True


class NoWebSocketAdvice(logging.Filter):
    """hitl serves no WebSocket: a request to upgrade to one is answered as a plain request, and
    uvicorn logs "Unsupported upgrade request.". Its advice to install a WebSocket library for
    it is not for hitl's operator."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("No supported WebSocket library")


def _filtered(name: str, kind: type[logging.Filter]) -> None:
    logger = logging.getLogger(name)
    if not any(isinstance(f, kind) for f in logger.filters):
        logger.addFilter(kind())


def config(app: Any, settings: Settings) -> uvicorn.Config:
    """uvicorn's configuration for `app`: the settings' address, log level and limits."""
    _filtered("uvicorn.access", HideSecrets)
    _filtered("uvicorn.error", NoWebSocketAdvice)
    return uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        # JSON lines: uvicorn's loggers go to the root logger's JSON handler, not their own.
        log_config=None if settings.log_format == "json" else uvicorn.config.LOGGING_CONFIG,
        http=protocol_class(settings.max_header_bytes, settings.header_timeout_seconds),
        ws="none",  # hitl serves no WebSocket (and starts without loading a library for them)
        # A client that sends a request on a kept-alive connection as the server closes it gets
        # no answer (httpx: ReadError): servers close theirs after the clients', not before.
        timeout_keep_alive=settings.keep_alive_seconds,  # type: ignore[arg-type]
        timeout_graceful_shutdown=2,
    )


def run_server(app: Any, settings: Settings) -> None:
    """Serve `app` until a signal stops it, as `uvicorn.run` does, with the settings' limits."""
    server = uvicorn.Server(config(app, settings))
    # uvicorn shuts down gracefully on SIGINT, then raises it again: as `uvicorn.run`, end here.
    with contextlib.suppress(KeyboardInterrupt):
        server.run()
    if not server.started:
        sys.exit(STARTUP_FAILURE)
