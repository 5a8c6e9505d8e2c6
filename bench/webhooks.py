"""Webhooks: how soon a delivery arrives after its event commits, and what sending them costs.

1. Latency: a webhook on every kind of event it may receive, and lifecycles paced so that
   about 100 deliveries a second are made (25 lifecycles/s, 4 deliveries each: task created,
   review requested, review decided, task completed). Commit to receipt is the receiver's
   clock at arrival minus the event's `created_at` (written in the transaction, just before
   its commit; one machine, one clock), over every delivery.
2. Throughput: 16 clients running lifecycles as fast as they can (as bench/throughput.py),
   with and without that webhook; runs alternate, fresh server each.

The receiver is an asyncio HTTP/1.1 server in this process (core 0), answering 200 at once.

    .venv/bin/python bench/webhooks.py [seconds per run] [throughput runs of each kind]
    (defaults: 10 s, 3 runs)
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import statistics
import sys
import time

from _common import Connection, Server, load, pin_self, report
from throughput import CLIENTS, lifecycle

EVENTS = [
    "task.created",
    "review.requested",
    "review.escalated",
    "review.deadline_near",
    "review.decided",
    "task.completed",
    "task.failed",
    "task.cancelled",
]


class Receiver:
    """Records (arrival time, event id) of each POST; answers 200 with no body."""

    def __init__(self) -> None:
        self.arrivals: list[tuple[float, int]] = []
        self.port = 0
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                body = await reader.readexactly(length)
                self.arrivals.append((time.time(), json.loads(body)["data"]["event_id"]))
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                await writer.drain()  # raises once the server is gone
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        except asyncio.CancelledError:  # the run is over: the connection with it
            pass
        finally:
            writer.close()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()


async def add_webhook(server: Server, receiver: Receiver) -> None:
    conn = Connection(server.port)
    body = {"name": "bench", "kind": "webhook", "url": f"http://127.0.0.1:{receiver.port}/"}
    status, answer = await conn.request("POST", "/api/v1/channels", body | {"events": EVENTS})
    assert status == 201, answer
    await conn.close()


def committed_at(server: Server) -> dict[int, float]:
    with sqlite3.connect(server.dir / "bench.db") as db:
        return dict(db.execute("SELECT id, created_at FROM events"))


async def latency(seconds: float) -> None:
    receiver = Receiver()
    await receiver.start()
    server = Server(core=1, process_delay=0)
    try:
        await add_webhook(server, receiver)
        rate = 25  # lifecycles a second: about 100 deliveries a second
        conns = [Connection(server.port) for _ in range(CLIENTS)]
        started = time.perf_counter()
        running: list[asyncio.Task[None]] = []
        for i in range(int(seconds * rate)):
            await asyncio.sleep(max(0.0, started + i / rate - time.perf_counter()))
            conn = conns[i % CLIENTS]
            running.append(asyncio.create_task(lifecycle(conn, server.port, i)))
        await asyncio.gather(*running)
        expected = int(seconds * rate) * 4
        deadline = time.monotonic() + 30
        while len(receiver.arrivals) < expected and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        for conn in conns:
            await conn.close()
        made = committed_at(server)
        waits = sorted((at - made[event]) * 1000 for at, event in receiver.arrivals)
        q = statistics.quantiles(waits, n=100)
        report(
            f"webhook delivery: every event kind, {rate} lifecycles/s "
            f"({len(waits) / seconds:.0f} deliveries/s), {seconds:g} s, SQLite",
            {
                "deliveries received / made": f"{len(waits)} / {expected}",
                "commit to receipt p50 (ms)": f"{q[49]:.1f}",
                "commit to receipt p99 (ms)": f"{q[98]:.1f}",
                "commit to receipt max (ms)": f"{waits[-1]:.1f}",
            },
        )
    finally:
        server.close()
        await receiver.close()


async def throughput(seconds: float, hook: bool) -> dict[str, float]:
    receiver = Receiver()
    await receiver.start()
    server = Server(core=1, process_delay=0)
    try:
        if hook:
            await add_webhook(server, receiver)
        return await load(server, lifecycle, seconds, CLIENTS)
    finally:
        server.close()
        await receiver.close()


async def main(seconds: float, runs: int) -> None:
    pin_self(0)
    await latency(seconds)
    results: dict[bool, list[dict[str, float]]] = {False: [], True: []}
    for _ in range(runs):
        results[False].append(await throughput(seconds, False))
        results[True].append(await throughput(seconds, True))
    rates = {k: statistics.median(f["rate"] for f in v) for k, v in results.items()}
    cpus = {k: statistics.median(f["cpu_ms"] for f in v) for k, v in results.items()}
    report(
        f"throughput with a webhook on every event: {CLIENTS} clients, median of {runs} runs "
        f"of {seconds:g} s each",
        {
            "lifecycles/s without / with": f"{rates[False]:.0f} / {rates[True]:.0f}",
            "runs with": ", ".join(f"{f['rate']:.0f}" for f in results[True]),
            "server CPU per lifecycle without / with (ms)": f"{cpus[False]:.2f} / {cpus[True]:.2f}",
            "throughput fall (%)": f"{(1 - rates[True] / rates[False]) * 100:.1f}",
        },
    )


if __name__ == "__main__":
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 10
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    asyncio.run(main(seconds, runs))
