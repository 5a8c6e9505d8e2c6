"""Database threads that take work in batches and hand results back to the loop at once.

`loop.run_in_executor` costs a `concurrent.futures.Future`, a lock and a loop wake-up per call;
at thousands of statements a second that was a tenth of the server's CPU. Here a thread takes
every job waiting in its queue, runs them as one batch (`run_batch` decides how: the SQLite
writer commits a batch as one transaction) and wakes the loop once to settle all their futures.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import Callable
from typing import Any

Job = tuple[asyncio.AbstractEventLoop, asyncio.Future[Any], Callable[..., Any], Any]
# What a batch yields for each job: (result, None) or (None, exception).
Outcome = tuple[Any, BaseException | None]
RunBatch = Callable[[list[tuple[Callable[..., Any], Any]]], list[Outcome]]

MAX_BATCH = 64
_STOP = None


class DbThreads:
    def __init__(
        self, threads: int, run_batch: RunBatch, name: str, max_batch: int = MAX_BATCH
    ) -> None:
        self.max_batch = max_batch
        self._queue: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self._run_batch = run_batch
        self._threads = [
            threading.Thread(target=self._loop, name=f"{name}-{i}", daemon=True)
            for i in range(threads)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, fn: Callable[..., Any], arg: Any) -> asyncio.Future[Any]:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._queue.put((loop, future, fn, arg))
        return future

    def shutdown(self) -> None:
        for _ in self._threads:
            self._queue.put(_STOP)
        for thread in self._threads:
            thread.join()

    def _loop(self) -> None:
        while True:
            first = self._queue.get()
            if first is _STOP:
                return
            jobs = [first]
            stop = False
            while len(jobs) < self.max_batch:
                try:
                    job = self._queue.get_nowait()
                except queue.Empty:
                    break
                if job is _STOP:
                    stop = True
                    break
                jobs.append(job)
            try:
                outcomes = self._run_batch([(fn, arg) for _, _, fn, arg in jobs])
            except BaseException as exc:  # never lose a job, nor this thread
                outcomes = [(None, exc)] * len(jobs)
            by_loop: dict[asyncio.AbstractEventLoop, list[tuple[Job, Outcome]]] = {}
            for job, outcome in zip(jobs, outcomes, strict=True):
                by_loop.setdefault(job[0], []).append((job, outcome))
            for loop, settled in by_loop.items():
                # A closed loop raises RuntimeError: nobody is waiting any more.
                with contextlib.suppress(RuntimeError):
                    loop.call_soon_threadsafe(_settle, settled)
            if stop:
                return


def _settle(settled: list[tuple[Job, Outcome]]) -> None:
    for (_, future, _, _), (result, error) in settled:
        if future.cancelled():
            continue
        try:
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(result)
        except (TypeError, asyncio.InvalidStateError) as exc:  # StopIteration can't be set
            future.set_exception(RuntimeError(f"database job failed: {exc!r}"))
