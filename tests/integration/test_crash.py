"""kill -9 in the middle of the work, restart on the same database: nothing lost, nothing twice."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.integration.helpers import (
    Event,
    Stream,
    assert_log_well_formed,
    client,
    create_task,
    decide,
    event_log,
    get_task,
    open_review,
    read_stream,
    types,
    wait_status,
    wait_until,
)

PROCESS_DELAY = 2.0
LEASE_SECONDS = 30  # the default is 15; the point is that recovery must not wait for it


@dataclass
class Watcher:
    """An SSE client of one task's events that reconnects with Last-Event-ID, as EventSource
    does, until the stream ends."""

    http: httpx.AsyncClient
    task_id: str
    events: list[Event] = field(default_factory=list)
    connections: int = 0
    drops: int = 0
    last_ids_sent: list[int | None] = field(default_factory=list)
    started: asyncio.Event = field(default_factory=asyncio.Event)

    async def on_event(self, event: Event) -> None:
        self.events.append(event)
        if event.type == "node.started" and event.data["node"] == "process":
            self.started.set()

    async def run(self, timeout: float = 60.0) -> Stream:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            last = self.events[-1].id if self.events else None
            headers = {"Last-Event-ID": str(last)} if last is not None else None
            try:
                stream = await read_stream(
                    self.http,
                    f"/api/v1/tasks/{self.task_id}/events",
                    headers=headers,
                    on_event=self.on_event,
                    on_open=self._opened,
                    timeout=max(1.0, deadline - time.monotonic()),
                )
            except httpx.TransportError:  # the server died, or is not back yet
                self.drops += 1
                await asyncio.sleep(0.1)
                continue
            self.last_ids_sent.append(last)
            return stream
        raise AssertionError(f"watcher of {self.task_id} gave up; got {self.events}")

    async def _opened(self) -> None:
        self.connections += 1


def counts(log: list[Event]) -> Counter[str]:
    return Counter(types(log))


async def test_kill_9_while_processing_and_while_waiting(start_server: Any) -> None:
    server = start_server(
        process_delay=PROCESS_DELAY, heartbeat_seconds=0.5, lease_seconds=LEASE_SECONDS
    )
    async with client(server) as c:
        waiting = await create_task(c, "waits for review across the crash")
        w_review = await open_review(c, waiting["id"])
        w_watch = Watcher(c, waiting["id"])
        w_run = asyncio.create_task(w_watch.run())
        # Its watcher is connected (it has the log up to the review request) before the other
        # task starts its processor, whose run the crash must interrupt.
        await wait_until(
            lambda: any(e.type == "review.requested" for e in w_watch.events),
            what="the waiting task's watcher to receive its review request",
        )

        processing = await create_task(c, "is in its processor during the crash")
        pid = processing["id"]
        p_watch = Watcher(c, pid)
        p_run = asyncio.create_task(p_watch.run())

        # The processor has started, and runs for PROCESS_DELAY seconds: crash in the middle.
        await asyncio.wait_for(p_watch.started.wait(), 10)
        mid = await get_task(c, pid)
        assert (mid["status"], mid["node"], mid["round"]) == ("running", "process", 0)
        before_crash = list(p_watch.events)

        server.kill9()
        # Both watchers lose their stream, and fail to reconnect to the dead port.
        await wait_until(
            lambda: p_watch.drops >= 2 and w_watch.drops >= 2,
            what="both watchers to lose their stream and fail to reconnect",
        )
        assert not p_run.done() and not w_run.done()
        server.start()

        # The task that was processing resumes by itself, at once (not when the dead process's
        # lease of LEASE_SECONDS runs out), and reaches its review.
        p_review = await open_review(c, pid, timeout=PROCESS_DELAY + 6)
        assert p_review["output"].startswith("Revision 1: Is in its processor during the crash")
        # The waiting one still waits on the same, still open, review round.
        still = await get_task(c, waiting["id"])
        assert still["status"] == "waiting_for_review"
        assert [(r["id"], r["status"]) for r in still["reviews"]] == [(w_review["id"], "open")]

        await decide(c, w_review["id"], "approve", comment="approved after the restart")
        await decide(c, p_review["id"], "approve")
        w_done = await wait_status(c, waiting["id"], "completed")
        p_done = await wait_status(c, pid, "completed")
        assert w_done["result"] == w_review["output"]
        assert p_done["result"] == p_review["output"]
        p_stream, w_stream = await asyncio.wait_for(asyncio.gather(p_run, w_run), 20)

        p_log, w_log = await event_log(c, pid), await event_log(c, waiting["id"])

    for tid, log in [(pid, p_log), (waiting["id"], w_log)]:
        assert_log_well_formed(log, {tid})
        assert counts(log)["task.created"] == 1, types(log)
        assert counts(log)["task.completed"] == 1, types(log)
        assert types(log)[0] == "task.created" and types(log)[-1] == "task.completed"
    # ids are unique across tasks too
    all_ids = [e.id for e in p_log + w_log]
    assert len(all_ids) == len(set(all_ids))

    # The processing task ran its processor again after the crash, under a second claim; the
    # interrupted run left nothing behind (one review round, revision 1).
    assert [e.data["node"] for e in p_log if e.type == "node.started"][:2] == ["process", "process"]
    assert [e.data["claims"] for e in p_log if e.type == "task.running"][:2] == [1, 2]
    assert counts(p_log)["review.requested"] == 1 and counts(p_log)["node.finished"] >= 1
    assert before_crash == p_log[: len(before_crash)]
    # The waiting task needed no second run before its decision.
    assert counts(w_log)["review.requested"] == 1 and counts(w_log)["review.decided"] == 1

    # The watchers were cut off by the crash, came back with Last-Event-ID, and together
    # received exactly the log: no gap, no duplicate.
    for watcher, stream, log in [(p_watch, p_stream, p_log), (w_watch, w_stream, w_log)]:
        assert stream.ended
        assert watcher.connections >= 2, watcher.connections
        assert watcher.last_ids_sent[-1] is not None
        assert watcher.events == log
