from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx
import pytest

from hitl.service.identity import Identity
from hitl.store import SqlStore, migrate
from tests.forkserver import ForkServer, Process
from tests.pg import Cluster, reap_orphans

T = TypeVar("T")

ROOT = Path(__file__).resolve().parent.parent
# Every test that touches a database runs once per backend; HITL_TEST_BACKENDS=sqlite narrows it.
BACKENDS = [b for b in os.environ.get("HITL_TEST_BACKENDS", "sqlite,postgresql").split(",") if b]
# A port taken between `free_port()` and the server's bind (by a test run going on beside this
# one): uvicorn says so and exits, and the server starts again on another port.
PORT_TAKEN = re.compile(r"address already in use", re.IGNORECASE)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """pytest-xdist (`make test`) tells tests apart by node id: tests that share one would run
    as one, and the others not at all. Refuse to run them so."""
    twice = [nodeid for nodeid, n in Counter(item.nodeid for item in items).items() if n > 1]
    if twice:
        raise pytest.UsageError(f"tests share a node id, and would not all run: {twice[:3]}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _listens(pid: int, port: int) -> bool:
    """Whether process `pid` holds the listening socket on `port`, rather than a process of
    another test run that took the port first (then `pid` fails to bind, and exits)."""
    table = Path("/proc/net/tcp")
    if not table.exists():  # not Linux: trust the port
        return True
    inodes = set()
    for line in table.read_text().splitlines()[1:]:
        fields = line.split()
        if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:  # 0A: LISTEN
            inodes.add(f"socket:[{fields[9]}]")
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return False
    for fd in fds:
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") in inodes:
                return True
        except OSError:
            continue
    return False


def process_env(**settings: object) -> dict[str, str]:
    """The environment of a `hitl` process that a test starts.

    Not the caller's `HITL_*` variables but `settings`, each as one (`lease_seconds=3` →
    `HITL_LEASE_SECONDS=3`); this tree on the path; unbuffered output, so that the log of a
    process that failed or was killed holds everything it said until then.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("HITL_")}
    env["PYTHONPATH"] = str(ROOT)
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONFAULTHANDLER"] = "1"  # a crash in C (a segfault) writes the Python stack
    env.update({f"HITL_{key.upper()}": str(value) for key, value in settings.items()})
    return env


FORKS = ForkServer(process_env())


def start_hitl(args: list[str], env: dict[str, str], log: Path) -> Process:
    """Start `python -m hitl *args` with the environment `env`, its output appended to `log`:
    from the fork server when it can (tests/forkserver.py says why), else as a new process."""
    if FORKS.can_start(env):
        return FORKS.start(args, env, log)
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "hitl", *args], env=env, stdout=out, stderr=out, cwd=ROOT
        )


@pytest.fixture(scope="session", autouse=True)
def _fork_server() -> Iterator[None]:
    yield
    FORKS.close()


def wait_for_log(
    log: Path,
    pattern: str,
    proc: Process | None = None,
    timeout: float = 60.0,
) -> re.Match[str]:
    """Wait until the log of a process says `pattern` (a regular expression); fail if the
    process exits first, or after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        text = log.read_text(errors="replace") if log.exists() else ""
        match = re.search(pattern, text)
        if match:
            return match
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"exited ({proc.returncode}) before saying {pattern!r}:\n{text}")
        if time.monotonic() > deadline:
            raise AssertionError(f"did not say {pattern!r} within {timeout} s:\n{text}")
        time.sleep(0.05)


def in_thread(make: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine to its end on a loop of its own (tests' own loops may be running)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(lambda: asyncio.run(make())).result()


def identity_call(db_url: str, call: Callable[[Identity], Awaitable[T]]) -> T:
    """Call the identity service on a database directly, as the CLI's commands do."""

    async def run() -> T:
        store = SqlStore(db_url)
        try:
            return await call(Identity(store))
        finally:
            await store.close()

    return in_thread(run)


def make_token(db_url: str, roles: tuple[str, ...] = ("admin",), user: str | None = None) -> str:
    name = f"test-{uuid.uuid4().hex[:8]}"
    return identity_call(db_url, lambda i: i.create_token(name, roles, user=user))[0]


def user_token(db_url: str, name: str, *roles: str) -> str:
    """Add the user `name` with `roles`, and make a token of theirs."""

    async def make(identity: Identity) -> str:
        await identity.add_user(name, roles)
        return (await identity.create_token(f"{name}-{uuid.uuid4().hex[:6]}", roles, name))[0]

    return identity_call(db_url, make)


def login_link(db_url: str, user: str = "admin") -> str:
    return identity_call(db_url, lambda i: i.login_link(user))


# The admin token of the server listening on each port: the browser tests' pages sign in with it.
TOKENS_BY_PORT: dict[int, str] = {}


@dataclass
class Server:
    """A real `hitl serve` process on 127.0.0.1, and an admin token for it (`headers`)."""

    db_url: str
    env: dict[str, str]
    port: int = field(default_factory=free_port)
    args: list[str] = field(default_factory=list)
    proc: Process | None = None
    log: Path | None = None
    starts: int = 0
    token: str | None = None
    serving: bool = False  # started, and neither killed nor stopped since

    @property
    def headers(self) -> dict[str, str]:
        """What a test's client sends: the admin token, once the server has started."""
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def spawn(self) -> Server:
        """Start the process, without waiting for it to serve (see `wait_healthy`)."""
        args = ["serve", "--host", "127.0.0.1", "--port", str(self.port), "--db", self.db_url]
        args += ["--log-level", "warning", *self.args]
        assert self.log is not None
        self.proc = start_hitl(args, self.env, self.log)
        self.starts += 1
        return self

    def wait_healthy(self, timeout: float = 60.0) -> Server:
        """Wait until the server answers `/healthz`; fail if it exits first."""
        assert self.proc is not None and self.log is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"server exited with {self.proc.returncode}: {self.log.read_text()}"
                )
            try:
                healthy = httpx.get(f"{self.url}/healthz", timeout=5).status_code == 200
                if healthy and _listens(self.proc.pid, self.port):
                    self.serving = True
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"server did not start within {timeout} s: {self.log.read_text()}")

    def start(self, timeout: float = 60.0) -> Server:
        """Start the server and wait until it serves. On its first start only, a port that
        another process took meanwhile is traded for a free one (a restart keeps its port)."""
        assert self.log is not None
        first = self.starts == 0
        for _ in range(5):
            try:
                self.spawn().wait_healthy(timeout)
            except RuntimeError:
                log = self.log.read_text(errors="replace")
                if not (first and PORT_TAKEN.search(log)):
                    raise
                self.log.write_bytes(b"")  # that failure is not the server's
                self.port, self.starts = free_port(), 0
                continue
            if self.token is None and self.env.get("HITL_AUTH") != "false":
                self.token = make_token(self.db_url)
            if self.token is not None:
                TOKENS_BY_PORT[self.port] = self.token
            return self
        raise RuntimeError(f"no free port found: {self.log.read_text()}")

    def wait_log(self, pattern: str, timeout: float = 60.0) -> re.Match[str]:
        """Wait until the server's log says `pattern` (a regular expression)."""
        assert self.log is not None
        return wait_for_log(self.log, pattern, self.proc, timeout)

    def kill9(self) -> None:
        """Kill the server with SIGKILL, as a crash would."""
        self.serving = False
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def died(self) -> str | None:
        """How a server that was serving ended by itself (no test stopped or killed it)."""
        if not self.serving or self.proc is None or self.proc.poll() is None:
            return None
        return f"{self.log}: the server exited by itself, with {self.proc.returncode}"

    def stop(self) -> None:
        died = self.died()
        self.serving = False
        assert died is None, died
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
    """A throwaway PostgreSQL server for the whole test session (and, first, away with those
    that killed test processes left running)."""
    reap_orphans()
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
    # Named at random: two factories may share `tmp` (a test's `new_database` and its
    # `start_server`), and must not hand out one file twice.
    return lambda: f"sqlite:///{tmp / f'hitl-{uuid.uuid4().hex[:12]}.db'}"


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file with the schema made, once per test process, for `_migrated` to copy."""
    path = tmp_path_factory.mktemp("template") / "hitl.db"
    migrate.upgrade(f"sqlite:///{path}")
    assert not Path(f"{path}-wal").exists(), "the template must be whole in its file"
    return path


@pytest.fixture(scope="session")
def postgresql_template(postgres: Cluster) -> str:
    """The name of a database with the schema made, once per test process, for `_migrated`
    to copy (`CREATE DATABASE … TEMPLATE`: nothing stays connected to it)."""
    url = postgres.create_database()
    migrate.upgrade(url)
    return urlsplit(url).path.lstrip("/")


def _migrated(request: pytest.FixtureRequest, backend: str, tmp: Path) -> Callable[[], str]:
    """A factory of fresh databases with the schema already made: copies of one migrated
    database. A server started on one skips the migration, which costs a start-up about half
    a second of CPU, and a test process starts about fifty servers. What a first start does to
    an empty database is tested on `new_database`'s."""
    if backend == "postgresql":
        cluster: Cluster = request.getfixturevalue("postgres")
        name: str = request.getfixturevalue("postgresql_template")
        return lambda: cluster.create_database(template=name)
    source: Path = request.getfixturevalue("sqlite_template")
    fresh = _databases(request, backend, tmp)

    def copy() -> str:
        url = fresh()
        shutil.copyfile(source, url.removeprefix("sqlite:///"))
        return url

    return copy


@pytest.fixture
def new_database(request: pytest.FixtureRequest, backend: str, tmp_path: Path) -> Callable[[], str]:
    """A factory of fresh, empty databases: for the tests of what makes or migrates a schema."""
    return _databases(request, backend, tmp_path)


@pytest.fixture
def migrated_database(
    request: pytest.FixtureRequest, backend: str, tmp_path: Path
) -> Callable[[], str]:
    """A factory of fresh databases with the schema made, as `hitl db upgrade` leaves them
    (copies, see `_migrated`: migrating each anew costs up to a second on PostgreSQL)."""
    return _migrated(request, backend, tmp_path)


def _factory(
    tmp: Path, started: list[Server], databases: Callable[[], str]
) -> Callable[..., Server]:
    def start(
        db_url: str | None = None, args: list[str] | None = None, **settings: object
    ) -> Server:
        # No limits per principal: a test's one token does what many users would; the limits
        # have tests of their own.
        defaults = {"process_delay": 0, "rate_limit": 0, "max_streams": 0}
        env = process_env(**{**defaults, **settings})
        n = len(started)
        server = Server(db_url=db_url or databases(), env=env, args=args or [])
        server.log = tmp / f"server-{n}.log"
        started.append(server)
        return server.start()

    return start


def _stop_all(started: list[Server]) -> None:
    """Stop the servers; fail if one logged an unhandled error (a 500, a crashed stream...) or
    had ended by itself."""
    died = [d for d in (server.died() for server in started) if d]
    for server in started:
        server.serving = False
        server.stop()
    for server in started:
        assert server.log is not None
        log = server.log.read_text(errors="replace")
        print(f"--- {server.log.name} ---\n{log}")  # pytest shows it when a test failed
        unhandled = re.search(r"Traceback|\bERROR\b|Fatal Python error", log)
        assert not unhandled, f"{server.log}:\n{log}"
    assert not died, died


@pytest.fixture
def start_server(
    request: pytest.FixtureRequest, backend: str, tmp_path: Path
) -> Iterator[Callable[..., Server]]:
    """A factory: start_server(db_url=..., args=[...], **settings) → a running Server.

    Each keyword becomes an `HITL_*` variable: start_server(process_delay=2). Without db_url,
    each server gets a fresh database of the backend under test, its schema made.
    """
    started: list[Server] = []
    yield _factory(tmp_path, started, _migrated(request, backend, tmp_path))
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
    yield _factory(tmp, started, _migrated(request, backend, tmp))
    _stop_all(started)


@dataclass
class Stub:
    """What a stub server answers every request with, as a broken or foreign server would;
    it keeps the `Authorization` header of each request in `seen`."""

    status: int = 200
    body: bytes = b"{}"
    content_type: str = "application/json"
    seen: list[str | None] = field(default_factory=list)


@pytest.fixture
def stub() -> Iterator[tuple[Stub, str]]:
    """A real HTTP server on 127.0.0.1 that answers as its `Stub` says; and its URL."""
    answer = Stub()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            answer.seen.append(self.headers.get("Authorization"))
            self.send_response(answer.status)
            self.send_header("Content-Type", answer.content_type)
            self.send_header("Content-Length", str(len(answer.body)))
            self.end_headers()
            self.wfile.write(answer.body)

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.do_GET()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield answer, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join()
