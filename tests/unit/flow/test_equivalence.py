"""Property test: `run_flow` behaves exactly like PocketFlow's own run for review-free flows.

Hypothesis draws a small *description* of a flow (nested flows of every PocketFlow kind, leaf
nodes of every kind, branches, loops, retries and fallbacks); the description is built twice
into two independent object graphs, one run by PocketFlow and one by `run_flow`, each on a deep
copy of the same shared store. Every node logs what it did (with its params, its visit, each
exec attempt) into shared, so a different order, a missed or repeated node, different params
or a different retry count all show up as a different shared store.
"""

from __future__ import annotations

import asyncio
import copy
import warnings
from dataclasses import dataclass
from typing import Any

from hypothesis import HealthCheck, event, given, note, settings
from hypothesis import strategies as st
from hypothesis.control import currently_in_test_context
from pocketflow import (
    AsyncBatchFlow,
    AsyncBatchNode,
    AsyncFlow,
    AsyncNode,
    AsyncParallelBatchFlow,
    AsyncParallelBatchNode,
    BaseNode,
    BatchFlow,
    BatchNode,
    Flow,
    Node,
)

from hitl.flow import run_flow

# Every node visit and every hooked flow `prep` counts one step; past the budget every decision
# returns STOP, which no node has a successor for, so any loop ends.
BUDGET = 24
STOP = "__stop__"
INNER = "__inner__"  # a flow post script entry: return the inner flow's last action

LEAF_KINDS = ("Node", "BatchNode", "AsyncNode", "AsyncBatchNode", "AsyncParallelBatchNode")
ASYNC_LEAF_KINDS = frozenset({"AsyncNode", "AsyncBatchNode", "AsyncParallelBatchNode"})
FLOW_KINDS = ("Flow", "AsyncFlow", "BatchFlow", "AsyncBatchFlow", "AsyncParallelBatchFlow")
BATCH_FLOW_KINDS = frozenset({"BatchFlow", "AsyncBatchFlow", "AsyncParallelBatchFlow"})
ASYNC_FLOW_KINDS = frozenset({"AsyncFlow", "AsyncBatchFlow", "AsyncParallelBatchFlow"})
ACTIONS = (None, "default", "x", "y", "nope")
# What nodes return, weighted towards following an edge rather than ending the flow.
SCRIPT_ACTIONS = (None, "x", "default", "y", None, "x", "nope")


# -- the description ----------------------------------------------------------------------


@dataclass(frozen=True)
class LeafSpec:
    kind: str
    script: tuple[Any, ...]  # the action returned on the 1st, 2nd, ... visit (last repeats)
    fails: int  # exec raises this many times per item (per visit) before it succeeds
    max_retries: int
    fallback: str  # "raise": re-raise, "value": return a value, "other": raise KeyError
    items: int  # batch nodes: number of items; -1: prep returns None


@dataclass(frozen=True)
class FlowSpec:
    kind: str
    children: tuple[LeafSpec | FlowSpec, ...]
    edges: tuple[tuple[int, str, int], ...]  # (from child, action, to child)
    hooks: bool  # overrides prep/post (always for batch flows)
    post_script: tuple[Any, ...]
    items: int  # batch flows: number of param sets; -1: prep returns None
    params: tuple[tuple[str, int], ...]


# -- the nodes ----------------------------------------------------------------------------


def _params(node: BaseNode) -> tuple[tuple[str, Any], ...]:
    return tuple(sorted(node.params.items()))


def _choose(shared: dict[str, Any], script: tuple[Any, ...], visit: int) -> Any:
    if shared["steps"] > BUDGET:
        return STOP
    return script[min(visit, len(script)) - 1]


class _Leaf:
    """The behaviour shared by every leaf kind; `label` is unique in the graph."""

    label: str
    spec: LeafSpec
    params: dict[str, Any]

    def _prep(self, shared: dict[str, Any], how: str) -> Any:
        visits = shared["visits"]
        visits[self.label] = visit = visits.get(self.label, 0) + 1
        shared["steps"] += 1
        # Per-instance state and the params dict are observable: PocketFlow runs a fresh
        # shallow copy of the node each visit, with the same params dict as its siblings.
        self.instance_visits = getattr(self, "instance_visits", 0) + 1
        log = shared["log"]
        log.append((how, self.label, visit, self.instance_visits, _params(self)))
        self.params["last"] = self.label
        ctx = (log, shared["attempts"], f"{self.label}/{visit}", visit)
        if self.spec.kind in ("Node", "AsyncNode"):
            return ctx
        if self.spec.items < 0:
            return None
        return [(*ctx[:2], f"{ctx[2]}/{i}", visit) for i in range(self.spec.items)]

    def _attempt(self, prep_res: Any) -> str:
        log, attempts, key, _ = prep_res
        attempts[key] = n = attempts.get(key, 0) + 1
        log.append(("exec", key, n))
        if n <= self.spec.fails:
            raise ValueError(f"{key} failed attempt {n}")
        return f"{key}:ok{n}"

    def _fallback(self, prep_res: Any, exc: Exception) -> str:
        log, _, key, _ = prep_res
        log.append(("fallback", key, type(exc).__name__, str(exc)))
        if self.spec.fallback == "value":
            return f"{key}:fallback"
        if self.spec.fallback == "other":
            raise KeyError(key) from exc
        raise exc

    def _post(self, shared: dict[str, Any], prep_res: Any, exec_res: Any, how: str) -> Any:
        visit = shared["visits"][self.label]
        shared["log"].append((how, self.label, visit, exec_res))
        return _choose(shared, self.spec.script, visit)


class _SyncLeaf(_Leaf):
    def prep(self, shared: dict[str, Any]) -> Any:
        return self._prep(shared, "prep")

    def exec(self, prep_res: Any) -> Any:
        return self._attempt(prep_res)

    def exec_fallback(self, prep_res: Any, exc: Exception) -> Any:
        return self._fallback(prep_res, exc)

    def post(self, shared: dict[str, Any], prep_res: Any, exec_res: Any) -> Any:
        return self._post(shared, prep_res, exec_res, "post")


class _AsyncLeaf(_Leaf):
    async def prep_async(self, shared: dict[str, Any]) -> Any:
        await asyncio.sleep(0)
        return self._prep(shared, "prep_async")

    async def exec_async(self, prep_res: Any) -> Any:
        # Yield around the attempt so parallel batch items interleave.
        await asyncio.sleep(0)
        result = self._attempt(prep_res)
        await asyncio.sleep(0)
        return result

    async def exec_fallback_async(self, prep_res: Any, exc: Exception) -> Any:
        await asyncio.sleep(0)
        return self._fallback(prep_res, exc)

    async def post_async(self, shared: dict[str, Any], prep_res: Any, exec_res: Any) -> Any:
        await asyncio.sleep(0)
        return self._post(shared, prep_res, exec_res, "post_async")


class TNode(_SyncLeaf, Node):  # type: ignore[misc]
    pass


class TBatchNode(_SyncLeaf, BatchNode):  # type: ignore[misc]
    pass


class TAsyncNode(_AsyncLeaf, AsyncNode):  # type: ignore[misc]
    pass


class TAsyncBatchNode(_AsyncLeaf, AsyncBatchNode):  # type: ignore[misc]
    pass


class TAsyncParallelBatchNode(_AsyncLeaf, AsyncParallelBatchNode):  # type: ignore[misc]
    pass


LEAF_CLASSES: dict[str, type[BaseNode]] = {
    "Node": TNode,
    "BatchNode": TBatchNode,
    "AsyncNode": TAsyncNode,
    "AsyncBatchNode": TAsyncBatchNode,
    "AsyncParallelBatchNode": TAsyncParallelBatchNode,
}


class _Hooks:
    """Flow prep/post overrides, sync and async, logging which one PocketFlow called."""

    label: str
    spec: FlowSpec
    params: dict[str, Any]

    def _fprep(self, shared: dict[str, Any], how: str) -> Any:
        shared["steps"] += 1
        visits = shared["visits"]
        visits[self.label] = visit = visits.get(self.label, 0) + 1
        self.instance_visits = getattr(self, "instance_visits", 0) + 1
        shared["log"].append((how, self.label, visit, self.instance_visits, _params(self)))
        self.params[f"flow:{self.label}"] = visit
        if self.spec.kind not in BATCH_FLOW_KINDS:
            return f"{self.label}/{visit}"
        if self.spec.items < 0:
            return None
        return [{"k": i, f"b:{self.label}": i} for i in range(self.spec.items)]

    def _fpost(self, shared: dict[str, Any], prep_res: Any, exec_res: Any, how: str) -> Any:
        visit = shared["visits"][self.label]
        shared["log"].append((how, self.label, visit, prep_res, exec_res))
        action = _choose(shared, self.spec.post_script, visit)
        return exec_res if action == INNER else action

    def prep(self, shared: dict[str, Any]) -> Any:
        return self._fprep(shared, "fprep")

    def post(self, shared: dict[str, Any], prep_res: Any, exec_res: Any) -> Any:
        return self._fpost(shared, prep_res, exec_res, "fpost")

    async def prep_async(self, shared: dict[str, Any]) -> Any:
        await asyncio.sleep(0)
        return self._fprep(shared, "fprep_async")

    async def post_async(self, shared: dict[str, Any], prep_res: Any, exec_res: Any) -> Any:
        await asyncio.sleep(0)
        return self._fpost(shared, prep_res, exec_res, "fpost_async")


def _hooked(base: type[Flow]) -> type[Flow]:
    return type(f"TH{base.__name__}", (_Hooks, base), {})


FLOW_CLASSES: dict[str, type[Flow]] = {
    "Flow": Flow,
    "AsyncFlow": AsyncFlow,
    "BatchFlow": BatchFlow,
    "AsyncBatchFlow": AsyncBatchFlow,
    "AsyncParallelBatchFlow": AsyncParallelBatchFlow,
}
HOOKED_FLOW_CLASSES = {kind: _hooked(cls) for kind, cls in FLOW_CLASSES.items()}


def build(spec: LeafSpec | FlowSpec, label: str = "r") -> BaseNode:
    """A fresh object graph for `spec`; building twice gives two unrelated graphs."""
    if isinstance(spec, LeafSpec):
        leaf = LEAF_CLASSES[spec.kind](max_retries=spec.max_retries, wait=0)
        leaf.label, leaf.spec = label, spec
        return leaf
    children = [build(child, f"{label}.{i}") for i, child in enumerate(spec.children)]
    for src, action, dst in spec.edges:
        if action == "default":
            children[src] >> children[dst]
        else:
            children[src] - action >> children[dst]
    start = children[0] if children else None
    if spec.hooks:
        flow = HOOKED_FLOW_CLASSES[spec.kind](start=start)
        flow.label, flow.spec = label, spec
    else:
        flow = FLOW_CLASSES[spec.kind](start=start)
    flow.set_params(dict(spec.params))
    return flow


# -- the strategies -----------------------------------------------------------------------
# Values are listed most useful first: Hypothesis shrinks towards, and often draws, the first.

ITEM_COUNTS = st.sampled_from([2, 1, 3, 0, -1])


@st.composite
def leaf_specs(draw: st.DrawFn, sync_context: bool) -> LeafSpec:
    # In a sync context an async leaf always raises "Use run_async."; keep it possible but rare.
    async_leaf = draw(st.integers(0, 9)) < (2 if sync_context else 6)
    kinds = sorted(ASYNC_LEAF_KINDS) if async_leaf else ["Node", "BatchNode"]
    return LeafSpec(
        kind=draw(st.sampled_from(kinds)),
        script=tuple(draw(st.lists(st.sampled_from(SCRIPT_ACTIONS), min_size=1, max_size=4))),
        fails=draw(st.sampled_from([0, 0, 0, 1, 2])),
        max_retries=draw(st.integers(1, 3)),
        fallback=draw(st.sampled_from(["raise", "value", "value", "other"])),
        items=draw(ITEM_COUNTS),
    )


@st.composite
def flow_specs(draw: st.DrawFn, depth: int, sync_context: bool, root: bool = False) -> FlowSpec:
    kind = draw(st.sampled_from(FLOW_KINDS))
    # PocketFlow runs any flow synchronously inside a sync flow, async only inside an async one.
    sync_here = sync_context if not root else kind not in ASYNC_FLOW_KINDS
    hooks = kind in BATCH_FLOW_KINDS or draw(st.booleans())
    n = draw(st.sampled_from([2, 3, 1, 4]))
    if hooks and draw(st.sampled_from([False] * 7 + [True])):
        n = 0  # an empty flow: PocketFlow runs its prep and post only
    children: list[LeafSpec | FlowSpec] = []
    for _ in range(n):
        if depth > 0 and draw(st.sampled_from([False, True, False])):
            children.append(draw(flow_specs(depth - 1, sync_here)))
        else:
            children.append(draw(leaf_specs(sync_here)))
    edges: dict[tuple[int, str], int] = {}
    targets = st.sampled_from(range(n))  # any child, so back edges make loops
    for i in range(n):
        # Mostly a chain along "default", sometimes a jump; "x" and "y" go anywhere.
        if draw(st.sampled_from([True, True, True, False])):
            if i + 1 < n and draw(st.sampled_from([True, True, False])):
                edges[(i, "default")] = i + 1
            else:
                edges[(i, "default")] = draw(targets)
        for action in ("x", "y"):
            if draw(st.booleans()):
                edges[(i, action)] = draw(targets)
    params = draw(st.dictionaries(st.sampled_from(["k", "p", "q"]), st.integers(0, 3), max_size=2))
    return FlowSpec(
        kind=kind,
        children=tuple(children),
        edges=tuple((src, action, dst) for (src, action), dst in edges.items()),
        hooks=hooks,
        post_script=tuple(
            draw(st.lists(st.sampled_from((*ACTIONS, INNER)), min_size=1, max_size=3))
        ),
        items=draw(ITEM_COUNTS),
        params=tuple(sorted(params.items())),
    )


# -- running ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Result:
    returned: Any
    error: tuple[str, str] | None
    shared: dict[str, Any]
    warnings: list[str]


def _initial_shared() -> dict[str, Any]:
    return {"log": [], "visits": {}, "attempts": {}, "steps": 0, "input": {"nested": [1, 2]}}


def _run(run: Any, flow: BaseNode, shared: dict[str, Any]) -> Result:
    returned, error = None, None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            returned = run(flow, shared)
        except Exception as exc:  # noqa: BLE001 - the type is what is compared
            error = (type(exc).__name__, str(exc))
    messages = [str(w.message) for w in caught]
    return Result(returned, error, shared, messages)


def run_pocketflow(flow: BaseNode, shared: dict[str, Any]) -> Any:
    if isinstance(flow, AsyncFlow):
        return asyncio.run(flow.run_async(shared))
    return flow.run(shared)


def _note(text: str) -> None:
    if currently_in_test_context():
        note(text)


def assert_equivalent(spec: FlowSpec) -> Result:
    _note(repr(spec))
    shared = _initial_shared()
    expected = _run(run_pocketflow, build(spec), copy.deepcopy(shared))
    actual = _run(run_flow, build(spec), copy.deepcopy(shared))
    _note(f"pocketflow: {expected}")
    _note(f"run_flow:   {actual}")
    assert actual.error == expected.error
    assert actual.returned == expected.returned
    assert actual.shared == expected.shared
    assert actual.warnings == expected.warnings
    return expected


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(flow_specs(depth=2, sync_context=True, root=True))
def test_run_flow_matches_pocketflow(spec: FlowSpec) -> None:
    result = assert_equivalent(spec)
    event(f"outcome: {result.error[0] if result.error else 'returned'}")
    event(f"root: {spec.kind}")
    shared = result.shared
    event(f"steps: {min(shared['steps'], BUDGET + 1) // 5 * 5}+")
    if result.warnings:
        event("an action was not found")
    if any(label.count(".") > 1 for label in shared["visits"]):
        event("a node inside a nested flow ran")
    if any(visits > 1 for visits in shared["visits"].values()):
        event("a node ran more than once")
    if any(attempts > 1 for attempts in shared["attempts"].values()):
        event("an exec was retried")
    if any(entry[0] == "fallback" for entry in shared["log"]):
        event("a fallback ran")


# -- the harness itself: known cases, so the property cannot pass vacuously ----------------


def _leaf(kind: str = "Node", script: tuple[Any, ...] = (None,), **kw: Any) -> LeafSpec:
    values = {"fails": 0, "max_retries": 1, "fallback": "raise", "items": 2, **kw}
    return LeafSpec(kind=kind, script=script, **values)


def _flow(kind: str, *children: Any, edges: Any = (), hooks: bool = False, **kw: Any) -> FlowSpec:
    values = {"post_script": (INNER,), "items": 2, "params": (), **kw}
    hooks = hooks or kind in BATCH_FLOW_KINDS
    return FlowSpec(kind, tuple(children), tuple(edges), hooks, **values)


def test_harness_loop_bounded_by_counter() -> None:
    # a -> b, b -"x"-> a twice, then b's script ends with None (no successor: flow ends).
    spec = _flow(
        "Flow",
        _leaf(),
        _leaf(script=("x", "x", None)),
        edges=[(0, "default", 1), (1, "x", 0)],
    )
    result = assert_equivalent(spec)
    assert result.error is None
    assert result.shared["visits"] == {"r.0": 3, "r.1": 3}
    assert [e[1] for e in result.shared["log"] if e[0] == "prep"] == ["r.0", "r.1"] * 3


def test_harness_async_node_in_sync_flow_raises() -> None:
    result = assert_equivalent(
        _flow("Flow", _leaf(), _leaf("AsyncNode"), edges=[(0, "default", 1)])
    )
    assert result.error == ("RuntimeError", "Use run_async.")
    assert result.shared["visits"] == {"r.0": 1}


def test_harness_retries_and_fallbacks() -> None:
    ok = assert_equivalent(_flow("AsyncFlow", _leaf("AsyncNode", fails=2, max_retries=3)))
    assert ok.error is None
    assert ok.shared["attempts"] == {"r.0/1": 3}
    fell_back = assert_equivalent(_flow("Flow", _leaf(fails=2, max_retries=2, fallback="value")))
    assert ("fallback", "r.0/1", "ValueError", "r.0/1 failed attempt 2") in fell_back.shared["log"]
    raised = assert_equivalent(_flow("Flow", _leaf(fails=1, fallback="other")))
    assert raised.error is not None and raised.error[0] == "KeyError"


def test_harness_missing_action_warns() -> None:
    spec = _flow("Flow", _leaf(script=("nope",)), _leaf(), edges=[(0, "default", 1)])
    result = assert_equivalent(spec)
    assert result.warnings == ["Flow ends: 'nope' not found in ['default']"]
    assert result.returned == "nope"


def test_harness_batch_params_and_parallel_interleaving() -> None:
    spec = _flow(
        "AsyncParallelBatchFlow",
        _leaf("AsyncParallelBatchNode"),
        _flow("AsyncBatchFlow", _leaf("AsyncBatchNode"), params=(("p", 9),)),
        edges=[(0, "default", 1)],
        params=(("k", 7), ("q", 1)),
    )
    result = assert_equivalent(spec)
    assert result.error is None
    params = {e[4] for e in result.shared["log"] if e[0] == "prep_async" and e[1] == "r.0"}
    assert params == {
        (("b:r", i), ("flow:r", 1), ("k", i), ("q", 1)) for i in range(2)
    }  # the batch item over the flow's params, which the flow's own prep had added to
    # The two batch items of the parallel flow interleave: the second starts before the first
    # finishes, which a sequential runner would not reproduce.
    preps = [e[1:3] for e in result.shared["log"] if e[0] in ("prep_async", "post_async")]
    assert preps[:2] == [("r.0", 1), ("r.0", 2)]


def test_harness_detects_a_divergence() -> None:
    # The comparison must fail when the two runs differ: run a different graph on one side.
    spec = _flow("Flow", _leaf(), _leaf(), edges=[(0, "default", 1)])
    other = _flow("Flow", _leaf(), _leaf(), edges=[(0, "x", 1)])
    shared = _initial_shared()
    expected = _run(run_pocketflow, build(spec), copy.deepcopy(shared))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        actual = _run(run_flow, build(other), copy.deepcopy(shared))
    assert actual.shared != expected.shared
