"""Start-up waits for the database and says so; `/readyz` follows the database's health.

On a PostgreSQL server of the test's own, which it starts once the server says it waits for
it, then stops and starts again.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import ROOT, Server, _stop_all, free_port, process_env
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
    try:
        env = process_env(database_wait_seconds=60)
        server = Server(db_url=cluster.url(), env=env, args=["--no-workers"])
        server.log = tmp_path / "server.log"
        servers.append(server)
        server.spawn()
        where = re.escape(f"postgresql://postgres@127.0.0.1:{cluster.port}")
        server.wait_log(f"waiting for the database at {where}")
        cluster.start(move=False)  # the server waits for it on this port
        server.wait_healthy()
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
        for started in servers:
            started.stop()
        cluster.stop()


@pytest.mark.parametrize("command", [["serve"], ["worker"], ["db", "upgrade"]])
def test_an_unreachable_database_ends_start_up_with_one_clear_line(command: list[str]) -> None:
    url = f"postgresql://hitl:secret@127.0.0.1:{free_port()}/hitl"  # nothing listens there
    result = subprocess.run(
        [sys.executable, "-m", "hitl", *command, "--db", url],
        env=process_env(database_wait_seconds=1),
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
