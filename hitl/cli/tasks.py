"""The commands that talk to a running server, signed in with --token (HITL_TOKEN): submit,
tasks, show, watch, approve, reject."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Annotated

import typer
from pydantic import JsonValue

from hitl.cli._common import USAGE, ServerOption, TokenOption, connect, fail, print_json, shown

if TYPE_CHECKING:
    from hitl.client import Client
    from hitl.client.models import FormField

TaskIdArgument = Annotated[
    str,
    typer.Argument(
        help="the task's id, or at least 4 characters of its start or its end that no other "
        "task shares"
    ),
]


def submit(
    text: Annotated[str, typer.Argument(help="the input; '-' reads standard input")],
    server: ServerOption = None,
    token: TokenOption = None,
    flow: Annotated[
        str | None, typer.Option(help="flow name; the server's default if left out")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="the input is JSON, not text")] = False,
) -> None:
    """Submit a task and print it."""
    value = _input(sys.stdin.read() if text == "-" else text, as_json)
    with connect(server, token, SUBMITTING) as client:
        print_json(client.create_task(value, flow=flow))


def _input(raw: str, as_json: bool) -> JsonValue:
    """The input as it will be sent, or a one-line error saying what to fix."""
    value: JsonValue = raw
    if as_json:
        try:
            value = json.loads(raw)
        except RecursionError:
            fail("the input JSON is nested too deeply: flatten it", USAGE)
        except ValueError as exc:
            if "integer string conversion" in str(exc):  # Python reads 4,300 digits at most
                fail("the input JSON holds an integer of over 4,300 digits: send it as text", USAGE)
            fail(
                f"the input is not valid JSON ({exc}): fix it, or leave out --json to send text",
                USAGE,
            )
    try:
        json.dumps(value, ensure_ascii=False, allow_nan=False).encode("utf-8")
    except UnicodeError:
        fail("the input is not valid UTF-8 text (a lone surrogate): fix it", USAGE)
    except ValueError:  # NaN, Infinity, or a number too large for a float (1e400)
        fail("the input JSON holds a number that is not finite: use a smaller one", USAGE)
    except RecursionError:
        fail("the input JSON is nested too deeply: flatten it", USAGE)
    return value


def tasks(
    server: ServerOption = None,
    token: TokenOption = None,
    status: Annotated[
        str | None,
        typer.Option(
            help="only tasks in this status: queued, running, waiting_for_review, completed, "
            "failed or cancelled"
        ),
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=500, help="at most this many")] = 20,
) -> None:
    """List tasks, newest first."""
    if status is not None:
        _check_status(status)
    with connect(server, token) as client:
        page = client.list_tasks(status=status, limit=limit)
    for task in page.data:
        typer.echo(f"{task.id}  {task.status:<20} round {task.round}  {task.flow}")
    typer.echo(f"{page.count} task(s)")


def _check_status(status: str) -> None:
    from hitl.service import TaskStatus

    known = [s.value for s in TaskStatus]
    if status not in known:
        fail(f"--status {status!r} is not a task status: use one of {', '.join(known)}", USAGE)


def show(task_id: TaskIdArgument, server: ServerOption = None, token: TokenOption = None) -> None:
    """Print a task and its open review: what you would approve or reject."""
    with connect(server, token) as client:
        task = client.get_task(task_id)
    typer.echo(f"task     {task.id}  {task.status}  flow {shown(task.flow)}")
    typer.echo(f"input    {_text(task.input)}")
    if task.error:
        typer.echo(f"error    {shown(task.error, 9)}")
    if task.status == "completed":
        typer.echo(f"result   {_text(task.result)}")
    review = task.open_review
    if review is None:
        return
    typer.echo(f"review   round {review.round}: {shown(review.prompt or 'review the output', 9)}")
    typer.echo(f"output   {_text(review.output)}")
    typer.echo(f"decide   {shown(', '.join(review.decisions))}")
    if review.may_decide is False:
        typer.echo("you may not decide this review (it is for a reviewer it is assigned to)")
        return
    for field in review.form:
        typer.echo(f"field    {_field(field)}")
    if "approve" not in review.decisions:
        return
    command = f"hitl approve {task.id} --round {review.round} --content-hash {review.content_hash}"
    # What approval must carry, as flags without their values: run as printed, each is
    # refused by name.
    asked = [f"--field {f.name}=" for f in review.form if f.required and f.asked_for("approve")]
    if "approve" in review.comment_asked:
        asked.append("--comment")
    if asked:
        typer.echo(f"to approve what is shown, with what it asks: {command} {' '.join(asked)}")
    else:
        typer.echo(f"to approve what is shown: {command}")


def _field(field: FormField) -> str:
    """A form field as `show` prints it: `score=  a whole number from 1 to 5, required to
    approve: How good is it?` (its name, what it takes, when, and its label)."""
    if field.type == "choice":
        kind = "one of " + ", ".join(field.choices)
    elif field.type == "boolean":
        kind = "yes or no"
    elif field.type in ("number", "integer"):
        kind = "a whole number" if field.type == "integer" else "a number"
        low, high = (_bound(b) for b in (field.min, field.max))
        if low and high:
            kind += f" from {low} to {high}"
        elif low or high:
            kind += f" of at least {low}" if low else f" of at most {high}"
    else:
        kind = "text" + (f" of at most {field.max_length} characters" if field.max_length else "")
    when = " or ".join(field.decisions)
    if field.required:
        kind += f", required to {when or 'decide'}"
    else:
        kind += ", optional" + (f", to {when}" if when else "")
    return shown(f"{field.name}=  {kind}" + (f": {field.label}" if field.label else ""), 9)


def _bound(number: float | None) -> str | None:
    """A field's bound as the server words it (`hitl.flow.review.bound`, which a client
    command does not load): 1234567, not 1.23457e+06; 2.5 as 2.5."""
    if number is None:
        return None
    return str(int(number)) if float(number).is_integer() else repr(number)


def _text(value: object) -> str:
    """A value as `show` prints it: text as it is, anything else as JSON; both `shown`."""
    return shown(value if isinstance(value, str) else json.dumps(value, ensure_ascii=False), 9)


WATCH_WAIT_SECONDS = 60.0  # how long `watch` waits for a server that went away to come back


def watch(task_id: TaskIdArgument, server: ServerOption = None, token: TokenOption = None) -> None:
    """Print a task's events as they happen, until it finishes.

    If the server goes away (a restart), wait up to a minute for it to come back.
    """
    import logging

    class Say(logging.Handler):  # the client's notice of a lost stream, on stderr
        def emit(self, record: logging.LogRecord) -> None:
            typer.echo(f"hitl: {shown(record.getMessage())} (Ctrl+C to stop)", err=True)

    notices, say = logging.getLogger("hitl.client"), Say(logging.WARNING)
    with connect(server, token) as client:
        task = client.get_task(task_id)
        notices.addHandler(say)
        propagated, notices.propagate = notices.propagate, False  # said once, here
        try:
            for event in client.follow(task.id, give_up_after=WATCH_WAIT_SECONDS):
                typer.echo(f"{event.id or '':>6} {event.type:<18} {json.dumps(event.data)}")
        finally:
            notices.removeHandler(say)
            notices.propagate = propagated


RoundOption = Annotated[
    int | None,
    typer.Option(
        "--round", min=1, help="the round you looked at (`hitl show`): refused if another is open"
    ),
]
HashOption = Annotated[
    str | None,
    typer.Option(
        "--content-hash",
        help="the content_hash of the output you looked at: refused if the output is other",
    ),
]


FieldOption = Annotated[
    list[str] | None,
    typer.Option(
        "--field",
        metavar="NAME=VALUE",
        help="a value for the review's form (`hitl show` lists its fields); once for each",
    ),
]


def approve(
    task_id: TaskIdArgument,
    server: ServerOption = None,
    token: TokenOption = None,
    comment: Annotated[str | None, typer.Option(help="a note for the record")] = None,
    field: FieldOption = None,
    round: RoundOption = None,
    content_hash: HashOption = None,
) -> None:
    """Approve a task's open review."""
    with connect(server, token, DECIDING) as client:
        _decide(client, task_id, "approve", comment, field, round, content_hash)


def reject(
    task_id: TaskIdArgument,
    comment: Annotated[
        str | None,
        typer.Option(help="what the next revision must change (required: reviews ask for one)"),
    ] = None,
    server: ServerOption = None,
    token: TokenOption = None,
    field: FieldOption = None,
    round: RoundOption = None,
    content_hash: HashOption = None,
) -> None:
    """Reject a task's open review, with a comment for the next revision."""
    with connect(server, token, DECIDING) as client:
        _decide(client, task_id, "reject", comment, field, round, content_hash)


def _decide(
    client: Client,
    task_id: str,
    decision: str,
    comment: str | None,
    fields: list[str] | None,
    round: int | None,
    content_hash: str | None,
) -> None:
    typed = _typed(fields or [])
    task = client.get_task(task_id)
    review = task.open_review
    if review is None:
        fail(f"task {task.id} is {task.status}: no review is open")
    if decision in review.comment_asked and not (comment or "").strip():
        # The review says which decisions need a comment (`comment_asked`), as the pages ask.
        why = "say what the next revision must change" if decision == "reject" else "say why"
        given = "is empty" if comment is not None else "is missing"
        fail(f"--comment {given}: this review asks for a comment to {decision}; {why}", USAGE)
    form = review.form_for(decision, typed)  # as the task page would send it
    decided = client.decide(
        review.id,
        decision,
        comment=comment,
        round=round,
        content_hash=content_hash,
        form=form or None,
    )
    print_json(decided)


def _typed(fields: list[str]) -> dict[str, str]:
    """The values typed as `--field NAME=VALUE`, by name; a one-line error for a flag that
    names no field, or names one twice."""
    typed: dict[str, str] = {}
    for given in fields:
        name, equals, text = given.partition("=")
        name = name.strip()
        if not equals or not name:
            fail(f"--field {given!r}: give NAME=VALUE, as `hitl show` lists the fields", USAGE)
        if name in typed:
            fail(f"--field {name}: given twice; give each field once", USAGE)
        typed[name] = text
    return typed


# The API's names for what the commands' flags and arguments set, as its 422s say them.
DECIDING = {
    "round": "--round",
    "content_hash": "--content-hash",
    "comment": "--comment",
    "form": "--field",
}
SUBMITTING = {"input": "TEXT", "flow": "--flow"}
