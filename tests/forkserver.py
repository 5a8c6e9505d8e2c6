"""Start `hitl` processes for the tests without paying for their imports each time.

A test run starts about a hundred `hitl serve` processes. Each spent about a second of CPU
importing FastAPI, pydantic, SQLAlchemy and uvicorn before it did anything, a sixth of the
suite's CPU. So each test process keeps one *fork server*: a process that imported hitl once,
and for each start forks a child that runs `python -m hitl ARGS` from there, as the command
would: its own environment and log, the tree's directory, the same module run as `__main__`,
and a normal interpreter exit (threads joined, `atexit` run) with the command's exit code.

The child is a real process and a child of the test process, as `subprocess.Popen` makes
one: the fork server forks twice, and the test process, a "child subreaper" (Linux's
PR_SET_CHILD_SUBREAPER) while it waits for the answer, adopts the grandchild. So `os.waitpid`
gives its exit code, and `kill -9` is a real crash.

What cannot be inherited is not forked: a process whose environment differs from the fork
server's in anything but `HITL_*` (the locale, `PYTHON*`) is started with `subprocess.Popen`,
as is every process on a system without the subreaper, and every process when
`HITL_TEST_FORKSERVER=0`. The command line's own start-up (`python -m hitl` from nothing)
keeps tests of its own (tests/integration/test_cli_serve.py, tests/unit/test_cli.py).
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import runpy
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parent.parent
PR_SET_CHILD_SUBREAPER = 36


class Forked:
    """A process the fork server started, with the part of `subprocess.Popen`'s interface
    that the tests use."""

    def __init__(self, pid: int, args: Sequence[str]) -> None:
        self.pid = pid
        self.args = list(args)
        self.returncode: int | None = None
        self._lock = threading.RLock()

    def poll(self) -> int | None:
        with self._lock:
            if self.returncode is None:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
                if pid:
                    self.returncode = os.waitstatus_to_exitcode(status)
            return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        delay = 0.001
        while (code := self.poll()) is None:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(self.args, timeout or 0)
            time.sleep(delay)
            delay = min(delay * 2, 0.05)
        return code

    def send_signal(self, sig: int) -> None:
        with self._lock:  # no other thread reaps it in between
            if self.poll() is None:  # once reaped, its pid may be another process's
                os.kill(self.pid, sig)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


# What starts a `hitl` process: the fork server, or `subprocess.Popen`.
Process = subprocess.Popen[bytes] | Forked


def _subreaper(on: bool) -> bool:
    """Make this process adopt its orphaned descendants, or stop it; whether it could."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(PR_SET_CHILD_SUBREAPER, int(on), 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


def _fixed(env: dict[str, str]) -> dict[str, str]:
    """What of an environment a process fixes as it starts: all but hitl's settings, which
    it reads when it runs, and the name of the test that pytest keeps there."""
    return {k: v for k, v in env.items() if not k.startswith(("HITL_", "PYTEST_"))}


class ForkServer:
    """The test process's side: `start` a command as `python -m hitl` would run it."""

    def __init__(self, base_env: dict[str, str]) -> None:
        self.base_env = base_env
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._log = Path(tempfile.gettempdir()) / f"hitl-forkserver-{os.getpid()}.log"
        self._enabled: bool | None = None  # found out at the first start

    def enabled(self) -> bool:
        """Whether it starts processes: not when HITL_TEST_FORKSERVER=0, nor where this
        process cannot adopt them."""
        if self._enabled is None:
            wanted = os.environ.get("HITL_TEST_FORKSERVER", "1") != "0"
            self._enabled = wanted and _subreaper(False)  # asks whether it can be one
        return self._enabled

    def can_start(self, env: dict[str, str]) -> bool:
        return self.enabled() and _fixed(env) == _fixed(self.base_env)

    def _server(self) -> subprocess.Popen[bytes]:
        if self._proc is None or self._proc.poll() is not None:
            with self._log.open("ab") as log:
                self._proc = subprocess.Popen(
                    [sys.executable, "-m", "tests.forkserver"],
                    env=self.base_env,
                    cwd=ROOT,
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=log,
                )
        return self._proc

    def start(self, args: Sequence[str], env: dict[str, str], log: Path) -> Forked:
        """Run `python -m hitl *args` with `env`, its output appended to `log`."""
        request = {"args": list(args), "env": env, "log": str(log)}
        with self._lock:
            server = self._server()
            assert server.stdin is not None and server.stdout is not None
            # Adopting only while a process is handed over: other orphans (a PostgreSQL
            # server that pg_ctl started) go to init, which reaps them, as without this.
            _subreaper(True)
            try:
                server.stdin.write(json.dumps(request).encode() + b"\n")
                server.stdin.flush()
                answer = server.stdout.readline()
            except BrokenPipeError:
                answer = b""
            except BaseException:  # an answer may be left unread: the next would get it
                self._end(kill=True)
                raise
            finally:
                _subreaper(False)
            if not answer.strip():  # it ended
                self._end(kill=True)
                raise RuntimeError(f"the fork server ended: {self._log.read_text()[-3000:]}")
        return Forked(int(answer), ["python", "-m", "hitl", *args])

    def _end(self, kill: bool = False) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        assert proc.stdin is not None and proc.stdout is not None
        if kill:
            proc.kill()
        with contextlib.suppress(OSError):
            proc.stdin.close()  # the fork server ends at the end of its input
        proc.wait(10)
        proc.stdout.close()

    def close(self) -> None:
        self._end()
        self._log.unlink(missing_ok=True)


# -- the fork server's side ----------------------------------------------------------------------


def _preload() -> None:
    """Import what `hitl serve` and `hitl worker` import on their way to serving."""
    import psycopg  # noqa: F401
    import sqlalchemy.dialects.postgresql.psycopg  # noqa: F401
    import sqlalchemy.dialects.sqlite.pysqlite  # noqa: F401
    import uvicorn.lifespan.on  # noqa: F401
    import uvicorn.protocols.http.httptools_impl  # noqa: F401

    import hitl.app  # noqa: F401
    import hitl.cli.main  # noqa: F401
    import hitl.server  # noqa: F401

    with contextlib.suppress(ImportError):  # uvicorn runs on it where it is installed
        import uvicorn.loops.uvloop  # noqa: F401


def _run_as_hitl(request: dict[str, Any], channel: int) -> None:
    """In the grandchild: become `python -m hitl ARGS`, and exit as it does."""
    os.close(channel)
    null = os.open(os.devnull, os.O_RDONLY)
    log = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(null, 0)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(null)
    os.close(log)
    os.environ.clear()
    os.environ.update(request["env"])
    os.chdir(ROOT)
    sys.argv = [str(ROOT / "hitl" / "__main__.py"), *request["args"]]
    runpy.run_module("hitl", run_name="__main__", alter_sys=True)


def _fork(request: dict[str, Any], reply: IO[bytes]) -> bool:
    """Start one process for `request`; False in the process that is to become it."""
    read, write = os.pipe()
    middle = os.fork()
    if middle == 0:  # the middle process: fork the grandchild, say its pid, end
        os.close(read)
        child = os.fork()
        if child == 0:
            _run_as_hitl(request, write)
            return False
        os.write(write, f"{child}\n".encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        pid = pipe.readline()
    os.waitpid(middle, 0)
    reply.write(pid or b"\n")
    reply.flush()
    return True


def main() -> None:
    _preload()
    requests, reply = sys.stdin.buffer, sys.stdout.buffer
    for line in requests:
        if not _fork(json.loads(line), reply):
            return  # the grandchild: it ran hitl; the interpreter exits as after `-m hitl`
    # The end of its input: nothing is left to write or to close. Tearing down the interpreter
    # and everything `_preload` imported took over 10 s on a machine busy with three suites.
    os._exit(0)


if __name__ == "__main__":
    main()
