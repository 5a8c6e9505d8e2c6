"""Throughput: full lifecycles per second over the cookbook API, every step persisted.

Every request signs in with one token (`Authorization: Bearer`), as deployed; a third kind of
run turns sign-in off (`HITL_AUTH=false`) to measure what it costs.

A plain lifecycle: POST /submit → GET /stream until waiting_for_review → POST /feedback
approved → read the stream until completed and stream_closed. A lifecycle with a rejection
rejects round 1 (the flow reprocesses with the reviewer's comment) and approves round 2.
16 concurrent clients, processing delay 0. Each run starts a fresh server on a fresh database;
runs of the two kinds alternate, and the medians are reported with the ratio of their server
CPU per lifecycle.

    .venv/bin/python bench/throughput.py [seconds per run] [runs of each kind]
    (server on core 1, clients on core 0; defaults: 10 s, 3 runs)
"""

from __future__ import annotations

import asyncio
import statistics
import sys
from functools import partial

from _common import Connection, Server, load, pin_self, report, sse

CLIENTS = 16


async def lifecycle(conn: Connection, port: int, i: int, rejections: int = 0) -> None:
    """One lifecycle over the cookbook API. hitl's statuses name their round, and each round
    must be announced once; the in-memory baseline's (`compare.py`) do not: its reviews are
    counted."""
    status, body = await conn.request("POST", "/submit", {"data": f"lifecycle {i}"})
    assert status == 202, body
    task_id = body["task_id"]
    decided: set[int] = set()
    async for _, message in sse(port, f"/stream/{task_id}"):
        state = message["status"]
        if state == "waiting_for_review":
            round = message.get("round", len(decided) + 1)
            assert round not in decided, f"round {round} announced twice: {message}"
            decided.add(round)
            feedback = "rejected" if len(decided) <= rejections else "approved"
            status, body = await conn.request(
                "POST", f"/feedback/{task_id}", {"feedback": feedback}
            )
            assert status == 200, (round, body)
        elif state == "failed":
            raise RuntimeError(message)
        elif state == "stream_closed":
            break
    assert len(decided) == rejections + 1, decided


async def run(seconds: float, rejections: int, auth: bool = True) -> dict[str, float]:
    server = Server(core=1, process_delay=0, auth=str(auth).lower())
    try:
        return await load(server, partial(lifecycle, rejections=rejections), seconds, CLIENTS)
    finally:
        server.close()


async def main(seconds: float, runs: int) -> None:
    pin_self(0)
    results: dict[str, list[dict[str, float]]] = {
        "plain": [],
        "with one rejection": [],
        "plain, without sign-in": [],
    }
    for _ in range(runs):
        results["plain"].append(await run(seconds, 0))
        results["with one rejection"].append(await run(seconds, 1))
        results["plain, without sign-in"].append(await run(seconds, 0, auth=False))
    medians, rates = {}, {}
    for kind, figures in results.items():
        rate = statistics.median(f["rate"] for f in figures)
        cpu = statistics.median(f["cpu_ms"] for f in figures)
        medians[kind], rates[kind] = cpu, rate
        report(
            f"throughput, {kind}: {CLIENTS} clients, cookbook API, delay 0, SQLite, "
            f"median of {runs} runs of {seconds:g} s",
            {
                "lifecycles per second": f"{rate:.0f}",
                "runs": ", ".join(f"{f['rate']:.0f}" for f in figures),
                "server CPU per lifecycle (ms)": f"{cpu:.2f}",
                "server CPU use (%)": f"{statistics.median(f['use'] for f in figures) * 100:.0f}",
            },
        )
    ratio = medians["with one rejection"] / medians["plain"]
    report("rejection cost", {"server CPU, rejection lifecycle / plain lifecycle": f"{ratio:.2f}"})
    signed, anonymous = rates["plain"], rates["plain, without sign-in"]
    per_request = (medians["plain"] - medians["plain, without sign-in"]) / 3 * 1000
    report(
        "sign-in cost (one token, every request signed in)",
        {
            "throughput with sign-in / without": f"{signed / anonymous:.2f}",
            "sign-in CPU per request (µs; 3 requests a lifecycle)": f"{per_request:.0f}",
        },
    )


if __name__ == "__main__":
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 10
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    asyncio.run(main(seconds, runs))
