"""Replays: 200 clients read the whole event log from the start while another client works.

Builds a log of tens of thousands of events (tasks submitted through the API, processing delay
0), then opens `GET /api/v1/events?after=0` 200 times: half read as fast as they can until the
log's last event, half read 4 KiB every 100 ms (their sockets fill, and the server must wait for
them rather than buffer the log). Meanwhile one more client sends `GET /api/v1/tasks?limit=1`
and `POST /submit` in turn and times each answer; the server's RSS is sampled throughout.
Then it does it again: memory is bounded if the server's RSS after the second wave is what it
was after the first. Target: that client's latency under 1 s throughout.

    .venv/bin/python bench/replay.py [tasks] [replays] [waves]
    (server on core 1, clients on core 0; defaults 6000 tasks = 30,000 events, 200, 2)
"""

from __future__ import annotations

import asyncio
import sqlite3
import sys
import time
from collections.abc import Callable

import _common
from _common import HOST, Connection, Server, pin_self, report

BUILDERS = 16
SLOW_READ = 4096
SLOW_PAUSE = 0.1
PROBE_PAUSE = 0.05


async def build_log(server: Server, tasks: int) -> int:
    """Submit `tasks` tasks, wait until each waits for review; the log's last event id."""
    counter = iter(range(tasks))

    async def builder() -> None:
        conn = Connection(server.port)
        for i in counter:
            status, body = await conn.request("POST", "/api/v1/tasks", {"input": f"t{i}"})
            assert status == 201, body
        await conn.close()

    await asyncio.gather(*(builder() for _ in range(BUILDERS)))
    conn = Connection(server.port)
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        status, body = await conn.request("GET", "/api/v1/reviews?status=open&limit=1")
        if body["count"] >= tasks:
            break
        await asyncio.sleep(0.5)
    else:
        raise RuntimeError("tasks did not all reach review")
    await conn.close()
    with sqlite3.connect(f"file:{server.dir / 'bench.db'}?mode=ro", uri=True) as db:
        return int(db.execute("SELECT max(id) FROM events").fetchone()[0])


async def replay(port: int, last: int, slow: bool, stop: asyncio.Event) -> float | None:
    """Read /api/v1/events?after=0; seconds to the last event, or None if stopped first."""
    reader, writer = await asyncio.open_connection(HOST, port)
    started = time.perf_counter()
    head = f"GET /api/v1/events?after=0 HTTP/1.1\r\nHost: {HOST}\r\n{_common.AUTH}\r\n"
    writer.write(head.encode())
    marker = b"id: %d\n" % last
    tail = b""
    try:
        while not stop.is_set():
            chunk = await reader.read(SLOW_READ if slow else 65536)
            if not chunk:
                raise RuntimeError("the server closed a replay")
            if marker in tail + chunk:
                return time.perf_counter() - started
            tail = chunk[-len(marker) :]
            if slow:
                await asyncio.sleep(SLOW_PAUSE)
        return None
    finally:
        writer.close()


async def probe(port: int, stop: asyncio.Event) -> dict[str, list[float]]:
    """Time another client's ordinary requests, one at a time, until `stop`."""
    conn = Connection(port)
    times: dict[str, list[float]] = {"GET /api/v1/tasks?limit=1": [], "POST /submit": []}
    i = 0
    while not stop.is_set():
        started = time.perf_counter()
        if i % 2 == 0:
            status, _ = await conn.request("GET", "/api/v1/tasks?limit=1")
            assert status == 200
            times["GET /api/v1/tasks?limit=1"].append(time.perf_counter() - started)
        else:
            status, _ = await conn.request("POST", "/submit", {"data": f"probe {i}"})
            assert status == 202
            times["POST /submit"].append(time.perf_counter() - started)
        i += 1
        await asyncio.sleep(PROBE_PAUSE)
    await conn.close()
    return times


async def sample(read: Callable[[], int], stop: asyncio.Event, into: list[int]) -> None:
    while not stop.is_set():
        into.append(read())
        await asyncio.sleep(0.2)


def figures(label: str, values: list[float]) -> dict[str, str]:
    ms = sorted(v * 1000 for v in values)
    if not ms:
        return {f"{label}": "no samples"}
    p99 = ms[min(len(ms) - 1, int(len(ms) * 0.99))]
    return {
        f"{label} p50/p99/max (ms)": f"{ms[len(ms) // 2]:.0f} / {p99:.0f} / {ms[-1]:.0f}",
        f"{label} requests": str(len(ms)),
    }


async def wave(server: Server, last: int, replays: int) -> dict[str, str]:
    """Run `replays` replays at once, half fast and half slow, and time another client."""
    stop = asyncio.Event()
    rss: list[int] = []
    sampler = asyncio.create_task(sample(server.rss_kb, stop, rss))
    prober = asyncio.create_task(probe(server.port, stop))
    fast = [
        asyncio.create_task(replay(server.port, last, False, stop)) for _ in range(replays // 2)
    ]
    slow = [asyncio.create_task(replay(server.port, last, True, stop)) for _ in range(replays // 2)]
    started = time.perf_counter()
    done = await asyncio.wait_for(asyncio.gather(*fast), 600)
    elapsed = time.perf_counter() - started
    stop.set()
    busy = await prober
    for job in slow:
        job.cancel()
    await asyncio.gather(*slow, sampler, return_exceptions=True)
    await asyncio.sleep(2)  # let the server notice the closed replays
    seconds = sorted(d for d in done if d is not None)
    return {
        "fast replays to the last event, p50/max (s)": (
            f"{seconds[len(seconds) // 2]:.1f} / {seconds[-1]:.1f}"
        ),
        "events sent to fast replays per second": f"{last * len(seconds) / elapsed:.0f}",
        **{k: v for label, values in busy.items() for k, v in figures(label, values).items()},
        "server RSS peak / after (MB)": f"{max(rss) / 1024:.0f} / {server.rss_kb() / 1024:.0f}",
    }


async def main(tasks: int, replays: int, waves: int) -> None:
    pin_self(0)
    server = Server(core=1, process_delay=0, heartbeat_seconds=30)
    try:
        last = await build_log(server, tasks)
        idle_stop = asyncio.Event()
        asyncio.get_running_loop().call_later(3, idle_stop.set)
        idle = await probe(server.port, idle_stop)
        results = {
            **figures("no replays: GET /api/v1/tasks?limit=1", idle["GET /api/v1/tasks?limit=1"]),
            "server RSS before (MB)": f"{server.rss_kb() / 1024:.0f}",
        }
        for n in range(1, waves + 1):
            results.update(
                {f"wave {n}: {k}": v for k, v in (await wave(server, last, replays)).items()}
            )
        results["target"] = "latency under 1 s; RSS the same after each wave"
        report(
            f"replay: {replays} replays of /api/v1/events?after=0, {last} events, SQLite", results
        )
    finally:
        server.close()


if __name__ == "__main__":
    asyncio.run(
        main(
            int(sys.argv[1]) if len(sys.argv) > 1 else 6000,
            int(sys.argv[2]) if len(sys.argv) > 2 else 200,
            int(sys.argv[3]) if len(sys.argv) > 3 else 2,
        )
    )
