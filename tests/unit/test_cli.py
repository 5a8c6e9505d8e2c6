"""The command line refuses bad settings with a message naming the variable, before starting."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hitl.cli.main import app


@pytest.mark.parametrize(
    "env,message",
    [
        ({"HITL_ON_DEADLINE": "approve"}, "HITL_ON_DEADLINE needs HITL_REVIEW_DEADLINE_SECONDS"),
        (
            {"HITL_ON_DEADLINE": "reject", "HITL_REVIEW_DEADLINE_SECONDS": "5"},
            "invalid setting HITL_ON_DEADLINE",
        ),
        ({"HITL_LEASE_SECONDS": "0"}, "invalid setting HITL_LEASE_SECONDS"),
    ],
)
def test_bad_settings_stop_serve_with_a_clear_message(
    env: dict[str, str], message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    db = tmp_path / "never.db"
    result = CliRunner().invoke(app, ["serve", "--db", f"sqlite:///{db}"])
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert not db.exists()  # refused before touching anything


def test_server_processes_keep_their_start_up_objects_out_of_the_collector() -> None:
    code = (
        "import gc\n"
        "from hitl.service.service import GC_YOUNG_THRESHOLD, tune_gc\n"
        "before = gc.get_freeze_count()\n"
        "tune_gc()\n"
        "print(before, gc.get_freeze_count(), gc.get_threshold()[0] == GC_YOUNG_THRESHOLD)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    before, after, threshold = out.stdout.split()
    assert int(before) == 0 and int(after) > 10_000 and threshold == "True"
