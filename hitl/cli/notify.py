"""Notification channels and their delivery log, through a running server (admins):
`hitl channel add|list|remove`, `hitl delivery list|replay`."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import typer

from hitl.cli._common import ServerOption, TokenOption, connect, shown

KindOption = Annotated[
    str,
    typer.Option(
        "--kind",
        help="webhook: a signed JSON POST (Standard Webhooks); apprise: a message through an "
        "Apprise URL (slack://, msteams://, discord://, mailto://, ...)",
    ),
]


def add_channel(
    name: Annotated[str, typer.Argument(help="a name for it, unique")],
    url: Annotated[str, typer.Argument(help="where to send: an https:// URL or an Apprise URL")],
    kind: KindOption = "webhook",
    event: Annotated[
        list[str] | None,
        typer.Option(
            "--event",
            help="an event it receives (repeatable): review.requested, review.escalated, "
            "review.deadline_near, review.decided, task.created, task.completed, task.failed, "
            "task.cancelled; default: see docs/notifications.md",
        ),
    ] = None,
    server: ServerOption = None,
    token: TokenOption = None,
) -> None:
    """Send events to a webhook or an Apprise URL, from now on."""
    flags = {"name": "NAME", "url": "URL", "kind": "--kind", "events": "--event"}
    with connect(server, token, flags) as client:
        channel = client.add_channel(name, kind, url, event or None)
    typer.echo(f"{channel.name}: {channel.kind} {channel.url}")
    typer.echo(f"events: {' '.join(channel.events)}")
    if channel.secret:
        typer.echo(f"signing secret (shown only now): {channel.secret}")


def list_channels(server: ServerOption = None, token: TokenOption = None) -> None:
    """List the channels, removed ones last."""
    with connect(server, token) as client:
        channels = client.channels().data
    for c in sorted(channels, key=lambda c: c.removed_at is not None):
        gone = f"  (removed {_time(c.removed_at)})" if c.removed_at else ""
        typer.echo(f"{c.name}  {c.kind}  {c.url}  {' '.join(c.events)}{gone}")
    typer.echo(f"{len(channels)} channel(s)")


def remove_channel(
    name: Annotated[str, typer.Argument(help="the channel's name")],
    server: ServerOption = None,
    token: TokenOption = None,
) -> None:
    """Stop sending to a channel; its delivery log stays."""
    with connect(server, token, {"name": "NAME"}) as client:
        client.remove_channel(name)
    typer.echo(f"removed {name}")


def list_deliveries(
    channel: Annotated[str | None, typer.Option(help="only this channel's")] = None,
    status: Annotated[
        str | None, typer.Option(help="only pending, delivered or failed ones")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="at most this many")] = 20,
    server: ServerOption = None,
    token: TokenOption = None,
) -> None:
    """The delivery log, newest first: each delivery's tries and the receiver's answer."""
    with connect(server, token) as client:
        rows = client.deliveries(channel, status, limit).data
    for d in rows:
        answer = shown(str(d.last_code or d.last_error or ""))  # (the receiver's words)
        typer.echo(f"{d.id}  {d.status:<9} {d.channel}  {d.type:<20} tries {d.attempts}  {answer}")
    typer.echo(f"{len(rows)} deliver{'y' if len(rows) == 1 else 'ies'}")


def replay_delivery(
    delivery_id: Annotated[str, typer.Argument(help="the delivery's id (`hitl delivery list`)")],
    server: ServerOption = None,
    token: TokenOption = None,
) -> None:
    """Send a delivered or failed delivery again, now, with the same idempotency id."""
    with connect(server, token) as client:
        row = client.replay(delivery_id)
    typer.echo(f"{row.id} is {row.status} again")


def _time(at: datetime) -> str:
    """A time as the API writes it (ISO 8601, UTC)."""
    return at.isoformat().replace("+00:00", "Z")
