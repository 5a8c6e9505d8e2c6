"""Fan-out: 1,000 SSE clients on one task each receive every event, p99 < 100 ms.

Latency is measured from the moment the decision request is sent (before its commit) to the
moment each client has parsed the `review.decided` event: an upper bound on commit-to-delivery.

    .venv/bin/python bench/fanout.py [clients] [rounds]   (server on core 1, clients on core 0)
"""

from __future__ import annotations

import asyncio
import re
import sys
import time

import _common
from _common import HOST, Connection, Server, pin_self, report

DECIDED = re.compile(rb'event: review\.decided\r?\ndata: \{[^\n]*"round":(\d+)')
REQUESTED = re.compile(rb'event: review\.requested\r?\ndata: \{[^\n]*"round":(\d+)')


async def main(clients: int, rounds: int) -> None:
    pin_self(0)
    server = Server(core=1, process_delay=0.2, heartbeat_seconds=30)
    try:
        conn = Connection(server.port)
        status, task = await conn.request("POST", "/api/v1/tasks", {"input": "fan-out"})
        task_id = task["id"]
        path = f"/api/v1/tasks/{task_id}/events"
        received: list[dict[int, float]] = [{} for _ in range(clients)]
        asked = [0] * clients  # the latest review round each client has been asked about
        decided_at: dict[int, float] = {}
        connected = 0
        all_connected = asyncio.Event()

        async def listen(i: int) -> None:
            # Raw bytes, not parsed events: the figure is the server's delivery, and parsing
            # 1,000 streams on the client's one core would dominate it.
            nonlocal connected
            reader, writer = await asyncio.open_connection(HOST, server.port)
            writer.write(f"GET {path} HTTP/1.1\r\nHost: {HOST}\r\n{_common.AUTH}\r\n".encode())
            seen = b""
            counted = 0
            first = True
            while True:
                chunk = await reader.read(65536)
                if not chunk:
                    break
                if first:
                    first = False
                    connected += 1
                    if connected == clients:
                        all_connected.set()
                now = time.perf_counter()
                seen = seen[-4096:] + chunk
                for match in DECIDED.finditer(seen):
                    received[i].setdefault(int(match.group(1)), now)
                for match in REQUESTED.finditer(seen):
                    asked[i] = max(asked[i], int(match.group(1)))
                counted += chunk.count(b"\nevent: ")
                if b"event: task.completed" in seen:
                    break
            writer.close()
            received[i][-1] = counted

        listeners = [asyncio.create_task(listen(i)) for i in range(clients)]
        await asyncio.wait_for(all_connected.wait(), 120)
        for round_no in range(1, rounds + 1):
            while True:
                status, body = await conn.request("GET", f"/api/v1/tasks/{task_id}")
                open_reviews = [r for r in body["reviews"] if r["status"] == "open"]
                if open_reviews and open_reviews[-1]["round"] == round_no:
                    break
                await asyncio.sleep(0.05)
            # Decide once every client has the review request: the figure is the delivery of
            # the decision, not this process's backlog of the request's 1,000 copies.
            while min(asked) < round_no:
                await asyncio.sleep(0.01)
            decision = "approve" if round_no == rounds else "reject"
            decided_at[round_no] = time.perf_counter()
            status, _ = await conn.request(
                "POST",
                f"/api/v1/reviews/{open_reviews[-1]['id']}/decision",
                {"decision": decision, "comment": f"round {round_no}"},
            )
            assert status == 200
        await asyncio.wait_for(asyncio.gather(*listeners), 120)
        latencies = sorted(
            (r[n] - decided_at[n]) * 1000 for r in received for n in decided_at if n in r
        )
        missing = sum(1 for r in received for n in decided_at if n not in r)
        totals = {r[-1] for r in received}
        status, log = await conn.request("GET", f"/api/v1/tasks/{task_id}")
        await conn.close()
        report(
            f"fan-out: {clients} SSE clients on one task, {rounds} decisions",
            {
                "deliveries measured": len(latencies),
                "missing deliveries": missing,
                "events per client (all equal?)": f"{sorted(totals)}",
                "p50 (ms)": f"{latencies[len(latencies) // 2]:.1f}",
                "p99 (ms)": f"{latencies[int(len(latencies) * 0.99) - 1]:.1f}",
                "max (ms)": f"{latencies[-1]:.1f}",
                "target": "every client gets every event; p99 < 100 ms",
            },
        )
    finally:
        server.close()


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    r = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    asyncio.run(main(n, r))
