"""JSON POSTs to webhook receivers over kept-alive HTTP/1.1 connections, and nothing more.

A general client (httpx) spends most of a small request's time on what a webhook does not
use (cookies, redirects, auth flows, proxies, many layers of objects); here the deliveries of
a batch to one receiver are a few writes and reads: HTTP/1.1 pipelining, several requests
written at once on a connection and their answers read in order, which any HTTP/1.1 server
must accept. Connections are kept per origin (scheme, host, port), a few at once. A
connection the receiver closed is dropped; a request on it is sent again once on a new one
only if nothing of the answer was read (the receiver then never saw it whole), and the
requests behind an answer that closed the connection are sent again, one at a time (the
receiver read none of them).
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

MAX_HEAD = 64 * 1024
KEEP = 16  # connections sending at once, and idle connections kept, per origin
PIPELINE = 16  # requests written at once on one connection
MAX_INTERIM = 10  # interim (1xx) answers skipped before a final one
ERROR_BODY = 500  # bytes of an error answer kept, for the delivery log
# An answer's body longer than this is not read through: its first ERROR_BODY bytes are kept
# and the connection is dropped (what was written behind it goes again on another).
MAX_BODY = 64 * 1024


@dataclass(frozen=True)
class Answer:
    status: int
    reason: str
    body: bytes  # at most ERROR_BODY bytes of it


class BadAnswer(Exception):
    """The receiver's answer was not HTTP/1.1 as it should be."""


class Withdrawn(Exception):
    """Not sent: by the time a connection was free for it, it was no longer wanted."""


Wanted = Callable[[], Awaitable[bool]]


Origin = tuple[str, str, int]
Stream = tuple[asyncio.StreamReader, asyncio.StreamWriter]


class Poster:
    def __init__(self, timeout: float, total: float | None = None) -> None:
        self.timeout = timeout  # seconds for each answer
        self.total = total if total is not None else 4 * timeout  # for a connection's all
        self._idle: dict[Origin, list[Stream]] = defaultdict(list)
        self._tls: ssl.SSLContext | None = None
        # Connections sending at once, per receiver: one that hangs holds up only its own.
        self._slots: dict[Origin, asyncio.Semaphore] = defaultdict(lambda: asyncio.Semaphore(KEEP))

    async def post_many(
        self, url: str, posts: list[tuple[bytes, dict[str, str]]], wanted: Wanted | None = None
    ) -> list[Answer | Exception]:
        """POST each (body, headers) to `url`: for each, its answer or the OSError,
        TimeoutError or BadAnswer that stopped it. Up to PIPELINE requests are written at once
        on one connection (HTTP/1.1 pipelining: one write, then the answers in order), on up
        to KEEP connections at once to each receiver. `wanted` is asked once a connection is
        free for a group of them: if no longer, they are Withdrawn, unsent."""
        parts = urlsplit(url)
        scheme, host = parts.scheme, parts.hostname or ""
        port = parts.port or (443 if scheme == "https" else 80)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        netloc = host if parts.port is None else f"{host}:{parts.port}"
        if ":" in host and not netloc.startswith("["):
            netloc = f"[{host}]" + (f":{parts.port}" if parts.port else "")
        head = f"POST {target} HTTP/1.1\r\nHost: {netloc}\r\n"
        requests = [
            (
                head
                + f"Content-Length: {len(body)}\r\n"
                + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
                + "\r\n"
            ).encode("latin-1")
            + body
            for body, headers in posts
        ]
        chunks = [requests[i : i + PIPELINE] for i in range(0, len(requests), PIPELINE)]
        origin = (scheme, host, port)
        answered = await asyncio.gather(
            *(self._pipeline(origin, chunk, wanted) for chunk in chunks)
        )
        return [answer for chunk in answered for answer in chunk]

    async def _pipeline(
        self, origin: Origin, requests: list[bytes], wanted: Wanted | None = None
    ) -> list[Answer | Exception]:
        """Send `requests` on one connection, written together, and read their answers, each
        within `timeout` of the one before (and all within `total`). A receiver that closes the
        connection after an answer (`Connection: close`, or HTTP/1.0) reads none of the
        requests after it (RFC 9112, 9.6): those go again, one at a time."""
        answers: list[Answer | Exception] = []
        loop = asyncio.get_running_loop()
        async with self._slots[origin]:
            if wanted is not None and not await wanted():
                return [Withdrawn("no longer wanted when a connection was free")] * len(requests)
            started = loop.time()
            try:
                async with asyncio.timeout(self.timeout) as deadline:
                    one_by_one = False
                    while len(answers) < len(requests):
                        pending = requests[len(answers) :]
                        if one_by_one:
                            pending = pending[:1]
                        reader, writer, reused = await self._connect(origin)
                        keep, before = True, len(answers)
                        try:
                            writer.write(b"".join(pending))
                            for _ in pending:
                                answer, keep = await _read_answer(reader)
                                answers.append(answer)
                                deadline.reschedule(
                                    min(loop.time() + self.timeout, started + self.total)
                                )
                                if not keep:
                                    break
                        except (ConnectionError, asyncio.IncompleteReadError) as exc:
                            writer.close()
                            stale = reused and getattr(exc, "nothing_read", False)
                            if stale and len(answers) == before:
                                continue  # an idle connection the receiver had closed
                            answers += [_as_error(exc)] * (len(requests) - len(answers))
                            return answers
                        except BaseException:
                            writer.close()
                            raise
                        if keep and len(answers) - before == len(pending):
                            if len(self._idle[origin]) < KEEP:
                                self._idle[origin].append((reader, writer))
                            else:
                                writer.close()
                        else:
                            writer.close()
                            one_by_one = True
            except (OSError, TimeoutError, BadAnswer) as exc:
                answers += [exc] * (len(requests) - len(answers))
            except Exception as exc:  # an answer malformed some other way: none is lost
                why = BadAnswer(f"a malformed answer: {type(exc).__name__}: {exc}")
                answers += [why] * (len(requests) - len(answers))
        return answers

    async def _connect(
        self, origin: Origin
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, bool]:
        """A connection to `origin`, and whether it was kept from before (it may have been
        closed by the receiver since)."""
        idle = self._idle[origin]
        while idle:
            reader, writer = idle.pop()
            if not writer.is_closing() and not reader.at_eof():
                return reader, writer, True
            writer.close()
        scheme, host, port = origin
        tls = None
        if scheme == "https":
            if self._tls is None:
                self._tls = ssl.create_default_context()
            tls = self._tls
        reader, writer = await asyncio.open_connection(host, port, ssl=tls)
        return reader, writer, False

    async def close(self) -> None:
        for streams in self._idle.values():
            for _, writer in streams:
                writer.close()
                with contextlib.suppress(Exception):
                    await writer.wait_closed()
        self._idle.clear()


def _as_error(exc: BaseException) -> Exception:
    if isinstance(exc, asyncio.IncompleteReadError):
        return ConnectionResetError("the receiver closed the connection before answering")
    return exc if isinstance(exc, Exception) else RuntimeError(str(exc))


async def _read_answer(reader: asyncio.StreamReader) -> tuple[Answer, bool]:
    """The final answer (past any interim 1xx one), and whether the connection may be used
    again."""
    for _ in range(MAX_INTERIM):
        answer = await _read_head(reader)
        status = answer[1]
        if status == 101:
            raise BadAnswer("the receiver switched protocols")
        if not 100 <= status < 200:
            return await _read_rest(reader, *answer)
    raise BadAnswer("too many interim answers")


async def _read_head(reader: asyncio.StreamReader) -> tuple[str, int, list[str], dict[str, str]]:
    """An answer's head: (version, status, reason, fields)."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        if not exc.partial:
            error = ConnectionResetError("the receiver closed the connection")
            error.nothing_read = True  # type: ignore[attr-defined]
            raise error from None
        raise
    except asyncio.LimitOverrunError:
        raise BadAnswer("the answer's head is too long") from None
    if len(head) > MAX_HEAD:
        raise BadAnswer("the answer's head is too long")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    try:
        version, code, *reason = status_line.split(" ", 2)
        status = int(code)
    except ValueError:
        raise BadAnswer(f"not an HTTP answer: {status_line[:80]!r}") from None
    if not version.startswith("HTTP/1."):
        raise BadAnswer(f"not an HTTP/1 answer: {status_line[:80]!r}")
    fields: dict[str, str] = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        if name:
            fields[name.strip().lower()] = value.strip()
    return version, status, reason, fields


async def _read_rest(
    reader: asyncio.StreamReader,
    version: str,
    status: int,
    reason: list[str],
    fields: dict[str, str],
) -> tuple[Answer, bool]:
    """A final answer's body, read as its head says; of a long one, only its start."""
    keep = version == "HTTP/1.1" and "close" not in fields.get("connection", "").lower()
    if "chunked" in fields.get("transfer-encoding", "").lower():
        body, whole = await _read_chunked(reader)
        keep = keep and whole
    elif "content-length" in fields:
        try:
            length = int(fields["content-length"])
        except ValueError:
            said = fields["content-length"][:40]
            raise BadAnswer(f"Content-Length is not a number: {said!r}") from None
        if length > MAX_BODY:
            body, keep = await _read_start(reader, min(length, ERROR_BODY)), False
        else:
            body = await reader.readexactly(length)
    elif status in (204, 304):
        body = b""
    else:  # the body runs to the connection's end, which is not waited for
        body, keep = await _read_start(reader, ERROR_BODY), False
    return Answer(status, reason[0] if reason else "", body[:ERROR_BODY]), keep


async def _read_start(reader: asyncio.StreamReader, size: int) -> bytes:
    """Up to `size` bytes: fewer only if the connection ends first."""
    start = bytearray()
    while len(start) < size and (more := await reader.read(size - len(start))):
        start += more
    return bytes(start)


async def _read_chunked(reader: asyncio.StreamReader) -> tuple[bytes, bool]:
    """The start of a chunked body, and whether it was read to its end (not past MAX_BODY)."""
    kept = bytearray()
    read = 0
    while True:
        size_line = await reader.readuntil(b"\r\n")
        size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
        if size == 0:
            while (await reader.readuntil(b"\r\n")) != b"\r\n":  # trailers
                pass
            return bytes(kept), True
        read += size
        if read > MAX_BODY:
            return bytes(kept), False
        chunk = await reader.readexactly(size + 2)
        if len(kept) < ERROR_BODY:
            kept += chunk[:size]
