"""The SSE streams of the event log, read over real HTTP connections."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx
import pytest

from tests.conftest import Server
from tests.integration.helpers import (
    Event,
    Stream,
    assert_log_well_formed,
    client,
    create_task,
    decide,
    event_log,
    open_review,
    read_stream,
    types,
    wait_for,
    wait_status,
)

HEARTBEAT = 0.2


@pytest.fixture(scope="module")
def server(start_module_server: Callable[..., Server]) -> Server:
    return start_module_server(heartbeat_seconds=HEARTBEAT)


def events_url(task_id: str) -> str:
    return f"/api/v1/tasks/{task_id}/events"


def seen(stream_events: list[Event], type: str, round: int = 1) -> bool:
    return any(e.type == type and e.data.get("round") == round for e in stream_events)


async def test_two_clients_receive_every_event_in_order(server: Server) -> None:
    async with client(server) as c, client(server) as other:
        task = await create_task(c, "two watchers")
        tid = task["id"]
        received: dict[str, list[Event]] = {"a": [], "b": []}

        def watcher(http: httpx.AsyncClient, name: str) -> asyncio.Task[Stream]:
            async def on_event(event: Event) -> None:
                received[name].append(event)

            coro = read_stream(http, events_url(tid), on_event=on_event, timeout=20)
            return asyncio.create_task(coro)

        a, b = watcher(c, "a"), watcher(other, "b")
        r1 = await open_review(c, tid)
        # Both are connected and caught up before anything else happens: the rest arrives live.
        await wait_for(
            lambda: _true(all(seen(got, "review.requested") for got in received.values())),
            what="both watchers to see the first review request",
        )
        await decide(c, r1["id"], "reject", comment="again, with feeling")
        r2 = await open_review(c, tid, round=2)
        await decide(c, r2["id"], "approve")
        stream_a, stream_b = await a, await b

        assert stream_a.ended and stream_b.ended
        assert stream_a.retries and stream_a.retries[0].millis > 0
        log = await event_log(c, tid)
        assert_log_well_formed(log, {tid})
        assert stream_a.events == log
        assert stream_b.events == log
        assert types(log)[0] == "task.created" and types(log)[-1] == "task.completed"


def at_least(n: int) -> Callable[[Stream], bool]:
    return lambda stream: len(stream.events) >= n


async def _true(value: bool) -> bool:
    return value


async def finished_task(c: httpx.AsyncClient, input: str) -> tuple[str, list[Event]]:
    task = await create_task(c, input)
    review = await open_review(c, task["id"])
    await decide(c, review["id"], "reject", comment="one more round")
    review = await open_review(c, task["id"], round=2)
    await decide(c, review["id"], "approve")
    await wait_status(c, task["id"], "completed")
    return task["id"], await event_log(c, task["id"])


async def test_resume_after_last_event_id_or_after(server: Server) -> None:
    async with client(server) as c:
        tid, log = await finished_task(c, "resume me")
        assert len(log) > 10
        url = events_url(tid)
        for cut in [log[0].id, log[3].id, log[len(log) // 2].id, log[-2].id]:
            assert cut is not None
            expected = [e for e in log if e.id is not None and e.id > cut]

            by_header = await read_stream(c, url, headers={"Last-Event-ID": str(cut)})
            assert by_header.ended and by_header.events == expected, cut

            by_query = await read_stream(c, url, params={"after": cut})
            assert by_query.ended and by_query.events == expected, cut

            # An EventSource reconnects to the same URL (with its ?after=) and adds the header:
            # the header, being newer, wins.
            both = await read_stream(
                c, url, params={"after": 0}, headers={"Last-Event-ID": str(cut)}
            )
            assert both.ended and both.events == expected, cut

        # After the last event of a finished task there is nothing more: the stream just ends.
        last = log[-1].id
        done = await read_stream(c, url, headers={"Last-Event-ID": str(last)}, timeout=5)
        assert done.ended and done.events == []
        # No cursor at all: the whole log again.
        everything = await read_stream(c, url, timeout=5)
        assert everything.ended and everything.events == log


async def test_live_reconnect_with_last_event_id_misses_nothing(server: Server) -> None:
    async with client(server) as c:
        task = await create_task(c, "drop and reconnect")
        tid = task["id"]
        first = await read_stream(
            c, events_url(tid), until=lambda s: seen(s.events, "review.requested"), timeout=15
        )
        assert not first.ended
        last = first.events[-1].id
        assert last is not None

        # While disconnected, the task moves on.
        r1 = await open_review(c, tid)
        await decide(c, r1["id"], "reject", comment="while you were away")
        await open_review(c, tid, round=2)

        async def approve_round_2(event: Event) -> None:
            if event.type == "review.requested" and event.data["round"] == 2:
                await decide(c, event.data["review_id"], "approve")

        second = await read_stream(
            c,
            events_url(tid),
            headers={"Last-Event-ID": str(last)},
            on_event=approve_round_2,
            timeout=15,
        )
        assert second.ended
        assert second.events[0].id is not None and second.events[0].id > last
        log = await event_log(c, tid)
        assert first.events + second.events == log
        assert_log_well_formed(first.events + second.events, {tid})


async def test_idle_streams_get_heartbeats(server: Server) -> None:
    async with client(server) as c:
        task = await create_task(c, "nothing happens")
        review = await open_review(c, task["id"])

        caught_up = await read_stream(
            c, events_url(task["id"]), until=lambda s: seen(s.events, "review.requested")
        )
        last = caught_up.events[-1].id
        idle = await read_stream(
            c,
            events_url(task["id"]),
            headers={"Last-Event-ID": str(last)},
            until=lambda s: len(s.comments) >= 3,
            timeout=5,
        )
        assert idle.events == []
        assert {comment.text for comment in idle.comments} == {"ping"}

        # The cookbook stream too: the current state, then pings while nothing changes.
        cookbook = await read_stream(
            c, f"/stream/{task['id']}", until=lambda s: len(s.comments) >= 3, timeout=5
        )
        assert [e.data for e in cookbook.events] == [
            {
                "status": "waiting_for_review",
                "output_to_review": review["output"],
                "round": 1,
                "content_hash": review["content_hash"],
            }
        ]
        assert {comment.text for comment in cookbook.comments} == {"ping"}

        # And the stream of every task.
        everything = await read_stream(c, "/api/v1/events", until=lambda s: len(s.comments) >= 3)
        assert {comment.text for comment in everything.comments} == {"ping"}

        response = await c.post(f"/api/v1/tasks/{task['id']}/cancel")
        assert response.status_code == 200, response.text


async def test_finished_task_streams_replay_and_end(server: Server) -> None:
    async with client(server) as c:
        tid, log = await finished_task(c, "replay me")
        replay = await read_stream(c, events_url(tid), params={"after": 0}, timeout=5)
        assert replay.ended and replay.events == log
        assert_log_well_formed(replay.events, {tid})
        assert types(replay.events).count("task.completed") == 1

        cancelled = await create_task(c, "cancel me")
        await open_review(c, cancelled["id"])
        response = await c.post(f"/api/v1/tasks/{cancelled['id']}/cancel")
        assert response.status_code == 200, response.text
        assert response.json()["status"] == "cancelled"
        stream = await read_stream(c, events_url(cancelled["id"]), timeout=5)
        assert stream.ended and types(stream.events)[-1] == "task.cancelled"
        assert types(stream.events).count("task.cancelled") == 1


async def test_all_events_stream_sees_every_task(server: Server) -> None:
    async with client(server) as c:
        # A task that waits quietly from before we connect: its past is not replayed, but what
        # happens to it afterwards is streamed.
        before = await create_task(c, "older task")
        old_review = await open_review(c, before["id"])
        created: list[str] = []

        async def on_open() -> None:
            for i in range(3):
                created.append((await create_task(c, f"task {i}"))["id"])
            await decide(c, old_review["id"], "approve")

        def every_task_reached_review(stream: Stream) -> bool:
            reached = {e.data["task_id"] for e in stream.events if e.type == "review.requested"}
            finished = {e.data["task_id"] for e in stream.events if e.type == "task.completed"}
            return set(created) <= reached and before["id"] in finished

        live = await read_stream(
            c, "/api/v1/events", on_open=on_open, until=every_task_reached_review, timeout=15
        )
        assert not live.ended
        assert_log_well_formed(live.events, {*created, before["id"]})
        old = [e for e in live.events if e.data["task_id"] == before["id"]]
        assert types(old)[0] == "review.decided" and types(old)[-1] == "task.completed"
        for tid in created:
            mine = [e for e in live.events if e.data["task_id"] == tid]
            assert types(mine)[0] == "task.created", types(mine)
            # each task's part of the global stream is a prefix of that task's own log
            response = await read_stream(c, events_url(tid), until=at_least(len(mine)))
            assert response.events[: len(mine)] == mine

        # From the start of the log: every task, from its creation.
        replay = await read_stream(
            c,
            "/api/v1/events",
            params={"after": 0},
            until=lambda s: (
                before["id"] in {e.data["task_id"] for e in s.events}
                and set(created) <= {e.data["task_id"] for e in s.events}
            ),
        )
        assert_log_well_formed(replay.events)
        firsts = {e.data["task_id"]: e.type for e in reversed(replay.events)}
        assert firsts[before["id"]] == "task.created"
        assert all(firsts[tid] == "task.created" for tid in created)

        for tid in created:
            review = await open_review(c, tid)
            await decide(c, review["id"], "approve")
