"""Faults of the database, met as a user meets them, against a real `hitl serve`.

Every answer is a 2xx, a clean 503 or a 4xx with a JSON `detail` (never a 500, never a
traceback in the server's log), and nothing that got a 2xx is lost: a SQLite file deleted,
replaced or overwritten while the server runs; a corrupt file at start-up; a full disk; a disk
that fails writes; a restart where the database it had is gone; a PostgreSQL server that goes
away and comes back.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import (
    BACKENDS,
    ROOT,
    Server,
    _factory,
    _listens,
    _stop_all,
    free_port,
    process_env,
)
from tests.integration.helpers import client, wait_for
from tests.pg import Cluster, pause, resume

sqlite_only = pytest.mark.skipif("sqlite" not in BACKENDS, reason="SQLite is not under test")


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    """start(db_url, **settings) → a running server; its log must stay clean."""
    started: list[Server] = []
    yield _factory(tmp_path, started, lambda: f"sqlite:///{tmp_path / 'hitl.db'}")
    _stop_all(started)


REFUSAL_SECONDS = 120  # a bound on a hang: a loaded machine took over 30 s to start and refuse


def refusal(db_url: str, **settings: object) -> str:
    """Start `hitl serve` where it must refuse to: its one line of explanation on stderr.
    It is waited for until it ends; the test fails as soon as it listens on its port (it
    started), or if it neither ends nor listens within REFUSAL_SECONDS."""
    port = free_port()
    command = [sys.executable, "-m", "hitl", "serve", "--port", str(port), "--db", db_url]
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        process = subprocess.Popen(
            command, env=process_env(**settings), stdout=out, stderr=err, text=True, cwd=ROOT
        )
        deadline = time.monotonic() + REFUSAL_SECONDS
        try:
            while process.poll() is None:
                if _listens(process.pid, port) or time.monotonic() > deadline:
                    pytest.fail(
                        f"hitl serve did not refuse to start (it listens on {port}, or "
                        f"ran {REFUSAL_SECONDS} s)"
                    )
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(0.05)
        finally:
            process.kill()
            process.wait()
            out.seek(0)
            err.seek(0)
            said = out.read(), err.read()
            print(*said, sep="\n")  # pytest shows it when the test failed
    stdout, stderr = said
    output = stdout + stderr
    assert process.returncode == 1, output
    assert "Traceback" not in output, output
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, output
    return lines[0]


def log_of(server: Server) -> str:
    assert server.log is not None
    return server.log.read_text(errors="replace")


async def log_says(server: Server, text: str) -> str:
    async def said() -> str | None:
        log = log_of(server)
        return log if text in log else None

    return await wait_for(said, what=f"the server's log to say {text!r}")


def ids_in(path: Path) -> set[str]:
    """The tasks in a SQLite file, read as it is (no write-ahead log is opened or made)."""
    with contextlib.closing(sqlite3.connect(f"file:{path}?immutable=1", uri=True)) as db:
        return {row[0] for row in db.execute("SELECT id FROM tasks")}


def assert_503(response: httpx.Response, *words: str, soon: bool = True) -> None:
    """A 503 whose detail says `words`; `soon`: the fault may pass, so it says when to retry;
    else (a lost or corrupt database does not pass by itself) it sends no Retry-After."""
    assert response.status_code == 503, response.text
    detail = response.json()["detail"]
    assert all(word in detail for word in words), detail
    if soon:
        assert (response.headers.get("retry-after") or "").isdigit(), response.headers
    else:
        assert "retry-after" not in response.headers, response.headers


async def readyz(http: httpx.AsyncClient) -> httpx.Response:
    return await http.get("/readyz")


async def submit_until_refused(
    http: httpx.AsyncClient,
    writers: int,
    make_input: Callable[[str], Any],
    refuse: asyncio.Event,
    acknowledged: set[str],
) -> list[httpx.Response]:
    """`writers` clients submit tasks until each has had a 503 after `refuse` was set; the ids
    that got 201 go into `acknowledged`. Returns the 503s."""
    refused: list[httpx.Response] = []

    async def writer(w: int) -> None:
        n = 0
        while True:
            key = f"w{w}-{n}"
            response = await http.post(
                "/api/v1/tasks", json={"input": make_input(key)}, headers={"Idempotency-Key": key}
            )
            n += 1
            if response.status_code == 201:
                acknowledged.add(response.json()["id"])
                continue
            assert response.status_code == 503, response.text
            refused.append(response)
            if refuse.is_set():
                return

    await asyncio.wait_for(asyncio.gather(*(writer(w) for w in range(writers))), 60)
    return refused


@sqlite_only
@pytest.mark.parametrize("how", ["deleted", "replaced"])
async def test_a_lost_database_file_takes_no_more_writes_and_every_acknowledged_one_is_kept(
    start: Callable[..., Server], tmp_path: Path, how: str
) -> None:
    path = tmp_path / "hitl.db"
    url = f"sqlite:///{path}"
    server = start(db_url=url)
    lost = asyncio.Event()
    acknowledged: set[str] = set()
    async with client(server) as http:

        async def thirty() -> bool:
            return len(acknowledged) >= 30

        async def lose_it_under_load() -> None:
            await wait_for(thirty, what="30 acknowledged tasks")
            if how == "deleted":
                path.unlink()
            else:
                other = tmp_path / "other.db"
                with contextlib.closing(sqlite3.connect(other)) as db:
                    db.execute("CREATE TABLE other (x)")
                other.replace(path)
            lost.set()

        loser = asyncio.create_task(lose_it_under_load())
        refused = await submit_until_refused(http, 8, str, lost, acknowledged)
        await loser
        reason = f"was {how}" if how == "deleted" else "was replaced by another file"
        for response in refused:  # the writes that met it, and all after
            assert_503(response, "the database file", reason, soon=False)
        assert_503(await http.get("/api/v1/tasks"), reason, soon=False)
        cookbook = await http.post("/submit", json={"data": "after the loss"})
        assert_503(cookbook, reason, soon=False)
        ready = await readyz(http)
        assert ready.status_code == 503
        assert reason in ready.json()["database"]
        assert (await http.get("/healthz")).status_code == 200  # the process itself is fine

        log = await log_says(server, "saved the lost database")
    assert log.count("CRITICAL") == 2, log  # why, once; and where the copy is
    assert log.count(f"the database file {path} {reason} while hitl was running") == 1, log
    [copy] = tmp_path.glob("hitl.db.lost-*")
    assert str(copy) in log
    assert acknowledged <= ids_in(copy), "a task that got 201 is missing from the saved copy"
    server.stop()

    # A restart does not start afresh in place of the lost database, and says what to do.
    line = refusal(url)
    assert f"hitl lost the database file {path} while it ran, and saved it as {copy}" in line
    copy.replace(path)  # what the line says to do
    server = start(db_url=url)
    async with client(server) as http:
        for task_id in acknowledged:
            assert (await http.get(f"/api/v1/tasks/{task_id}")).status_code == 200


@sqlite_only
async def test_a_restart_where_the_database_file_went_missing_refuses_to_start_afresh(
    start: Callable[..., Server], tmp_path: Path
) -> None:
    path = tmp_path / "hitl.db"
    url = f"sqlite:///{path}"
    # A first run creates the database, and says so, naming it.
    server = start(db_url=url)
    assert f"WARNING hitl.service.service created a new, empty database at {url}" in log_of(server)
    async with client(server) as http:
        assert (await http.post("/api/v1/tasks", json={"input": "kept"})).status_code == 201
    server.kill9()  # its write-ahead log stays, holding the last commits
    assert Path(f"{path}-wal").exists()
    path.unlink()
    line = refusal(url)
    assert f"the database file {path} is missing, but {path}-wal" in line
    assert not path.exists()  # and nothing was created in its place


@sqlite_only
def test_told_not_to_create_a_database_start_up_creates_nothing(tmp_path: Path) -> None:
    fresh = tmp_path / "fresh.db"
    line = refusal(f"sqlite:///{fresh}", create_database="false")
    assert f"there is no database file {fresh} and HITL_CREATE_DATABASE is false" in line
    assert "hitl db upgrade" in line
    assert not fresh.exists()


@sqlite_only
async def test_a_database_file_overwritten_while_running_answers_503_and_blocks_a_restart(
    start: Callable[..., Server], tmp_path: Path
) -> None:
    path = tmp_path / "hitl.db"
    url = f"sqlite:///{path}"
    server = start(db_url=url)
    async with client(server) as http:
        created = await http.post("/api/v1/tasks", json={"input": "before"})
        assert created.status_code == 201
        with path.open("r+b") as f:
            f.write(os.urandom(2 * 4096))  # SQLite's header and the pages after it
        assert_503(await http.post("/api/v1/tasks", json={"input": "after"}), "corrupt", soon=False)
        assert_503(await http.get(f"/api/v1/tasks/{created.json()['id']}"), "corrupt", soon=False)
        assert_503(await http.post("/submit", json={"data": "after"}), "corrupt", soon=False)
        ready = await readyz(http)
        assert ready.status_code == 503
        assert "the database file is corrupt" in ready.json()["database"]
    log = log_of(server)
    assert log.count("CRITICAL") == 1, log
    assert f"the database file {path} is corrupt" in log
    server.stop()

    line = refusal(url)
    assert f"the database at {url} is corrupt (file is not a database)" in line
    assert "restore it from a backup" in line


@sqlite_only
async def test_corrupt_pages_behind_a_sound_header_answer_503_and_block_a_restart(
    start: Callable[..., Server], tmp_path: Path
) -> None:
    path = tmp_path / "hitl.db"
    url = f"sqlite:///{path}"
    server = start(db_url=url)
    async with client(server) as http:
        for i in range(20):
            assert (await http.post("/api/v1/tasks", json={"input": i})).status_code == 201

        async def all_waiting() -> bool:  # the workers are idle: nothing rewrites a page
            page = await http.get("/api/v1/tasks", params={"status": "waiting_for_review"})
            return bool(page.json()["count"] == 20)

        await wait_for(all_waiting, what="the 20 tasks to wait for review")
        with contextlib.closing(sqlite3.connect(path)) as db:  # every page into the file
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            page = db.execute("PRAGMA page_size").fetchone()[0]
        size = path.stat().st_size
        with path.open("r+b") as f:
            f.seek(page)  # page 1 (the header and the schema) stays sound
            f.write(os.urandom(size - page))
        assert_503(await http.get("/api/v1/tasks"), "the database file is corrupt", soon=False)
        ready = await readyz(http)
        assert ready.status_code == 503
        assert "the database file is corrupt" in ready.json()["database"]
        # It stays broken: no later request may act on what is left.
        assert_503(await http.post("/api/v1/tasks", json={"input": "x"}), "corrupt", soon=False)
    server.stop()

    line = refusal(url)
    assert f"the database at {url} is corrupt" in line


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 16 MiB file system of its own (tmpfs: needs root, or CAP_SYS_ADMIN)."""
    where = tmp_path / "disk"
    where.mkdir()
    mount = ["mount", "-t", "tmpfs", "-o", "size=16m,mode=0700", "hitl-test", str(where)]
    mounted = subprocess.run(mount, capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small file system here: {mounted.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=True)


def free_bytes(where: Path) -> int:
    fs = os.statvfs(where)
    return fs.f_bfree * fs.f_frsize


@sqlite_only
async def test_a_full_disk_answers_503_readyz_says_so_and_nothing_acknowledged_is_lost(
    small_disk: Path, start: Callable[..., Server]
) -> None:
    url = f"sqlite:///{small_disk / 'hitl.db'}"
    server = start(db_url=url)
    filler = small_disk / "filler"
    filler.write_bytes(b"\0" * (free_bytes(small_disk) - 3 * 1024 * 1024))
    async with client(server) as http:
        assert (await readyz(http)).status_code == 200  # 3 MiB free is plenty

        full = asyncio.Event()
        full.set()  # each writer stops at its first 503
        acknowledged: set[str] = set()
        refused = await submit_until_refused(http, 2, lambda k: k * 40_000, full, acknowledged)
        assert acknowledged  # some fitted before the disk was full
        for response in refused:
            assert_503(response, "database or disk is full")
        ready = await readyz(http)
        assert ready.status_code == 503
        assert "the disk holding the database is" in ready.json()["database"]

        filler.unlink()
        assert (await readyz(http)).status_code == 200
        after = await http.post("/api/v1/tasks", json={"input": "after"})
        assert after.status_code == 201, after.text
        acknowledged.add(after.json()["id"])

    server.restart()  # kill -9, then start on the same file
    async with client(server) as http:
        for task_id in acknowledged:
            assert (await http.get(f"/api/v1/tasks/{task_id}")).status_code == 200
    assert "the disk holding the database is full" in log_of(server)


@sqlite_only
async def test_a_disk_that_fails_writes_answers_503_until_a_write_succeeds(
    start: Callable[..., Server], tmp_path: Path
) -> None:
    path = tmp_path / "hitl.db"
    server = start(db_url=f"sqlite:///{path}")
    assert server.proc is not None and server.log is not None
    acknowledged: set[str] = set()
    async with client(server) as http:
        assert (await http.post("/api/v1/tasks", json={"input": "first"})).status_code == 201
        # The server may write no byte past the end of the write-ahead log, which every commit
        # appends to: those writes fail with EFBIG (CPython ignores SIGXFSZ), which SQLite
        # reports as a disk I/O error, and no write can succeed meanwhile. (Nothing else
        # writes that far: the log is shorter, and no checkpoint runs in so small a test.)
        limit = Path(f"{path}-wal").stat().st_size
        assert server.log.stat().st_size < limit
        _, hard = resource.prlimit(server.proc.pid, resource.RLIMIT_FSIZE)
        resource.prlimit(server.proc.pid, resource.RLIMIT_FSIZE, (limit, hard))
        try:
            failing = asyncio.Event()
            failing.set()
            refused = await submit_until_refused(
                http, 1, lambda k: k * 20_000, failing, acknowledged
            )
            assert_503(refused[0], "disk I/O error")
            ready = await readyz(http)
            assert ready.status_code == 503
            assert "the database's disk failed a write (disk I/O error)" in ready.json()["database"]
        finally:
            resource.prlimit(server.proc.pid, resource.RLIMIT_FSIZE, (hard, hard))
        after = await http.post("/api/v1/tasks", json={"input": "after"})
        assert after.status_code == 201, after.text
        assert (await readyz(http)).status_code == 200
        acknowledged.add(after.json()["id"])
    server.restart()
    async with client(server) as http:
        for task_id in acknowledged:
            assert (await http.get(f"/api/v1/tasks/{task_id}")).status_code == 200


@pytest.mark.skipif("postgresql" not in BACKENDS, reason="PostgreSQL is not under test")
async def test_postgresql_away_answers_503_then_serves_again(tmp_path: Path) -> None:
    cluster = Cluster().start()
    started: list[Server] = []
    try:
        url = cluster.create_database()
        line = refusal(url, create_database="false")
        assert "is empty and HITL_CREATE_DATABASE is false" in line

        server = _factory(tmp_path, started, lambda: url)(db_url=url)
        async with client(server) as http:
            created = await http.post("/api/v1/tasks", json={"input": "before"})
            assert created.status_code == 201
            await asyncio.to_thread(pause, cluster)
            away = "the database is unavailable right now"
            assert_503(await http.post("/api/v1/tasks", json={"input": "x"}), away)
            assert_503(await http.get(f"/api/v1/tasks/{created.json()['id']}"), away)
            assert_503(await http.post("/submit", json={"data": "x"}), away)
            assert (await readyz(http)).status_code == 503
            await asyncio.to_thread(resume, cluster)

            async def served() -> bool:
                answer = await http.post("/api/v1/tasks", json={"input": "after"})
                assert answer.status_code in (201, 503), answer.text
                return answer.status_code == 201

            await wait_for(served, timeout=30, what="writes to be served again")

            async def ready() -> bool:
                return (await readyz(http)).status_code == 200

            await wait_for(ready, timeout=30, what="/readyz to say ready again")
            assert (await http.get(f"/api/v1/tasks/{created.json()['id']}")).status_code == 200
    finally:
        _stop_all(started)
        cluster.stop()
