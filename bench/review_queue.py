"""The reviewers' queue at scale: its first screen with 10,000 open reviews, and its text
filter among 100,000 tasks, on SQLite and on PostgreSQL.

The databases are filled through the store (`SqlStore.write`: each task, then its review, as
the worker's suspension writes it, a thousand to a transaction), not by 100,000 lifecycles;
then a real server answers over HTTP on 127.0.0.1, to a reviewer signed in with a token.

1. First screen (SQLite, 10,000 open reviews, a third with a deadline): what the queue page
   asks for when it opens (`FIRST_SCREEN`, read from hitl/web/static/queue.js and common.js):
   the page, then at once its list, its total, the header's count and the event stream.
   Median and p95 over `loads` loads, each call's and the whole screen's (the slowest of the
   calls made at once, after the page). Also each sort order's first page, and "live": a new
   task's `review.requested` reaching an event-stream client, then the list read again. And
   the same first screens on PostgreSQL, and with 100,000 open reviews on both databases.
2. Text filter (100,000 tasks waiting for review): `GET /api/v1/reviews?q=` for a rare word
   (10 tasks), a common word (10%), non-ASCII text looked up by the index (1%), and a
   two-character name (1%, which no trigram index can look up: a scan of the open reviews),
   each `loads` times, on SQLite and on a throwaway PostgreSQL server (tests/pg.py; ANALYZE
   after the fill, as autovacuum would); and the queue page's own call for it (`decidable`).

    .venv/bin/python bench/review_queue.py [open reviews] [tasks] [loads]
    (SQLite server on core 1, this client on core 0; defaults: 10,000, 100,000, 30)
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import random
import statistics
import sys
import time
from collections.abc import Awaitable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote

import _common
from _common import HOST, ROOT, Connection, Server, _read_head, pin_self, report, sign_in, sse
from scale_out import spawn, wait_up

sys.path.insert(0, str(ROOT))
from hitl.flow.default import draft  # noqa: E402
from hitl.flow.review import ReviewRequest  # noqa: E402
from hitl.service.ids import new_id  # noqa: E402
from hitl.store import ReviewRow, SqlStore, TaskRow, Tx, migrate  # noqa: E402
from tests.pg import Cluster  # noqa: E402

BATCH = 1000
# Who opens the queue: a reviewer (who also submits: `live` does), not the admin the other
# benchmarks sign in as, whose filters are simpler.
REVIEWER = ("reviewer", "submitter")
PROMPT = "Approve the output, edit it, or reject it with a comment for the next revision."
API = "/api/v1/reviews?status=open&sort=oldest"
# The queue page's requests when it opens: the page, then together its first 50 (those the
# person may decide), its total, the header's count, and the event stream it follows.
FIRST_SCREEN = {
    "list": f"{API}&limit=50&offset=0&decidable=true",
    "total": f"{API}&limit=1",
    "header count": "/api/v1/reviews?status=open&decidable=true&limit=1",
}
# The text filters: (name, what is searched, what task `i` contains when i % m == r, m, r).
SEARCHES = [
    ("rare word", "quixotic", "quixotic", 10_000, 7),
    ("common word", "invoice", "invoice", 10, 3),
    ("non-ASCII, indexed", "josé müller", "José Müller", 100, 5),
    ("two characters, scanned", "李雷", "李雷", 100, 6),
]


def syllables(rng: random.Random) -> list[str]:
    parts = ["ka", "lo", "mi", "ne", "su", "ta", "ri", "po", "ve", "da", "gu", "shi", "zo", "fe"]
    return ["".join(rng.choice(parts) for _ in range(rng.randint(2, 4))) for _ in range(5000)]


def rows(
    i: int, words: list[str], rng: random.Random, deadlines: bool
) -> tuple[TaskRow, ReviewRow]:
    """Task `i`, waiting for its first review, as the default flow leaves it."""
    text = " ".join(rng.choice(words) for _ in range(12))
    text += "".join(f" {planted}" for _, _, planted, m, r in SEARCHES if i % m == r)
    at = time.time() - 86_400 + i * 0.001
    task_id = new_id()
    request = ReviewRequest(output=draft(text, [], 1), decisions=("approve", "edit", "reject"))
    shown = request.to_json() | {"prompt": PROMPT}
    task = TaskRow(
        id=task_id,
        flow="feedback",
        status="waiting_for_review",
        input=_json(text),
        shared=_json({"task_input": text, "task_id": task_id, "revision": 1}),
        created_at=at,
        updated_at=at,
        node="review",
        round=1,
        created_by="sam",
    )
    deadline = at + 90_000 + rng.random() * 3600 if deadlines and i % 3 == 0 else None
    review = ReviewRow(new_id(), task_id, 1, "open", "review", _json(shown), at, deadline=deadline)
    return task, review


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def fill(url: str, count: int, deadlines: bool = False) -> None:
    """`count` tasks waiting for review, written through the store, `BATCH` a transaction."""

    async def go() -> None:
        store = SqlStore(url)
        rng = random.Random(count)
        words = syllables(rng)
        try:
            for start in range(0, count, BATCH):
                batch = [
                    rows(i, words, rng, deadlines) for i in range(start, min(count, start + BATCH))
                ]

                def write(tx: Tx, batch: list[tuple[TaskRow, ReviewRow]] = batch) -> None:
                    for task, review in batch:
                        tx.insert_task(task)
                        tx.insert_review(review)

                await store.write(write)
        finally:
            await store.close()

    began = time.perf_counter()
    migrate.upgrade(url)
    asyncio.run(go())
    print(f"   (filled {count:,} in {time.perf_counter() - began:.1f} s)", flush=True)


def as_reviewer(url: str) -> None:
    sign_in(url, {**os.environ, "PYTHONPATH": str(ROOT)}, REVIEWER, "queue-reviewer")


def stats(ms: list[float]) -> str:
    ordered = sorted(ms)
    p95 = ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]
    return f"median {statistics.median(ordered):.1f} ms, p95 {p95:.1f} ms"


async def timed(call: Awaitable[Any]) -> float:
    start = time.perf_counter()
    await call
    return (time.perf_counter() - start) * 1000


async def get(conn: Connection, path: str, raw: bool = False) -> Any:
    status, body = await conn.request("GET", path, raw=raw)
    assert status == 200, (path, status, body)
    return body


async def stream_opens(port: int, path: str) -> None:
    """An event stream's response head, as an EventSource's `open`."""
    reader, writer = await asyncio.open_connection(HOST, port)
    head = f"GET {path} HTTP/1.1\r\nHost: {HOST}\r\nAccept: text/event-stream\r\n{_common.AUTH}\r\n"
    writer.write(head.encode())
    try:
        status, _ = await _read_head(reader)
        assert status == 200, status
    finally:
        writer.close()


async def first_screen(port: int, loads: int) -> dict[str, str]:
    conns = {name: Connection(port) for name in ["page", *FIRST_SCREEN]}
    times: dict[str, list[float]] = {name: [] for name in [*conns, "event stream", "screen"]}
    for n in range(loads + 3):  # the first three warm the server up
        page = await timed(get(conns["page"], "/reviews", raw=True))
        calls = [get(conns[name], path) for name, path in FIRST_SCREEN.items()]
        together = await asyncio.gather(
            *(timed(c) for c in calls), timed(stream_opens(port, "/api/v1/events"))
        )
        if n < 3:
            continue
        times["page"].append(page)
        for name, ms in zip([*FIRST_SCREEN, "event stream"], together, strict=True):
            times[name].append(ms)
        times["screen"].append(page + max(together))
    for conn in conns.values():
        await conn.close()
    return {name: stats(ms) for name, ms in times.items()}


async def orders(port: int, loads: int) -> dict[str, str]:
    conn = Connection(port)
    figures = {}
    for order in ("oldest", "newest", "deadline"):
        path = f"/api/v1/reviews?status=open&sort={order}&limit=50"
        figures[f"sort={order}, 50 and the count"] = stats(
            [await timed(get(conn, path)) for _ in range(loads)]
        )
    await conn.close()
    return figures


async def live(port: int, rounds: int = 10) -> dict[str, str]:
    """A task submitted now: its review's event on an event-stream client, then the reload the
    queue page makes on it (its list and total, together)."""
    conn, other = Connection(port), Connection(port)
    events, reload = [], []
    for i in range(rounds):
        stream = sse(port, "/api/v1/events")
        opened = asyncio.ensure_future(stream.__anext__())
        await asyncio.sleep(0.2)  # the stream is open
        start = time.perf_counter()
        status, task = await conn.request("POST", "/api/v1/tasks", {"input": f"live {i}"})
        assert status == 201, task
        kind, data = await opened
        while not (kind == "review.requested" and data.get("task_id") == task["id"]):
            kind, data = await stream.__anext__()
        events.append((time.perf_counter() - start) * 1000)
        again = [get(c, p) for c, p in zip((conn, other), FIRST_SCREEN.values(), strict=False)]
        reload.append(await timed(asyncio.gather(*again)))
        await stream.aclose()
    await conn.close()
    await other.close()
    return {
        "submit to review.requested on the stream": stats(events),
        "then the list and total read again": stats(reload),
    }


async def searches(port: int, loads: int, tasks: int) -> dict[str, str]:
    conn = Connection(port)
    figures = {}
    for name, text, _, m, r in SEARCHES:
        api = f"/api/v1/reviews?status=open&q={quote(text)}&limit=50"
        body = await get(conn, api)
        assert body["count"] == len(range(r, tasks, m)), (text, body["count"])
        ms = [await timed(get(conn, api)) for _ in range(loads)]
        page = [await timed(get(conn, api + "&decidable=true")) for _ in range(max(3, loads // 5))]
        figures[f"{name} ({text!r}, {body['count']:,} found)"] = (
            f"{stats(ms)}; the queue page's call (decidable): {stats(page)}"
        )
    await conn.close()
    return figures


def sqlite_runs(reviews: int, tasks: int, loads: int) -> None:
    server = Server(core=1, fill=lambda url: fill(url, reviews, deadlines=True), process_delay=0)
    try:
        as_reviewer(f"sqlite:///{server.dir / 'bench.db'}")
        report(
            f"queue: first screen, {reviews:,} open reviews, SQLite",
            asyncio.run(first_screen(server.port, loads)),
        )
        report("queue: sort orders, SQLite", asyncio.run(orders(server.port, loads)))
        report("queue: live, SQLite", asyncio.run(live(server.port)))
    finally:
        server.close()
    server = Server(core=1, fill=lambda url: fill(url, tasks), process_delay=0)
    try:
        as_reviewer(f"sqlite:///{server.dir / 'bench.db'}")
        report(
            f"queue: text filter, {tasks:,} tasks waiting for review, SQLite",
            asyncio.run(searches(server.port, loads, tasks)),
        )
        report(
            f"queue: first screen, {tasks:,} open reviews, SQLite",
            asyncio.run(first_screen(server.port, max(5, loads // 3))),
        )
    finally:
        server.close()


def postgres_runs(reviews: int, tasks: int, loads: int) -> None:
    """The first screen with `reviews` open, then the text filter and the first screen with
    `tasks` open, each on a database of its own on one throwaway server."""
    cluster = Cluster().start()
    try:
        with postgres_server(cluster, reviews) as port:
            report(
                f"queue: first screen, {reviews:,} open reviews, PostgreSQL",
                asyncio.run(first_screen(port, loads)),
            )
        with postgres_server(cluster, tasks) as port:
            report(
                f"queue: text filter, {tasks:,} tasks waiting for review, PostgreSQL",
                asyncio.run(searches(port, loads, tasks)),
            )
            report(
                f"queue: first screen, {tasks:,} open reviews, PostgreSQL",
                asyncio.run(first_screen(port, max(5, loads // 3))),
            )
    finally:
        cluster.stop()


@contextmanager
def postgres_server(cluster: Cluster, count: int) -> Iterator[int]:
    """A server (no workers) on a new database of `count` tasks waiting for review: its port."""
    import psycopg

    url = cluster.create_database()
    fill(url, count)
    with psycopg.connect(url, autocommit=True) as db:
        db.execute("VACUUM ANALYZE")
    as_reviewer(url)
    port = _common.free_port()
    proc = spawn(["serve", "--no-workers", "--port", str(port)], url, "/dev/null")
    try:
        wait_up(port)
        yield port
    finally:
        proc.terminate()
        proc.wait(10)


def main(reviews: int, tasks: int, loads: int) -> None:
    pin_self(0)
    sqlite_runs(reviews, tasks, loads)
    postgres_runs(reviews, tasks, loads)


if __name__ == "__main__":
    main(
        int(sys.argv[1]) if len(sys.argv) > 1 else 10_000,
        int(sys.argv[2]) if len(sys.argv) > 2 else 100_000,
        int(sys.argv[3]) if len(sys.argv) > 3 else 30,
    )
