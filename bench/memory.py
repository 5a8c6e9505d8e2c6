"""Memory: 10,000 tasks waiting for review must raise the server's RSS by under 5 MB.

A waiting review is a row, not a coroutine: nothing about it stays in the server's memory.

    .venv/bin/python bench/memory.py [tasks]   (server on core 1, this client on core 0)
"""

from __future__ import annotations

import asyncio
import sys
import time

from _common import Connection, Server, pin_self, report

CLIENTS = 16


async def wait_for_reviews(conn: Connection, count: int) -> None:
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        status, body = await conn.request("GET", "/api/v1/reviews?status=open&limit=1")
        if body["count"] >= count:
            return
        await asyncio.sleep(0.5)
    raise RuntimeError("tasks did not all reach review")


async def submit_many(port: int, count: int, offset: int) -> None:
    counter = iter(range(count))

    async def client() -> None:
        conn = Connection(port)
        for i in counter:
            status, body = await conn.request("POST", "/api/v1/tasks", {"input": f"t{offset + i}"})
            assert status == 201, body
        await conn.close()

    await asyncio.gather(*(client() for _ in range(CLIENTS)))


async def main(count: int) -> None:
    pin_self(0)
    server = Server(core=1, process_delay=0)
    try:
        probe = Connection(server.port)
        # Warm up every code path first, so the figure is what pending tasks cost.
        await submit_many(server.port, 500, 0)
        await wait_for_reviews(probe, 500)
        await asyncio.sleep(1)
        before = server.rss_kb()
        start = time.perf_counter()
        await submit_many(server.port, count, 500)
        await wait_for_reviews(probe, 500 + count)
        elapsed = time.perf_counter() - start
        await asyncio.sleep(2)
        after = server.rss_kb()
        await probe.close()
        report(
            f"memory: {count} more tasks waiting for review",
            {
                "RSS before (MB)": f"{before / 1024:.1f}",
                "RSS after (MB)": f"{after / 1024:.1f}",
                "increase (MB)": f"{(after - before) / 1024:.2f}",
                "per task (bytes)": f"{(after - before) * 1024 / count:.0f}",
                "submitted and processed in (s)": f"{elapsed:.1f}",
                "target": "increase < 5 MB for 10,000",
            },
        )
    finally:
        server.close()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 10_000))
