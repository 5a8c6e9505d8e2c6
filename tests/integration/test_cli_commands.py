"""`hitl submit`, `tasks`, `watch`, `approve` and `reject` against a real `hitl serve`."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from hitl.cli.main import app
from hitl.client import Client
from tests.conftest import ROOT, Server, process_env, user_token

READ_TIMEOUT = 30.0
# Ids are UUIDv7: tasks made within a minute share their first 8 characters (the time), so a
# prefix that finds one task is longer than git's usual 7.
UNIQUE = 23


@pytest.fixture(scope="module")
def server(start_module_server: Callable[..., Server]) -> Server:
    return start_module_server()


def hitl(server: Server, *args: str, input: str | None = None) -> Result:
    """Run the command line in this process, pointed at `server` by HITL_SERVER and signed
    in with its token by HITL_TOKEN."""
    env = {"HITL_SERVER": server.url, "HITL_TOKEN": server.token or ""}
    return CliRunner().invoke(app, list(args), env=env, input=input, prog_name="hitl")


def ok(result: Result) -> str:
    assert result.exit_code == 0, result.output
    return result.output


def failed(result: Result, code: int) -> str:
    """The one line a failed command printed."""
    assert isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code == code, result.output
    [line] = result.output.strip().splitlines()
    assert line.startswith("hitl: "), line
    return line


def wait_for_review(server: Server, task_id: str, round: int = 1) -> dict[str, Any]:
    """The task's open review of `round`, once its `review.requested` event has come."""
    with Client(server.url, token=server.token) as client:
        events = client.events(task_id, read_timeout=READ_TIMEOUT)
        with contextlib.closing(events):
            for event in events:
                if event.type == "review.requested" and event.data["round"] == round:
                    break
            else:
                raise AssertionError(f"task {task_id} ended before review round {round}")
        task = client.get_task(task_id)
    assert task.reviews is not None
    review = task.reviews[-1]
    assert review.status == "open" and review.round == round, task
    return review.model_dump(mode="json")


def watched(output: str) -> list[str]:
    """The event types `hitl watch` printed, one a line: `<id> <type> <data>`."""
    return [line.split()[1] for line in output.splitlines()]


def test_submit_then_approve_and_watch_by_prefix(server: Server) -> None:
    task = json.loads(ok(hitl(server, "submit", "a note on durable queues")))
    assert task["status"] == "queued" and task["input"] == "a note on durable queues"
    tid, prefix = task["id"], task["id"][:UNIQUE]
    review = wait_for_review(server, tid)

    listing = ok(hitl(server, "tasks", "--status", "waiting_for_review", "--limit", "500"))
    assert f"{tid}  waiting_for_review" in listing
    assert listing.splitlines()[-1].endswith("task(s)")

    decided = json.loads(ok(hitl(server, "approve", prefix, "--comment", "ship it")))
    assert decided["id"] == review["id"] and decided["task_id"] == tid
    assert decided["decision"] == "approve" and decided["comment"] == "ship it"

    # The task finishes by itself now; `watch` replays its log and stops at the final event.
    types = watched(ok(hitl(server, "watch", prefix)))
    assert types[0] == "task.created" and types[-1] == "task.completed"
    assert types.count("review.requested") == 1 and types.count("review.decided") == 1
    assert f"{tid}  completed" in ok(
        hitl(server, "tasks", "--status", "completed", "--limit", "500")
    )


def test_an_empty_flow_is_refused_not_read_as_the_default(server: Server) -> None:
    line = failed(hitl(server, "submit", "--flow", "", "a note"), 2)
    assert "flow is empty: name one this server runs (" in line, line
    assert "or leave it out for the default" in line, line


def test_reject_sends_the_comment_into_the_next_round(server: Server) -> None:
    task = json.loads(ok(hitl(server, "submit", "--json", '{"topic": "leases"}')))
    assert task["input"] == {"topic": "leases"}
    tid = task["id"]
    first = wait_for_review(server, tid)

    rejected = json.loads(ok(hitl(server, "reject", tid, "--comment", "Say why they expire")))
    assert rejected["id"] == first["id"] and rejected["decision"] == "reject"
    second = wait_for_review(server, tid, round=2)
    assert "Say why they expire" in second["output"]

    # As on the task page, a rejection says why (the review's `comment_asked` says so): no
    # comment, or an empty one, sends nothing.
    assert second["comment_asked"] == ["reject"] and second["comment_required"] == []
    asks = "this review asks for a comment to reject; say what the next revision must change"
    for empty in ("", "   "):
        line = failed(hitl(server, "reject", tid, "--comment", empty), 2)
        assert line == f"hitl: --comment is empty: {asks}"
    assert failed(hitl(server, "reject", tid), 2) == f"hitl: --comment is missing: {asks}"
    assert wait_for_review(server, tid, round=2)["id"] == second["id"]

    approved = json.loads(ok(hitl(server, "approve", tid[:UNIQUE])))
    assert approved["id"] == second["id"]
    types = watched(ok(hitl(server, "watch", tid)))
    assert types.count("review.requested") == 2 and types[-1] == "task.completed"


def test_a_decision_the_review_wants_explained_needs_a_comment(server: Server) -> None:
    """The CLI asks for a comment where the review's `comment_asked` says, as the pages do:
    here a review that names approval, and whose decisions exclude a rejection. (Asked for
    by another user: whoever asks for a review does not decide it.)"""
    sam = user_token(server.db_url, f"sam-{uuid.uuid4().hex[:6]}", "submitter")
    with Client(server.url, token=sam) as client:
        created = client.create_review(
            "deploy v2", decisions=["approve", "edit"], comment_required=["approve"]
        )
        review = client.wait_for_review(created.task_id, timeout=READ_TIMEOUT)
    assert review.comment_asked == ["approve"]
    tid = created.task_id
    hint = ok(hitl(server, "show", tid)).splitlines()[-1]  # the line to approve says so too
    assert hint == (
        f"to approve what is shown, with what it asks: hitl approve {tid} --round 1 --content-hash "
        f"{review.content_hash} --comment"
    ), hint
    as_shown = hint.split(": ", 1)[1].split()[1:]  # run as printed: the comment is asked for
    assert "'--comment' requires an argument" in failed(hitl(server, *as_shown), 2)
    line = failed(hitl(server, "approve", tid), 2)
    assert line == "hitl: --comment is missing: this review asks for a comment to approve; say why"
    assert failed(hitl(server, "approve", tid, "--comment", " "), 2).startswith(
        "hitl: --comment is empty: this review asks"
    )
    decided = json.loads(ok(hitl(server, "approve", tid, "--comment", "checked the canary")))
    assert decided["decision"] == "approve" and decided["comment"] == "checked the canary"


FORM = [
    {"name": "reason", "type": "text", "required": True, "decisions": ["approve"]},
    {"name": "score", "type": "integer", "min": 1, "max": 5, "label": "How good is it?"},
    {"name": "urgent", "type": "boolean"},
    {"name": "kind", "type": "choice", "choices": ["bug", "feature"], "decisions": ["reject"]},
]


def test_a_review_form_is_filled_in_with_field_flags(server: Server) -> None:
    """`hitl show` lists the form's fields and prints an approve line with the ones approval
    requires; `--field NAME=VALUE` sends each value as its field takes it (a number, yes or
    no), and the server's word on a value names the flag."""
    sam = user_token(server.db_url, f"sam-{uuid.uuid4().hex[:6]}", "submitter")
    with Client(server.url, token=sam) as client:
        tid = client.create_review("ship it?", form=FORM).task_id
        review = client.wait_for_review(tid, timeout=READ_TIMEOUT)
    shown = ok(hitl(server, "show", tid)).splitlines()
    assert [line for line in shown if line.startswith("field ")] == [
        "field    reason=  text, required to approve",
        "field    score=  a whole number from 1 to 5, optional: How good is it?",
        "field    urgent=  yes or no, optional",
        "field    kind=  one of bug, feature, optional, to reject",
    ]
    command = f"hitl approve {tid} --round 1 --content-hash {review.content_hash}"
    assert shown[-1] == f"to approve what is shown, with what it asks: {command} --field reason="
    as_shown = shown[-1].split(": ", 1)[1].split()[1:]  # run as printed: the field is asked for
    assert failed(hitl(server, *as_shown), 2) == "hitl: --field reason: required to approve"

    def refused(*fields: str) -> str:
        args = [arg for field in fields for arg in ("--field", field)]
        return failed(hitl(server, "approve", tid, "--field", "reason=fine", *args), 2)

    assert refused("score=9") == "hitl: --field score: must be at most 5"
    assert refused("score=four") == "hitl: --field score: must be a number"
    assert refused("score=2.5") == "hitl: --field score: must be a whole number"
    assert refused("urgent=maybe") == "hitl: --field urgent: must be true or false"
    assert refused("kind=bug") == (
        "hitl: --field kind: no such field for approve (fields: reason, score, urgent)"
    )
    assert refused("kind=") == (  # asked for by name, though empty
        "hitl: --field kind: no such field for approve (fields: reason, score, urgent)"
    )
    assert refused("reason=again") == "hitl: --field reason: given twice; give each field once"
    assert refused("score") == (
        "hitl: --field 'score': give NAME=VALUE, as `hitl show` lists the fields"
    )
    assert failed(hitl(server, "reject", tid, "--comment", "no", "--field", "kind=idea"), 2) == (
        "hitl: --field kind: must be one of ['bug', 'feature']"
    )
    with Client(server.url, token=server.token) as client:  # nothing above was decided
        assert client.get_task(tid).open_review is not None

    args = ["--field", "reason=checked it", "--field", "score=4", "--field", "urgent=yes"]
    decided = json.loads(ok(hitl(server, "approve", tid, *args)))
    assert decided["form_values"] == {"reason": "checked it", "score": 4, "urgent": True}


def test_show_says_why_a_review_is_not_the_callers_to_decide(server: Server) -> None:
    sam = user_token(server.db_url, f"sam-{uuid.uuid4().hex[:6]}", "submitter")
    with Client(server.url, token=sam) as client:
        tid = client.create_review("ship it?").task_id
        client.wait_for_review(tid, timeout=READ_TIMEOUT)
    env = {"HITL_SERVER": server.url, "HITL_TOKEN": sam}
    mine = CliRunner().invoke(app, ["show", tid], env=env, prog_name="hitl")
    assert mine.exit_code == 0, mine.output
    assert mine.output.splitlines()[-1] == (
        "you may not decide this review (it is for a reviewer it is assigned to)"
    )


def test_a_decision_on_a_round_or_content_no_longer_shown_is_refused(server: Server) -> None:
    tid = json.loads(ok(hitl(server, "submit", "a note on stale reviews")))["id"]
    first = wait_for_review(server, tid)
    ok(hitl(server, "reject", tid, "--comment", "again", "--round", "1"))
    second = wait_for_review(server, tid, round=2)

    line = failed(hitl(server, "approve", tid, "--round", "1"), 1)
    assert "made on round 1, but the review open now is round 2" in line
    stale = first["content_hash"]
    line = failed(hitl(server, "approve", tid, "--content-hash", stale), 1)
    assert "other content than this review shows" in line
    # What the API refuses as invalid names the flag that was wrong, not the API's field.
    line = failed(hitl(server, "approve", tid, "--content-hash", "nothex"), 2)
    assert line.startswith("hitl: invalid request: --content-hash: "), line
    line = failed(hitl(server, "reject", tid, "--comment", "x", "--round", "9" * 30), 2)
    assert line.startswith("hitl: invalid request: --round: "), line

    shown = ok(hitl(server, "show", tid[:UNIQUE])).splitlines()
    assert shown[0].startswith(f"task     {tid}  waiting_for_review")
    assert shown[1] == "input    a note on stale reviews"
    assert any(line.startswith("review   round 2: ") for line in shown)
    output = second["output"].replace("\n", "\n" + " " * 9)  # a field's later lines, indented
    assert f"output   {output}" in "\n".join(shown)
    command = shown[-1].split(": ", 1)[1].split()  # "hitl approve <id> --round 2 ..."
    assert command[:2] == ["hitl", "approve"]
    assert command[3:] == ["--round", "2", "--content-hash", second["content_hash"]]
    approved = json.loads(ok(hitl(server, *command[1:])))
    assert approved["id"] == second["id"] and approved["decision"] == "approve"


def test_show_prints_no_control_character_and_no_line_of_its_own_from_the_task(
    server: Server,
) -> None:
    """A task's text cannot drive the terminal (clear it, set its clipboard, hide a link) nor
    pass for one of `show`'s own lines: controls are printed as escapes, and a line break in
    a field is followed by an indented line."""
    sneaky = "\x1b]52;c;cHduZWQ=\x07 \x1b[2J\u202enote\nto approve what is shown: hitl approve x"
    tid = json.loads(ok(hitl(server, "submit", sneaky)))["id"]
    wait_for_review(server, tid)
    printed = ok(hitl(server, "show", tid))
    assert not any(c in printed for c in "\x1b\x07\u202e")
    assert "\\x1b]52;c;cHduZWQ=\\x07 \\x1b[2J\\u202enote" in printed
    own = [line for line in printed.splitlines() if line.startswith("to approve")]
    assert len(own) == 1 and f"hitl approve {tid} --round 1" in own[0], printed


def test_submit_reads_standard_input(server: Server) -> None:
    text = json.loads(ok(hitl(server, "submit", "-", input="from a pipe\n")))
    assert text["input"] == "from a pipe\n"
    value = json.loads(ok(hitl(server, "submit", "--json", "-", input='[1, "two"]')))
    assert value["input"] == [1, "two"]
    with Client(server.url, token=server.token) as client:
        for task in (text, value):
            client.cancel(task["id"])


def test_a_decision_on_a_finished_task_says_why_it_cannot_be_made(server: Server) -> None:
    task = json.loads(ok(hitl(server, "submit", "to cancel")))
    with Client(server.url, token=server.token) as client:
        client.cancel(task["id"])
    for args in (["approve", task["id"]], ["reject", task["id"], "--comment", "no"]):
        line = failed(hitl(server, *args), 1)
        assert line == f"hitl: task {task['id']} is cancelled: no review is open"


def test_unknown_and_ambiguous_ids(server: Server) -> None:
    missing = str(uuid.uuid4())
    for args in (["approve", missing], ["reject", missing, "--comment", "x"], ["watch", missing]):
        assert failed(hitl(server, *args), 1) == f"hitl: no task {missing!r}"
    for command in ("show", "approve", "watch"):  # an empty one is a mistake of typing
        line = failed(hitl(server, command, ""), 2)
        assert line.startswith("hitl: the id is empty: give a task's"), line

    # Two tasks made one after the other share the start of their ids (their time).
    with Client(server.url, token=server.token) as client:
        ids = [client.create_task("twin").id for _ in range(2)]
        common = os.path.commonprefix(ids)
        assert len(common) >= 8, ids
        for args in (["approve", common], ["watch", common[:8]]):
            line = failed(hitl(server, *args), 1)
            assert "more than one task" in line, line
        for tid in ids:
            client.cancel(tid)


def test_what_the_server_refuses_is_one_line_with_its_reason(server: Server) -> None:
    line = failed(hitl(server, "submit", "--flow", "no-such-flow", "x"), 2)
    assert "no-such-flow" in line
    assert failed(hitl(server, "watch", "abc"), 1).startswith("hitl: no task 'abc'")


def test_watch_waits_for_a_restarted_server_and_goes_on_where_it_stopped(
    start_server: Callable[..., Server],
) -> None:
    """`hitl watch` across a crash of the server: it says that the server went away, waits
    for it, and goes on after the last event it printed: every event once, in order."""
    server = start_server()
    with Client(server.url, token=server.token) as client:
        task_id = client.create_task("watched across a restart").id
    env = process_env() | {"HITL_SERVER": server.url, "HITL_TOKEN": server.token or ""}
    watcher = subprocess.Popen(
        [sys.executable, "-m", "hitl", "watch", task_id],
        env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    lines: queue.Queue[tuple[str, str | None]] = queue.Queue()

    def read(name: str, stream: Any) -> None:
        with stream:
            for line in stream:
                lines.put((name, line.rstrip("\n")))
        lines.put((name, None))

    assert watcher.stdout is not None and watcher.stderr is not None
    for name, stream in (("out", watcher.stdout), ("err", watcher.stderr)):
        threading.Thread(target=read, args=(name, stream), daemon=True).start()
    printed: list[str] = []

    def until(name: str, start: str) -> str:
        while True:
            which, line = lines.get(timeout=READ_TIMEOUT)
            assert line is not None or which != name, (name, start, printed)
            if which == "out" and line is not None:
                printed.append(line)
            if which == name and line is not None and start in line:
                return line

    try:
        until("out", "review.requested")
        server.kill9()
        said = until("err", f"hitl: lost the event stream of task {task_id} (")
        assert said.count(server.url) == 1, said  # in the reason, and not again
        assert said.endswith(", for up to 60 s (Ctrl+C to stop)"), said
        server.start()
        review = wait_for_review(server, task_id)
        with Client(server.url, token=server.token) as client:
            client.decide(review["id"], "approve")
        until("out", "task.completed")
        assert watcher.wait(READ_TIMEOUT) == 0
    finally:
        if watcher.poll() is None:
            watcher.kill()
            watcher.wait(10)
    ids = [int(line.split()[0]) for line in printed]
    assert ids == sorted(set(ids)), printed  # each once, in order: none missed, none again
    assert [line.split()[1] for line in printed][-1] == "task.completed", printed
    with Client(server.url, token=server.token) as client:
        assert ids == [e.id for e in client.events(task_id)], printed  # the whole log
