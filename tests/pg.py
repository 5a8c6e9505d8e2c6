"""A throwaway PostgreSQL cluster for the tests: Debian's server binaries, a temporary data
directory, 127.0.0.1 and a free port; started by the test session and stopped after it.

PostgreSQL refuses to run as root, so as root the cluster belongs to the `postgres` user that
Debian's package creates.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path

import psycopg


def _bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    path = found[-1] if found else shutil.which(name)
    if not path:
        raise RuntimeError(f"PostgreSQL's {name} is missing: run `make test` (it installs it)")
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


PREFIX = "hitl-pg-"
OWNER = "owner"  # the file in a cluster's directory that names the process that made it


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's: alive
        return True
    return True


def reap_orphans() -> list[Path]:
    """Stop and remove the clusters whose maker died without stopping them (a test process
    killed mid-run: `kill -9`, or ended by a hung test's timeout), which would otherwise run
    and fill the disk for ever; the directories removed. A cluster whose maker lives, or that
    does not name its maker yet (being made), is left alone."""
    reaped = []
    for root in Path(tempfile.gettempdir()).glob(f"{PREFIX}*"):
        try:
            owner = int((root / OWNER).read_text())
        except (OSError, ValueError):
            continue
        if _alive(owner):
            continue
        data = root / "data"
        if (data / "postmaster.pid").exists():
            user = "postgres" if os.geteuid() == 0 else None
            stop = [_bin("pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"]
            subprocess.run(stop, capture_output=True, user=user, cwd=root)
        shutil.rmtree(root, ignore_errors=True)
        reaped.append(root)
    return reaped


class Cluster:
    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix=PREFIX))
        (self.root / OWNER).write_text(str(os.getpid()))
        self.port = _free_port()
        self.user: str | None = "postgres" if os.geteuid() == 0 else None
        if self.user:
            pw = pwd.getpwnam(self.user)
            os.chown(self.root, pw.pw_uid, pw.pw_gid)
        self.data = self.root / "data"

    def _run(self, *cmd: str) -> None:
        done = subprocess.run(cmd, capture_output=True, user=self.user, cwd=self.root)
        if done.returncode != 0:
            log = self.root / "log"
            raise RuntimeError(
                f"{' '.join(cmd)} exited with {done.returncode}:\n"
                f"{done.stdout.decode(errors='replace')}{done.stderr.decode(errors='replace')}"
                + (log.read_text(errors="replace")[-3000:] if log.exists() else "")
            )

    def _options(self) -> str:
        return f"-h 127.0.0.1 -p {self.port} -k {self.root} -F -c max_connections=400"

    def _pg_ctl_start(self) -> None:
        self._run(
            _bin("pg_ctl"), "-D", str(self.data), "-o", self._options(),
            "-l", str(self.root / "log"), "-w", "start",
        )  # fmt: skip

    def start(self, *, move: bool = True) -> Cluster:
        """Create and start the cluster. If its port was taken meanwhile (by a test run going
        on beside this one), it moves to a free one, unless `move` is false: someone already
        waits for it on this port."""
        self._run(_bin("initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres", "-N")
        for _ in range(5):
            try:
                self._pg_ctl_start()
                return self
            except RuntimeError as exc:
                if not move or "already in use" not in str(exc):
                    raise
                self.port = _free_port()
        raise RuntimeError("no free port for PostgreSQL")

    def stop(self) -> None:
        try:
            self._run(_bin("pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, template: str | None = None) -> str:
        """A new database: empty, or a copy of the database named `template` (which nobody
        may be connected to meanwhile)."""
        name = f"hitl_{uuid.uuid4().hex[:12]}"
        copy = f' TEMPLATE "{template}"' if template else ""
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"{copy}')
        return self.url(name)


def restart(cluster: Cluster) -> None:
    """Restart the server as an operator would (`pg_ctl restart -m fast`): connections drop."""
    # `-l`: the restarted server must not inherit this call's output pipes, or waiting for
    # them to close would wait for the server to stop.
    cluster._run(
        _bin("pg_ctl"), "-D", str(cluster.data), "-m", "fast",
        "-l", str(cluster.root / "log"), "-w", "restart",
    )  # fmt: skip


def pause(cluster: Cluster) -> None:
    """Stop the server, keeping its data: the database is away until `resume`."""
    cluster._run(_bin("pg_ctl"), "-D", str(cluster.data), "-m", "fast", "-w", "stop")


def resume(cluster: Cluster) -> None:
    cluster._pg_ctl_start()
