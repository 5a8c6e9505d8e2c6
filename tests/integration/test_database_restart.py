"""Restart the PostgreSQL server mid-run: the processes reconnect, nothing is lost, and the
clients — a live SSE stream included — recover.

The cluster is this test's own, so restarting it disturbs no other test.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from hitl.store import migrate
from tests.conftest import Server, _factory, _stop_all
from tests.integration.helpers import Event, client, db_rows, read_stream
from tests.integration.test_scale_out import WorkerProcess, completions, log_ids
from tests.pg import Cluster, restart

TASKS = 30
SETTINGS = {"poll_interval": 0.2, "lease_seconds": 3, "database_wait_seconds": 60}


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    own = Cluster().start()
    yield own
    own.stop()


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[tuple[list[Server], list[WorkerProcess]]]:
    apis: list[Server] = []
    workers: list[WorkerProcess] = []
    yield apis, workers
    for worker in workers:
        worker.stop()
    _stop_all(apis)
    for worker in workers:
        log = worker.log.read_text(errors="replace")
        assert "Traceback" not in log, log


async def retrying(send: Callable[[], Any], what: str) -> httpx.Response:
    """What a client does while the database restarts: retry a 503 or a dropped connection."""
    for _ in range(300):
        try:
            response: httpx.Response = await send()
        except httpx.TransportError:
            await asyncio.sleep(0.1)
            continue
        if response.status_code != 503:
            return response
        assert response.headers.get("retry-after") == "1"
        await asyncio.sleep(0.1)
    raise AssertionError(f"{what}: the service never came back")


async def test_restart_the_database_mid_run(
    cluster: Cluster,
    processes: tuple[list[Server], list[WorkerProcess]],
    tmp_path: Path,
) -> None:
    url = cluster.create_database()
    migrate.upgrade(url)
    apis, workers = processes
    api = _factory(tmp_path, apis, lambda: url)(db_url=url, args=["--no-workers"], **SETTINGS)
    workers.append(WorkerProcess(url, "w0", tmp_path / "worker.log", **SETTINGS).start())

    async with client(api) as http:

        def done(events: list[Event]) -> bool:
            return sum(e.type == "task.completed" for e in events) >= TASKS

        # A stream opened before the restart, and kept open through it.
        watcher = asyncio.create_task(
            read_stream(
                http,
                "/api/v1/events",
                params={"after": 0},
                until=lambda s: done(s.events),
                timeout=120,
            )
        )
        decided: set[str] = set()

        async def approve_open_reviews() -> None:
            response = await retrying(
                lambda: http.get("/api/v1/reviews", params={"status": "open", "limit": 500}),
                "list reviews",
            )
            for review in response.json()["data"]:
                if review["id"] in decided:
                    continue
                answer = await retrying(
                    lambda r=review: http.post(
                        f"/api/v1/reviews/{r['id']}/decision", json={"decision": "approve"}
                    ),
                    "decide",
                )
                # 409: a retried decision that had committed before the connection dropped.
                assert answer.status_code in (200, 409), answer.text
                decided.add(review["id"])

        async def submit(i: int) -> str:
            response = await retrying(
                lambda: http.post(
                    "/api/v1/tasks",
                    json={"input": f"task {i}"},
                    headers={"Idempotency-Key": f"restart-{i}"},
                ),
                "submit",
            )
            assert response.status_code in (200, 201), response.text
            return str(response.json()["id"])

        ids = [await submit(i) for i in range(TASKS // 2)]
        await approve_open_reviews()
        await asyncio.to_thread(restart, cluster)  # every connection drops
        ids += [await submit(i) for i in range(TASKS // 2, TASKS)]
        async with asyncio.timeout(90):
            while not watcher.done():
                await approve_open_reviews()
                await asyncio.sleep(0.2)
        stream = await watcher

        # A client that connects after the restart reads the whole log too.
        after = await read_stream(
            http, "/api/v1/events", params={"after": 0}, until=lambda s: done(s.events)
        )

    assert len(set(ids)) == TASKS
    assert completions(api) == Counter({task_id: 1 for task_id in ids})
    assert db_rows(api, "SELECT status, count(*) FROM tasks GROUP BY status") == [
        ("completed", TASKS)
    ]
    log = log_ids(api)
    assert [e.id for e in stream.events] == log
    assert [e.id for e in after.events] == log
