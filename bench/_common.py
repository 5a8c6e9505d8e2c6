"""Shared by the benchmarks: a pinned server process and a small raw HTTP/1.1 client.

The client speaks HTTP/1.1 over asyncio streams directly, so the load generator (on its own
core) spends its time on the server's answers rather than on a client library.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def pin_self(core: int) -> None:
    if hasattr(os, "sched_setaffinity") and os.cpu_count() and os.cpu_count() > core:  # type: ignore[operator]
        os.sched_setaffinity(0, {core})


# The header line every request of the load generator sends: the server's token, once one
# was made (`Server`), else nothing.
AUTH = ""


def sign_in(
    db_url: str, env: dict[str, str], roles: tuple[str, ...] = ("admin",), name: str = "bench"
) -> None:
    """Make the load generator's token with `hitl token create`: every request sends it."""
    global AUTH
    cmd = [sys.executable, "-m", "hitl", "token", "create", "--name", name, "--db", db_url]
    for role in roles:
        cmd += ["--role", role]
    made = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    AUTH = f"Authorization: Bearer {made.stdout.strip()}\r\n"


class Process:
    """A server process of a benchmark (`proc`), pinned with taskset, which execs it: the pid
    is the server's own."""

    proc: subprocess.Popen[bytes]
    port: int

    def cpu_seconds(self) -> float:
        """User plus system CPU time the server has used so far."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()

    def close(self) -> None:
        self.stop()


class Server(Process):
    """`hitl serve` on a fresh SQLite file, pinned with taskset to one core; with sign-in on
    (unless `auth=False`), and a token for the load generator, made with `hitl token create`.
    `fill`, if given, is called with the file's URL before the server starts."""

    def __init__(
        self, core: int = 1, fill: Callable[[str], None] | None = None, **settings: Any
    ) -> None:
        where = os.environ.get("HITL_BENCH_DIR")
        self.dir = Path(tempfile.mkdtemp(prefix="hitl-bench-", dir=where))
        self.port = free_port()
        if fill is not None:
            fill(f"sqlite:///{self.dir / 'bench.db'}")
        env = {k: v for k, v in os.environ.items() if not k.startswith("HITL_")}
        # The limits per principal are off: the load generator is one principal doing what
        # many would.
        settings = {"rate_limit": 0, "max_streams": 0, **settings}
        env.update({f"HITL_{k.upper()}": str(v) for k, v in settings.items()})
        env["PYTHONPATH"] = str(ROOT)
        cmd = [sys.executable, "-m", "hitl", "serve", "--port", str(self.port)]
        cmd += ["--db", f"sqlite:///{self.dir / 'bench.db'}", "--log-level", "warning"]
        if shutil.which("taskset") and (os.cpu_count() or 1) > core:
            cmd = ["taskset", "-c", str(core), *cmd]
        self.log = (self.dir / "server.log").open("wb")
        self.proc = subprocess.Popen(cmd, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    self._sign_in(env, str(settings.get("auth", True)).lower() != "false")
                    return
            except httpx.HTTPError:
                if self.proc.poll() is not None:
                    break
                time.sleep(0.05)
        log = (self.dir / "server.log").read_text(errors="replace")
        self.close()
        raise RuntimeError(f"server did not start:\n{log[-2000:]}")

    def _sign_in(self, env: dict[str, str], auth: bool) -> None:
        global AUTH
        AUTH = ""
        if auth:
            sign_in(f"sqlite:///{self.dir / 'bench.db'}", env)

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def rss_kb(self) -> int:
        pid = self.proc.pid
        # taskset execs the server, so the pid is the server's own.
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise RuntimeError("no VmRSS")

    def close(self) -> None:
        self.stop()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


Lifecycle = Callable[["Connection", int, int], Awaitable[None]]


async def load(
    server: Process, lifecycle: Lifecycle, seconds: float, clients: int
) -> dict[str, float]:
    """20 lifecycles to warm up, then `clients` clients running lifecycles back to back for
    `seconds`, each on its own connection: lifecycles a second, the server's CPU per lifecycle
    (ms) and its CPU use (a fraction of a core) over them."""
    warm = Connection(server.port)
    for i in range(20):
        await lifecycle(warm, server.port, -i)
    await warm.close()
    done = 0
    counter = iter(range(10**9))
    stop_at = time.perf_counter() + seconds

    async def client() -> None:
        nonlocal done
        conn = Connection(server.port)
        while time.perf_counter() < stop_at:
            await lifecycle(conn, server.port, next(counter))
            done += 1
        await conn.close()

    start, cpu = time.perf_counter(), server.cpu_seconds()
    await asyncio.gather(*(client() for _ in range(clients)))
    elapsed = time.perf_counter() - start
    cpu = server.cpu_seconds() - cpu
    return {"rate": done / elapsed, "cpu_ms": cpu / done * 1000, "use": cpu / elapsed}


class Connection:
    """One keep-alive HTTP/1.1 connection for JSON requests."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(
        self, method: str, path: str, body: Any = None, raw: bool = False
    ) -> tuple[int, Any]:
        """(status, the body parsed as JSON; with `raw`, as bytes)."""
        payload = json.dumps(body).encode() if body is not None else b""
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: application/json\r\n"
            f"{AUTH}Content-Length: {len(payload)}\r\n\r\n"
        )
        for attempt in (1, 2):
            if self.writer is None:
                self.reader, self.writer = await asyncio.open_connection(HOST, self.port)
            assert self.reader is not None
            self.writer.write(head.encode() + payload)
            try:
                status, headers = await _read_head(self.reader)
                break
            except ConnectionError:
                # The server closed an idle keep-alive connection: open a new one, once.
                self.writer.close()
                self.writer = None
                if attempt == 2:
                    raise
        data = await self.reader.readexactly(int(headers.get("content-length", "0")))
        if raw:
            return status, data
        return status, json.loads(data) if data else None

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            await self.writer.wait_closed()


async def _read_head(reader: asyncio.StreamReader) -> tuple[int, dict[str, str]]:
    status_line = await reader.readline()
    if not status_line:
        raise ConnectionResetError("the server closed the connection")
    status = int(status_line.split()[1])
    headers: dict[str, str] = {}
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b""):
            return status, headers
        key, _, value = line.decode().partition(":")
        headers[key.strip().lower()] = value.strip()


async def sse(port: int, path: str) -> AsyncIterator[tuple[str | None, Any]]:
    """Yield (event type, parsed data) from a text/event-stream, until the server ends it."""
    reader, writer = await asyncio.open_connection(HOST, port)
    writer.write(
        f"GET {path} HTTP/1.1\r\nHost: {HOST}\r\nAccept: text/event-stream\r\n{AUTH}\r\n".encode()
    )
    try:
        status, headers = await _read_head(reader)
        if status != 200:
            raise RuntimeError(f"stream {path}: {status}")
        buffer = b""
        while True:
            size_line = await reader.readline()
            if not size_line:
                return
            size = int(size_line.strip() or b"0", 16)
            if size == 0:
                return
            buffer += await reader.readexactly(size)
            await reader.readexactly(2)
            while b"\n\n" in buffer:
                frame, buffer = buffer.split(b"\n\n", 1)
                kind, data = None, []
                for line in frame.decode().split("\n"):
                    if line.startswith("event: "):
                        kind = line[7:]
                    elif line.startswith("data: "):
                        data.append(line[6:])
                if data:
                    yield kind, json.loads("\n".join(data))
    finally:
        writer.close()


def report(name: str, figures: dict[str, Any]) -> None:
    print(f"== {name}")
    for key, value in figures.items():
        print(f"   {key}: {value}")
    sys.stdout.flush()
