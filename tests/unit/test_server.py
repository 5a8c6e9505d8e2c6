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


async def test_writes_of_one_turn_go_together_and_in_order() -> None:
    counting, (reader, writer), server = await _connected()
    corked = Corked(counting, asyncio.get_running_loop())  # type: ignore[arg-type]
    try:
        corked.write(b"HTTP/1.1 200 OK\r\n\r\n")
        corked.write(b"")
        corked.write(b"body")
        assert counting.writes == [] and corked.get_write_buffer_size() == 23
        await asyncio.sleep(0)  # the turn ends
        assert counting.writes == [b"HTTP/1.1 200 OK\r\n\r\nbody"]
        corked.writelines([b"a", b"b"])
        corked.close()  # sends what is held first
        assert counting.writes[1:] == [b"ab"]
        assert await reader.read() == b"HTTP/1.1 200 OK\r\n\r\nbodyab"
    finally:
        writer.close()
        server.close()
        await server.wait_closed()


async def test_a_large_write_is_sent_at_once_for_flow_control() -> None:
    counting, (reader, writer), server = await _connected()
    corked = Corked(counting, asyncio.get_running_loop())  # type: ignore[arg-type]
    try:
        corked.write(b"x" * 10)
        corked.write(b"y" * Corked.MAX_HELD)
        assert counting.writes == [b"x" * 10 + b"y" * Corked.MAX_HELD]  # without waiting
        corked.write(b"end")
        corked.write_eof()  # sends what is held first
        assert counting.writes[1:] == [b"end"]
        assert len(await reader.read()) == 10 + Corked.MAX_HELD + 3
        await asyncio.sleep(0)  # the turn's flush finds nothing left to send
        assert len(counting.writes) == 2
    finally:
        counting.close()
        writer.close()
        server.close()
        await server.wait_closed()
