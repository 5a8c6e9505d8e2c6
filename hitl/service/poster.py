"""JSON POSTs to webhook receivers over kept-alive HTTP/1.1 connections, and nothing more.

A general client (httpx) spends most of a small request's time on what a webhook does not
use (cookies, redirects, auth flows, proxies, many layers of objects); here a delivery is one
write and one read. Connections are kept per origin (scheme, host, port), a few at once; a
connection the receiver closed is dropped, and a request on it is retried once on a new one
only if nothing of the answer was read (the receiver then never saw it whole).
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections import defaultdict
from dataclasses import dataclass
from urllib.parse import urlsplit

MAX_HEAD = 64 * 1024
KEEP = 16  # idle connections kept per origin: as many as may be sending at once
ERROR_BODY = 500  # bytes of an error answer kept, for the delivery log


@dataclass(frozen=True)
class Answer:
    status: int
    reason: str
    body: bytes  # at most ERROR_BODY bytes of it


class BadAnswer(Exception):
    """The receiver's answer was not HTTP/1.1 as it should be."""


Origin = tuple[str, str, int]
Stream = tuple[asyncio.StreamReader, asyncio.StreamWriter]


class Poster:
    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._idle: dict[Origin, list[Stream]] = defaultdict(list)
        self._tls: ssl.SSLContext | None = None

    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> Answer:
        """POST `body`; the answer, or an OSError/TimeoutError/BadAnswer."""
        parts = urlsplit(url)
        scheme, host = parts.scheme, parts.hostname or ""
        port = parts.port or (443 if scheme == "https" else 80)
        origin = (scheme, host, port)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        netloc = host if parts.port is None else f"{host}:{parts.port}"
        if ":" in host and not netloc.startswith("["):
            netloc = f"[{host}]" + (f":{parts.port}" if parts.port else "")
        lines = [f"POST {target} HTTP/1.1", f"Host: {netloc}", f"Content-Length: {len(body)}"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        request = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
        async with asyncio.timeout(self.timeout):
            for fresh in (False, True):
                reader, writer = await self._connect(origin, fresh)
                try:
                    writer.write(request)
                    answer, keep = await _read_answer(reader)
                except (ConnectionError, asyncio.IncompleteReadError) as exc:
                    writer.close()
                    if fresh or not getattr(exc, "nothing_read", False):
                        raise
                    continue  # an idle connection the receiver had closed: once more
                except BaseException:
                    writer.close()
                    raise
                if keep and len(self._idle[origin]) < KEEP:
                    self._idle[origin].append((reader, writer))
                else:
                    writer.close()
                return answer
        raise AssertionError("unreachable")

    async def _connect(self, origin: Origin, fresh: bool) -> Stream:
        idle = self._idle[origin]
        while idle and not fresh:
            reader, writer = idle.pop()
            if not writer.is_closing() and not reader.at_eof():
                return reader, writer
            writer.close()
        scheme, host, port = origin
        tls = None
        if scheme == "https":
            if self._tls is None:
                self._tls = ssl.create_default_context()
            tls = self._tls
        return await asyncio.open_connection(host, port, ssl=tls)

    async def close(self) -> None:
        for streams in self._idle.values():
            for _, writer in streams:
                writer.close()
                with contextlib.suppress(Exception):
                    await writer.wait_closed()
        self._idle.clear()


async def _read_answer(reader: asyncio.StreamReader) -> tuple[Answer, bool]:
    """The answer, and whether the connection may be used again."""
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
    keep = version == "HTTP/1.1" and "close" not in fields.get("connection", "").lower()
    if "chunked" in fields.get("transfer-encoding", "").lower():
        body = await _read_chunked(reader)
    elif "content-length" in fields:
        body = await reader.readexactly(int(fields["content-length"]))
    elif status in (204, 304) or 100 <= status < 200:
        body = b""
    else:  # the body runs to the connection's end
        body = await reader.read(-1)
        keep = False
    return Answer(status, reason[0] if reason else "", body[:ERROR_BODY]), keep


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    kept = bytearray()
    while True:
        size_line = await reader.readuntil(b"\r\n")
        size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
        if size == 0:
            while (await reader.readuntil(b"\r\n")) != b"\r\n":  # trailers
                pass
            return bytes(kept)
        chunk = await reader.readexactly(size + 2)
        if len(kept) < ERROR_BODY:
            kept += chunk[:size]
