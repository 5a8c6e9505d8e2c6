"""Unit tests of the durable runner: checkpoints, suspension at reviews, resumption."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import math
import threading
from typing import Any

import pytest
from pocketflow import AsyncBatchFlow, AsyncFlow, AsyncNode, BaseNode, Flow, Node

from hitl.flow import (
    Checkpoint,
    Completed,
    Decision,
    FlowSuspended,
    Frame,
    HumanReview,
    Position,
    ReviewRequest,
    Runner,
    SharedNotJSON,
    Suspended,
    dump_shared,
    run_flow,
)
from hitl.flow.default import create_feedback_flow, draft
from hitl.flow.graph import NodeIds

# -- test nodes ---------------------------------------------------------------------------


class Step(Node):  # type: ignore[misc]
    """Logs its name and params; returns `action`."""

    def __init__(self, name: str, action: str | None = "default") -> None:
        super().__init__()
        self.name, self.action = name, action

    def prep(self, shared: dict[str, Any]) -> Any:
        return dict(self.params)

    def exec(self, prep_res: Any) -> Any:
        return prep_res

    def post(self, shared: dict[str, Any], prep_res: Any, exec_res: Any) -> Any:
        shared.setdefault("log", []).append([self.name, exec_res])
        return self.action


class AStep(AsyncNode):  # type: ignore[misc]
    def __init__(self, name: str, action: str | None = "default") -> None:
        super().__init__()
        self.name, self.action = name, action

    async def prep_async(self, shared: dict[str, Any]) -> Any:
        await asyncio.sleep(0)
        return dict(self.params)

    async def post_async(self, shared: dict[str, Any], prep_res: Any, exec_res: Any) -> Any:
        shared.setdefault("log", []).append([self.name, prep_res])
        return self.action


class Lap(Node):  # type: ignore[misc]
    """Returns "again" until it has run `laps` times, then "done"."""

    def __init__(self, laps: int) -> None:
        super().__init__()
        self.name, self.laps = "lap", laps

    def post(self, shared: dict[str, Any], prep_res: Any, exec_res: Any) -> str:
        shared["laps"] = shared.get("laps", 0) + 1
        shared.setdefault("log", []).append(["lap", shared["laps"]])
        return "again" if shared["laps"] < self.laps else "done"


class Check(HumanReview):  # type: ignore[misc]
    """A review showing a draft of the current batch item (if any)."""

    name = "check"

    def prep(self, shared: dict[str, Any]) -> Any:
        shared["review_preps"] = shared.get("review_preps", 0) + 1
        return {"output": f"draft {self.params.get('item', '-')}", "prompt": "ok?"}

    def post(self, shared: dict[str, Any], prep_res: Any, exec_res: Decision) -> Any:
        entry = [exec_res.action, exec_res.comment, prep_res.output, self.params.get("item")]
        shared.setdefault("decisions", []).append(entry)
        return exec_res.action


class Items(AsyncBatchFlow):  # type: ignore[misc]
    name = "items"

    def __init__(self, start: BaseNode, items: list[str]) -> None:
        super().__init__(start=start)
        self.items = items

    async def prep_async(self, shared: dict[str, Any]) -> Any:
        shared["batch_preps"] = shared.get("batch_preps", 0) + 1
        return [{"item": item} for item in self.items]


def named(flow: Flow, name: str) -> Flow:
    flow.name = name
    return flow


# -- helpers ------------------------------------------------------------------------------


class Recorder:
    """on_node_started / on_checkpoint sinks keeping JSON snapshots, as a store would."""

    def __init__(self) -> None:
        self.started: list[list[str]] = []
        self.checkpoints: list[tuple[dict[str, Any], dict[str, Any]]] = []

    async def on_node_started(self, path: list[str]) -> None:
        self.started.append(list(path))

    async def on_checkpoint(self, checkpoint: Checkpoint) -> None:
        assert isinstance(checkpoint, Checkpoint)
        # Persist exactly as a store would: both parts through JSON text.
        position = json.loads(json.dumps(checkpoint.position.to_json()))
        self.checkpoints.append((position, json.loads(dump_shared(checkpoint.shared))))

    def runner(self, flow: BaseNode) -> Runner:
        return Runner(flow, on_node_started=self.on_node_started, on_checkpoint=self.on_checkpoint)

    @property
    def positions(self) -> list[Position]:
        return [Position.from_json(p) for p, _ in self.checkpoints]


def restart(position: Position, shared: dict[str, Any]) -> tuple[Position, dict[str, Any]]:
    """What survives a process restart: the position and shared, as JSON text."""
    return Position.from_json(json.loads(json.dumps(position.to_json()))), json.loads(
        dump_shared(shared)
    )


def normalised(shared: dict[str, Any]) -> dict[str, Any]:
    return json.loads(dump_shared(shared))


# -- checkpoints --------------------------------------------------------------------------


def nested_flow() -> AsyncFlow:
    a, b, c, d = Step("a"), AStep("b"), Step("c"), Step("d")
    b >> c
    inner = named(AsyncFlow(start=b), "inner")
    a >> inner >> d
    root = AsyncFlow(start=a)
    root.set_params({"run": 7})
    return root


async def test_checkpoint_after_each_leaf_with_position_and_shared_snapshot() -> None:
    rec = Recorder()
    shared: dict[str, Any] = {"input": "x"}
    outcome = await rec.runner(nested_flow()).run(shared)

    assert outcome == Completed("default")
    assert rec.started == [["a"], ["inner", "b"], ["inner", "c"], ["d"]]
    root, inner = Frame("", None), Frame("inner", None)
    assert rec.positions == [
        Position((root,), "a", "default"),
        Position((root, inner), "b", "default"),
        Position((root, inner), "c", "default"),
        Position((root,), "d", "default"),
    ]
    assert [p.path for p in rec.positions] == rec.started
    # Each snapshot is shared as it was right after that node, not the final store.
    logs = [[entry[0] for entry in snap.get("log", [])] for _, snap in rec.checkpoints]
    assert logs == [["a"], ["a", "b"], ["a", "b", "c"], ["a", "b", "c", "d"]]
    assert all(snap["input"] == "x" for _, snap in rec.checkpoints)
    # Params reach nested nodes as in PocketFlow.
    assert shared["log"][1] == ["b", {"run": 7}]
    assert rec.checkpoints[-1][1] == normalised(shared)


def test_position_json_round_trip() -> None:
    position = Position(
        (Frame("", {"p": [1, 2]}), Frame("items", [{"item": "x"}, {"item": "y"}], 1)),
        "check",
        None,
        waiting=True,
        request=ReviewRequest(output={"text": "t"}, prompt="p").to_json(),
    )
    data = json.loads(json.dumps(position.to_json()))
    assert data["frames"][1] == {
        "node": "items",
        "prep": [{"item": "x"}, {"item": "y"}],
        "batch": 1,
    }
    back = Position.from_json(data)
    assert back == position
    assert back.path == ["items", "check"]
    assert ReviewRequest.from_json(back.request or {}) == ReviewRequest({"text": "t"}, prompt="p")
    done = Position((Frame(""),), "a", "next")
    assert Position.from_json(json.loads(json.dumps(done.to_json()))) == done


def batch_flow() -> AsyncFlow:
    """a, then per item b >> c in an AsyncBatchFlow, a sync Flow with d, and a loop of two."""
    a, b, c, d, end = Step("a"), Step("b"), AStep("c"), Step("d"), Step("end")
    b >> c
    items = Items(b, ["x", "y"])
    sub = named(Flow(start=d), "sub")
    lap = Lap(2)
    a >> items >> sub >> lap
    lap - "again" >> a
    lap - "done" >> end
    root = AsyncFlow(start=a)
    root.set_params({"run": 1})
    return root


async def test_resume_from_every_mid_flow_checkpoint_matches_an_uninterrupted_run() -> None:
    rec = Recorder()
    shared: dict[str, Any] = {}
    outcome = await rec.runner(batch_flow()).run(shared)
    assert outcome == Completed("default")
    lap = [["a"], ["items", "b"], ["items", "c"], ["items", "b"], ["items", "c"], ["sub", "d"]]
    assert rec.started == lap + [["lap"]] + lap + [["lap"], ["end"]]
    assert [p.frames[-1].batch for p in rec.positions[1:5]] == [0, 0, 1, 1]
    assert shared["batch_preps"] == 2
    assert len(rec.checkpoints) == 15

    for k, (position_json, snapshot) in enumerate(rec.checkpoints[:-1]):
        again = Recorder()
        resumed = await again.runner(batch_flow()).run(
            snapshot, resume=Position.from_json(position_json)
        )
        assert resumed == outcome, k
        assert again.started == rec.started[k + 1 :], k
        assert again.checkpoints == rec.checkpoints[k + 1 :], k
        assert snapshot == normalised(shared), k


async def test_resume_inside_a_batch_item_does_not_rerun_the_batch_prep() -> None:
    rec = Recorder()
    await rec.runner(batch_flow()).run({})
    # Right after c of item x: the next node is b of item y, with item y's params.
    position, snapshot = rec.checkpoints[2]
    assert Position.from_json(position).path == ["items", "c"]
    assert snapshot["batch_preps"] == 1
    again = Recorder()
    await again.runner(batch_flow()).run(snapshot, resume=Position.from_json(position))
    assert again.started[0] == ["items", "b"]
    assert snapshot["log"][3] == ["b", {"run": 1, "item": "y"}]
    assert snapshot["batch_preps"] == 2  # once per lap: the resumed lap's prep was not rerun


# -- suspension and resumption at a review ------------------------------------------------


def review_in_nested_flow() -> AsyncFlow:
    a, b, c, d = Step("a"), Step("b"), Step("c"), Step("d")
    check = Check()
    b >> check
    check - "approve" >> c
    check - "reject" >> b
    inner = named(AsyncFlow(start=b), "inner")
    a >> inner >> d
    return AsyncFlow(start=a)


async def test_suspends_at_review_without_leaving_anything_waiting() -> None:
    rec = Recorder()
    shared: dict[str, Any] = {}
    outcome = await rec.runner(review_in_nested_flow()).run(shared)

    assert isinstance(outcome, Suspended)
    assert outcome.request == ReviewRequest("draft -", ("approve", "edit", "reject"), "ok?")
    position = outcome.position
    assert position.waiting and position.action is None
    assert position.frames == (Frame("", None), Frame("inner", None))
    assert position.node == "check" and position.path == ["inner", "check"]
    assert position.request == outcome.request.to_json()
    # Nothing ran past the review, nothing was decided, and no task is left waiting.
    assert [e[0] for e in shared["log"]] == ["a", "b"]
    assert "decisions" not in shared
    assert rec.started == [["a"], ["inner", "b"]]
    assert [p.path for p in rec.positions] == [["a"], ["inner", "b"]]
    assert asyncio.all_tasks() == {asyncio.current_task()}


async def test_resume_a_review_in_a_nested_flow_after_a_restart() -> None:
    shared: dict[str, Any] = {}
    first = await Runner(review_in_nested_flow()).run(shared)
    assert isinstance(first, Suspended)
    position, shared = restart(first.position, shared)

    # Reject: back to b inside the nested flow, and suspended at the review again.
    rec = Recorder()
    second = await rec.runner(review_in_nested_flow()).run(
        shared, resume=position, decision=Decision("reject", comment="again")
    )
    assert isinstance(second, Suspended)
    assert second.position == first.position
    assert shared["decisions"] == [["reject", "again", "draft -", None]]
    assert rec.positions[0] == Position(position.frames, "check", "reject")
    assert rec.started == [["inner", "b"]]

    # Approve, in yet another process: c in the nested flow, then d in the outer one.
    position, shared = restart(second.position, shared)
    rec = Recorder()
    third = await rec.runner(review_in_nested_flow()).run(
        shared, resume=position, decision=Decision("approve")
    )
    assert third == Completed("default")
    assert [e[0] for e in shared["log"]] == ["a", "b", "b", "c", "d"]
    assert [d[0] for d in shared["decisions"]] == ["reject", "approve"]
    assert rec.started == [["inner", "c"], ["d"]]
    assert [p.path for p in rec.positions] == [["inner", "check"], ["inner", "c"], ["d"]]
    assert rec.positions[0].action == "approve" and not rec.positions[0].waiting


def review_per_batch_item() -> AsyncFlow:
    start, work, done, final = Step("start"), Step("work"), Step("done"), Step("final")
    check = Check()
    work >> check
    check - "approve" >> done
    start >> Items(work, ["x", "y", "z"]) >> final
    return AsyncFlow(start=start)


def review_per_batch_item_at_root() -> AsyncFlow:
    work, done = Step("work"), Step("done")
    check = Check()
    work >> check
    check - "approve" >> done
    return Items(work, ["x", "y", "z"])


@pytest.mark.parametrize("at_root", [False, True], ids=["nested", "root"])
async def test_resume_a_review_inside_a_batch_item_continues_that_item(at_root: bool) -> None:
    build = review_per_batch_item_at_root if at_root else review_per_batch_item
    shared: dict[str, Any] = {}
    outcome = await Runner(build()).run(shared)
    outputs = []
    while isinstance(outcome, Suspended):
        outputs.append(outcome.request.output)
        frame = outcome.position.frames[-1]
        assert len(outcome.position.frames) == (1 if at_root else 2)
        assert frame.node == ("" if at_root else "items")
        assert frame.batch == len(outputs) - 1
        assert frame.prep == [{"item": "x"}, {"item": "y"}, {"item": "z"}]
        position, shared = restart(outcome.position, shared)
        outcome = await Runner(build()).run(
            shared, resume=position, decision=Decision("approve", comment=f"ok {len(outputs)}")
        )
    assert outcome == Completed(None if at_root else "default")  # a batch flow's post: None
    assert outputs == ["draft x", "draft y", "draft z"]
    steps = [(e[0], e[1].get("item")) for e in shared["log"]]
    per_item = [(step, item) for item in "xyz" for step in ("work", "done")]
    assert steps == (per_item if at_root else [("start", None), *per_item, ("final", None)])
    assert shared["decisions"] == [
        ["approve", "ok 1", "draft x", "x"],
        ["approve", "ok 2", "draft y", "y"],
        ["approve", "ok 3", "draft z", "z"],
    ]
    assert shared["batch_preps"] == 1
    assert shared["review_preps"] == 3


class YesNo(HumanReview):  # type: ignore[misc]
    """A review with its own decisions whose prep returns a bare output."""

    name = "yes_no"
    decisions = ("yes", "no")

    def prep(self, shared: dict[str, Any]) -> Any:
        return [shared["n"], "to check"]

    def post(self, shared: dict[str, Any], prep_res: Any, exec_res: Decision) -> Any:
        shared["seen"] = [prep_res.output, list(prep_res.decisions), exec_res.action]
        return exec_res.action


async def test_review_request_uses_the_node_decisions_and_reaches_post_after_restart() -> None:
    def flow() -> AsyncFlow:
        review = YesNo()
        review - "yes" >> Step("after")
        return AsyncFlow(start=review)

    shared: dict[str, Any] = {"n": 3}
    outcome = await Runner(flow()).run(shared)
    assert isinstance(outcome, Suspended)
    assert outcome.request == ReviewRequest([3, "to check"], ("yes", "no"))
    assert outcome.position.frames == (Frame("", None),)
    position, shared = restart(outcome.position, shared)
    done = await Runner(flow()).run(shared, resume=position, decision=Decision("yes"))
    assert done == Completed("default")
    assert shared["seen"] == [[3, "to check"], ["yes", "no"], "yes"]
    assert [e[0] for e in shared["log"]] == ["after"]


async def test_resume_at_a_review_without_a_decision_asks_again() -> None:
    """A retried task whose review expired: the review node asks again, from where it was."""
    shared: dict[str, Any] = {}
    outcome = await Runner(review_in_nested_flow()).run(shared)
    assert isinstance(outcome, Suspended)
    again = await Runner(review_in_nested_flow()).run(shared, resume=outcome.position)
    assert isinstance(again, Suspended)
    assert again.position == outcome.position and again.request == outcome.request


async def test_a_waiting_position_must_name_a_review_node() -> None:
    bogus = Position((Frame("", None),), "a", None, waiting=True, request={"output": 1})
    with pytest.raises(ValueError, match="not a review node"):
        await Runner(nested_flow()).run({}, resume=bogus, decision=Decision("approve"))


def test_run_flow_refuses_a_flow_that_reaches_a_review() -> None:
    shared: dict[str, Any] = {"task_input": "t"}
    with pytest.raises(FlowSuspended, match="review"):
        run_flow(create_feedback_flow(delay=0), shared)
    assert shared["revision"] == 1  # it ran up to the review


# -- the default flow ---------------------------------------------------------------------


async def _first_review(shared: dict[str, Any]) -> Suspended:
    outcome = await Runner(create_feedback_flow(delay=0)).run(shared)
    assert isinstance(outcome, Suspended)
    assert outcome.position.path == ["review"]
    assert outcome.request.decisions == ("approve", "edit", "reject")
    return outcome


async def _decide(suspended: Suspended, shared: dict[str, Any], decision: Decision) -> Any:
    position, shared = restart(suspended.position, shared)
    outcome = await Runner(create_feedback_flow(delay=0)).run(
        shared, resume=position, decision=decision
    )
    return outcome, shared


async def test_default_flow_reject_with_comment_revises_the_output() -> None:
    shared: dict[str, Any] = {"task_input": "write  a poem"}
    first = await _first_review(shared)
    assert first.request.output == "Revision 1: Write a poem"

    second, shared = await _decide(first, shared, Decision("reject", comment="Make it rhyme"))
    assert isinstance(second, Suspended)
    assert second.position.path == ["review"]
    assert second.request.output != first.request.output
    assert "Make it rhyme" in second.request.output
    assert second.request.output == draft("write  a poem", ["Make it rhyme"], 2)
    assert shared["comments"] == ["Make it rhyme"] and shared["revision"] == 2
    assert "final_result" not in shared

    third, shared = await _decide(second, shared, Decision("reject", comment="Shorter"))
    assert isinstance(third, Suspended)
    assert "Make it rhyme" in third.request.output and "Shorter" in third.request.output
    assert third.request.output.startswith("Revision 3:")


async def test_default_flow_approve_sets_final_result() -> None:
    shared: dict[str, Any] = {"task_input": "draft this"}
    first = await _first_review(shared)
    outcome, shared = await _decide(first, shared, Decision("approve"))
    assert outcome == Completed("done")
    assert shared["final_result"] == first.request.output == "Revision 1: Draft this"


async def test_default_flow_edit_sets_final_result_to_the_edit() -> None:
    shared: dict[str, Any] = {"task_input": "draft this"}
    first = await _first_review(shared)
    outcome, shared = await _decide(first, shared, Decision("edit", edited_output="Mine."))
    assert outcome == Completed("done")
    assert shared["final_result"] == "Mine."
    assert shared["revision"] == 1


# -- threads ------------------------------------------------------------------------------


class WhereSync(Node):  # type: ignore[misc]
    name = "where_sync"

    def exec(self, prep_res: Any) -> int:
        return threading.get_ident()

    def post(self, shared: dict[str, Any], prep_res: Any, exec_res: int) -> None:
        shared["sync_exec"] = exec_res


class WhereAsync(AsyncNode):  # type: ignore[misc]
    name = "where_async"

    async def exec_async(self, prep_res: Any) -> int:
        return threading.get_ident()

    async def post_async(self, shared: dict[str, Any], prep_res: Any, exec_res: int) -> None:
        shared["async_exec"] = exec_res


class WhereFlow(Flow):  # type: ignore[misc]
    name = "where_flow"

    def prep(self, shared: dict[str, Any]) -> None:
        shared["sync_flow_prep"] = threading.get_ident()


async def test_sync_code_runs_off_the_event_loop_thread() -> None:
    loop_thread = threading.get_ident()
    sync_root = WhereFlow(start=WhereSync())
    shared: dict[str, Any] = {}
    assert await Runner(sync_root).run(shared) == Completed(None)
    assert shared["sync_exec"] != loop_thread
    assert shared["sync_flow_prep"] != loop_thread

    async_root = AsyncFlow(start=WhereAsync())
    async_root.start_node >> WhereSync()
    shared = {}
    assert await Runner(async_root).run(shared) == Completed(None)
    assert shared["sync_exec"] != loop_thread
    assert shared["async_exec"] == loop_thread


class WaitsForTheLoop(Node):  # type: ignore[misc]
    """A sync node that can only finish if the event loop runs while it does: it waits for an
    event that a coroutine on the loop sets."""

    def __init__(self, started: threading.Event, released: threading.Event) -> None:
        super().__init__()
        self.started, self.released = started, released

    def exec(self, prep_res: Any) -> bool:
        self.started.set()
        return self.released.wait(timeout=30)

    def post(self, shared: dict[str, Any], prep_res: Any, exec_res: bool) -> str:
        shared["released"] = exec_res
        return "default"


async def test_a_slow_sync_node_does_not_block_the_event_loop() -> None:
    started, released = threading.Event(), threading.Event()

    async def release() -> None:  # runs only if the loop is free while the node runs
        while not started.is_set():
            await asyncio.sleep(0.005)
        released.set()

    helper = asyncio.create_task(release())
    shared: dict[str, Any] = {}
    try:
        await Runner(AsyncFlow(start=WaitsForTheLoop(started, released))).run(shared)
    finally:
        helper.cancel()
    assert shared["released"] is True


# -- run_flow and the root flow -----------------------------------------------------------


def test_run_flow_returns_pocketflow_action_for_root_parallel_batch_flow() -> None:
    # A root flow with its own orchestration (AsyncParallelBatchFlow) runs as PocketFlow does:
    # once per batch item, and post receives the items.
    from pocketflow import AsyncParallelBatchFlow

    class Par(AsyncParallelBatchFlow):  # type: ignore[misc]
        async def prep_async(self, shared: dict[str, Any]) -> Any:
            return [{"item": i} for i in range(3)]

        async def post_async(self, shared: dict[str, Any], prep_res: Any, exec_res: Any) -> Any:
            shared["post"] = prep_res
            return "finished"

    shared: dict[str, Any] = {}
    assert run_flow(Par(start=AStep("p")), shared) == "finished"
    assert sorted(e[1]["item"] for e in shared["log"]) == [0, 1, 2]
    assert shared["post"] == [{"item": 0}, {"item": 1}, {"item": 2}]


def test_run_flow_warns_like_pocketflow_when_an_action_is_not_found() -> None:
    a = Step("a", action="nowhere")
    a - "somewhere" >> Step("b")
    with pytest.warns(UserWarning, match="Flow ends: 'nowhere' not found"):
        assert run_flow(Flow(start=a), {}) == "nowhere"


async def test_runner_rejects_a_plain_node() -> None:
    with pytest.raises(TypeError, match="Flow"):
        await Runner(Step("a")).run({})


# -- dump_shared --------------------------------------------------------------------------


def test_dump_shared_is_compact_json() -> None:
    shared = {"a": [1, 2.5, None, True], "b": {"c": "d"}}
    assert dump_shared(shared) == '{"a":[1,2.5,null,true],"b":{"c":"d"}}'


@pytest.mark.parametrize(
    ("value", "type_name"),
    [(object(), "object"), ({1, 2}, "set"), (math.nan, "float"), ({"deep": b"x"}, "dict")],
)
def test_dump_shared_names_the_key_holding_a_non_json_value(value: Any, type_name: str) -> None:
    shared = {"fine": [1, 2], "bad_key": value, "also_fine": "x"}
    with pytest.raises(SharedNotJSON) as info:
        dump_shared(shared)
    assert info.value.key == "bad_key"
    assert "shared['bad_key']" in str(info.value)
    assert f"holds a {type_name}" in str(info.value)
    assert isinstance(info.value, TypeError)


async def test_a_checkpoint_sink_dumping_shared_stops_the_run_at_a_non_json_value() -> None:
    class Bad(Node):  # type: ignore[misc]
        name = "bad"

        def post(self, shared: dict[str, Any], prep_res: Any, exec_res: Any) -> None:
            shared["when"] = object()

    rec = Recorder()
    a = Step("a")
    a >> Bad() >> Step("never")
    with pytest.raises(SharedNotJSON) as info:
        await rec.runner(AsyncFlow(start=a)).run({})
    assert info.value.key == "when"
    assert [p.path for p in rec.positions] == [["a"]]
    assert rec.started == [["a"], ["bad"]]


# -- node ids -----------------------------------------------------------------------------


class Plain(Node):  # type: ignore[misc]
    pass


def id_graph() -> tuple[BaseNode, list[BaseNode]]:
    a, p1, p2, p3, s = Step("a"), Plain(), Plain(), Plain(), Step("s")
    a >> p1
    a - "other" >> p2
    p1 - "x" >> p3
    p3 >> a  # a loop back: a is not visited twice
    p2 >> s
    return a, [a, p1, p3, p2, s]


def test_node_ids_are_stable_between_builds_and_disambiguate_duplicates() -> None:
    start1, nodes1 = id_graph()
    start2, nodes2 = id_graph()
    ids1, ids2 = NodeIds(start1), NodeIds(start2)
    expected = ["a", "Plain", "Plain#2", "Plain#3", "s"]  # depth first, successors in order
    assert list(ids1.by_id) == list(ids2.by_id) == expected
    for node_id, n1, n2 in zip(expected, nodes1, nodes2, strict=True):
        assert ids1.id_of(n1) == ids2.id_of(n2) == node_id
        assert ids1.node(node_id) is n1 and ids2.node(node_id) is n2
    with pytest.raises(LookupError, match="Plain#4"):
        ids1.node("Plain#4")
    assert NodeIds(None).by_id == {}


def test_node_ids_resolve_a_checkpoint_from_another_build() -> None:
    # The position recorded in one build names the same node in the next one.
    rec = Recorder()
    outcome = asyncio.run(rec.runner(two_plain_flow()).run({}))
    assert outcome == Completed(None)
    assert rec.started == [["Plain"], ["Plain#2"]]
    again = Recorder()
    position, snapshot = rec.checkpoints[0]
    asyncio.run(again.runner(two_plain_flow()).run(snapshot, resume=Position.from_json(position)))
    assert again.started == [["Plain#2"]]


def two_plain_flow() -> Flow:
    first = Plain()
    first >> Plain()
    return Flow(start=first)


async def test_review_inside_a_parallel_batch_flow_is_refused_clearly() -> None:
    from pocketflow import AsyncFlow, AsyncParallelBatchFlow

    from hitl.flow import HumanReview, Runner

    class Items(AsyncParallelBatchFlow):  # type: ignore[misc]
        async def prep_async(self, shared: dict[str, object]) -> list[dict[str, int]]:
            return [{"i": 1}, {"i": 2}]

    flow = AsyncFlow(start=Items(start=HumanReview()))
    with pytest.raises(TypeError, match="cannot suspend"):
        await Runner(flow).run({})


def test_review_deadlines_are_checked_and_filled_from_the_node() -> None:
    from hitl.flow import HumanReview, ReviewRequest

    with pytest.raises(ValueError, match="deadline_seconds must be > 0"):
        ReviewRequest(output="x", deadline_seconds=0)
    with pytest.raises(ValueError, match="on_deadline must be one of"):
        ReviewRequest(output="x", deadline_seconds=5, on_deadline="maybe")
    with pytest.raises(ValueError, match="on_deadline must be one of"):
        ReviewRequest(output="x", deadline_seconds=5, on_deadline="edit")
    with pytest.raises(ValueError, match="needs deadline_seconds"):
        ReviewRequest(output="x", on_deadline="approve")

    node = HumanReview()
    node.deadline_seconds, node.on_deadline = 60.0, "reject"
    request = ReviewRequest.coerce({"output": "draft"}, node)
    assert (request.deadline_seconds, request.on_deadline) == (60.0, "reject")
    own = ReviewRequest.coerce(ReviewRequest("x", deadline_seconds=5, on_deadline="approve"), node)
    assert (own.deadline_seconds, own.on_deadline) == (5, "approve")
    assert ReviewRequest.from_json(request.to_json()) == request
    assert set(request.to_json()) == {f.name for f in dataclasses.fields(ReviewRequest)}

    # A default that a form blocks is refused when a node asks for it (not when it is read
    # back: a review stored before that check stays readable).
    from hitl.flow.review import Field

    node.on_deadline, node.form = "approve", (Field("why", "text", required=True),)
    with pytest.raises(ValueError, match="on_deadline 'approve' could never be applied"):
        ReviewRequest.coerce({"output": "draft"}, node)
    blocked = dataclasses.replace(request, on_deadline="approve", form=node.form)
    assert ReviewRequest.from_json(blocked.to_json()) == blocked
