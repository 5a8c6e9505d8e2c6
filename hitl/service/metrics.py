"""What `GET /metrics` reports, in Prometheus' text format, for one service.

Counters and histograms count what this process did (Prometheus adds up the processes it
scrapes); the queue (open reviews by flow and node, and the oldest one's age) is read from the
database at each scrape, so every process reports the same, whole queue.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from hitl.store import Store

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# Seconds: a person takes minutes to days; a lifecycle without a person, milliseconds.
HUMAN = (1, 10, 30, 60, 300, 900, 3600, 4 * 3600, 86400, 7 * 86400)
LIFECYCLE = (0.01, 0.05, 0.1, 0.5, 1, 5, 30, 60, 300, 3600, 86400, 7 * 86400)
DATABASE = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self._decisions = Counter(
            "hitl_decisions",
            "Review decisions this process recorded, by decision and by whom (person or "
            "deadline); a quorum's votes count once, when they decide",
            ["decision", "by"],
            registry=r,
        )
        self._time_to_decision = Histogram(
            "hitl_time_to_decision_seconds",
            "From a review's request to its decision",
            buckets=HUMAN,
            registry=r,
        )
        self._lifecycle = Histogram(
            "hitl_lifecycle_seconds",
            "From a task's submission to its end (completed or failed), people's time included",
            ["outcome"],
            buckets=LIFECYCLE,
            registry=r,
        )
        self._deliveries = Counter(
            "hitl_deliveries",
            "Notification deliveries this process attempted, by channel and outcome",
            ["channel", "outcome"],
            registry=r,
        )
        self._streams = Gauge(
            "hitl_event_stream_clients", "Event streams (SSE) open on this process", registry=r
        )
        self._database = Histogram(
            "hitl_database_seconds",
            "From asking the database to its answer (queueing included), by kind: read or write",
            ["kind"],
            buckets=DATABASE,
            registry=r,
        )
        # Each database call is timed: its two children, found once, not by label each time.
        self._read, self._write = self._database.labels("read"), self._database.labels("write")
        self.queue = _Queue()
        r.register(self.queue)

    def decided(self, decision: str, by_deadline: bool, waited: float) -> None:
        self._decisions.labels(decision, "deadline" if by_deadline else "person").inc()
        self._time_to_decision.observe(max(0.0, waited))

    def ended(self, outcome: str, seconds: float) -> None:
        self._lifecycle.labels(outcome).observe(max(0.0, seconds))

    def delivered(self, channel: str, outcome: str) -> None:
        self._deliveries.labels(channel, outcome).inc()

    def count_streams(self, count: Callable[[], int]) -> None:
        self._streams.set_function(lambda: float(count()))

    def database(self, kind: str, seconds: float) -> None:
        (self._write if kind == "write" else self._read).observe(seconds)

    async def render(self, store: Store, open: str) -> bytes:
        """The text a scrape gets, with the queue (reviews in status `open`) as the database
        has it now."""
        self.queue.rows = await store.open_reviews_by_node(open)
        self.queue.now = time.time()
        return generate_latest(self.registry)


class _Queue(Collector):
    """Open reviews by flow and node, and how long the oldest of each has waited."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, str, int, float]] = []  # flow, node, open, oldest created_at
        self.now = 0.0

    def collect(self) -> Iterator[Metric]:
        count = GaugeMetricFamily(
            "hitl_open_reviews", "Reviews waiting for a person", labels=["flow", "node"]
        )
        oldest = GaugeMetricFamily(
            "hitl_oldest_open_review_seconds",
            "How long the oldest open review has waited",
            labels=["flow", "node"],
        )
        for flow, node, n, created in self.rows:
            count.add_metric([flow, node], n)
            oldest.add_metric([flow, node], max(0.0, self.now - created))
        yield count
        yield oldest
