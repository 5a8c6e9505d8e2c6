"""The tests' throwaway PostgreSQL clusters do not outlive a test process killed mid-run."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

from tests.conftest import BACKENDS, ROOT
from tests.pg import OWNER, reap_orphans

pytestmark = pytest.mark.skipif(
    "postgresql" not in BACKENDS, reason="HITL_TEST_BACKENDS leaves PostgreSQL out"
)

MAKE_AND_HANG = """
import sys, time
from tests.pg import Cluster
cluster = Cluster().start()
print(cluster.root, cluster.port, flush=True)
time.sleep(600)
"""


def test_a_cluster_whose_test_process_was_killed_is_stopped_and_removed() -> None:
    maker = subprocess.Popen(
        [sys.executable, "-c", MAKE_AND_HANG], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    assert maker.stdout is not None
    root_text, port = maker.stdout.readline().split()
    root = Path(root_text)
    url = f"postgresql://postgres@127.0.0.1:{port}/postgres"
    with psycopg.connect(url, connect_timeout=10) as conn:  # it serves
        assert conn.execute("SELECT 1").fetchone() == (1,)
    assert reap_orphans() == []  # its maker lives: left alone
    assert root.is_dir()

    maker.send_signal(signal.SIGKILL)  # as a hung test's timeout or `kill -9` ends it
    maker.wait(10)
    maker.stdout.close()
    assert (root / OWNER).read_text() == str(maker.pid)
    with psycopg.connect(url, connect_timeout=10) as conn:  # orphaned, it still runs
        assert conn.execute("SELECT 1").fetchone() == (1,)

    assert root in reap_orphans()
    assert not root.exists()
    deadline = time.monotonic() + 10
    while True:  # `pg_ctl stop -w` waited for the server's end; its port is closed
        try:
            psycopg.connect(url, connect_timeout=2).close()
        except psycopg.OperationalError:
            break
        assert time.monotonic() < deadline, "the orphaned cluster still serves"
        time.sleep(0.1)
