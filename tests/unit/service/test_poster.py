"""The webhook poster against real receivers on 127.0.0.1: requests written together on one
connection (HTTP/1.1 pipelining) get their own answers in order; a receiver that closes the
connection after each answer, or drops it, gets each request again or has it failed, never
answered for another."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from hitl.service.poster import KEEP, PIPELINE, Answer, Poster, Withdrawn

Serve = Callable[[asyncio.StreamReader, asyncio.StreamWriter, list[int]], Awaitable[None]]


@asynccontextmanager
async def receiver(serve: Serve) -> AsyncIterator[tuple[str, list[int], list[int]]]:
    """(url, the `n` of each request read, in order, one entry per connection opened)."""
    seen: list[int] = []
    connections: list[int] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        try:
            await serve(reader, writer, seen)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/hook", seen, connections
    finally:
        server.close()


async def read_request(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    return int(json.loads(await reader.readexactly(length))["n"])


def answer(n: int, close: bool = False) -> bytes:
    body = str(n).encode()
    extra = b"Connection: close\r\n" if close else b""
    return b"HTTP/1.1 200 OK\r\n" + extra + b"Content-Length: %d\r\n\r\n" % len(body) + body


def posts(count: int) -> list[tuple[bytes, dict[str, str]]]:
    return [
        (json.dumps({"n": n}).encode(), {"Content-Type": "application/json"}) for n in range(count)
    ]


async def answer_each(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, seen: list[int]
) -> None:
    """A receiver that answers every request it reads, on a kept connection."""
    while True:
        n = await read_request(reader)
        seen.append(n)
        writer.write(answer(n))


def never_answer(done: asyncio.Event) -> Serve:
    """A receiver that reads a request and answers nothing until `done`."""

    async def serve(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, seen: list[int]
    ) -> None:
        seen.append(await read_request(reader))
        await done.wait()

    return serve


async def test_pipelined_requests_get_their_own_answers_in_order() -> None:
    async with receiver(answer_each) as (url, seen, connections):
        poster = Poster(timeout=10)
        count = PIPELINE * 2 + 3
        answers = await poster.post_many(url, posts(count))
        assert [a.body for a in answers if isinstance(a, Answer)] == [
            str(n).encode() for n in range(count)
        ]
        assert sorted(seen) == list(range(count))
        assert len(connections) == 3  # one a PIPELINE of requests
        again = await poster.post_many(url, posts(2))  # on a kept connection
        assert [a.body for a in again if isinstance(a, Answer)] == [b"0", b"1"]
        assert len(connections) == 3
        await poster.close()


async def test_a_receiver_that_closes_after_each_answer_gets_every_request_once() -> None:
    async def serve(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, seen: list[int]
    ) -> None:
        n = await read_request(reader)  # the rest written behind it are never read
        seen.append(n)
        writer.write(answer(n, close=True))
        await writer.drain()

    async with receiver(serve) as (url, seen, connections):
        poster = Poster(timeout=10)
        answers = await poster.post_many(url, posts(5))
        assert [a.body for a in answers if isinstance(a, Answer)] == [b"0", b"1", b"2", b"3", b"4"]
        assert seen == [0, 1, 2, 3, 4]
        assert len(connections) == 5
        await poster.close()


async def test_a_connection_dropped_mid_pipeline_fails_the_unanswered_only() -> None:
    async def serve(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, seen: list[int]
    ) -> None:
        for _ in range(2):
            n = await read_request(reader)
            seen.append(n)
            writer.write(answer(n))
        await writer.drain()
        writer.transport.abort()  # gone, without a word, with requests unanswered

    async with receiver(serve) as (url, seen, connections):
        poster = Poster(timeout=10)
        answers = await poster.post_many(url, posts(4))
        assert [a.body for a in answers[:2] if isinstance(a, Answer)] == [b"0", b"1"]
        assert all(isinstance(a, ConnectionError) for a in answers[2:]), answers
        assert len(connections) == 1
        await poster.close()


async def test_a_receiver_that_never_answers_times_out_each_request() -> None:
    done = asyncio.Event()
    async with receiver(never_answer(done)) as (url, seen, _):
        poster = Poster(timeout=0.2)
        answers = await poster.post_many(url, posts(3))
        assert all(isinstance(a, TimeoutError) for a in answers), answers
        assert seen == [0]
        [alone] = await poster.post_many(url, [(b'{"n": 9}', {})])
        assert isinstance(alone, TimeoutError), alone
        done.set()
        await poster.close()


async def test_interim_answers_are_skipped_and_http_1_0_is_sent_one_at_a_time() -> None:
    """A 1xx before each final answer is not taken for it; an HTTP/1.0 receiver (no keep-alive)
    reads one request a connection, and each of the others is sent once more, alone."""

    async def serve(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, seen: list[int]
    ) -> None:
        n = await read_request(reader)
        seen.append(n)
        body = b"%d" % n
        writer.write(b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n")
        writer.write(b"HTTP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
        await writer.drain()

    async with receiver(serve) as (url, seen, connections):
        poster = Poster(timeout=10)
        answers = await poster.post_many(url, posts(4))
        assert [a.body for a in answers if isinstance(a, Answer)] == [b"0", b"1", b"2", b"3"]
        assert seen == [0, 1, 2, 3]  # each read once: after the first, one a connection
        assert len(connections) == 4
        await poster.close()


async def test_a_kept_connection_closed_while_idle_is_replaced_once() -> None:
    """The receiver answers one request a connection, then closes it while the poster keeps it:
    the next batch goes on a new connection, not the closed one, and what that one leaves
    unanswered fails (no answer, no resend); a new connection that drops at once fails its
    requests and is not tried again."""
    drop = asyncio.Event()

    async def serve(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, seen: list[int]
    ) -> None:
        if drop.is_set():
            return  # a new connection, closed at once
        n = await read_request(reader)
        seen.append(n)
        writer.write(answer(n))
        await writer.drain()  # then it closes, idle, while the poster keeps it

    async with receiver(serve) as (url, seen, connections):
        poster = Poster(timeout=10)
        assert [a.body for a in await poster.post_many(url, posts(1)) if isinstance(a, Answer)] == [
            b"0"
        ]
        answers = await poster.post_many(url, posts(2))
        assert [a.body for a in answers if isinstance(a, Answer)] == [b"0"]
        assert isinstance(answers[1], ConnectionError), answers
        assert len(connections) == 2  # the kept one (closed), then one new for the batch
        drop.set()
        dropped = await poster.post_many(url, posts(2))
        assert all(isinstance(a, ConnectionError) for a in dropped), dropped
        assert len(connections) == 3  # a new connection is not tried twice
        await poster.close()


async def test_a_long_answer_is_not_read_through() -> None:
    """A receiver that answers with a body of 400 MB (or one with no length, or chunked past
    the limit): the poster keeps its start, drops the connection rather than read the rest,
    and sends what was written behind it again on another."""
    held = asyncio.Event()

    async def serve(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, seen: list[int]
    ) -> None:
        n = await read_request(reader)
        seen.append(n)
        if n == 0:
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 400000000\r\n\r\n" + b"x" * 100_000)
        elif n == 1:
            writer.write(b"HTTP/1.1 500 Oops\r\n\r\n" + b"y" * 100_000)  # to the end
        elif n == 2:
            chunk = b"z" * 40_000
            writer.write(b"HTTP/1.1 503 Busy\r\nTransfer-Encoding: chunked\r\n\r\n")
            writer.write((b"%x\r\n" % len(chunk) + chunk + b"\r\n") * 3)
        else:
            writer.write(answer(n))
        await writer.drain()
        await held.wait()  # (the rest is never sent: only a dropped connection ends it)

    async with receiver(serve) as (url, seen, connections):
        poster = Poster(timeout=10)
        answers = await asyncio.wait_for(poster.post_many(url, posts(4)), 10)
        assert [(a.status, a.body) for a in answers if isinstance(a, Answer)] == [
            (200, b"x" * 500),
            (500, b"y" * 500),
            (503, b"z" * 500),
            (200, b"3"),
        ]
        assert sorted(seen) == [0, 1, 2, 3] and len(connections) == 4
        held.set()
        await poster.close()


async def test_a_receiver_that_hangs_holds_up_only_its_own_deliveries() -> None:
    """Every connection the poster may open to one receiver is stuck waiting for its answers;
    another receiver's deliveries go at once, while those are still waiting."""
    done = asyncio.Event()
    hang = never_answer(done)
    async with receiver(hang) as (stuck, held, connections), receiver(answer_each) as (fast, _, _):
        poster = Poster(timeout=60)
        waiting = asyncio.create_task(poster.post_many(stuck, posts(KEEP * PIPELINE + 1)))
        while len(held) < KEEP:  # every connection it may have to that receiver is open
            await asyncio.sleep(0.01)
        [sent] = await asyncio.wait_for(poster.post_many(fast, posts(1)), 30)  # (not 60)
        assert isinstance(sent, Answer) and sent.body == b"0"
        assert not waiting.done() and len(connections) == KEEP
        done.set()  # (the hanging receiver lets go: what it held fails)
        assert all(not isinstance(a, Answer) for a in await waiting)
        await poster.close()


async def test_what_is_no_longer_wanted_when_a_connection_is_free_is_not_sent() -> None:
    """Requests that waited for a connection to a receiver that hangs are asked about again
    once one is free (their channel was removed meanwhile, say): those no longer wanted are
    Withdrawn, and the receiver never gets them."""
    done = asyncio.Event()
    wanted = True

    async def still() -> bool:
        return wanted

    async with receiver(never_answer(done)) as (url, seen, connections):
        poster = Poster(timeout=60)
        held = asyncio.create_task(poster.post_many(url, posts(KEEP * PIPELINE), still))
        while len(seen) < KEEP:  # every connection it may have to the receiver is busy
            await asyncio.sleep(0.01)
        queued = asyncio.create_task(poster.post_many(url, posts(3), still))
        wanted = False
        done.set()  # the receiver lets go of the busy ones: a connection is free
        assert all(isinstance(a, Withdrawn) for a in await queued)
        assert all(not isinstance(a, Answer) for a in await held)
        assert len(seen) == KEEP and len(connections) == KEEP  # nothing more was sent
        await poster.close()
