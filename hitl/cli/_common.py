"""What the commands share: settings from flags, one-line errors, the server's URL, logging."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from pydantic import BaseModel, ValidationError
from pydantic_settings import SettingsError

from hitl.config import Settings

if TYPE_CHECKING:
    from hitl.client import Client

# Exit codes. FAILED: the command was well formed but could not be done (no server answers,
# no such task, already decided, a server error). USAGE: what was typed or configured is wrong.
FAILED = 1
USAGE = 2

LOG_LEVELS = ("debug", "info", "warning", "error", "critical")

# The flag of a setting, where it is not `--` and the setting's name with dashes.
FLAG_NAMES = {
    "database_url": "--db",
    "flows": "--flow",
    "run_workers": "--workers/--no-workers",
    "allowed_hosts": "--allowed-host",
}

DbOption = Annotated[
    str | None,
    typer.Option("--db", help="database URL (HITL_DATABASE_URL)", show_default=False),
]
FlowOption = Annotated[
    list[str] | None,
    typer.Option(
        "--flow",
        help="name=package.module:factory; repeatable (HITL_FLOWS, a JSON list)",
        show_default=False,
    ),
]
ConcurrencyOption = Annotated[
    int | None,
    typer.Option(help="tasks one process runs at once (HITL_CONCURRENCY)"),
]
LogLevelOption = Annotated[
    str | None,
    typer.Option(help="debug, info, warning or error (HITL_LOG_LEVEL)"),
]
LogFormatOption = Annotated[
    str | None,
    typer.Option(help="text, or json: one JSON object a line (HITL_LOG_FORMAT)"),
]
ServerOption = Annotated[
    str | None,
    typer.Option(
        "--server",
        envvar="HITL_SERVER",
        help="the hitl server's URL; if left out, http://HITL_HOST:HITL_PORT, where "
        "`hitl serve` listens (http://127.0.0.1:8000 by default)",
        show_default=False,
    ),
]

TokenOption = Annotated[
    str | None,
    typer.Option(
        "--token",
        envvar="HITL_TOKEN",
        help="the API token to sign in with (`hitl token create` makes one); HITL_TOKEN keeps "
        "it out of the process list and the shell's history",
        show_default=False,
    ),
]
# What a 401 means, by whether a token was sent.
NO_TOKEN = "the server wants a token: set HITL_TOKEN or pass --token (hitl token create makes one)"
TOKEN_REFUSED = (
    "the server refused the token (HITL_TOKEN or --token): it is unknown, revoked or expired, "
    "or its user is disabled; `hitl token create` makes a new one"
)


def fail(message: str, code: int = FAILED) -> NoReturn:
    """Say what went wrong and what to do, on one line, and exit."""
    typer.echo(f"hitl: {' '.join(message.split())}", err=True)
    raise typer.Exit(code)


def build_settings(**flags: Any) -> Settings:
    """Settings from the `HITL_*` variables, overridden by the flags that were given.

    A flag that was not given is None, so the variable (or the default) applies.
    """
    given = {name: value for name, value in flags.items() if value is not None}
    try:
        return Settings(**given)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = str(error["loc"][0]) if error["loc"] else ""
        message = str(error["msg"]).removeprefix("Value error, ")
        if not field:
            fail(f"invalid settings: {message}", USAGE)
        if field in given:
            flag = FLAG_NAMES.get(field, "--" + field.replace("_", "-"))
            fail(f"invalid {flag} {given[field]!r}: {message}", USAGE)
        fail(f"invalid setting HITL_{field.upper()}: {message}", USAGE)
    except SettingsError as exc:  # a variable that must be JSON is not
        found = re.search(r'field "(\w+)"', str(exc))
        name = f"HITL_{found.group(1).upper()}" if found else "a HITL_* variable"
        fail(f"invalid setting {name}: it must be JSON, e.g. '[\"x=pkg.mod:f\"]' for a list", USAGE)


def server_settings(**flags: Any) -> Settings:
    """Settings for a process that opens the database: also checks the URL and the log level."""
    from hitl.service.admin import BadDatabaseURL, check_url

    settings = build_settings(**flags)
    try:
        check_url(settings.database_url)
    except BadDatabaseURL as exc:
        where = "--db" if flags.get("database_url") is not None else "HITL_DATABASE_URL"
        fail(f"{where}: {exc}", USAGE)
    if settings.log_level.lower() not in LOG_LEVELS:
        where = "--log-level" if flags.get("log_level") else "HITL_LOG_LEVEL"
        fail(f"{where}: unknown level {settings.log_level!r}: use {', '.join(LOG_LEVELS)}", USAGE)
    return settings


def configure_logging(settings: Settings) -> None:
    level = settings.log_level.upper()
    if settings.log_format == "json":
        from hitl.cli.logformat import JsonLines

        handler = logging.StreamHandler()
        handler.setFormatter(JsonLines())
        logging.basicConfig(level=level, handlers=[handler])
    else:
        logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    if logging.getLogger().getEffectiveLevel() > logging.DEBUG:
        # Alembic says what it does at INFO ("Context impl SQLiteImpl.", "Running upgrade ..."):
        # noise between start-up and the line that says where to open hitl. Its warnings show.
        logging.getLogger("alembic").setLevel(logging.WARNING)


def browser_host(host: str) -> str:
    """The host to connect to for a server listening on `host`: loopback for 'every address'."""
    host = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
    return f"[{host}]" if ":" in host else host


def server_url(server: str | None) -> str:
    """`--server` / HITL_SERVER if given, else where `hitl serve` listens: HITL_HOST:HITL_PORT."""
    if server is not None and not server.strip():
        fail(
            "--server (HITL_SERVER) is empty: give the server's URL, as http://127.0.0.1:8000",
            USAGE,
        )
    if server:
        return server.rstrip("/")
    settings = build_settings()
    return f"http://{browser_host(settings.host)}:{settings.port}"


@contextmanager
def connect(
    server: str | None, token: str | None = None, flags: Mapping[str, str] | None = None
) -> Iterator[Client]:
    """A client of the server, signed in with `token` (else HITL_TOKEN) if there is one; what
    goes wrong talking to it ends the command with one line. `flags`: the command's flag or
    argument for each field of the API's body, said instead of the API's name for it."""
    import httpx

    from hitl.client import (
        BadServerURL,
        Client,
        HitlAPIError,
        HitlConnectionError,
        HitlProtocolError,
    )

    url = server_url(server)
    try:
        client = Client(url, token=token)
    except BadServerURL as exc:
        fail(str(exc), USAGE)
    except ValueError as exc:  # a token that cannot be sent; the message does not repeat it
        fail(f"--token (HITL_TOKEN): {exc}", USAGE)
    try:
        with client:
            yield client
    except HitlAPIError as exc:
        if exc.status_code == 401:
            fail(TOKEN_REFUSED if token and token.strip() else NO_TOKEN)
        bad_input = exc.status_code in (400, 413, 422)
        detail = _flagged(str(exc.detail) if exc.detail else str(exc), flags or {})
        fail(detail, USAGE if bad_input else FAILED)
    except HitlConnectionError as exc:
        if isinstance(exc.error, httpx.ConnectError):
            fail(
                f"{exc}: start one with `hitl serve`, or point --server (HITL_SERVER) or "
                "HITL_HOST and HITL_PORT at it"
            )
        if isinstance(exc.error, httpx.TimeoutException):
            fail(f"{exc}: is it overloaded, or stuck?")
        fail(str(exc))
    except HitlProtocolError as exc:
        fail(f"{exc} (--server, HITL_SERVER)" if exc.url is not None else str(exc))
    except ValueError as exc:  # what the client refuses to send: an empty id, say
        fail(str(exc), USAGE)


def _flagged(detail: str, flags: Mapping[str, str]) -> str:
    """The API's complaint with the command's flag for each field it names: `body.round:`
    is `--round:`, `body.events.1:` is `--event:`, and `form.score:` is `--field score:`.
    An invalid request's problems, after `invalid request: `, are each named so."""
    head = "invalid request: "
    if detail.startswith(head):
        return head + "; ".join(_flag(p, flags) for p in detail[len(head) :].split("; "))
    return _flag(detail, flags)


def _flag(problem: str, flags: Mapping[str, str]) -> str:
    for field, flag in flags.items():
        # A form's field by its name, whatever it is; a list's item by its flag alone.
        part = r"\.([^:]+)" if field == "form" else r"(?:\.\d+)*"
        named = re.match(rf"(?:body\.|path\.|query\.)?{re.escape(field)}{part}:", problem)
        if named:
            said = " ".join([flag, *named.groups()])
            return f"{said}:{problem[named.end() :]}"
    return problem


# What a terminal would act on rather than show: C0 and C1 controls (escape sequences can
# clear the screen, set the clipboard, hide a link) and the bidirectional overrides and
# isolates (which reorder what is shown). A tab stays; a line break is `shown`'s to place.
_UNSHOWABLE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def shown(text: str, indent: int = 0) -> str:
    """Text from the server as a terminal should print it: each control character as an
    escape (`\\x1b`), and each line after the first indented by `indent` spaces, so that no
    text can pass for a line of hitl's own (`hitl show`'s "to approve" line, say)."""
    lines = text.replace("\r\n", "\n")
    visible = _UNSHOWABLE.sub(lambda m: ascii(m.group())[1:-1], lines)
    return visible.replace("\n", "\n" + " " * indent)


def print_json(data: Any) -> None:
    """`data` (an answer of the client: a model) as indented JSON, as the server sent it."""
    if isinstance(data, BaseModel):
        data = data.model_dump(mode="json")
    typer.echo(json.dumps(data, indent=2, default=str))
