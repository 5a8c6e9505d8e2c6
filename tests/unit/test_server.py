"""`hitl.server`: what is written in one turn of the event loop goes in one write (`Corked`);
a graceful stop ends event streams, and lets other responses finish."""

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


class _Transport:
    """A transport that keeps what is written, and whether it was closed."""

    def __init__(self) -> None:
        self.written, self.closed = bytearray(), False

    def write(self, data: bytes) -> None:
        self.written.extend(data)

    def writelines(self, data: Any) -> None:
        for part in data:
            self.write(part)

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 8000), "peername": ("127.0.0.1", 50000)}.get(name)

    def get_write_buffer_size(self) -> int:
        return 0

    def can_write_eof(self) -> bool:
        return False

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


async def _stopped_while_sending(content_type: bytes) -> tuple[_Transport, list[Any]]:
    """A response of `content_type` half sent when the server begins a graceful stop (its
    protocol's `shutdown`); then the app sends the rest, if it still may. What was written,
    and what the app's `receive` said after the stop."""
    import uvicorn
    from uvicorn.server import ServerState

    from hitl.server import protocol_class

    more, heard = asyncio.Event(), []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        headers = [(b"content-type", content_type)]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"first;", "more_body": True})
        await more.wait()
        if content_type.startswith(b"text/event-stream"):
            heard.append(await receive())  # a stream waits for its client to go
        await send({"type": "http.response.body", "body": b"last", "more_body": False})

    config = uvicorn.Config(app, http=protocol_class(32 * 1024, 10.0), log_level="warning")
    state = ServerState()
    protocol = protocol_class(32 * 1024, 10.0)(config, state, {})  # type: ignore[arg-type]
    transport = _Transport()
    protocol.connection_made(transport)  # type: ignore[arg-type]
    protocol.data_received(b"GET /x HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    while b"first;" not in transport.written:
        await asyncio.sleep(0)
    protocol.shutdown()
    more.set()
    await asyncio.wait_for(asyncio.gather(*state.tasks), 5)
    await asyncio.sleep(0)  # (the corked writes of the turn)
    return transport, heard


async def test_a_stop_ends_an_event_stream_at_once_and_lets_any_other_response_finish() -> None:
    """On a graceful stop an event stream (which would never end) is ended as if its client
    had gone: the app hears a disconnect and the connection closes. Any other response in
    flight (a file being sent) is let finish, whole, as uvicorn does."""
    sent, heard = await _stopped_while_sending(b"application/javascript")
    assert bytes(sent.written).endswith(b"first;\r\n4\r\nlast\r\n0\r\n\r\n"), bytes(sent.written)
    assert heard == []
    sent, heard = await _stopped_while_sending(b"text/event-stream; charset=utf-8")
    assert heard == [{"type": "http.disconnect"}]
    assert sent.closed and not bytes(sent.written).endswith(b"0\r\n\r\n")


def _protocol(app: Any) -> tuple[Any, _Transport, Any]:
    """hitl's protocol on a `_Transport`, connected; its deadline's own timer cancelled, so
    that the test says when the deadline passes (`_head_timed_out`)."""
    import uvicorn
    from uvicorn.server import ServerState

    from hitl.server import protocol_class

    config = uvicorn.Config(app, http=protocol_class(32 * 1024, 10.0), log_level="warning")
    state = ServerState()
    protocol = protocol_class(32 * 1024, 10.0)(config, state, {})  # type: ignore[arg-type]
    transport = _Transport()
    protocol.connection_made(transport)  # type: ignore[arg-type]
    protocol._disarm()
    return protocol, transport, state


async def test_a_request_that_came_as_its_head_s_deadline_passed_is_read_not_reset() -> None:
    """A busy loop can run a due timer before it reads what came (uvloop runs timers first):
    the deadline takes one last look, so a request that came in time is answered, and only a
    connection still silent, or a head still partial, after it is closed (or answered 408)."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    protocol, transport, state = _protocol(app)
    protocol._head_timed_out()  # the deadline passes while the request waits unread
    assert not transport.closed
    protocol.data_received(b"GET /x HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")  # then it is read
    await asyncio.wait_for(asyncio.gather(*state.tasks), 5)
    await asyncio.sleep(0)  # (the corked writes of the turn)
    assert bytes(transport.written).startswith(b"HTTP/1.1 200 OK") and not transport.closed
    protocol._disarm()

    silent, transport, _ = _protocol(app)
    silent._head_timed_out()
    silent._head_timed_out()  # nothing came by the last look
    assert transport.closed and transport.written == b""

    partial, transport, _ = _protocol(app)
    partial.data_received(b"GET /x HTTP/1.1\r\nHo")
    partial._disarm()
    partial._head_timed_out()
    assert not transport.closed
    partial._head_timed_out()
    await asyncio.sleep(0)  # (the corked write of the turn)
    assert bytes(transport.written).startswith(b"HTTP/1.1 408 ")  # (closed after a linger)
    if partial._linger is not None:
        partial._linger.cancel()
