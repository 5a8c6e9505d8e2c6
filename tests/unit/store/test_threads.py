"""Database threads: every job gets an answer, whatever a batch does, and the threads live on."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from hitl.store.threads import DbThreads, Outcome

Jobs = list[tuple[Callable[..., Any], Any]]


def run_each(jobs: Jobs) -> list[Outcome]:
    outcomes: list[Outcome] = []
    for fn, arg in jobs:
        try:
            outcomes.append((fn(arg), None))
        except Exception as exc:
            outcomes.append((None, exc))
    return outcomes


async def test_jobs_get_their_own_results_and_errors() -> None:
    threads = DbThreads(2, run_each, "test")
    try:

        def job(i: int) -> int:
            if i % 3 == 0:
                raise ValueError(f"bad {i}")
            return i * 2

        results = await asyncio.gather(
            *(threads.submit(job, i) for i in range(30)), return_exceptions=True
        )
        for i, result in enumerate(results):
            if i % 3 == 0:
                assert isinstance(result, ValueError) and str(result) == f"bad {i}"
            else:
                assert result == i * 2
    finally:
        threads.shutdown()


async def test_a_batch_that_breaks_fails_its_jobs_and_the_thread_lives_on() -> None:
    calls = 0

    def breaking(jobs: Jobs) -> list[Outcome]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("the pool is exhausted")
        return run_each(jobs)

    threads = DbThreads(1, breaking, "test")
    try:
        with pytest.raises(RuntimeError, match="exhausted"):
            await asyncio.wait_for(threads.submit(lambda x: x, 1), 5)
        assert await asyncio.wait_for(threads.submit(lambda x: x + 1, 1), 5) == 2
    finally:
        threads.shutdown()


async def test_an_exception_a_future_cannot_hold_still_answers() -> None:
    def stop(_: Any) -> Any:
        raise StopIteration

    threads = DbThreads(1, run_each, "test")
    try:
        with pytest.raises(RuntimeError, match="StopIteration"):
            await asyncio.wait_for(threads.submit(stop, None), 5)
    finally:
        threads.shutdown()
