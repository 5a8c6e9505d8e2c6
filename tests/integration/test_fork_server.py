"""The fork server that starts the tests' `hitl` processes (tests/forkserver.py) starts them
as the command line would: the given environment and arguments, output to the log, the
command's exit code, and a real child process of the test, which `kill -9` really kills."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest

from hitl.store import migrate
from tests.conftest import FORKS, free_port, process_env, start_hitl, wait_for_log
from tests.forkserver import Forked

pytestmark = pytest.mark.skipif(
    not FORKS.enabled(), reason="HITL_TEST_FORKSERVER=0, or not Linux: processes start anew"
)


def _parent_of(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat.rsplit(")", 1)[1].split()[1])


def test_a_command_runs_with_its_environment_and_ends_with_its_exit_code(tmp_path: Path) -> None:
    db = tmp_path / "from-the-environment.db"
    log = tmp_path / "upgrade.log"
    upgrade = start_hitl(["db", "upgrade"], process_env(database_url=f"sqlite:///{db}"), log)
    assert isinstance(upgrade, Forked)
    assert upgrade.wait(60) == 0, log.read_text()
    assert migrate.current_revision(f"sqlite:///{db}") == migrate.head_revision()

    wrong = start_hitl(["no-such-command"], process_env(), tmp_path / "wrong.log")
    assert wrong.wait(60) == 2
    assert "No such command 'no-such-command'" in (tmp_path / "wrong.log").read_text()
    assert "Traceback" not in (tmp_path / "wrong.log").read_text()


def test_a_started_server_is_a_child_of_the_test_and_kill_9_kills_it(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'hitl.db'}"
    log = tmp_path / "serve.log"
    args = ["serve", "--db", db, "--port", str(free_port()), "--log-level", "warning"]
    server = start_hitl(args, process_env(), log)
    try:
        assert isinstance(server, Forked)
        wait_for_log(log, "hitl ready", server)
        assert _parent_of(server.pid) == os.getpid()
    finally:
        server.kill()
    assert server.wait(10) == -signal.SIGKILL
    assert not Path(f"/proc/{server.pid}").exists()  # reaped: no zombie is left


def test_what_a_process_fixes_as_it_starts_gets_a_process_of_its_own(tmp_path: Path) -> None:
    """The locale and Python's own variables take effect at an interpreter's start: a process
    that sets them differently is started from nothing."""
    env = {**process_env(), "PYTHONIOENCODING": "latin-1"}
    assert not FORKS.can_start(env)
    help = start_hitl(["--help"], env, tmp_path / "help.log")
    assert isinstance(help, subprocess.Popen)
    assert help.wait(60) == 0
    assert FORKS.can_start(process_env(port=9999))


def test_other_orphans_are_not_adopted(tmp_path: Path) -> None:
    """The test process adopts only what the fork server hands over: a daemon started by
    another command (pg_ctl's PostgreSQL server) goes to init, which reaps it when it ends."""
    help = start_hitl(["--help"], process_env(), tmp_path / "help.log")
    assert isinstance(help, Forked) and help.wait(60) == 0
    daemon = subprocess.run(
        ["sh", "-c", "sleep 60 >/dev/null 2>&1 & echo $!"], capture_output=True, text=True
    )
    pid = int(daemon.stdout)
    try:
        assert _parent_of(pid) != os.getpid()
    finally:
        os.kill(pid, signal.SIGKILL)
