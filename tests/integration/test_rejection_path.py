"""The rejection path as a cookbook client drives it: act on every `waiting_for_review`.

Under load, an approval sent right after the stream announced round 2 was sometimes refused
with 409: a review request committed between the stream's reads of the task and of its last
event id was shown twice (in the snapshot, then as an event), and the client took the repeat
for round 2. Streams now start from one consistent snapshot (the race itself is pinned down,
deterministically, by `tests/unit/store/test_store.py::test_a_snapshot_reads_one_moment`), and
review messages name their round. Here, many lifecycles started at once (so that streams open
while their task runs) must each see round 1 then round 2, once each, and have every decision
accepted.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from tests.conftest import Server
from tests.integration.helpers import client, read_stream

LIFECYCLES = 40


@pytest.fixture(scope="module")
def server(start_module_server: Callable[..., Server]) -> Server:
    return start_module_server(process_delay=0)


async def test_each_round_is_announced_once_and_every_decision_lands(server: Server) -> None:
    async with client(server) as c:

        async def lifecycle(i: int) -> list[int]:
            submitted = await c.post("/submit", json={"data": f"rejection path {i}"})
            assert submitted.status_code == 202, submitted.text
            task_id = submitted.json()["task_id"]
            rounds: list[int] = []

            async def on_event(event: object) -> None:
                message = getattr(event, "data")  # noqa: B009
                if message["status"] != "waiting_for_review":
                    return
                rounds.append(message["round"])
                feedback = "rejected" if message["round"] == 1 else "approved"
                answer = await c.post(f"/feedback/{task_id}", json={"feedback": feedback})
                assert answer.status_code == 200, (rounds, answer.text)

            stream = await read_stream(c, f"/stream/{task_id}", on_event=on_event, timeout=60)
            assert stream.ended and stream.events[-1].data == {"status": "stream_closed"}
            assert stream.events[-2].data["status"] == "completed", stream.events[-2:]
            return rounds

        results = await asyncio.gather(*(lifecycle(i) for i in range(LIFECYCLES)))
    assert results == [[1, 2]] * LIFECYCLES
