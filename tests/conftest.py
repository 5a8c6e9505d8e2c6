from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.pg import Cluster

ROOT = Path(__file__).resolve().parent.parent
# Every test that touches a database runs once per backend; HITL_TEST_BACKENDS=sqlite narrows it.
BACKENDS = [b for b in os.environ.get("HITL_TEST_BACKENDS", "sqlite,postgresql").split(",") if b]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    """A real `hitl serve` process on 127.0.0.1."""

    db_url: str
    env: dict[str, str]
    port: int = field(default_factory=free_port)
    args: list[str] = field(default_factory=list)
    proc: subprocess.Popen[bytes] | None = None
    log: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> Server:
        cmd = [sys.executable, "-m", "hitl", "serve", "--host", "127.0.0.1"]
        cmd += ["--port", str(self.port), "--db", self.db_url, "--log-level", "warning", *self.args]
        assert self.log is not None
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                cmd, env=self.env, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"server exited with {self.proc.returncode}: {self.log.read_text()}"
                )
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.05)
        raise RuntimeError(f"server did not start: {self.log.read_text()}")

    def kill9(self) -> None:
        """Kill the server with SIGKILL, as a crash would."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill9()

    def restart(self) -> Server:
        self.kill9()
        return self.start()


@pytest.fixture(scope="session")
def postgres() -> Iterator[Cluster]:
    """A throwaway PostgreSQL server for the whole test session."""
    cluster = Cluster().start()
    yield cluster
    cluster.stop()


@pytest.fixture(scope="module", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _databases(request: pytest.FixtureRequest, backend: str, tmp: Path) -> Callable[[], str]:
    """A factory of fresh, empty databases of the backend under test."""
    if backend == "postgresql":
        cluster: Cluster = request.getfixturevalue("postgres")
        return cluster.create_database
    counter = iter(range(1_000_000))
    return lambda: f"sqlite:///{tmp / f'hitl-{next(counter)}.db'}"


@pytest.fixture
def new_database(request: pytest.FixtureRequest, backend: str, tmp_path: Path) -> Callable[[], str]:
    return _databases(request, backend, tmp_path)


def _factory(
    tmp: Path, started: list[Server], databases: Callable[[], str]
) -> Callable[..., Server]:
    def start(
        db_url: str | None = None, args: list[str] | None = None, **settings: object
    ) -> Server:
        env = {k: v for k, v in os.environ.items() if not k.startswith("HITL_")}
        env["PYTHONPATH"] = str(ROOT)
        env.setdefault("HITL_PROCESS_DELAY", "0")
        for key, value in settings.items():
            env[f"HITL_{key.upper()}"] = str(value)
        n = len(started)
        server = Server(db_url=db_url or databases(), env=env, args=args or [])
        server.log = tmp / f"server-{n}.log"
        started.append(server)
        return server.start()

    return start


def _stop_all(started: list[Server]) -> None:
    """Stop the servers; fail if one logged an unhandled error (a 500, a crashed stream...)."""
    for server in started:
        server.stop()
    for server in started:
        assert server.log is not None
        log = server.log.read_text(errors="replace")
        print(f"--- {server.log.name} ---\n{log}")  # pytest shows it when a test failed
        assert not re.search(r"Traceback|\bERROR\b", log), f"{server.log}:\n{log}"


@pytest.fixture
def start_server(
    request: pytest.FixtureRequest, backend: str, tmp_path: Path
) -> Iterator[Callable[..., Server]]:
    """A factory: start_server(db_url=..., args=[...], **settings) → a running Server.

    Each keyword becomes an `HITL_*` variable: start_server(process_delay=2). Without db_url,
    each server gets a fresh database of the backend under test.
    """
    started: list[Server] = []
    yield _factory(tmp_path, started, _databases(request, backend, tmp_path))
    _stop_all(started)


@pytest.fixture(scope="module")
def start_module_server(
    request: pytest.FixtureRequest, backend: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[..., Server]]:
    """Like `start_server`, but its servers live until the test module ends.

    Start-up costs seconds, so tests that neither crash nor restart a server and do not need an
    empty database share one.
    """
    started: list[Server] = []
    tmp = tmp_path_factory.mktemp("hitl")
    yield _factory(tmp, started, _databases(request, backend, tmp))
    _stop_all(started)
