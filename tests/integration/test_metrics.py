"""`GET /metrics` as Prometheus scrapes it from a real server: who may read it, and that each
figure moves with what happens (decisions, a deadline's decision, lifecycles, the queue,
event streams, database calls)."""

from __future__ import annotations

from collections.abc import Callable

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import Server, user_token
from tests.integration.helpers import client, create_task, decide, open_review, wait_status

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


async def scrape(c: httpx.AsyncClient) -> Samples:
    answer = await c.get("/metrics")
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples: Samples = {}
    for family in text_string_to_metric_families(answer.text):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def test_only_admins_read_the_metrics(start_server: Callable[..., Server]) -> None:
    server = start_server()
    async with httpx.AsyncClient(base_url=server.url) as anonymous:
        answer = await anonymous.get("/metrics")
        assert answer.status_code == 401 and "WWW-Authenticate" in answer.headers
    reviewer = user_token(server.db_url, "rita", "reviewer")
    async with httpx.AsyncClient(
        base_url=server.url, headers={"Authorization": f"Bearer {reviewer}"}
    ) as rita:
        answer = await rita.get("/metrics")
        assert answer.status_code == 403
        assert "rita may not read the metrics: that needs the admin role" in answer.text


async def test_the_figures_follow_what_happens(start_server: Callable[..., Server]) -> None:
    server = start_server()
    async with client(server) as c:
        before = await scrape(c)
        assert value(before, "hitl_decisions_total", decision="approve", by="person") == 0
        assert value(before, "hitl_event_stream_clients") == 0

        task = await create_task(c, "metrics, please")
        first = await open_review(c, task["id"])
        waiting = await scrape(c)
        flow, node = task["flow"], first["node"]
        assert value(waiting, "hitl_open_reviews", flow=flow, node=node) == 1
        assert value(waiting, "hitl_oldest_open_review_seconds", flow=flow, node=node) >= 0

        await decide(c, first["id"], "reject", comment="shorter")
        second = await open_review(c, task["id"], round=2)
        async with c.stream("GET", f"/api/v1/tasks/{task['id']}/events") as stream:
            assert stream.status_code == 200
            watching = await scrape(c)
            assert value(watching, "hitl_event_stream_clients") == 1
        await decide(c, second["id"], "approve")
        await wait_status(c, task["id"], "completed")

        after = await scrape(c)
    assert value(after, "hitl_decisions_total", decision="reject", by="person") == 1
    assert value(after, "hitl_decisions_total", decision="approve", by="person") == 1
    assert value(after, "hitl_time_to_decision_seconds_count") == 2
    assert value(after, "hitl_lifecycle_seconds_count", outcome="completed") == 1
    assert value(after, "hitl_open_reviews", flow=flow, node=node) == 0
    assert value(after, "hitl_database_seconds_count", kind="write") > value(
        before, "hitl_database_seconds_count", kind="write"
    )
    assert value(after, "hitl_database_seconds_count", kind="read") > 0


async def test_a_deadline_s_decision_is_counted_as_the_deadline_s(
    start_server: Callable[..., Server],
) -> None:
    server = start_server(review_deadline_seconds=0.2, on_deadline="approve", poll_interval=0.1)
    async with client(server) as c:
        task = await create_task(c, "nobody looks")
        await wait_status(c, task["id"], "completed")
        samples = await scrape(c)
    assert value(samples, "hitl_decisions_total", decision="approve", by="deadline") == 1
    assert value(samples, "hitl_decisions_total", decision="approve", by="person") == 0
    assert value(samples, "hitl_time_to_decision_seconds_sum") >= 0.2
