"""The durable runner: PocketFlow's semantics, one node at a time, with a checkpoint after each.

It walks a flow exactly as PocketFlow's own `Flow._orch` / `AsyncFlow._orch_async` do (copying
each node, setting its params, following actions) but descends into nested flows itself, so the
position of every leaf node is known and can be persisted. Synchronous code (sync nodes, sync
flow `prep`/`post`) runs in worker threads; async nodes run on the event loop. Flows whose
orchestration is not PocketFlow's stock one — `AsyncParallelBatchFlow` and any flow that
overrides `_run`/`_run_async`/`_orch` — run as a single step, natively, in a worker thread with
its own event loop.
"""

from __future__ import annotations

import asyncio
import contextvars
import copy
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from functools import partial
from typing import Any, Literal

from pocketflow import AsyncBatchFlow, AsyncFlow, AsyncNode, BaseNode, BatchFlow, Flow

from hitl.flow.checkpoint import Checkpoint, Frame, Position, Shared
from hitl.flow.graph import NodeIds
from hitl.flow.reporting import ProgressSink, Reporter, bind, unbind
from hitl.flow.review import Decision, HumanReview, ReviewRequest

Mode = Literal["sync", "async"]
NodeStarted = Callable[[list[str]], Awaitable[None]]
CheckpointSink = Callable[[Checkpoint], Awaitable[None]]


@dataclass(frozen=True)
class Completed:
    action: Any


@dataclass(frozen=True)
class Suspended:
    position: Position
    request: ReviewRequest


Outcome = Completed | Suspended


class _Suspend(Exception):
    def __init__(self, suspended: Suspended) -> None:
        self.suspended = suspended


async def _noop_started(path: list[str]) -> None:
    return None


async def _noop_checkpoint(checkpoint: Checkpoint) -> None:
    return None


class Runner:
    """Runs one flow; create one per run."""

    def __init__(
        self,
        flow: BaseNode,
        *,
        executor: Executor | None = None,
        on_node_started: NodeStarted = _noop_started,
        on_checkpoint: CheckpointSink = _noop_checkpoint,
        on_progress: ProgressSink | None = None,
    ) -> None:
        self.flow = flow
        self.executor = executor
        self.on_node_started = on_node_started
        self.on_checkpoint = on_checkpoint
        self.on_progress = on_progress
        self._ids: dict[int, tuple[BaseNode | None, NodeIds]] = {}
        self._decision: Decision | None = None

    async def run(
        self,
        shared: Shared,
        resume: Position | None = None,
        decision: Decision | None = None,
    ) -> Outcome:
        """Run from the start, or from `resume`. A flow waiting at a review resumes with
        `decision`; without one, the review node asks again (a new review round)."""
        self._decision = decision
        mode: Mode = "async" if isinstance(self.flow, AsyncNode) else "sync"
        try:
            if not isinstance(self.flow, Flow):
                raise TypeError(f"run a Flow or AsyncFlow, not a {type(self.flow).__name__}")
            if _kind(self.flow, mode) == "atomic":
                # A root flow with its own orchestration runs natively as one step, like a
                # nested one: `_level` would run it as a plain flow.
                action = await self._leaf(self.flow, mode, shared)
            else:
                action = await self._level(self.flow, "", mode, shared, [], resume)
        except _Suspend as suspend:
            return suspend.suspended
        return Completed(action)

    # -- one flow level: prep, orchestrate (once or per batch item), post ------------------

    async def _level(
        self,
        flow: Flow,
        name: str,
        mode: Mode,
        shared: Shared,
        stack: list[Frame],
        resume: Position | None,
    ) -> Any:
        depth = len(stack)
        if resume is not None:
            frame = resume.frames[depth]
            prep, start = frame.prep, frame.batch
        else:
            prep, start = await self._call(flow, "prep", mode, shared), 0
        if _kind(flow, mode) == "batch":
            items = prep or []
            for i in range(start, len(items)):
                here = [*stack, Frame(name, items, i)]
                params = {**flow.params, **items[i]}
                await self._orch(flow, mode, shared, params, here, resume if i == start else None)
            return await self._call(flow, "post", mode, shared, items, None)
        out = await self._orch(flow, mode, shared, None, [*stack, Frame(name, prep)], resume)
        return await self._call(flow, "post", mode, shared, prep, out)

    async def _orch(
        self,
        flow: Flow,
        mode: Mode,
        shared: Shared,
        params: dict[str, Any] | None,
        stack: list[Frame],
        resume: Position | None,
    ) -> Any:
        p = params or {**flow.params}
        ids = self._node_ids(flow)
        curr: BaseNode | None = flow.start_node
        last_action: Any = None
        if resume is not None:
            depth = len(stack)
            inner = depth < len(resume.frames)
            name = resume.frames[depth].node if inner else resume.node
            node = copy.copy(ids.node(name))
            node.set_params(p)
            if inner:
                last_action = await self._child(node, name, mode, shared, stack, resume)
            elif resume.waiting and self._decision is None and isinstance(node, HumanReview):
                await self._request(node, name, shared, stack)  # suspends
            elif resume.waiting:
                last_action = await self._decide(node, resume, shared)
            else:
                last_action = resume.action
            curr = flow.get_next_node(node, last_action)
        while curr is not None:
            node = copy.copy(curr)
            node.set_params(p)
            last_action = await self._child(node, ids.id_of(curr), mode, shared, stack, None)
            curr = flow.get_next_node(node, last_action)
        return last_action

    async def _child(
        self,
        node: BaseNode,
        name: str,
        mode: Mode,
        shared: Shared,
        stack: list[Frame],
        resume: Position | None,
    ) -> Any:
        node_mode: Mode = "async" if mode == "async" and isinstance(node, AsyncNode) else "sync"
        if isinstance(node, HumanReview):
            await self._request(node, name, shared, stack)
        if isinstance(node, Flow) and _kind(node, node_mode) != "atomic":
            return await self._level(node, name, node_mode, shared, stack, resume)
        path = [f.node for f in stack[1:]] + [name]
        await self.on_node_started(path)
        action = await self._reporting(path, self._leaf(node, node_mode, shared))
        await self.on_checkpoint(Checkpoint(Position(tuple(stack), name, action), shared))
        return action

    async def _reporting(self, path: list[str], running: Awaitable[Any]) -> Any:
        """Await a leaf with its progress reports going to `on_progress` (and none after it)."""
        if self.on_progress is None:
            return await running
        reporter = Reporter(self.on_progress, path)
        token = bind(reporter)
        try:
            return await running
        finally:
            reporter.close()
            unbind(token)

    # -- review nodes ---------------------------------------------------------------------

    async def _request(
        self, node: HumanReview, name: str, shared: Shared, stack: list[Frame]
    ) -> None:
        if type(node).prep_async is not HumanReview.prep_async:
            raw = await node.prep_async(shared)
        else:
            raw = await self._thread(node.prep, shared)
        request = ReviewRequest.coerce(raw, node)
        position = Position(tuple(stack), name, None, waiting=True, request=request.to_json())
        raise _Suspend(Suspended(position, request))

    async def _decide(self, node: BaseNode, resume: Position, shared: Shared) -> Any:
        if not isinstance(node, HumanReview) or self._decision is None:
            raise ValueError(f"node {resume.node!r} is not a review node waiting for a decision")
        request = ReviewRequest.from_json(resume.request or {"output": None})
        decision, self._decision = self._decision, None
        if type(node).post_async is not HumanReview.post_async:
            action = await node.post_async(shared, request, decision)
        else:
            action = await self._thread(node.post, shared, request, decision)
        position = Position(resume.frames, resume.node, action)
        await self.on_checkpoint(Checkpoint(position, shared))
        return action

    # -- leaves ---------------------------------------------------------------------------

    async def _leaf(self, node: BaseNode, mode: Mode, shared: Shared) -> Any:
        if isinstance(node, Flow) and _has_review(node):
            raise TypeError(
                f"{type(node).__name__} runs its nodes itself (in parallel, or with its own "
                "orchestration), so a HumanReview inside it cannot suspend: move the review "
                "out of it, or use a Flow, AsyncFlow, BatchFlow or AsyncBatchFlow"
            )
        if mode == "async" and isinstance(node, Flow):
            return await self._thread(_run_in_new_loop, node, shared)
        if mode == "async" and isinstance(node, AsyncNode):
            return await node._run_async(shared)
        return await self._thread(node._run, shared)

    async def _call(self, flow: Flow, hook: str, mode: Mode, shared: Shared, *args: Any) -> Any:
        if mode == "async":
            return await getattr(flow, f"{hook}_async")(shared, *args)
        return await self._thread(getattr(flow, hook), shared, *args)

    async def _thread(self, fn: Callable[..., Any], *args: Any) -> Any:
        # In a copy of this context, as `asyncio.to_thread` does: a node's progress reporter
        # (a context variable) goes with it.
        context = contextvars.copy_context()
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, context.run, partial(fn, *args))

    def _node_ids(self, flow: Flow) -> NodeIds:
        start = flow.start_node
        cached = self._ids.get(id(start))
        if cached is None or cached[0] is not start:
            cached = (start, NodeIds(start))
            self._ids[id(start)] = cached
        return cached[1]


def _kind(flow: Flow, mode: Mode) -> Literal["plain", "batch", "atomic"]:
    cls = type(flow)
    if mode == "async":
        if cls._orch_async is not AsyncFlow._orch_async:
            return "atomic"
        run = cls._run_async
        if run is AsyncFlow._run_async:
            return "plain"
        return "batch" if run is AsyncBatchFlow._run_async else "atomic"
    if cls._orch is not Flow._orch:
        return "atomic"
    run = cls._run
    if run is Flow._run:
        return "plain"
    return "batch" if run is BatchFlow._run else "atomic"


def _has_review(flow: Flow) -> bool:
    for node in NodeIds(flow.start_node).by_id.values():
        if isinstance(node, HumanReview) or (isinstance(node, Flow) and _has_review(node)):
            return True
    return False


def _run_in_new_loop(flow: Flow, shared: Shared) -> Any:
    return asyncio.run(flow._run_async(shared))
