"""`hitl.server.Corked`: what is written in one turn of the event loop goes in one write."""

from __future__ import annotations

import asyncio
from typing import Any

from hitl.server import Corked


class _Counting:
    """A real transport, its writes counted."""

    def __init__(self, transport: asyncio.BaseTransport) -> None:
        self.transport, self.writes = transport, []

    def write(self, data: bytes) -> None:
        self.writes.append(data)
        self.transport.write(data)  # type: ignore[attr-defined]

    def __getattr__(self, name: str) -> Any:
        return getattr(self.transport, name)


Peer = tuple[asyncio.StreamReader, asyncio.StreamWriter]


async def _connected() -> tuple[_Counting, Peer, asyncio.AbstractServer]:
    """A transport to a reader on 127.0.0.1."""
    accepted: asyncio.Queue[Peer] = asyncio.Queue()

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await accepted.put((reader, writer))

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_connection(asyncio.Protocol, "127.0.0.1", port)
    return _Counting(transport), await accepted.get(), server


async def test_a_response_head_goes_with_the_first_of_its_body() -> None:
    counting, (reader, writer), server = await _connected()
    corked = Corked(counting, asyncio.get_running_loop())  # type: ignore[arg-type]
    try:
        corked.write(b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\n")
        assert counting.writes == [] and corked.get_write_buffer_size() == 38
        corked.write(b"")
        corked.write(b"body")
        assert counting.writes == [b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\nbody"]
        corked.write(b"more")  # not a head: at once
        corked.writelines([b"a", b"b"])
        assert counting.writes[1:] == [b"more", b"a", b"b"]
        await asyncio.sleep(0)  # the turn ends: nothing was held
        assert len(counting.writes) == 4
        corked.write(b"HTTP/1.1 204 No Content\r\n\r\n")
        corked.close()  # sends what is held first
        assert counting.writes[4:] == [b"HTTP/1.1 204 No Content\r\n\r\n"]
        assert (await reader.read()).endswith(b"No Content\r\n\r\n")
    finally:
        writer.close()
        server.close()
        await server.wait_closed()


async def test_a_head_alone_is_sent_when_the_turn_ends_or_on_close() -> None:
    counting, (reader, writer), server = await _connected()
    corked = Corked(counting, asyncio.get_running_loop())  # type: ignore[arg-type]
    try:
        corked.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
        await asyncio.sleep(0)  # a stream whose first chunk is not ready yet
        assert counting.writes == [b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"]
        corked.write(b"HTTP/1.1 408 Request Timeout\r\n\r\n")
        corked.write_eof()  # sends what is held first
        assert counting.writes[1:] == [b"HTTP/1.1 408 Request Timeout\r\n\r\n"]
        assert (await reader.read()).endswith(b"Timeout\r\n\r\n")
        await asyncio.sleep(0)  # the turn's flush finds nothing left to send
        assert len(counting.writes) == 2
        counting.close()
    finally:
        writer.close()
        server.close()
        await server.wait_closed()
