"""`hitl user`, `hitl token`, `hitl login-link` and `hitl audit`: who may use hitl.

They work on the database directly (`--db`, HITL_DATABASE_URL), as `hitl db upgrade` does, so
they need no server and no token: whoever can open the database administers it. Each change is
recorded in the audit log as made by `cli:<the operating system's user>`.

A command that makes a secret (a token, a sign-in link) prints it alone on standard output, so
that `TOKEN=$(hitl token create ...)` works, and what it says about it on standard error.
"""

from __future__ import annotations

import asyncio
import getpass
import json
import time
import unicodedata
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from hitl.cli._common import USAGE, DbOption, ServerOption, fail, server_settings, server_url

if TYPE_CHECKING:
    from hitl.service.admin import AuditRow
    from hitl.service.identity import Identity

T = TypeVar("T")

AUDIT_PAGE = 1000  # audit rows read at once by `hitl audit export`

NameArgument = Annotated[str, typer.Argument(help="the user's name", show_default=False)]
RolesOption = Annotated[
    list[str],
    typer.Option("--role", help="submitter, reviewer or admin; repeatable", show_default=False),
]


# -- users ---------------------------------------------------------------------------------------


def add_user(
    name: NameArgument,
    role: RolesOption,
    email: Annotated[str | None, typer.Option(help="their e-mail address")] = None,
    database: DbOption = None,
) -> None:
    """Add a user: they sign in with a link (`hitl login-link NAME`) or with tokens."""
    from hitl.service.identity import check_email, check_name, roles_text

    _usage(lambda: (check_name(name), roles_text(role), check_email(email)))
    row = _run(database, lambda identity: identity.add_user(name, role, email, by=_by()))
    typer.echo(f"added user {row.name!r}, roles {_roles(row.roles)}")


def list_users(database: DbOption = None) -> None:
    """List users and service accounts: name, kind, roles, e-mail, when disabled."""
    rows = _run(database, lambda identity: identity.users(), reads=True)
    if not rows:
        typer.echo("no users yet: `hitl user add NAME --role ROLE` adds one", err=True)
        return
    _table(
        ("name", "kind", "roles", "email", "disabled"),
        [(r.name, r.kind, _roles(r.roles), r.email, _when(r.disabled_at)) for r in rows],
    )


def disable_user(name: NameArgument, database: DbOption = None) -> None:
    """Disable a user or service account: their sessions end, their tokens stop working."""
    started = time.time()
    row = _run(database, lambda identity: identity.disable_user(name, by=_by()))
    if row.disabled_at is not None and row.disabled_at < started:
        typer.echo(f"{row.name!r} was disabled already, at {_when(row.disabled_at)}")
    else:
        typer.echo(f"disabled {row.name!r}: their sessions have ended, their tokens no longer work")


# -- tokens --------------------------------------------------------------------------------------


def create_token(
    name: Annotated[str, typer.Option(help="the token's name, unique", show_default=False)],
    role: RolesOption,
    user: Annotated[
        str | None,
        typer.Option(
            help="whose token it is; if left out, a service account named as the token, "
            "made for it",
            show_default=False,
        ),
    ] = None,
    expires: Annotated[
        str | None,
        typer.Option(
            help="it stops working after this long: 30d, 12h, 45m, 90s; never if left out"
        ),
    ] = None,
    database: DbOption = None,
) -> None:
    """Make an API token and print it, alone, on standard output (it is shown only once)."""
    from hitl.service.identity import check_name, roles_text

    _usage(lambda: (check_name(name, "token name"), roles_text(role)))
    expires_in = _duration(expires, "--expires") if expires is not None else None

    async def create(identity: Identity) -> tuple[str, str]:
        secret, row = await identity.create_token(name, role, user, expires_in, by=_by())
        [owner] = [p for p in await identity.users() if p.id == row.principal_id]
        kind = "service account" if owner.kind == "service" else "user"
        ends = f"expires {_when(row.expires_at)}" if row.expires_at else "never expires"
        return secret, (
            f"token {row.name!r} for {kind} {owner.name!r}, roles {_roles(row.roles)}, {ends}; "
            "it is shown once: store it now"
        )

    secret, about = _run(database, create)
    typer.echo(secret)
    typer.echo(about, err=True)


def list_tokens(database: DbOption = None) -> None:
    """List tokens, never the tokens themselves: name, owner, roles, dates, whether revoked."""
    rows = _run(database, lambda identity: identity.tokens(), reads=True)
    if not rows:
        typer.echo("no tokens yet: `hitl token create` makes one", err=True)
        return
    header = ("name", "principal", "roles", "created", "expires", "last-used", "revoked")
    _table(
        header,
        [
            (
                t.name,
                owner,
                _roles(t.roles),
                _when(t.created_at),
                _when(t.expires_at, "never"),
                _when(t.last_used_at, "never"),
                _when(t.revoked_at),
            )
            for t, owner in rows
        ],
    )


def revoke_token(
    name: Annotated[str, typer.Argument(help="the token's name", show_default=False)],
    database: DbOption = None,
) -> None:
    """Revoke a token: it stops working (in a running server, within seconds)."""
    from hitl.service.identity import check_name

    # Names are stored as `create` cleaned them (NFC, trimmed): look this one up the same way.
    cleaned = _usage(lambda: check_name(name, "token name"))
    started = time.time()
    row = _run(database, lambda identity: identity.revoke_token(cleaned, by=_by()))
    if row.revoked_at is not None and row.revoked_at < started:
        typer.echo(f"token {row.name!r} was revoked already, at {_when(row.revoked_at)}")
    else:
        typer.echo(f"revoked token {row.name!r}")


# -- sign-in links -------------------------------------------------------------------------------


def login_link(name: NameArgument, server: ServerOption = None, database: DbOption = None) -> None:
    """Print a one-time link that signs a user in to the web pages (for 15 minutes)."""
    from hitl.service.identity import LINK_SECONDS

    base = server_url(server)
    secret = _run(database, lambda identity: identity.login_link(name, by=_by()))
    typer.echo(f"{base}/login/{secret}")
    typer.echo(
        f"a one-time sign-in link for {name!r}, valid for {LINK_SECONDS / 60:g} minutes "
        f"(until {_when(time.time() + LINK_SECONDS)}): give it to them privately",
        err=True,
    )


# -- the audit log -------------------------------------------------------------------------------


def export_audit(
    since: Annotated[
        str | None,
        typer.Option(
            help="from this date or time (2026-11-01, 2026-11-01T09:30, UTC unless it says), "
            "this long ago (7d, 12h), or these seconds since the epoch; the whole log if left "
            "out",
            show_default=False,
        ),
    ] = None,
    database: DbOption = None,
) -> None:
    """Write the audit log as JSON lines, oldest first (id, at, actor, action, detail...)."""
    start = _since(since) if since is not None else 0.0

    async def export(identity: Identity) -> None:
        after = 0
        while True:
            rows = await identity.audit_log(start, after=after, limit=AUDIT_PAGE)
            for row in rows:
                typer.echo(json.dumps(_audit_record(row), ensure_ascii=False))
            if len(rows) < AUDIT_PAGE:
                return
            after = rows[-1].id or after  # rows come in id order

    _run(database, export, reads=True)


def _audit_record(row: AuditRow) -> dict[str, Any]:
    detail: Any = None
    if row.detail:
        try:
            detail = json.loads(row.detail)
        except ValueError:
            detail = row.detail
    return {
        "id": row.id,
        "at": _iso(row.at),
        "actor": row.actor,
        "action": row.action,
        "target": row.target,
        "address": row.address,
        "detail": detail,
    }


def _since(text: str) -> float:
    """A date or time (UTC unless it says), a duration meaning that long ago, or seconds
    since the epoch: what the API's `since` takes too."""
    from hitl.service.identity import parse_moment

    return _usage(lambda: parse_moment(text, time.time()), "--since")


# -- what the commands share ---------------------------------------------------------------------


def _run(database: str | None, act: Callable[[Identity], Awaitable[T]], reads: bool = False) -> T:
    """`act` on the identity service of the database; its errors as one line each.

    `reads`: the command only reads, so a database that does not exist is an error, not
    created."""
    settings = server_settings(database_url=database)
    from hitl.service.admin import (
        ConstraintError,
        DatabaseNotReady,
        DatabaseUnreachable,
        Unavailable,
        identity_at,
    )
    from hitl.service.errors import HitlError, Invalid

    async def run() -> T:
        async with identity_at(
            settings.database_url,
            settings.database_wait_seconds,
            create=settings.create_database,
            must_exist=reads,
        ) as identity:
            return await act(identity)

    try:
        return asyncio.run(run())
    except Invalid as exc:
        fail(exc.message, USAGE)
    except HitlError as exc:  # not found, already exists, disabled
        fail(exc.message)
    except ConstraintError:
        fail("someone else made the same change at the same moment: look, then try again")
    except (DatabaseNotReady, DatabaseUnreachable, Unavailable) as exc:
        fail(str(exc))


def _usage(check: Callable[[], T], flag: str | None = None) -> T:
    """Check what was typed before the database is opened: a refusal is a usage error."""
    from hitl.service.errors import Invalid

    try:
        return check()
    except Invalid as exc:
        fail(f"{flag}: {exc.message}" if flag else exc.message, USAGE)


def _duration(text: str, flag: str) -> float:
    from hitl.service.identity import parse_duration

    return _usage(lambda: parse_duration(text), flag)


def _by() -> str:
    """Who made a change, for the audit log: the command line, and as which system user."""
    try:
        return "cli:" + getpass.getuser()
    except Exception:  # no user name in the environment nor in the password database
        return "cli"


def _roles(roles: str) -> str:
    return ",".join(roles.split())


def _iso(at: float) -> str:
    try:
        return datetime.fromtimestamp(at, UTC).isoformat().replace("+00:00", "Z")
    except (OverflowError, ValueError, OSError):  # past the calendar (a row written so)
        return _beyond(at)


def _when(at: float | None, none: str = "-") -> str:
    """A moment for a table: minutes, UTC."""
    if at is None:
        return none
    try:
        return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%MZ")
    except (OverflowError, ValueError, OSError):
        return _beyond(at)


def _beyond(at: float) -> str:
    """A moment no calendar date names (before `parse_duration` capped durations, a token
    could be made to expire in the year 275,000)."""
    return "after 9999" if at > 0 else "before 1970"


def _width(text: str) -> int:
    """Columns `text` takes in a terminal: wide characters (李) two, combining marks none."""
    return sum(
        0 if unicodedata.combining(c) else 2 if unicodedata.east_asian_width(c) in "WF" else 1
        for c in text
    )


def _table(header: Sequence[str], rows: Iterable[Sequence[str | None]]) -> None:
    """Aligned columns; an empty cell is '-', and what a terminal would act on is shown as '?'."""
    lines = [list(header)] + [
        ["".join(c if c.isprintable() else "?" for c in cell or "-") for cell in row]
        for row in rows
    ]
    widths = [max(_width(line[i]) for line in lines) for i in range(len(header))]
    for line in lines:
        cells = [
            cell + " " * (width - _width(cell)) for cell, width in zip(line, widths, strict=True)
        ]
        typer.echo("  ".join(cells).rstrip())
