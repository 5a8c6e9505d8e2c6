"""The command line: `hitl serve`, `hitl worker`, `hitl db upgrade`, the client commands, and
`hitl user`, `hitl token`, `hitl login-link` and `hitl audit` (identity)."""

from __future__ import annotations

import io
import sys
from collections.abc import Sequence
from typing import Any

import click
import typer
from typer.core import TyperGroup

from hitl.cli import db, identity, notify, serve, tasks
from hitl.cli._common import FAILED, USAGE

# Typer 0.29 raises its own copy of click's exceptions (`typer.TyperException` is their base);
# older ones raise click's.
USAGE_ERRORS = (typer.TyperException, click.ClickException)
ABORTS = (typer.Abort, click.exceptions.Abort)


class OneLineErrors(TyperGroup):
    """Click's usage errors (a missing argument, a bad value) on one line, as every other error
    of the command line, instead of a usage banner and a box."""

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        windows_expand_args: bool = True,
        **extra: Any,
    ) -> Any:
        _escape_what_the_terminal_cannot_show()

        def run() -> Any:
            return super(OneLineErrors, self).main(
                args, prog_name, complete_var, False, windows_expand_args, **extra
            )

        if not standalone_mode:
            return run()
        try:
            result = run()
        except USAGE_ERRORS as exc:
            if type(exc).__name__ == "NoArgsIsHelpError":
                sys.exit(USAGE)  # the help is printed already
            ctx = getattr(exc, "ctx", None)
            where = f"{ctx.command_path}: " if ctx is not None else "hitl: "
            see = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
            typer.echo(where + " ".join(exc.format_message().split()) + see, err=True)
            sys.exit(getattr(exc, "exit_code", USAGE))
        except ABORTS:
            typer.echo("hitl: aborted", err=True)
            sys.exit(FAILED)
        sys.exit(result if isinstance(result, int) else 0)


def _escape_what_the_terminal_cannot_show() -> None:
    """A character that the output's encoding lacks (李 on a Latin-1 terminal) is written as an
    escape (`\\u674e`) instead of ending the command with a traceback: names are Unicode."""
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper) and stream.errors == "strict":
            stream.reconfigure(errors="backslashreplace")


app = typer.Typer(
    cls=OneLineErrors,
    help="hitl: a durable human-in-the-loop review service.",
    no_args_is_help=True,
    # A bug's traceback must not print the settings (a database password) it had in hand.
    pretty_exceptions_show_locals=False,
)
app.command()(serve.serve)
app.command()(serve.worker)
for command in (tasks.submit, tasks.tasks, tasks.show, tasks.watch, tasks.approve, tasks.reject):
    app.command()(command)

database = typer.Typer(help="Database schema.", no_args_is_help=True)
database.command("upgrade")(db.upgrade)
app.add_typer(database, name="db")

users = typer.Typer(help="Users and service accounts (on the database).", no_args_is_help=True)
users.command("add")(identity.add_user)
users.command("list")(identity.list_users)
users.command("disable")(identity.disable_user)
app.add_typer(users, name="user")

tokens = typer.Typer(help="API tokens (on the database).", no_args_is_help=True)
tokens.command("create")(identity.create_token)
tokens.command("list")(identity.list_tokens)
tokens.command("revoke")(identity.revoke_token)
app.add_typer(tokens, name="token")

app.command("login-link")(identity.login_link)

channels = typer.Typer(
    help="Notification channels: webhooks and Apprise URLs (admins, on a running server).",
    no_args_is_help=True,
)
channels.command("add")(notify.add_channel)
channels.command("list")(notify.list_channels)
channels.command("remove")(notify.remove_channel)
app.add_typer(channels, name="channel")

deliveries = typer.Typer(
    help="The notifications' delivery log (admins, on a running server).", no_args_is_help=True
)
deliveries.command("list")(notify.list_deliveries)
deliveries.command("replay")(notify.replay_delivery)
app.add_typer(deliveries, name="delivery")

audit = typer.Typer(
    help="The audit log: who changed what, and who signed in.", no_args_is_help=True
)
audit.command("export")(identity.export_audit)
app.add_typer(audit, name="audit")
