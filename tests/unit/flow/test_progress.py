"""Progress reports: from async nodes and from sync nodes' threads, to the runner's sink, on
the event loop's thread, in order, before the node's checkpoint; nothing outside a run."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest
from pocketflow import AsyncFlow, AsyncNode, AsyncParallelBatchFlow, Flow, Node

from hitl.flow import Checkpoint, Reporting, Runner, Update, progress, run_flow


class Writes(Reporting, Node):  # type: ignore[misc]
    """A sync node: reports each word from its `exec`, in a worker thread."""

    def __init__(self, name: str, words: list[str]) -> None:
        super().__init__()
        self.name, self.words = name, words

    def exec(self, prep_res: Any) -> str:
        self.progress(f"writing {len(self.words)} words")
        for word in self.words:
            self.progress(delta=word)
        return "".join(self.words)

    def post(self, shared: dict[str, Any], prep_res: Any, exec_res: str) -> str:
        shared[self.name] = exec_res
        return "default"


class AWrites(Reporting, AsyncNode):  # type: ignore[misc]
    def __init__(self, name: str, words: list[str]) -> None:
        super().__init__()
        self.name, self.words = name, words

    async def exec_async(self, prep_res: Any) -> str:
        for word in self.words:
            self.progress(delta=word)
            await asyncio.sleep(0)
        progress(usage={"total_tokens": len(self.words)})  # the module function works too
        return "".join(self.words)

    async def post_async(self, shared: dict[str, Any], prep_res: Any, exec_res: str) -> str:
        shared[self.name] = exec_res
        return "default"


class Record:
    """The runner's sinks: everything they were handed, in order, and on which thread."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, Any]] = []
        self.threads: set[int] = set()

    async def started(self, path: list[str]) -> None:
        self.seen.append(("started", "/".join(path)))

    async def checkpoint(self, cp: Checkpoint) -> None:
        self.seen.append(("finished", "/".join(cp.position.path)))

    def progress(self, path: list[str], update: Update) -> None:
        self.threads.add(threading.get_ident())
        self.seen.append(("progress", ("/".join(path), update)))


def runner(flow: Any, record: Record) -> Runner:
    return Runner(
        flow,
        on_node_started=record.started,
        on_checkpoint=record.checkpoint,
        on_progress=record.progress,
    )


async def test_reports_reach_the_sink_on_the_loop_in_order_before_the_checkpoint() -> None:
    sync, coro = Writes("sync", ["a ", "b ", "c"]), AWrites("async", ["x ", "y"])
    sync >> coro
    record = Record()
    shared: dict[str, Any] = {}
    await runner(AsyncFlow(start=sync), record).run(shared)
    assert record.threads == {threading.get_ident()}  # the loop's, though `exec` ran elsewhere
    assert record.seen == [
        ("started", "sync"),
        ("progress", ("sync", Update(message="writing 3 words"))),
        ("progress", ("sync", Update(delta="a "))),
        ("progress", ("sync", Update(delta="b "))),
        ("progress", ("sync", Update(delta="c"))),
        ("finished", "sync"),
        ("started", "async"),
        ("progress", ("async", Update(delta="x "))),
        ("progress", ("async", Update(delta="y"))),
        ("progress", ("async", Update(values={"usage": {"total_tokens": 2}}))),
        ("finished", "async"),
    ]
    assert shared == {"sync": "a b c", "async": "x y"}


async def test_a_nested_node_reports_under_its_path() -> None:
    inner = Flow(start=Writes("words", ["one"]))
    inner.name = "inner"
    record = Record()
    await runner(AsyncFlow(start=inner), record).run({})
    assert ("progress", ("inner/words", Update(delta="one"))) in record.seen


async def test_a_flow_run_in_a_thread_of_its_own_reports_too() -> None:
    """An AsyncParallelBatchFlow runs as one step, on another thread's loop: its nodes'
    reports still reach the sink on this loop, as the step's."""

    class Batch(AsyncParallelBatchFlow):  # type: ignore[misc]
        name = "batch"

        async def prep_async(self, shared: dict[str, Any]) -> list[dict[str, Any]]:
            return [{"i": 1}, {"i": 2}]

    record = Record()
    await runner(AsyncFlow(start=Batch(start=AWrites("w", ["z"]))), record).run({})
    reports = [item for kind, item in record.seen if kind == "progress"]
    assert [path for path, _ in reports] == ["batch"] * 4
    assert record.threads == {threading.get_ident()}


async def test_a_report_after_the_node_ended_is_dropped() -> None:
    """A node that leaves a thread behind: what that thread reports later is not the node's."""
    go, done = threading.Event(), threading.Event()

    class LeavesAThread(Reporting, Node):  # type: ignore[misc]
        name = "leaves"

        def exec(self, prep_res: Any) -> None:
            def later() -> None:
                go.wait(10)
                self.progress("too late")
                done.set()

            threading.Thread(target=later, daemon=True).start()

    record = Record()
    await runner(AsyncFlow(start=LeavesAThread()), record).run({})
    go.set()
    await asyncio.get_running_loop().run_in_executor(None, done.wait, 10)
    await asyncio.sleep(0)  # what the thread queued on the loop runs now
    assert [kind for kind, _ in record.seen] == ["started", "finished"]


def test_outside_a_run_a_report_does_nothing() -> None:
    """PocketFlow's own run and `run_flow` give the same result; the reports go nowhere."""
    ours: dict[str, Any] = {}
    theirs: dict[str, Any] = {}
    run_flow(Flow(start=Writes("w", ["a", "b"])), ours)
    Flow(start=Writes("w", ["a", "b"])).run(theirs)
    assert ours == theirs == {"w": "ab"}
    progress("nobody listens")


@pytest.mark.parametrize(
    "args,kwargs,error,says",
    [
        ((3,), {}, TypeError, "message must be text"),
        ((), {"delta": b"bytes"}, TypeError, "delta must be text"),
        ((), {"node": "x"}, ValueError, "node is the event's own"),
        ((), {"when": object()}, TypeError, "values must be JSON"),
        ((), {"ratio": float("nan")}, TypeError, "values must be JSON"),
    ],
)
def test_a_bad_report_raises_at_once(
    args: tuple[Any, ...], kwargs: dict[str, Any], error: type[Exception], says: str
) -> None:
    with pytest.raises(error, match=says):
        progress(*args, **kwargs)
