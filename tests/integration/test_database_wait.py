"""Start-up waits for the database and says so; `/readyz` follows the database's health.

On a PostgreSQL server of the test's own, which it starts late, stops and starts again.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import ROOT, Server, _factory, _stop_all, free_port
from tests.pg import Cluster, pause, resume


@pytest.fixture
def servers() -> Iterator[list[Server]]:
    started: list[Server] = []
    yield started
    _stop_all(started)


def readyz(server: Server) -> httpx.Response:
    return httpx.get(f"{server.url}/readyz", timeout=10)


def test_start_up_waits_for_the_database_and_readyz_follows_it(
    servers: list[Server], tmp_path: Path
) -> None:
    cluster = Cluster()  # its port is chosen; nothing listens there yet
    late = threading.Timer(3.0, cluster.start)
    try:
        late.start()
        start = _factory(tmp_path, servers, lambda: "")
        server = start(db_url=cluster.url(), args=["--no-workers"], database_wait_seconds=60)
        late.join()
        assert server.log is not None
        log = server.log.read_text()
        assert f"waiting for the database at postgresql://postgres@127.0.0.1:{cluster.port}" in log
        response = readyz(server)
        assert response.status_code == 200
        assert response.json() == {"status": "ok", "database": "postgresql"}

        pause(cluster)
        response = readyz(server)
        assert response.status_code == 503
        assert response.json()["status"] == "unavailable"
        assert "the database is unavailable right now" in response.json()["database"]
        assert httpx.get(f"{server.url}/healthz", timeout=10).status_code == 200  # still up

        resume(cluster)
        deadline = time.monotonic() + 30
        while readyz(server).status_code != 200:
            assert time.monotonic() < deadline, "never ready again after the database came back"
            time.sleep(0.2)
    finally:
        late.cancel()
        for server in servers:
            server.stop()
        cluster.stop()


@pytest.mark.parametrize("command", [["serve"], ["worker"], ["db", "upgrade"]])
def test_an_unreachable_database_ends_start_up_with_one_clear_line(command: list[str]) -> None:
    url = f"postgresql://hitl:secret@127.0.0.1:{free_port()}/hitl"  # nothing listens there
    env = {k: v for k, v in os.environ.items() if not k.startswith("HITL_")}
    env.update({"PYTHONPATH": str(ROOT), "HITL_DATABASE_WAIT_SECONDS": "1"})
    result = subprocess.run(
        [sys.executable, "-m", "hitl", *command, "--db", url],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "did not answer within 1 s" in output
    assert "check HITL_DATABASE_URL" in output
    assert "Traceback" not in output
    assert "secret" not in output  # the password is never shown
