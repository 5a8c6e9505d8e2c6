"""Scale-out on PostgreSQL: several API processes and workers on one database, nothing lost.

Real processes: `hitl serve --no-workers` (API only) and `hitl worker`, on 127.0.0.1, against
the test session's throwaway PostgreSQL server.
"""

from __future__ import annotations

import asyncio
import subprocess
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from hitl.store import migrate
from tests.conftest import Server, _factory, _stop_all, process_env, start_hitl, wait_for_log
from tests.forkserver import Process
from tests.integration.helpers import Event, client, db_rows, read_stream
from tests.pg import Cluster


class WorkerProcess:
    """A real `hitl worker` process."""

    def __init__(self, db_url: str, name: str, log: Path, **settings: object) -> None:
        self.env = process_env(**settings)
        self.args = ["worker", "--db", db_url, "--name", name]
        self.log = log
        self.proc: Process | None = None

    def start(self) -> WorkerProcess:
        self.proc = start_hitl(self.args, self.env, self.log)
        wait_for_log(self.log, "hitl worker running", self.proc)
        return self

    def kill9(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill9()


class Deployment:
    """API processes and workers sharing one fresh PostgreSQL database."""

    def __init__(self, postgres: Cluster, tmp: Path) -> None:
        self.url = postgres.create_database()
        migrate.upgrade(self.url)  # `hitl db upgrade`, once, before the processes start
        self.tmp = tmp
        self.apis: list[Server] = []
        self.workers: list[WorkerProcess] = []
        self._start_api = _factory(tmp, self.apis, lambda: self.url)

    def api(self, **settings: object) -> Server:
        return self._start_api(db_url=self.url, args=["--no-workers"], **settings)

    def worker(self, **settings: object) -> WorkerProcess:
        n = len(self.workers)
        proc = WorkerProcess(self.url, f"w{n}", self.tmp / f"worker-{n}.log", **settings)
        self.workers.append(proc)
        return proc.start()

    def close(self) -> None:
        for worker in self.workers:
            worker.stop()
        _stop_all(self.apis)


@pytest.fixture
def deployment(postgres: Cluster, tmp_path: Path) -> Iterator[Callable[[], Deployment]]:
    made: list[Deployment] = []

    def make() -> Deployment:
        made.append(Deployment(postgres, tmp_path))
        return made[-1]

    yield make
    for d in made:
        d.close()


def log_ids(server: Server) -> list[int]:
    return [int(r[0]) for r in db_rows(server, "SELECT id FROM events ORDER BY id")]


def completions(server: Server) -> Counter[str]:
    rows = db_rows(server, "SELECT task_id FROM events WHERE type = 'task.completed'")
    return Counter(str(r[0]) for r in rows)


async def follow_all(
    http: httpx.AsyncClient,
    done: Callable[[list[Event]], bool],
    on_event: Callable[[Event], Any] | None = None,
    timeout: float = 120,
) -> list[Event]:
    """Every event of every task from the start, until `done(events)`."""

    async def handle(event: Event) -> None:
        if on_event is not None:
            on_event(event)

    stream = await read_stream(
        http,
        "/api/v1/events",
        params={"after": 0},
        until=lambda s: done(s.events),
        on_event=handle,
        timeout=timeout,
    )
    return stream.events


def completed(n: int) -> Callable[[list[Event]], bool]:
    return lambda events: sum(e.type == "task.completed" for e in events) >= n


async def test_two_apis_two_workers_200_lifecycles(deployment: Callable[[], Deployment]) -> None:
    d = deployment()
    a, b = d.api(), d.api()
    d.worker(), d.worker()
    tasks = 200
    async with client(a) as ca, client(b) as cb:
        apis = [ca, cb]
        decisions: list[asyncio.Task[None]] = []
        # Each task's number, known once its submission is answered: its review may be
        # announced on the stream before that.
        index: dict[str, asyncio.Future[int]] = {}

        def number(task_id: str) -> asyncio.Future[int]:
            return index.setdefault(task_id, asyncio.get_running_loop().create_future())

        async def decide(event: Event) -> None:
            task_id, round_no = event.data["task_id"], event.data["round"]
            try:
                i = await number(task_id)
                reject = i % 2 == 0 and round_no == 1
                body = (
                    {"decision": "reject", "comment": "shorter"}
                    if reject
                    else {"decision": "approve"}
                )
                # Decide on the other API process than the one the task was submitted to.
                http = apis[(i + round_no) % 2]
                url = f"/api/v1/reviews/{event.data['review_id']}/decision"
                async with limit:  # as the submissions: no more than the client's connections
                    response = await http.post(url, json=body)
            except Exception as exc:  # said at once, not as the streams' timeout
                refused.append(repr(exc))
                raise
            if response.status_code != 200:
                refused.append(f"{response.status_code} {response.text}")

        def on_event(event: Event) -> None:
            if event.type == "review.requested":
                decisions.append(asyncio.create_task(decide(event)))

        def done(events: list[Event]) -> bool:
            return bool(refused) or completed(tasks)(events)

        refused: list[str] = []
        limit = asyncio.Semaphore(20)  # requests at once
        watch_a = asyncio.create_task(follow_all(ca, done, on_event))
        watch_b = asyncio.create_task(follow_all(cb, done))

        async def submit(i: int) -> None:
            async with limit:
                response = await apis[i % 2].post("/api/v1/tasks", json={"input": f"task {i}"})
            assert response.status_code == 201, response.text
            number(response.json()["id"]).set_result(i)

        await asyncio.gather(*(submit(i) for i in range(tasks)))
        seen_a, seen_b = await watch_a, await watch_b
        await asyncio.gather(*decisions)
        assert not refused, refused

    assert completions(a) == Counter({task_id: 1 for task_id in index})
    statuses = db_rows(a, "SELECT status, count(*) FROM tasks GROUP BY status")
    assert statuses == [("completed", tasks)]
    log = log_ids(a)
    # Both API processes streamed every event of every task, in the log's order.
    assert [e.id for e in seen_a] == log
    assert [e.id for e in seen_b] == log
    rounds = db_rows(a, "SELECT round, count(*) FROM reviews GROUP BY round ORDER BY round")
    assert rounds == [(1, tasks), (2, tasks // 2)]


async def test_kill_9_a_worker_in_a_slow_node(deployment: Callable[[], Deployment]) -> None:
    d = deployment()
    api = d.api()
    slow = {"process_delay": 3, "lease_seconds": 2, "concurrency": 3, "poll_interval": 0.2}
    victim, survivor = d.worker(**slow), d.worker(**slow)
    async with client(api) as http:
        ids = []
        for i in range(6):
            response = await http.post("/api/v1/tasks", json={"input": f"slow {i}"})
            ids.append(response.json()["id"])

        def all_started(events: list[Event]) -> bool:
            return sum(e.type == "node.started" for e in events) >= 6

        await follow_all(http, all_started, timeout=30)
        victim.kill9()  # three tasks die with it, in the middle of their 3-second node

        def all_waiting(events: list[Event]) -> bool:
            return sum(e.type == "review.requested" for e in events) >= 6

        events = await follow_all(http, all_waiting, timeout=60)
        for e in events:
            if e.type == "review.requested":
                url = f"/api/v1/reviews/{e.data['review_id']}/decision"
                assert (await http.post(url, json={"decision": "approve"})).status_code == 200
        await follow_all(http, completed(6), timeout=30)
    assert survivor.proc is not None and survivor.proc.poll() is None
    assert completions(api) == Counter({task_id: 1 for task_id in ids})
    claims = db_rows(api, "SELECT claims FROM tasks ORDER BY claims")
    # The victim's three were taken over by the survivor: claimed twice (plus the resume).
    assert sorted(c for (c,) in claims) == [2, 2, 2, 3, 3, 3]
    for task_id in ids:
        reviews = db_rows(api, f"SELECT count(*) FROM reviews WHERE task_id = '{task_id}'")
        assert reviews == [(1,)]


async def test_deadlines_fire_once_across_workers(deployment: Callable[[], Deployment]) -> None:
    d = deployment()
    api = d.api()
    deadline = {"review_deadline_seconds": 0.5, "on_deadline": "approve", "poll_interval": 0.1}
    d.worker(**deadline), d.worker(**deadline)
    tasks = 20
    async with client(api) as http:
        ids = []
        for i in range(tasks):
            response = await http.post("/api/v1/tasks", json={"input": f"unattended {i}"})
            assert response.status_code == 201, response.text
            ids.append(response.json()["id"])
        events = await follow_all(http, completed(tasks), timeout=60)

    decided = Counter(e.data["task_id"] for e in events if e.type == "review.decided")
    assert decided == Counter({task_id: 1 for task_id in ids})
    assert {e.data["decided_by"] for e in events if e.type == "review.decided"} == {"deadline"}
    assert completions(api) == Counter({task_id: 1 for task_id in ids})
    reviews = db_rows(api, "SELECT decision, decided_by, count(*) FROM reviews GROUP BY 1, 2")
    assert reviews == [("approve", "deadline", tasks)]
