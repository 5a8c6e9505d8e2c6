"""`hitl serve` as a user starts it: from the environment alone, and what it prints.

These start their own processes (not the `start_server` fixture, which passes flags) and wait
for the lines the server prints, never for a fixed time.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from hitl.client import Client
from hitl.store.engine import create_sync_engine
from tests.conftest import ROOT, free_port, make_token

# Waits are for events; these only bound them, so that a broken build fails instead of hanging.
START_TIMEOUT = 60.0
READ_TIMEOUT = 30.0
READY = "hitl ready: open "


def environment(**settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HITL_")}
    env |= {"PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1", "HITL_PROCESS_DELAY": "0"}
    env |= {f"HITL_{k.upper()}": v for k, v in settings.items()}
    return env


class Process:
    """A `hitl ...` process whose output (stdout and stderr) is read line by line as it comes."""

    def __init__(
        self, args: list[str], env: dict[str, str], python: str = sys.executable, cwd: Path = ROOT
    ) -> None:
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        self.proc = subprocess.Popen(
            [python, "-m", "hitl", *args],
            env=env,
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        with self.proc.stdout:
            for line in self.proc.stdout:
                self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def wait_for(self, start: str, timeout: float = START_TIMEOUT) -> str:
        """The first line (from now on) that starts with `start`, once the process prints it."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no line {start!r} in {timeout}s: {self.lines}") from None
            if line is None:
                raise AssertionError(f"exited ({self.proc.wait()}) before {start!r}: {self.lines}")
            self.lines.append(line)
            if line.startswith(start):
                return line

    def stop(self) -> list[str]:
        """SIGTERM, then everything it printed up to its exit."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        # uvicorn stops gracefully, then raises the signal again (exit status -SIGTERM).
        assert self.proc.wait(30) in (0, -signal.SIGTERM), self.lines
        while (line := self._queue.get(timeout=10)) is not None:
            self.lines.append(line)
        return self.lines


@pytest.fixture
def processes() -> Iterator[Callable[..., Process]]:
    started: list[Process] = []

    def start(args: list[str], env: dict[str, str], **how: Any) -> Process:
        started.append(Process(args, env, **how))
        return started[-1]

    yield start
    for process in started:
        if process.proc.poll() is None:
            process.proc.kill()
            process.proc.wait(10)


def cli(env: dict[str, str], *args: str) -> str:
    """Run `hitl <args>` in its own process with `env`; its output, once it succeeded."""
    done = subprocess.run(
        [sys.executable, "-m", "hitl", *args], env=env, cwd=ROOT, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_run_workers_false_from_the_environment_leaves_tasks_queued(
    new_database: Callable[[], str], processes: Callable[[list[str], dict[str, str]], Process]
) -> None:
    """HITL_RUN_WORKERS=false reaches the server (no flag overrides it); a worker-enabled server
    on the same database is what runs the task. Clients find the server by HITL_PORT alone."""
    url, port = new_database(), free_port()
    env = environment(database_url=url, port=str(port), run_workers="false")

    api = processes(["serve"], env)
    assert api.wait_for(READY) == (
        f"{READY}http://127.0.0.1:{port}  (reviewers: /reviews, API docs: /docs)"
    )
    assert any(line.endswith("workers: off") for line in api.lines), api.lines
    # A first run makes the admin, and prints a one-time link to sign in as it.
    [first] = [line for line in api.lines if "one-time link" in line]
    link = re.search(rf"http://127\.0\.0\.1:{port}/login/([A-Za-z0-9_-]{{43}})$", first)
    assert link is not None, first
    here = {"Origin": f"http://127.0.0.1:{port}"}
    signed = httpx.post(link[0], headers=here, follow_redirects=False, timeout=10)
    assert signed.status_code == 303 and "hitl_session" in signed.headers["set-cookie"]

    env["HITL_TOKEN"] = make_token(url)
    task = json.loads(cli(env, "submit", "waits for a worker"))  # found by HITL_PORT
    tid = task["id"]
    assert task["status"] == "queued"
    assert f"{tid}  queued" in cli(env, "tasks", "--status", "queued", "--limit", "500")
    lines = api.stop()
    # The access log names the sign-in request, but not its secret.
    assert any("POST /login/[secret]" in line for line in lines), lines
    assert not [line for line in lines[lines.index(first) + 1 :] if link[1] in line]
    # Once the workerless server is gone, the database says what it did: it queued the task.
    assert db_rows_of(url, f"SELECT status FROM tasks WHERE id = '{tid}'") == [("queued",)]
    assert db_rows_of(url, f"SELECT type FROM events WHERE task_id = '{tid}'") == [
        ("task.created",)
    ]

    del env["HITL_RUN_WORKERS"]  # the default: workers on
    full = processes(["serve"], env)
    full.wait_for(READY)
    assert any(line.endswith("workers: on, 32 tasks at once") for line in full.lines)
    assert not [line for line in full.lines if "one-time link" in line]  # an admin exists
    with Client(f"http://127.0.0.1:{port}", token=env["HITL_TOKEN"]) as client:
        for event in client.events(tid, read_timeout=READ_TIMEOUT):
            if event.type == "review.requested":
                break
        else:
            raise AssertionError("the task ended without a review")
    cli(env, "approve", tid)
    log = cli(env, "watch", tid).splitlines()
    assert log[0].split()[1] == "task.created" and log[-1].split()[1] == "task.completed"
    full.stop()


def db_rows_of(url: str, sql: str) -> list[tuple[object, ...]]:
    """Read the database directly: the ground truth once no server runs on it."""
    engine = create_sync_engine(url)
    try:
        with engine.connect() as connection:
            return [tuple(row) for row in connection.exec_driver_sql(sql).fetchall()]
    finally:
        engine.dispose()


def test_start_up_ends_with_the_url_to_open(
    tmp_path: Path, processes: Callable[[list[str], dict[str, str]], Process]
) -> None:
    """A new database gets its schema (Alembic) without a word from Alembic; the last line
    of start-up is the URL; nothing comes after it until the server is stopped."""
    port = free_port()
    env = environment(database_url=f"sqlite:///{tmp_path / 'new.db'}", port=str(port))
    server = processes(["serve"], env)
    ready = server.wait_for(READY)
    assert ready.startswith(f"{READY}http://127.0.0.1:{port}")
    lines = server.stop()
    start_up, after = lines[: lines.index(ready)], lines[lines.index(ready) + 1 :]
    assert db_rows_of(env["HITL_DATABASE_URL"], "SELECT count(*) FROM tasks") == [(0,)]
    assert not [line for line in start_up if "alembic" in line.lower() or "upgrade" in line]
    assert "Shutting down" in after[0], after  # the first line after it is the stop we caused


def test_a_stop_ends_open_event_streams_without_a_traceback(
    tmp_path: Path, processes: Callable[[list[str], dict[str, str]], Process]
) -> None:
    """SIGTERM with event streams open (the cookbook's, the API's): they end at once, and the
    log says nothing of a cancelled task or an exception."""
    port = free_port()
    env = environment(database_url=f"sqlite:///{tmp_path / 'stop.db'}", port=str(port))
    env["HITL_AUTH"] = "false"
    server = processes(["serve"], env)
    server.wait_for(READY)
    base = f"http://127.0.0.1:{port}"
    task = httpx.post(f"{base}/submit", json={"data": "hold the stream open"}).json()["task_id"]
    streams = []
    for path in (f"/stream/{task}", "/api/v1/events", f"/api/v1/tasks/{task}/events"):
        stream = httpx.stream("GET", base + path, timeout=READ_TIMEOUT)
        response = stream.__enter__()
        assert response.status_code == 200, path
        chunks = response.iter_raw()
        next(chunks)  # its first bytes: the stream is open and being answered
        streams.append((stream, chunks))
    lines = server.stop()
    for stream, chunks in streams:
        with contextlib.suppress(httpx.HTTPError):
            for _ in chunks:  # to its end, which the stop brought
                pass
        stream.__exit__(None, None, None)
    after = lines[lines.index(next(x for x in lines if x.startswith(READY))) + 1 :]
    # (Had uvicorn waited out its grace period, it would say "Cancel 3 running task(s)".)
    assert not [x for x in after if "Traceback" in x or "ERROR" in x or "Cancel" in x], after


def test_json_logs_are_one_object_a_line_access_log_included(
    tmp_path: Path, processes: Callable[[list[str], dict[str, str]], Process]
) -> None:
    port = free_port()
    env = environment(database_url=f"sqlite:///{tmp_path / 'json.db'}", port=str(port))
    server = processes(["serve", "--log-format", "json"], env)
    link = server.wait_for("hitl: first run: sign in as admin").rsplit(" ", 1)[1]
    server.wait_for(READY)
    assert httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200
    assert httpx.get(link).status_code == 200  # its path is a secret: the log hides it
    lines = server.stop()
    logged = [json.loads(line) for line in lines if not line.startswith("hitl")]
    assert logged, lines
    for entry in logged:
        assert {"time", "level", "logger", "message"} <= set(entry), entry
        assert entry["time"].endswith("+00:00")
    ready = [e for e in logged if e["logger"] == "hitl.app" and e["message"] == "hitl ready"]
    assert ready and ready[0]["action"] == "start" and ready[0]["database"] == "sqlite"
    access = [e["message"] for e in logged if e["logger"] == "uvicorn.access"]
    assert any('"GET /healthz HTTP/1.1" 200' in m for m in access), access
    assert any("/login/[secret]" in m for m in access) and not any(link in m for m in access)


def test_a_port_in_use_is_one_line_and_touches_nothing(tmp_path: Path) -> None:
    db = tmp_path / "never.db"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = environment(database_url=f"sqlite:///{db}", port=str(port))
        done = subprocess.run(
            [sys.executable, "-m", "hitl", "serve"],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
    assert done.returncode == 1 and done.stdout == "", done
    assert done.stderr.splitlines() == [
        f"hitl: cannot listen on 127.0.0.1:{port} (Address already in use): stop what uses it, "
        "or choose another port with --port or HITL_PORT (HITL_PORT=9000 make run)"
    ]
    assert not db.exists()
