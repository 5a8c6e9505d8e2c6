"""`hitl user`, `hitl token`, `hitl login-link` and `hitl audit` on a real database, and the
client commands' `--token` (HITL_TOKEN) against a real server and a stub one.

Each command runs as a user runs it: the real command line, in this process (CliRunner) or,
where the terminal's encoding matters, in a process of its own. Each error is one line on
standard error, with exit code 1 (it could not be done) or 2 (what was typed is wrong), and
leaves the database as it was.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import os
import re
import subprocess
import sys
import time
import unicodedata
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner, Result

from hitl.cli import identity as identity_command
from hitl.cli.main import app
from hitl.service.identity import Identity
from hitl.store.engine import create_sync_engine
from tests.conftest import ROOT, Server, Stub, free_port, identity_call, process_env

TOKEN = re.compile(r"^hitl_[A-Za-z0-9_-]{43}$")
LINK = re.compile(r"^(?P<server>.+)/login/(?P<secret>[A-Za-z0-9_-]{43})$")
NO_TOKEN = (
    "hitl: the server wants a token: set HITL_TOKEN or pass --token (hitl token create makes one)"
)
BY = "cli:" + getpass.getuser()


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Not the caller's HITL_* variables: each test says what it sets."""
    for name in [n for n in os.environ if n.startswith("HITL_")]:
        monkeypatch.delenv(name)


def hitl(db: str | None, *args: str, **env: str) -> Result:
    """Run `hitl ARGS` on the database `db` (HITL_DATABASE_URL) with HITL_* variables `env`
    (`server="http://..."` → HITL_SERVER)."""
    variables = {f"HITL_{k.upper()}": v for k, v in env.items()}
    if db is not None:
        variables["HITL_DATABASE_URL"] = db
    return CliRunner().invoke(app, list(args), env=variables, prog_name="hitl")


def ok(result: Result) -> str:
    """Standard output of a command that succeeded."""
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    return result.stdout


def failed(result: Result, code: int) -> str:
    """The one line on standard error of a command that failed; nothing on standard output."""
    assert isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code == code, (result.stdout, result.stderr)
    assert result.stdout == ""
    [line] = result.stderr.splitlines()
    assert line.startswith("hitl"), line
    assert "Traceback" not in result.stderr
    return line


def rows_of(url: str, sql: str) -> list[tuple[Any, ...]]:
    """Read the database directly."""
    engine = create_sync_engine(url)
    try:
        with engine.connect() as connection:
            return [tuple(row) for row in connection.exec_driver_sql(sql).fetchall()]
    finally:
        engine.dispose()


def everything_in(url: str) -> str:
    """Every value of every table, as text: where a secret must not be."""
    engine = create_sync_engine(url)
    try:
        with engine.connect() as connection:
            tables = sa.inspect(connection).get_table_names()
            return "\n".join(
                repr(tuple(row))
                for table in tables
                for row in connection.exec_driver_sql(f'SELECT * FROM "{table}"').fetchall()
            )
    finally:
        engine.dispose()


def table(output: str) -> list[list[str]]:
    """A table the command printed, as cells (columns are two or more spaces apart)."""
    return [re.split(r"\s{2,}", line.strip()) for line in output.splitlines()]


def audit(url: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in ok(hitl(url, "audit", "export")).splitlines()]


# -- users ---------------------------------------------------------------------------------------


def test_users_are_added_listed_and_disabled(migrated_database: Callable[[], str]) -> None:
    url = migrated_database()
    assert ok(hitl(url, "user", "add", "José", "--role", "reviewer")) == (
        "added user 'José', roles reviewer\n"
    )
    ok(
        hitl(
            url,
            "user",
            "add",
            "李雷",
            "--role",
            "admin",
            "--role",
            "reviewer",
            "--email",
            "li@example.com",
        )
    )
    ok(hitl(url, "token", "create", "--name", "ci", "--role", "submitter"))

    listing = ok(hitl(url, "user", "list"))
    assert table(listing) == [
        ["name", "kind", "roles", "email", "disabled"],
        ["José", "user", "reviewer", "-", "-"],
        ["李雷", "user", "admin,reviewer", "li@example.com", "-"],
        ["ci", "service", "submitter", "-", "-"],
    ]
    # Columns line up on a terminal: 李雷 takes two columns a character, as José four in all.
    lines = listing.splitlines()
    assert lines[1].startswith("José  user") and lines[2].startswith("李雷  user"), listing

    assert "disabled 'José'" in ok(hitl(url, "user", "disable", "José"))
    assert "was disabled already, at " in ok(hitl(url, "user", "disable", "José"))
    [_, jose, *_] = table(ok(hitl(url, "user", "list")))
    assert jose[0] == "José" and re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\dZ", jose[4]), jose


def test_a_disabled_user_s_tokens_and_links_stop_working(
    migrated_database: Callable[[], str],
) -> None:
    url = migrated_database()
    ok(hitl(url, "user", "add", "ann", "--role", "reviewer"))
    secret = ok(
        hitl(url, "token", "create", "--name", "ann-laptop", "--role", "reviewer", "--user", "ann")
    ).strip()
    principal = identity_call(url, lambda i: i.authenticate(secret))
    assert principal is not None and principal.name == "ann"

    ok(hitl(url, "user", "disable", "ann"))
    assert identity_call(url, lambda i: i.authenticate(secret)) is None
    assert failed(hitl(url, "login-link", "ann"), 1) == "hitl: 'ann' is disabled"


def test_names_are_unicode_and_compared_as_typed_in_any_normal_form(
    migrated_database: Callable[[], str],
) -> None:
    url = migrated_database()
    decomposed = unicodedata.normalize("NFD", "José")  # as some keyboards and systems send it
    assert decomposed != "José"
    ok(hitl(url, "user", "add", decomposed, "--role", "submitter"))
    assert failed(hitl(url, "user", "add", "José", "--role", "admin"), 1) == (
        "hitl: 'José' already exists"
    )
    ok(
        hitl(
            url,
            "token",
            "create",
            "--name",
            f"{decomposed}-ci",
            "--role",
            "submitter",
            "--user",
            "José",
        )
    )
    assert "revoked token 'José-ci'" in ok(hitl(url, "token", "revoke", "José-ci"))
    ok(hitl(url, "token", "create", "--name", "José-2", "--role", "submitter", "--user", "José"))
    assert "revoked token 'José-2'" in ok(hitl(url, "token", "revoke", decomposed + "-2"))
    assert "disabled 'José'" in ok(hitl(url, "user", "disable", decomposed))
    assert rows_of(url, "SELECT name FROM principals") == [("José",)]


def test_unicode_reaches_the_terminal_whatever_its_encoding(
    tmp_path: Path, migrated_database: Callable[[], str]
) -> None:
    """Real processes: arguments and output through the operating system. A terminal whose
    encoding lacks a character gets an escape, not a traceback."""
    url = migrated_database()
    env = process_env(database_url=url)

    def run(*args: str, **extra: str) -> subprocess.CompletedProcess[bytes]:
        done = subprocess.run(
            [sys.executable, "-m", "hitl", *args],
            env={**env, **extra},
            capture_output=True,
            cwd=ROOT,
            timeout=60,
        )
        assert done.returncode == 0 and b"Traceback" not in done.stderr, done
        return done

    run("user", "add", "李雷", "--role", "reviewer", LC_ALL="C.UTF-8")
    assert "李雷  user" in run("user", "list", LC_ALL="C.UTF-8").stdout.decode("utf-8")
    assert "李雷  user" in run("user", "list", LC_ALL="C").stdout.decode("utf-8")
    latin = run("user", "list", PYTHONIOENCODING="latin-1").stdout.decode("latin-1")
    assert "\\u674e\\u96f7" in latin
    exported = run("audit", "export", PYTHONIOENCODING="latin-1").stdout.decode("latin-1")
    assert json.loads(exported)["target"] == "李雷"  # the escape is JSON's own


# -- tokens --------------------------------------------------------------------------------------


def test_token_create_prints_the_token_alone_and_stores_only_its_hash(
    migrated_database: Callable[[], str],
) -> None:
    url = migrated_database()
    result = hitl(url, "token", "create", "--name", "ci", "--role", "submitter", "--expires", "30d")
    out = ok(result)
    assert out.endswith("\n") and out.count("\n") == 1
    secret = out.strip()
    assert TOKEN.match(secret), out
    expires = datetime.fromtimestamp(time.time() + 30 * 86400, UTC)
    [said] = result.stderr.splitlines()
    assert said.startswith(
        f"token 'ci' for service account 'ci', roles submitter, expires {expires:%Y-%m-%d}T"
    ), said
    assert said.endswith("; it is shown once: store it now") and secret not in said

    # The database holds the SHA-256 of the token, and nowhere the token itself.
    digest = hashlib.sha256(secret.encode()).hexdigest()
    assert rows_of(url, "SELECT name, hash FROM tokens") == [("ci", digest)]
    assert secret not in everything_in(url)
    assert secret.removeprefix("hitl_") not in everything_in(url)
    # It works, with the roles asked for, as the service account made for it.
    principal = identity_call(url, lambda i: i.authenticate(secret))
    assert principal is not None
    assert (principal.name, principal.kind, principal.roles) == ("ci", "service", {"submitter"})


def test_token_expiry_and_listing(migrated_database: Callable[[], str]) -> None:
    url = migrated_database()
    ok(hitl(url, "user", "add", "李雷", "--role", "reviewer"))
    before = time.time()
    ok(
        hitl(
            url,
            "token",
            "create",
            "--name",
            "li",
            "--role",
            "reviewer",
            "--user",
            "李雷",
            "--expires",
            "12h",
        )
    )
    ok(hitl(url, "token", "create", "--name", "ci", "--role", "submitter"))
    [(expires_at,)] = rows_of(url, "SELECT expires_at FROM tokens WHERE name = 'li'")
    assert before + 12 * 3600 <= expires_at <= time.time() + 12 * 3600
    assert rows_of(url, "SELECT expires_at FROM tokens WHERE name = 'ci'") == [(None,)]

    listing = ok(hitl(url, "token", "list"))
    [header, li, ci] = table(listing)
    assert header == ["name", "principal", "roles", "created", "expires", "last-used", "revoked"]
    stamp = datetime.fromtimestamp(expires_at, UTC).strftime("%Y-%m-%dT%H:%MZ")
    assert li[:3] == ["li", "李雷", "reviewer"] and li[4:] == [stamp, "never", "-"], li
    assert ci[:3] == ["ci", "ci", "submitter"] and ci[4:] == ["never", "never", "-"], ci
    # Neither the tokens nor their hashes are listed.
    for (digest,) in rows_of(url, "SELECT hash FROM tokens"):
        assert digest not in listing and digest[:8] not in listing


def test_a_token_expiring_past_the_calendar_is_still_listed(
    migrated_database: Callable[[], str],
) -> None:
    """A row written before durations were capped (a token set to expire in the year 275,000)
    broke every later `hitl token list`."""
    url = migrated_database()
    ok(hitl(url, "token", "create", "--name", "far", "--role", "submitter", "--expires", "1d"))
    engine = create_sync_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("UPDATE tokens SET expires_at = 8.6e12 WHERE name = 'far'"))
    finally:
        engine.dispose()
    [_, far] = table(ok(hitl(url, "token", "list")))
    assert far[0] == "far" and far[4] == "after 9999", far


def test_an_expired_token_no_longer_works(migrated_database: Callable[[], str]) -> None:
    url = migrated_database()
    secret = ok(
        hitl(url, "token", "create", "--name", "brief", "--role", "submitter", "--expires", "1s")
    ).strip()
    time.sleep(1.1)
    assert identity_call(url, lambda i: i.authenticate(secret)) is None


def test_token_revoke(migrated_database: Callable[[], str]) -> None:
    url = migrated_database()
    secret = ok(hitl(url, "token", "create", "--name", "ci", "--role", "submitter")).strip()
    assert identity_call(url, lambda i: i.authenticate(secret)) is not None

    assert ok(hitl(url, "token", "revoke", "ci")) == "revoked token 'ci'\n"
    assert identity_call(url, lambda i: i.authenticate(secret)) is None
    assert "token 'ci' was revoked already, at " in ok(hitl(url, "token", "revoke", "ci"))
    [_, ci] = table(ok(hitl(url, "token", "list")))
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\dZ", ci[6]), ci
    assert [a["action"] for a in audit(url)].count("token.revoke") == 1


def test_a_user_s_token_has_at_most_their_roles(migrated_database: Callable[[], str]) -> None:
    url = migrated_database()
    ok(hitl(url, "user", "add", "ann", "--role", "reviewer"))
    line = failed(
        hitl(url, "token", "create", "--name", "a", "--role", "admin", "--user", "ann"), 2
    )
    assert line == "hitl: 'ann' does not have the role 'admin'"
    assert rows_of(url, "SELECT name FROM tokens") == []


# -- sign-in links -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args,env,server",
    [
        ([], {}, "http://127.0.0.1:8000"),
        ([], {"port": "9000", "host": "0.0.0.0"}, "http://127.0.0.1:9000"),
        ([], {"server": "https://hitl.example.com/"}, "https://hitl.example.com"),
        (["--server", "https://a.example"], {"server": "https://b.example"}, "https://a.example"),
    ],
)
def test_login_link_points_where_the_client_commands_go(
    args: list[str], env: dict[str, str], server: str, migrated_database: Callable[[], str]
) -> None:
    url = migrated_database()
    ok(hitl(url, "user", "add", "李雷", "--role", "reviewer"))
    result = hitl(url, "login-link", "李雷", *args, **env)
    link = LINK.match(ok(result).strip())
    assert link is not None and link["server"] == server, result.stdout
    assert "one-time sign-in link for '李雷', valid for 15 minutes" in result.stderr
    assert link["secret"] not in everything_in(url)

    async def sign_in(identity: Identity) -> str:
        _, principal = await identity.sign_in(link["secret"], 3600)
        return principal.name

    assert identity_call(url, sign_in) == "李雷"


def test_a_service_account_gets_no_login_link(migrated_database: Callable[[], str]) -> None:
    url = migrated_database()
    ok(hitl(url, "token", "create", "--name", "ci", "--role", "submitter"))
    assert "no user 'ci'" in failed(hitl(url, "login-link", "ci"), 1)


# -- the audit log -------------------------------------------------------------------------------


def test_audit_export_writes_json_lines(migrated_database: Callable[[], str]) -> None:
    url = migrated_database()
    started = time.time()
    ok(hitl(url, "user", "add", "李雷", "--role", "reviewer"))
    ok(hitl(url, "token", "create", "--name", "ci", "--role", "submitter"))
    ok(hitl(url, "token", "revoke", "ci"))
    ok(hitl(url, "login-link", "李雷"))
    ok(hitl(url, "user", "disable", "李雷"))

    records = audit(url)
    assert [(r["action"], r["target"]) for r in records] == [
        ("user.add", "李雷"),
        ("token.create", "ci"),
        ("token.revoke", "ci"),
        ("link.create", "李雷"),
        ("user.disable", "李雷"),
    ]
    for record in records:
        assert set(record) == {"id", "at", "actor", "action", "target", "address", "detail"}
        assert record["actor"] == BY and record["address"] is None
        assert record["at"].endswith("Z")
        at = datetime.fromisoformat(record["at"])
        assert at.utcoffset() is not None and started - 1 <= at.timestamp() <= time.time()
    assert records[0]["detail"] == {"roles": "reviewer", "kind": "user"}
    assert records[1]["detail"] == {"principal": "ci", "roles": "submitter"}
    ids = [r["id"] for r in records]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    # Unicode as it is, not as escapes, where the output is UTF-8.
    assert "李雷" in ok(hitl(url, "audit", "export"))


def test_audit_export_since(migrated_database: Callable[[], str]) -> None:
    url = migrated_database()
    ok(hitl(url, "user", "add", "ann", "--role", "reviewer"))
    everything = audit(url)
    assert len(everything) == 1
    today = datetime.now(UTC)
    assert ok(hitl(url, "audit", "export", "--since", "1h")) == ok(hitl(url, "audit", "export"))
    assert ok(hitl(url, "audit", "export", "--since", f"{today:%Y-%m-%d}")).count("\n") == 1
    assert ok(hitl(url, "audit", "export", "--since", f"{today.year + 1}-01-01")) == ""
    assert ok(hitl(url, "audit", "export", "--since", f"{today.year + 1}-01-01T00:00+14:00")) == ""
    # Seconds since the epoch, as the API's `since` takes them (one parser for both).
    assert ok(hitl(url, "audit", "export", "--since", "0")).count("\n") == 1
    assert ok(hitl(url, "audit", "export", "--since", str(int(time.time()) + 3600))) == ""
    time.sleep(1.1)
    assert ok(hitl(url, "audit", "export", "--since", "1s")) == ""


def test_audit_export_pages_through_the_whole_log(
    migrated_database: Callable[[], str], monkeypatch: pytest.MonkeyPatch
) -> None:
    url = migrated_database()
    for n in range(5):
        ok(hitl(url, "user", "add", f"user-{n}", "--role", "submitter"))
    monkeypatch.setattr(identity_command, "AUDIT_PAGE", 2)
    records = audit(url)
    assert [r["target"] for r in records] == [f"user-{n}" for n in range(5)]


# -- errors: one line, the right exit code, the database unchanged -------------------------------


ERRORS = [
    (
        ["user", "add", "bob", "--role", "boss"],
        2,
        "hitl: unknown role 'boss': choose from submitter, reviewer, admin",
    ),
    (["user", "add", "José", "--role", "admin"], 1, "hitl: 'José' already exists"),
    (["user", "add", "bob"], 2, "hitl user add: Missing option '--role'."),
    (["user", "add", " ", "--role", "admin"], 2, "hitl: a name has 1 to 200 characters"),
    (
        ["user", "add", "bob", "--role", "admin", "--email", "bob"],
        2,
        "hitl: 'bob' is not an e-mail address",
    ),
    (["user", "disable", "nobody"], 1, "hitl: no user 'nobody'"),
    (
        ["token", "create", "--name", "ci", "--role", "submitter"],
        1,
        "hitl: a token named 'ci' exists: choose another name",
    ),
    (
        ["token", "create", "--name", "José", "--role", "submitter"],
        1,
        "hitl: 'José' is a user: give --user José or another name",
    ),
    (
        ["token", "create", "--name", "x", "--role", "admin", "--expires", "30"],
        2,
        "hitl: --expires: '30' is not a duration: write e.g. 30d, 12h, 45m or 90s",
    ),
    (
        ["token", "create", "--name", "x", "--role", "admin", "--expires", "-1d"],
        2,
        "hitl: --expires: '-1d' is not a duration",
    ),
    (
        ["token", "create", "--name", "x", "--role", "admin", "--expires", "100000000d"],
        2,
        "hitl: --expires: '100000000d' is longer than 36500 days: give a shorter one",
    ),
    (
        ["token", "create", "--name", "x", "--role", "admin", "--expires", "9" * 20 + "d"],
        2,
        "hitl: --expires: '99999999999999999999d' is longer than 36500 days",
    ),
    (
        ["token", "create", "--name", "x", "--role", "admin", "--expires", "9" * 4301 + "d"],
        2,
        "hitl: --expires: '99999999999999999999…' is longer than 36500 days",
    ),
    (["audit", "export", "--since", "9" * 4301 + "d"], 2, "hitl: --since: '9999"),
    (["token", "create", "--name", "x", "--role", "root"], 2, "hitl: unknown role 'root'"),
    (
        ["token", "create", "--name", "x", "--role", "admin", "--user", "nobody"],
        1,
        "hitl: no user 'nobody': add it first with `hitl user add`",
    ),
    (["token", "create", "--role", "admin"], 2, "hitl token create: Missing option '--name'."),
    (["token", "revoke", "nope"], 1, "hitl: no token 'nope': `hitl token list` shows them"),
    (["login-link", "nobody"], 1, "hitl: no user 'nobody': add it first with `hitl user add`"),
    (
        ["audit", "export", "--since", "yesterday"],
        2,
        "hitl: --since: 'yesterday' is neither a date nor a duration: write e.g. 2026-11-01,",
    ),
    (
        ["audit", "export", "--since", "2026-13-01"],
        2,
        "hitl: --since: '2026-13-01' is neither a date nor a duration",
    ),
]


@pytest.mark.parametrize("args,code,message", ERRORS, ids=[" ".join(a)[:60] for a, _, _ in ERRORS])
def test_errors_are_one_line_and_change_nothing(
    args: list[str], code: int, message: str, migrated_database: Callable[[], str]
) -> None:
    url = migrated_database()
    ok(hitl(url, "user", "add", "José", "--role", "reviewer"))
    ok(hitl(url, "token", "create", "--name", "ci", "--role", "submitter"))
    before = everything_in(url)
    line = failed(hitl(url, *args), code)
    assert line.startswith(message), line
    assert everything_in(url) == before


def test_database_errors(tmp_path: Path) -> None:
    absent = f"sqlite:///{tmp_path / 'absent.db'}"
    for args in (["user", "list"], ["token", "list"], ["audit", "export"]):
        line = failed(hitl(absent, *args), 1)
        assert line == (
            f"hitl: there is no hitl database at {absent}: check --db (HITL_DATABASE_URL); "
            "`hitl db upgrade` or `hitl serve` creates one"
        )
    assert list(tmp_path.iterdir()) == []  # reading made no database

    nowhere = f"sqlite:///{tmp_path / 'no-such-dir' / 'hitl.db'}"
    line = failed(hitl(nowhere, "user", "add", "ann", "--role", "admin"), 1)
    assert line.startswith(f"hitl: cannot open the SQLite database at {nowhere} ("), line

    port = free_port()
    unreachable = f"postgresql://hitl:secret@127.0.0.1:{port}/hitl"
    for args in (["user", "add", "ann", "--role", "admin"], ["token", "list"]):
        line = failed(hitl(unreachable, *args, database_wait_seconds="0"), 1)
        assert f"the database at postgresql://hitl:***@127.0.0.1:{port}/hitl did not answer" in line
        assert "secret" not in line

    for url in ("foo://x", "nonsense"):
        line = failed(hitl(None, "token", "list", "--db", url), 2)
        assert line.startswith("hitl: --db: "), line
    line = failed(hitl("foo://x", "user", "list"), 2)
    assert line.startswith("hitl: HITL_DATABASE_URL: unsupported database URL 'foo://x'"), line
    assert list(tmp_path.iterdir()) == []


def test_the_first_change_creates_the_database(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """As `hitl serve` does, saying so (a warning: on standard error, outside of tests)."""
    url = f"sqlite:///{tmp_path / 'new.db'}"
    result = hitl(url, "user", "add", "ann", "--role", "admin")
    assert ok(result) == "added user 'ann', roles admin\n"
    assert "created a new, empty database" in caplog.text
    assert table(ok(hitl(url, "user", "list")))[1][0] == "ann"


def test_every_identity_command_takes_db() -> None:
    for path in (
        "user add",
        "user list",
        "user disable",
        "token create",
        "token list",
        "token revoke",
        "login-link",
        "audit export",
    ):
        assert "--db" in ok(hitl(None, *path.split(), "--help")), path


# -- the client commands' token ------------------------------------------------------------------


CLIENT_COMMANDS = [
    ["tasks"],
    ["submit", "hello"],
    ["watch", "0123abcd"],
    ["approve", "0123abcd"],
    ["reject", "0123abcd", "--comment", "no"],
]


@pytest.mark.parametrize("command", CLIENT_COMMANDS, ids=lambda c: c[0])
def test_client_commands_send_the_token(stub: tuple[Stub, str], command: list[str]) -> None:
    answer, url = stub
    answer.status, answer.body = 401, json.dumps({"detail": "sign in"}).encode()
    for flag, env, sent in [
        (["--token", "hitl_flag"], {}, "Bearer hitl_flag"),
        ([], {"token": "hitl_variable"}, "Bearer hitl_variable"),
        (["--token", "hitl_flag"], {"token": "hitl_variable"}, "Bearer hitl_flag"),
        ([], {}, None),
    ]:
        answer.seen.clear()
        result = hitl(None, *command, "--server", url, *flag, **env)
        assert answer.seen == [sent], (flag, env)
        line = failed(result, 1)
        if sent is None:
            assert line == NO_TOKEN
        else:
            assert line.startswith("hitl: the server refused the token (HITL_TOKEN or --token)")
            assert "hitl_flag" not in line and "hitl_variable" not in line


@pytest.mark.parametrize("command", CLIENT_COMMANDS, ids=lambda c: c[0])
def test_client_commands_say_what_the_server_forbids(
    stub: tuple[Stub, str], command: list[str]
) -> None:
    answer, url = stub
    answer.status, answer.body = (
        403,
        json.dumps({"detail": "a submitter may not decide reviews"}).encode(),
    )
    line = failed(hitl(None, *command, "--server", url, token="hitl_x"), 1)
    assert line == "hitl: a submitter may not decide reviews"


@pytest.mark.parametrize("command", CLIENT_COMMANDS, ids=lambda c: c[0])
def test_a_server_url_with_a_path_says_to_give_the_server_s_own(
    stub: tuple[Stub, str], command: list[str]
) -> None:
    """A 404 of no route (as FastAPI answers one: "Not Found"), not of no such task: the URL
    given points past the API, say at its /docs page."""
    answer, url = stub
    answer.status, answer.body = 404, json.dumps({"detail": "Not Found"}).encode()
    line = failed(hitl(None, *command, "--server", f"{url}/docs", token="hitl_x"), 1)
    assert line.startswith(f"hitl: nothing of the hitl API is at {url}/docs/api/v1/"), line
    assert line.endswith("give the server's own address (as http://127.0.0.1:8000), with no path")


@pytest.mark.parametrize("command", CLIENT_COMMANDS, ids=lambda c: c[0])
@pytest.mark.parametrize(
    ("status", "said", "then"),
    [
        # Not hitl at all, or not where the URL points: the address is what to check.
        (404, "404 Not Found", " (--server, HITL_SERVER)"),
        # A proxy in front of hitl, while hitl is away: its status, as hitl's own would be.
        (502, "Bad Gateway", ""),
    ],
)
def test_another_server_s_web_page_is_named_not_shown(
    stub: tuple[Stub, str], command: list[str], status: int, said: str, then: str
) -> None:
    """A proxy's or another server's error page (HTML) is not printed: the line says what
    answered and what to check."""
    answer, url = stub
    answer.status, answer.content_type = status, "text/html; charset=utf-8"
    answer.body = b"<html><head><title>Oops</title></head><body>" + b"<p>x</p>" * 500 + b"</html>"
    line = failed(hitl(None, *command, "--server", url, token="hitl_x"), 1)
    assert line.startswith(f"hitl: {said}: {url}/"), line
    assert line.endswith(
        "answered with a web page, not as a hitl server does: check the server's address, "
        f"or the proxy in front of it{then}"
    ), line
    assert "<" not in line


def test_a_plain_text_answer_is_shown_in_one_short_line(stub: tuple[Stub, str]) -> None:
    answer, url = stub
    answer.status, answer.content_type = 503, "text/plain"
    answer.body = b"upstream\nconnect error " + b"x" * 1000
    line = failed(hitl(None, "tasks", "--server", url, token="hitl_x"), 1)
    assert line == "hitl: upstream connect error " + "x" * 177 + "…", line


def test_a_token_that_cannot_be_sent_is_a_usage_error(stub: tuple[Stub, str]) -> None:
    answer, url = stub
    line = failed(hitl(None, "tasks", "--server", url, "--token", "hitl_a\nb"), 2)
    assert line.startswith("hitl: --token (HITL_TOKEN): the token is not one"), line
    assert answer.seen == []


@pytest.mark.parametrize("command", CLIENT_COMMANDS, ids=lambda c: c[0])
def test_help_names_the_token_never_its_value(command: list[str]) -> None:
    text = ok(hitl(None, command[0], "--help", token="hitl_secretvalue"))
    assert "--token" in text and "HITL_TOKEN" in text and "secretvalue" not in text


def test_client_commands_with_tokens_from_the_command_line(
    start_server: Callable[..., Server],
) -> None:
    """The whole way: a token that `hitl token create` made signs `hitl submit` and
    `hitl tasks` in to a real server; one that was revoked, or none, is refused."""
    server = start_server()
    url = server.db_url
    token = ok(hitl(url, "token", "create", "--name", "ci", "--role", "submitter")).strip()
    task = json.loads(ok(hitl(None, "submit", "hello", server=server.url, token=token)))
    listing = ok(hitl(None, "tasks", "--limit", "500", server=server.url, token=token))
    assert task["id"] in listing

    revoked = ok(hitl(url, "token", "create", "--name", "old", "--role", "submitter")).strip()
    ok(hitl(url, "token", "revoke", "old"))
    line = failed(hitl(None, "tasks", "--server", server.url, "--token", revoked), 1)
    assert line.startswith("hitl: the server refused the token (HITL_TOKEN or --token)")
    assert failed(hitl(None, "tasks", server=server.url), 1) == NO_TOKEN

    reviewer = ok(hitl(url, "token", "create", "--name", "rev", "--role", "reviewer")).strip()
    line = failed(hitl(None, "submit", "hello", server=server.url, token=reviewer), 1)
    assert line.startswith("hitl: rev may not submit tasks"), line  # the server's reason
