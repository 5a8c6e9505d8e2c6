"""`ask()`'s round trip: from the moment a reviewer's decision is posted to the moment the
asker's `ask()` returns it, median and p99 over `asks` asks (target: under 50 ms).

One asker (a submitter's token) calls `ask()` again and again, each time on a new standalone
review (`POST /api/v1/reviews`), and waits over the task's event stream; one reviewer (an
admin) reads every task's events, and as each review opens, posts its decision
(`POST /api/v1/reviews/{id}/decision`). The clock starts just before the decision is sent and
stops when `ask()` returns: the decision's commit, the worker resuming the task and completing
it, the `task.completed` event reaching the asker's stream, and the client parsing it. Once
with `AsyncClient.ask`, once with the sync `Client.ask` (called in a thread), one after the
other; the decision request's own latency is reported beside it.

    .venv/bin/python bench/ask.py [asks]   (SQLite server on core 1, this client on core 0;
    default: 200 asks of each kind)
"""

from __future__ import annotations

import asyncio
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import _common
from _common import ROOT, Server, pin_self, report, sse

sys.path.insert(0, str(ROOT))
from hitl.client import Answer, AsyncClient, Client  # noqa: E402


def submitter_token(server: Server) -> str:
    cmd = [sys.executable, "-m", "hitl", "token", "create", "--name", "asker"]
    cmd += ["--role", "submitter", "--db", f"sqlite:///{server.dir / 'bench.db'}"]
    made = subprocess.run(cmd, capture_output=True, text=True, check=True, cwd=ROOT)
    return made.stdout.strip()


def admin_token() -> str:
    return _common.AUTH.removeprefix("Authorization: Bearer ").strip()


class Reviewer:
    """Every task's events, as an admin: each review that opens, by the marker in its output."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.opened: dict[str, asyncio.Future[str]] = {}

    def expect(self, marker: str) -> asyncio.Future[str]:
        future = self.opened[marker] = asyncio.get_running_loop().create_future()
        return future

    async def run(self) -> None:
        # From the log's start: whenever this stream connects, it misses no review.
        async for kind, data in sse(self.port, "/api/v1/events?after=0"):
            if kind != "review.requested":
                continue
            output = data.get("output")
            marker = output.get("marker") if isinstance(output, dict) else None
            future = self.opened.pop(marker, None) if marker else None
            if future is not None and not future.done():
                future.set_result(data["review_id"])


async def measure(
    reviewer: Reviewer,
    decider: AsyncClient,
    asks: int,
    ask: Callable[[dict[str, Any]], Awaitable[Answer]],
) -> tuple[list[float], list[float]]:
    """Per ask: (decision posted → ask() returned, the decision request's own time), in ms."""
    round_trips, posts = [], []
    for i in range(asks):
        marker = uuid.uuid4().hex
        opened = reviewer.expect(marker)
        asking = asyncio.ensure_future(ask({"marker": marker, "amount": i}))
        review_id = await asyncio.wait_for(opened, 30)
        start = time.perf_counter()
        await decider.decide(review_id, "approve", comment="ok")
        posted = time.perf_counter()
        answer = await asyncio.wait_for(asking, 30)
        done = time.perf_counter()
        assert answer.approved and answer.output == {"marker": marker, "amount": i}, answer
        round_trips.append((done - start) * 1000)
        posts.append((posted - start) * 1000)
    return round_trips, posts


def figures(round_trips: list[float], posts: list[float]) -> dict[str, str]:
    ordered = sorted(round_trips)
    p99 = ordered[max(0, round(0.99 * len(ordered)) - 1)]
    return {
        "asks": str(len(ordered)),
        "decision posted -> ask() returned": (
            f"median {statistics.median(ordered):.1f} ms, p99 {p99:.1f} ms, "
            f"max {ordered[-1]:.1f} ms"
        ),
        "of which the decision request": f"median {statistics.median(posts):.1f} ms",
    }


async def main(asks: int) -> None:
    pin_self(0)
    server = Server(core=1, process_delay=0)
    listening: asyncio.Task[None] | None = None
    try:
        asker_token = submitter_token(server)
        reviewer = Reviewer(server.port)
        listening = asyncio.create_task(reviewer.run())
        async with (
            AsyncClient(server.url, token=asker_token) as asker,
            AsyncClient(server.url, token=admin_token()) as decider,
        ):
            await measure(reviewer, decider, 10, lambda output: asker.ask(output, timeout=30))
            trips, posts = await measure(
                reviewer, decider, asks, lambda output: asker.ask(output, timeout=30)
            )
            report("ask(): AsyncClient", figures(trips, posts))
            with Client(server.url, token=asker_token) as sync_asker:

                def sync_ask(output: dict[str, Any]) -> Awaitable[Answer]:
                    return asyncio.to_thread(sync_asker.ask, output, timeout=30)

                await measure(reviewer, decider, 10, sync_ask)
                trips, posts = await measure(reviewer, decider, asks, sync_ask)
                report("ask(): Client (sync, in a thread)", figures(trips, posts))
    finally:
        if listening is not None:
            listening.cancel()
        server.close()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 200))
