"""Throughput: full lifecycles per second over the cookbook API, every step persisted.

One lifecycle: POST /submit → GET /stream until waiting_for_review → POST /feedback approved →
read the stream until completed and stream_closed. 16 concurrent clients, processing delay 0.

    .venv/bin/python bench/throughput.py [seconds]   (server on core 1, clients on core 0)
"""

from __future__ import annotations

import asyncio
import sys
import time

from _common import Connection, Server, pin_self, report, sse

CLIENTS = 16


async def lifecycle(conn: Connection, port: int, i: int) -> None:
    status, body = await conn.request("POST", "/submit", {"data": f"lifecycle {i}"})
    assert status == 202, body
    task_id = body["task_id"]
    approved = False
    async for _, message in sse(port, f"/stream/{task_id}"):
        state = message["status"]
        if state == "waiting_for_review" and not approved:
            approved = True
            status, body = await conn.request(
                "POST", f"/feedback/{task_id}", {"feedback": "approved"}
            )
            assert status == 200, body
        elif state == "failed":
            raise RuntimeError(message)
        elif state == "stream_closed":
            break
    assert approved


async def main(seconds: float) -> None:
    pin_self(0)
    server = Server(core=1, process_delay=0)
    try:
        done = 0
        stop_at = time.perf_counter() + seconds
        counter = iter(range(10**9))

        async def client() -> None:
            nonlocal done
            conn = Connection(server.port)
            while time.perf_counter() < stop_at:
                await lifecycle(conn, server.port, next(counter))
                done += 1
            await conn.close()

        warm = Connection(server.port)
        for i in range(20):
            await lifecycle(warm, server.port, -i)
        await warm.close()
        start, cpu = time.perf_counter(), server.cpu_seconds()
        await asyncio.gather(*(client() for _ in range(CLIENTS)))
        elapsed = time.perf_counter() - start
        cpu = server.cpu_seconds() - cpu
        report(
            f"throughput: {CLIENTS} clients, cookbook API, delay 0, SQLite",
            {
                "lifecycles": done,
                "seconds": f"{elapsed:.1f}",
                "lifecycles per second": f"{done / elapsed:.0f}",
                "server CPU per lifecycle (ms)": f"{cpu / done * 1000:.2f}",
                "server CPU use (%)": f"{cpu / elapsed * 100:.0f}",
            },
        )
    finally:
        server.close()


if __name__ == "__main__":
    asyncio.run(main(float(sys.argv[1]) if len(sys.argv) > 1 else 15))
