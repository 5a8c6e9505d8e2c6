"""Deciding reviews of long outputs on PostgreSQL: the server's CPU a decision.

An LLM's draft is often a few kB. Each review's searchable text is indexed by trigrams (the
queue's text filter); a decision must not enter that text in the index again. This fills a
throwaway PostgreSQL server with reviews whose output is about `size` bytes, then decides
them one by one through the store (a claim, then the decision, as the review page makes
them) and prints PostgreSQL's own CPU (its processes', from /proc) and the time per review.

    .venv/bin/python bench/long_reviews.py [size in bytes] [reviews]   (defaults: 4000, 1000)
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import sys
import time
from pathlib import Path

from _common import ROOT, report

sys.path.insert(0, str(ROOT))
from hitl.flow.review import ReviewRequest  # noqa: E402
from hitl.service.ids import new_id  # noqa: E402
from hitl.store import ReviewRow, SqlStore, TaskRow, Tx, migrate  # noqa: E402
from tests.pg import Cluster  # noqa: E402

BATCH = 200


def postgres_cpu(cluster: Cluster) -> float:
    """User plus system CPU seconds of the cluster's processes (its postmaster's children)."""
    pid = int((cluster.data / "postmaster.pid").read_text().split()[0])
    total = 0.0
    for child in [pid, *map(int, Path(f"/proc/{pid}/task/{pid}/children").read_text().split())]:
        try:
            fields = Path(f"/proc/{child}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def draft(rng: random.Random, size: int) -> str:
    """About `size` bytes of words drawn from 3,000 made-up ones."""
    letters = "aeioukltmnrsdvbz"
    words = ["".join(rng.choices(letters, k=rng.randint(3, 9))) for _ in range(3000)]
    text: list[str] = []
    while sum(len(w) + 1 for w in text) < size:
        text.append(rng.choice(words))
    return " ".join(text)


async def run(url: str, cluster: Cluster, size: int, count: int) -> dict[str, str]:
    store = SqlStore(url)
    rng = random.Random(size)
    reviews = []
    try:
        for start in range(0, count, BATCH):
            batch = []
            for _ in range(start, min(count, start + BATCH)):
                at = time.time()
                task = TaskRow(
                    id=new_id(), flow="feedback", status="waiting_for_review",
                    input='"draft this"', shared="{}", created_at=at, updated_at=at,
                    node="review", round=1, created_by="sam",
                )  # fmt: skip
                request = ReviewRequest(output=draft(rng, size), decisions=("approve", "reject"))
                shown = json.dumps(request.to_json(), separators=(",", ":"))
                batch.append((task, ReviewRow(new_id(), task.id, 1, "open", "review", shown, at)))

            def write(tx: Tx, batch: list[tuple[TaskRow, ReviewRow]] = batch) -> None:
                for task, review in batch:
                    tx.insert_task(task)
                    tx.insert_review(review)

            await store.write(write)
            reviews += [review.id for _, review in batch]

        began, cpu = time.perf_counter(), postgres_cpu(cluster)
        for review_id in reviews:

            def decide(tx: Tx, review_id: str = review_id) -> None:
                now = time.time()
                tx.update_review(review_id, ["open"], claimed_by="rita", claimed_until=now + 60)
                tx.update_review(
                    review_id, ["open"], status="decided", decision="approve", decided_at=now
                )

            await store.write(decide)
        wall = (time.perf_counter() - began) / count * 1000
        server = (postgres_cpu(cluster) - cpu) / count * 1000
    finally:
        await store.close()
    return {
        "PostgreSQL's CPU a decision (ms)": f"{server:.3f}",
        "time a decision, one at a time (ms)": f"{wall:.3f}",
    }


def main(size: int, count: int) -> None:
    cluster = Cluster().start()
    try:
        url = cluster.create_database()
        migrate.upgrade(url)
        figures = asyncio.run(run(url, cluster, size, count))
    finally:
        cluster.stop()
    report(f"deciding reviews of {size:,}-byte outputs on PostgreSQL, {count:,} of them", figures)


if __name__ == "__main__":
    main(
        int(sys.argv[1]) if len(sys.argv) > 1 else 4000,
        int(sys.argv[2]) if len(sys.argv) > 2 else 1000,
    )
