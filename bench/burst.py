"""Burst: 20 tasks at once with a 2 s processor; all must wait for review within 3 s.

.venv/bin/python bench/burst.py        (server on core 1, this client on core 0)
"""

from __future__ import annotations

import asyncio
import time

from _common import Connection, Server, pin_self, report, sse

TASKS = 20


async def main() -> None:
    pin_self(0)
    server = Server(core=1, process_delay=2)
    try:
        waiting: dict[str, float] = {}
        all_waiting = asyncio.Event()

        async def watch() -> None:
            async for kind, data in sse(server.port, "/api/v1/events"):
                if kind == "review.requested":
                    waiting.setdefault(data["task_id"], time.perf_counter())
                    if len(waiting) == TASKS:
                        all_waiting.set()
                        return

        watcher = asyncio.create_task(watch())
        await asyncio.sleep(0.3)
        connections = [Connection(server.port) for _ in range(TASKS)]
        latencies: list[float] = []

        async def submit(conn: Connection, i: int) -> str:
            t0 = time.perf_counter()
            status, body = await conn.request("POST", "/submit", {"data": f"burst {i}"})
            latencies.append(time.perf_counter() - t0)
            assert status == 202, body
            return str(body["task_id"])

        start = time.perf_counter()
        await asyncio.gather(*(submit(c, i) for i, c in enumerate(connections)))
        await asyncio.wait_for(all_waiting.wait(), 60)
        elapsed = max(waiting.values()) - start
        report(
            "burst: 20 submissions at once, HITL_PROCESS_DELAY=2",
            {
                "all waiting for review after (s)": f"{elapsed:.2f}",
                "slowest submit (ms)": f"{max(latencies) * 1000:.1f}",
                "median submit (ms)": f"{sorted(latencies)[len(latencies) // 2] * 1000:.1f}",
                "target": "all waiting < 3 s, every submit < 100 ms",
            },
        )
        watcher.cancel()
        for c in connections:
            await c.close()
    finally:
        server.close()


if __name__ == "__main__":
    asyncio.run(main())
