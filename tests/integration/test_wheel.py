"""The package as `pip install` gives it: a wheel built from this tree, installed in a fresh
virtual environment, serves the pages (templates and static assets) and migrates a new
database (the Alembic scripts), run from a directory that holds no source."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

import httpx

from tests.conftest import ROOT, free_port
from tests.integration.test_cli_serve import READY, Process, environment, processes

__all__ = ["processes"]  # the fixture, used by name

UV = str(Path(sys.executable).parent / "uv")


def run(*args: str, cwd: Path = ROOT) -> None:
    done = subprocess.run(args, cwd=cwd, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_wheel_installs_and_serves_from_anywhere(
    tmp_path: Path, processes: Callable[..., Process]
) -> None:
    dist = tmp_path / "dist"
    run(UV, "build", "--wheel", "--quiet", "--out-dir", str(dist), str(ROOT))
    [wheel] = dist.glob("hitl-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for needed in (
        "hitl/web/templates/task.html",
        "hitl/web/static/app.css",
        "hitl/web/static/swagger/swagger-ui-bundle.js",
        "hitl/store/migrations/env.py",
        "hitl/store/migrations/versions/0001_initial.py",
    ):
        assert needed in names, needed
    assert not [n for n in names if n.startswith("tests/") or "__pycache__" in n]

    venv = tmp_path / "venv"
    run(UV, "venv", "--quiet", "--python", sys.executable, str(venv))
    python = str(venv / "bin" / "python")
    run(UV, "pip", "install", "--quiet", "--python", python, str(wheel))

    away = tmp_path / "elsewhere"
    away.mkdir()
    port = free_port()
    env = environment(database_url=f"sqlite:///{away / 'hitl.db'}", port=str(port))
    del env["PYTHONPATH"]  # only what the wheel installed
    where = subprocess.run(
        [python, "-c", "import hitl; print(hitl.__file__)"],
        cwd=away,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert str(venv) in where and str(ROOT) not in where, where

    server = processes(["serve"], env, python=python, cwd=away)
    link = server.wait_for("hitl: first run: sign in as admin").rsplit(" ", 1)[1]
    server.wait_for(READY)
    base = f"http://127.0.0.1:{port}"
    with httpx.Client(base_url=base) as client:
        page = client.get(link)
        assert page.status_code == 200 and "Sign in as" in page.text, page.text
        for asset in ("/static/app.css", "/static/queue.js", "/static/swagger/swagger-ui.css"):
            assert client.get(asset).status_code == 200, asset
    server.stop()
