"""hitl against the in-memory cookbook example (`baseline_server.py`), side by side.

Each run starts a fresh server process pinned to core 1 (hitl: a fresh SQLite file, every
request signed in with a token, every step persisted; the baseline: nothing persisted), and
16 clients on core 0 run lifecycles over the cookbook API for the run's seconds: POST /submit,
GET /stream until waiting_for_review, POST /feedback (rejected for the first `rejections`
rounds, then approved), the stream read to its end. Runs alternate between the servers, plain
and with one rejection, for `rounds` rounds; the medians of each are printed, with the server
CPU per lifecycle (user + system, from /proc) and hitl's rate as a multiple of the baseline's.

The baseline runs two ways: quiet (nothing logged per request: cheaper than the example) and
as published (`BASELINE_LOG=published`: a line printed at each of the example's steps, and
uvicorn's default logging with its access line a request, as `uvicorn server:app` runs it),
its output written to a file as a service's would be.

    .venv/bin/python bench/compare.py [seconds per run] [rounds]   (defaults: 10 s, 3)
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from functools import partial
from typing import IO

import httpx
from _common import HOST, ROOT, Process, Server, free_port, load, pin_self, report
from throughput import lifecycle

CLIENTS = 16


class Baseline(Process):
    """`uvicorn baseline_server:app`, pinned to one core: quiet, logging warnings only (as
    hitl's benchmark server does), or as published, logging as the example does to `log`."""

    def __init__(self, core: int = 1, log: IO[bytes] | None = None) -> None:
        self.port = free_port()
        cmd = [sys.executable, "-m", "uvicorn", "--app-dir", str(ROOT / "bench")]
        cmd += ["baseline_server:app", "--host", HOST, "--port", str(self.port)]
        env = dict(os.environ)
        if log is None:
            cmd += ["--log-level", "warning", "--no-access-log"]
        else:
            env["BASELINE_LOG"] = "published"
        if (os.cpu_count() or 1) > core:
            cmd = ["taskset", "-c", str(core), *cmd]
        self.proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=log)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                httpx.get(f"http://{HOST}:{self.port}/docs", timeout=1)
                return
            except httpx.HTTPError:
                if self.proc.poll() is not None:
                    break
                time.sleep(0.05)
        self.close()
        said = ""
        if log is not None:
            log.seek(0)
            said = ":\n" + log.read()[-2000:].decode(errors="replace")
        raise RuntimeError("the baseline server did not start" + said)


SERVERS = ("baseline", "published", "hitl")


async def run(kind: str, seconds: float, rejections: int) -> dict[str, float]:
    with tempfile.TemporaryFile() as log:
        if kind == "hitl":
            server: Process = Server(core=1, process_delay=0)
        else:
            server = Baseline(core=1, log=log if kind == "published" else None)
        try:
            work = partial(lifecycle, rejections=rejections)
            return await load(server, work, seconds, CLIENTS)
        finally:
            server.close()


async def main(seconds: float, rounds: int) -> None:
    pin_self(0)
    kinds = [(server, rejections) for rejections in (0, 1) for server in SERVERS]
    results: dict[tuple[str, int], list[dict[str, float]]] = {k: [] for k in kinds}
    for _ in range(rounds):
        for server, rejections in kinds:
            results[server, rejections].append(await run(server, seconds, rejections))
    for rejections, name in ((0, "plain"), (1, "with one rejection")):
        figures = {}
        rate, cpu = {}, {}
        for server in SERVERS:
            runs = results[server, rejections]
            rate[server] = statistics.median(r["rate"] for r in runs)
            cpu[server] = statistics.median(r["cpu_ms"] for r in runs)
            each = ", ".join(f"{r['rate']:.0f}" for r in runs)
            figures[f"{server}: lifecycles/s"] = f"{rate[server]:.0f} (runs {each})"
            figures[f"{server}: server CPU per lifecycle (ms)"] = f"{cpu[server]:.2f}"
        for server in ("baseline", "published"):
            figures[f"hitl's rate / {server}'s"] = f"{rate['hitl'] / rate[server]:.2f}"
            figures[f"hitl's CPU / {server}'s"] = f"{cpu['hitl'] / cpu[server]:.2f}"
        report(
            f"hitl (SQLite, signed in) against the in-memory example, {name}: {CLIENTS} clients, "
            f"delay 0, median of {rounds} alternating runs of {seconds:g} s",
            figures,
        )


if __name__ == "__main__":
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 10
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    asyncio.run(main(seconds, rounds))
