"""The LLM example flow (examples/llm_review.py) in a real `hitl serve`, against a fake
OpenAI-compatible server on 127.0.0.1 (tests/fake_llm.py): the draft streams into the task's
events, usage is kept, a rejection's comment reaches the next prompt, a 429 is waited out, a
model that stays down fails the task, cancelling stops the request, and a `kill -9` mid-stream
reruns the node after the restart and completes the task once."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import Server
from tests.fake_llm import Fail, FakeLLM, serve_fake_llm
from tests.fake_llm import Stream as Answer
from tests.integration.helpers import (
    Event,
    Stream,
    assert_log_well_formed,
    client,
    create_task,
    db_rows,
    decide,
    event_log,
    open_review,
    read_stream,
    types,
    wait_status,
    wait_until,
)

FLOW = ["--flow", "examples/llm_review.py:create_llm_review_flow", "--default-flow", "llm_review"]
SLOW = 0.1  # seconds between the words of a slow answer (about 25 words)


@pytest.fixture(scope="module")
def module_fake() -> Iterator[FakeLLM]:
    with serve_fake_llm() as fake:
        yield fake


@pytest.fixture
def fake(module_fake: FakeLLM) -> FakeLLM:
    """The module's fake model, its script and record cleared, answering quickly."""
    with module_fake.lock:
        module_fake.script.clear()
        module_fake.requests.clear()
        module_fake.default = Answer(delay=0.02)
    return module_fake


def llm_settings(fake: FakeLLM) -> dict[str, object]:
    return {
        "llm_base_url": fake.url,
        "llm_model": "fake-model",
        "llm_api_key": "sk-fake-secret",
        "llm_max_retries": 2,
        "llm_backoff_seconds": 0.05,
        "heartbeat_seconds": 0.5,
    }


@pytest.fixture(scope="module")
def server(start_module_server: Callable[..., Server], module_fake: FakeLLM) -> Server:
    return start_module_server(args=FLOW, **llm_settings(module_fake))


def progress_of(events: list[Event]) -> list[dict[str, Any]]:
    return [e.data for e in events if e.type == "node.progress"]


def streamed(events: list[Event]) -> str:
    """The draft as a page puts it together: each delta appended, a reset starts over."""
    text = ""
    for data in progress_of(events):
        if data.get("reset"):
            text = ""
        text += data.get("delta", "")
    return text


def reached(kind: str, count: int = 1) -> Callable[[Stream], bool]:
    return lambda s: sum(e.type == kind for e in s.events) >= count


async def first_delta(c: httpx.AsyncClient, task_id: str) -> None:
    """Return once the task's events hold a piece of its draft."""
    await read_stream(
        c,
        f"/api/v1/tasks/{task_id}/events",
        until=lambda s: any("delta" in d for d in progress_of(s.events)),
        timeout=20,
    )


async def test_the_draft_streams_into_the_events_and_a_rejection_reaches_the_next_prompt(
    server: Server, fake: FakeLLM
) -> None:
    async with client(server) as c:
        task = await create_task(c, "a note on durable queues")
        stream = await read_stream(
            c, f"/api/v1/tasks/{task['id']}/events", until=reached("review.requested")
        )
        review = await open_review(c, task["id"])
        [first] = fake.seen()
        words = len(first.sent)
        assert review["output"] == "".join(first.sent) == streamed(stream.events)

        reports = progress_of(stream.events)
        assert reports[0]["node"] == "draft" and reports[0]["message"] == "asking fake-model"
        assert reports[0]["reset"] is True and reports[0]["status"] == "running"
        assert 2 <= sum("delta" in r for r in reports) < words / 2  # coalesced, not per word
        usage = reports[-1]["usage"]
        assert usage["completion_tokens"] == words and usage["total_tokens"] > words
        assert reports[-1]["usage_total"] == {**usage, "calls": 1}
        order = types(stream.events)
        last_report = max(i for i, t in enumerate(order) if t == "node.progress")
        assert order.index("node.started") < last_report < order.index("node.finished")

        await decide(c, review["id"], "reject", comment="Mention SQLite by name")
        second_review = await open_review(c, task["id"], round=2)
        second = fake.seen()[1]
        assert second.messages[-2] == {"role": "assistant", "content": review["output"]}
        assert "Their comment: Mention SQLite by name" in second.messages[-1]["content"]
        assert second_review["output"] == "".join(second.sent)

        await decide(c, second_review["id"], "approve")
        done = await wait_status(c, task["id"], "completed")
        assert done["result"] == second_review["output"]
        log = await event_log(c, task["id"])
    assert_log_well_formed(log, {task["id"]})
    assert streamed(log) == second_review["output"]  # the second draft started over
    [(shared,)] = db_rows(server, f"SELECT shared FROM tasks WHERE id = '{task['id']}'")
    total = json.loads(shared)["llm_usage"]
    assert total["calls"] == 2 and total["completion_tokens"] == words + len(second.sent)
    assert all(seen.headers["authorization"] == "Bearer sk-fake-secret" for seen in fake.seen())
    assert server.log is not None
    said = server.log.read_text()
    assert "sk-fake-secret" not in said and "Flow ends" not in said  # PocketFlow's warning


async def test_the_cookbook_stream_says_nothing_of_progress(server: Server, fake: FakeLLM) -> None:
    async with client(server) as c:
        response = await c.post("/submit", json={"data": "a cookbook client's request"})
        assert response.status_code == 202, response.text
        task_id = response.json()["task_id"]

        async def approve(event: Event) -> None:
            if event.data["status"] == "waiting_for_review":
                answer = await c.post(f"/feedback/{task_id}", json={"feedback": "approved"})
                assert answer.status_code == 200, answer.text

        stream = await read_stream(c, f"/stream/{task_id}", on_event=approve, timeout=20)
        log = await event_log(c, task_id)
        # Every task's stream carries progress too.
        everything = await read_stream(
            c,
            "/api/v1/events",
            params={"after": log[0].id},
            until=lambda s: any(d["task_id"] == task_id for d in progress_of(s.events)),
        )
    assert progress_of(log), "the task reported progress"
    ours = [e for e in everything.events if e.data["task_id"] == task_id]
    assert ours == log[1 : len(ours) + 1]
    statuses = [e.data["status"] for e in stream.events]
    assert statuses[-5:] == [
        "waiting_for_review",
        "processing_feedback",
        "running",
        "completed",
        "stream_closed",
    ]
    assert statuses[0] in ("pending", "running") and statuses.count("running") <= 2
    assert all(e.type == "message" for e in stream.events)


async def test_a_429_is_waited_out(server: Server, fake: FakeLLM) -> None:
    fake.then(Fail(429, "rate limited", {"Retry-After": "1"}))
    async with client(server) as c:
        task = await create_task(c, "busy model")
        review = await open_review(c, task["id"])
        await decide(c, review["id"], "approve")
        await wait_status(c, task["id"], "completed")
        log = await event_log(c, task["id"])
    assert fake.ended() == ["failed", "done"]
    refused, answered = fake.seen()
    assert answered.at - refused.at >= 1.0  # its Retry-After, in full
    assert review["output"] == "".join(fake.seen()[1].sent) == streamed(log)
    [retry] = [d for d in progress_of(log) if "retry" in d]
    assert retry["retry"] == 1 and retry["reset"] is True
    assert retry["message"].startswith("429 Too Many Requests: rate limited; retry 1 of 2 in 1.")


async def test_a_model_that_stays_down_fails_the_task_clearly(
    server: Server, fake: FakeLLM
) -> None:
    fake.then(Fail(500), Fail(500), Fail(500))
    async with client(server) as c:
        task = await create_task(c, "down model")
        failed = await wait_status(c, task["id"], "failed")
    assert failed["error"] == (
        f"LLMUnavailable: {fake.url}/chat/completions failed 3 times; the last: 500 Internal "
        "Server Error: the fake model is down"
    )
    assert failed["node"] == "draft" and fake.ended() == ["failed"] * 3


async def test_cancelling_mid_stream_stops_the_request(server: Server, fake: FakeLLM) -> None:
    fake.then(Answer(delay=SLOW))
    async with client(server) as c:
        task = await create_task(c, "cancel me while I write")
        await first_delta(c, task["id"])
        response = await c.post(f"/api/v1/tasks/{task['id']}/cancel", json={})
        assert response.status_code == 200, response.text
        cancelled = time.monotonic()
        await wait_until(
            lambda: fake.ended() == ["gone"], timeout=10, what="the model's stream cut"
        )
        # The worker's next progress write finds the task gone: no lease renewal waited for.
        assert time.monotonic() - cancelled < 4.0  # the renewal would take 5 s
        log = await event_log(c, task["id"])
    [seen] = fake.seen()
    assert 0 < len(seen.sent) < 20
    assert types(log)[-1] == "task.cancelled" and "node.finished" not in types(log)


async def test_kill_9_mid_stream_reruns_the_node_and_completes_once(
    start_server: Callable[..., Server], fake: FakeLLM
) -> None:
    server = start_server(args=FLOW, lease_seconds=30, **llm_settings(fake))
    fake.then(Answer(delay=SLOW))
    async with client(server) as c:
        task = await create_task(c, "survive a crash")
        await first_delta(c, task["id"])
        server.kill9()
        await wait_until(lambda: fake.ended() == ["gone"], timeout=10, what="the cut stream")
        server.start()
        review = await open_review(c, task["id"], timeout=20)
        first, second = fake.seen()
        assert first.ended == "gone" and second.ended == "done"
        assert review["output"] == "".join(second.sent)
        await decide(c, review["id"], "approve")
        done = await wait_status(c, task["id"], "completed")
        log = await event_log(c, task["id"])
    assert done["result"] == review["output"]
    assert_log_well_formed(log, {task["id"]})
    order = types(log)
    assert order.count("task.completed") == 1 and order.count("review.requested") == 1
    starts = [e.data["node"] for e in log if e.type == "node.started"]
    assert starts == ["draft", "draft", "publish"]  # the draft ran again after the restart
    crashed = log[: order.index("node.started", order.index("node.started") + 1)]
    assert any("delta" in d for d in progress_of(crashed))  # what it wrote before the crash
    assert streamed(log) == review["output"]
    assert len(fake.seen()) == 2
