"""Scale-out on PostgreSQL: lifecycles per second with one API process and one worker, then
with two of each, against a throwaway PostgreSQL server on 127.0.0.1; and, under light load,
how long a decision posted to one API process takes to reach an SSE client of the other.

One lifecycle: POST /submit → GET /stream until waiting_for_review → POST /feedback approved →
stream until completed; 16 clients spread over the API processes; processing delay 0. The
same lifecycles on SQLite, run as `throughput.py` runs them, give the ratio.

    .venv/bin/python bench/scale_out.py [seconds]
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time

import httpx
import throughput
from _common import ROOT, Connection, free_port, pin_self, report, sign_in, sse
from throughput import lifecycle

sys.path.insert(0, str(ROOT))
from hitl.store import migrate  # noqa: E402
from tests.pg import Cluster  # noqa: E402

CLIENTS = 16


def spawn(args: list[str], url: str, log: str) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HITL_")}
    env.update({"PYTHONPATH": str(ROOT), "HITL_PROCESS_DELAY": "0", "HITL_POOL_SIZE": "20"})
    env.update({"HITL_RATE_LIMIT": "0", "HITL_MAX_STREAMS": "0"})  # one principal, many users
    with open(log, "ab") as out:
        cmd = [sys.executable, "-m", "hitl", *args, "--db", url, "--log-level", "warning"]
        return subprocess.Popen(cmd, env=env, stdout=out, stderr=out)


def wait_up(port: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.05)
    raise RuntimeError("API did not start")


async def run(cluster: Cluster, n: int, seconds: float) -> float:
    url = cluster.create_database()
    migrate.upgrade(url)
    sign_in(url, {**os.environ, "PYTHONPATH": str(ROOT)})
    ports = [free_port() for _ in range(n)]
    procs = [spawn(["serve", "--no-workers", "--port", str(p)], url, "/dev/null") for p in ports]
    procs += [spawn(["worker", "--name", f"b{i}"], url, "/dev/null") for i in range(n)]
    try:
        for p in ports:
            wait_up(p)
        await asyncio.sleep(1)
        done = 0
        stop_at = time.perf_counter() + seconds
        counter = iter(range(10**9))

        async def client(k: int) -> None:
            nonlocal done
            port = ports[k % n]
            conn = Connection(port)
            while time.perf_counter() < stop_at:
                await lifecycle(conn, port, next(counter))
                done += 1
            await conn.close()

        start = time.perf_counter()
        await asyncio.gather(*(client(k) for k in range(CLIENTS)))
        return done / (time.perf_counter() - start)
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(10)


async def cross_process(cluster: Cluster, rounds: int = 30) -> list[float]:
    """Milliseconds from sending a decision to API B until API A's SSE client has it; the
    decision request's own time is included, so each figure bounds commit-to-delivery."""
    url = cluster.create_database()
    migrate.upgrade(url)
    sign_in(url, {**os.environ, "PYTHONPATH": str(ROOT)})
    a, b = free_port(), free_port()
    procs = [spawn(["serve", "--no-workers", "--port", str(p)], url, "/dev/null") for p in (a, b)]
    procs.append(spawn(["worker", "--name", "lat"], url, "/dev/null"))
    latencies = []
    try:
        wait_up(a)
        wait_up(b)
        conn_b = Connection(b)
        for i in range(rounds):
            status, task = await conn_b.request("POST", "/api/v1/tasks", {"input": f"lat {i}"})
            assert status == 201, task
            sent = 0.0
            async for kind, data in sse(a, f"/api/v1/tasks/{task['id']}/events"):
                if kind == "review.requested":
                    sent = time.perf_counter()
                    path = f"/api/v1/reviews/{data['review_id']}/decision"
                    status, _ = await conn_b.request("POST", path, {"decision": "approve"})
                    assert status == 200
                elif kind == "review.decided":
                    latencies.append((time.perf_counter() - sent) * 1000)
                elif kind == "task.completed":
                    break
        await conn_b.close()
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(10)
    return sorted(latencies)


async def sqlite_rate(seconds: float) -> float:
    """The same lifecycles on SQLite, as `throughput.py` runs them (server on core 1, clients
    on core 0), for the ratio."""
    pin_self(0)
    try:
        return (await throughput.run(seconds, 0))["rate"]
    finally:
        if hasattr(os, "sched_setaffinity"):
            os.sched_setaffinity(0, range(os.cpu_count() or 1))


async def main(seconds: float) -> None:
    cluster = Cluster().start()
    try:
        sqlite = await sqlite_rate(seconds)
        one = await run(cluster, 1, seconds)
        two = await run(cluster, 2, seconds)
        latencies = await cross_process(cluster)
    finally:
        cluster.stop()
    report(
        "scale-out on PostgreSQL: cookbook lifecycles, 16 clients, delay 0 (2 cores in all)",
        {
            "1 API + 1 worker (lifecycles/s)": f"{one:.0f}",
            "2 APIs + 2 workers (lifecycles/s)": f"{two:.0f}",
            "SQLite in the same run (lifecycles/s)": f"{sqlite:.0f}",
            "1 API + 1 worker / SQLite": f"{one / sqlite:.2f}",
            "target": "at least 0.5",
        },
    )
    report(
        "cross-process delivery: decision posted to API B, SSE client on API A, light load",
        {
            "decisions": len(latencies),
            "p50 (ms)": f"{latencies[len(latencies) // 2]:.1f}",
            "max (ms)": f"{latencies[-1]:.1f}",
            "target": "within 100 ms of the commit",
        },
    )


if __name__ == "__main__":
    asyncio.run(main(float(sys.argv[1]) if len(sys.argv) > 1 else 15))
