"""The command line as a user meets it, without a hitl server.

Settings: every setting in docs/configuration.md takes effect from its variable, and each flag
wins over its variable. Errors: each is one line that says what to do, with exit code 1 (could
not be done) or 2 (what was typed or configured is wrong), never a traceback. Tuning: the
`serve` and `worker` entry points tune their process; the library tunes nothing.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import typer.main
from pydantic import SecretStr
from typer.testing import CliRunner, Result

from hitl.cli import db as db_command
from hitl.cli import serve as serve_command
from hitl.cli._common import _flagged, server_url
from hitl.cli.entry import leave
from hitl.cli.main import app
from hitl.config import Settings
from hitl.service import TaskStatus
from tests.conftest import ROOT, Stub, free_port

DOCS = ROOT / "docs" / "configuration.md"


# -- the settings, against docs/configuration.md ---------------------------------------------


@dataclass(frozen=True)
class Row:
    variable: str
    flags: tuple[str, ...]
    default: str


def documented_settings() -> list[Row]:
    """The rows of the first table of docs/configuration.md (the server's settings)."""
    text = DOCS.read_text().split("\n## ")[0]
    rows = []
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and cells[0].startswith("`HITL_"):
            flags = tuple(re.findall(r"`(--[a-z-]+)`", cells[1]))
            rows.append(Row(cells[0].strip("`"), flags, cells[2].strip("`")))
    return rows


@dataclass(frozen=True)
class Sample:
    """A value for a setting other than its default: as the variable says it and as parsed;
    and, for a setting with a flag, flag arguments that give yet another value."""

    env: str
    value: Any
    flag: tuple[str, ...] = ()
    flag_value: Any = None
    extra_env: dict[str, str] = field(default_factory=dict)


SAMPLES = {
    "database_url": Sample(
        "postgresql://env-host/hitl",
        "postgresql://env-host/hitl",
        ("--db", "postgresql://flag-host/hitl"),
        "postgresql://flag-host/hitl",
    ),
    "host": Sample("127.0.0.2", "127.0.0.2", ("--host", "127.0.0.3"), "127.0.0.3"),
    "port": Sample("9001", 9001, ("--port", "9002"), 9002),
    "allowed_hosts": Sample(
        "hitl.example.com, *.example.org",
        ["hitl.example.com", "*.example.org"],
        ("--allowed-host", "a.example", "--allowed-host", "[::2]"),
        ["a.example", "[::2]"],
    ),
    "process_delay": Sample("0.25", 0.25, ("--process-delay", "0"), 0.0),
    "review_deadline_seconds": Sample("7.5", 7.5),
    "on_deadline": Sample("approve", "approve", extra_env={"HITL_REVIEW_DEADLINE_SECONDS": "5"}),
    "max_input_bytes": Sample("2048", 2048),
    "concurrency": Sample("3", 3, ("--concurrency", "4"), 4),
    "run_workers": Sample("false", False, ("--workers",), True),
    "lease_seconds": Sample("9", 9.0),
    "poll_interval": Sample("0.5", 0.5),
    "heartbeat_seconds": Sample("3", 3.0),
    "max_claims": Sample("4", 4),
    "pool_size": Sample("3", 3),
    "database_wait_seconds": Sample("0", 0.0),
    "create_database": Sample("false", False),
    "flows": Sample(
        '["a=pkg.a:make"]',
        ["a=pkg.a:make"],
        ("--flow", "b=pkg.b:make", "--flow", "c=pkg.c:make"),
        ["b=pkg.b:make", "c=pkg.c:make"],
    ),
    "default_flow": Sample("from-env", "from-env", ("--default-flow", "from-flag"), "from-flag"),
    "log_level": Sample("debug", "debug", ("--log-level", "warning"), "warning"),
    "log_format": Sample("json", "json", ("--log-format", "text"), "text"),
    "public_url": Sample("https://hitl.example.com", "https://hitl.example.com"),
    "delivery_retry_seconds": Sample("60", 60.0),
    "deadline_warning_seconds": Sample("30", 30.0),
    "max_header_bytes": Sample("4096", 4096),
    "header_timeout_seconds": Sample("2.5", 2.5),
    "keep_alive_seconds": Sample("20", 20.0),
    "auth": Sample("false", False),
    "session_hours": Sample("0.5", 0.5),
    "rate_limit": Sample("0", 0.0),
    "max_streams": Sample("3", 3),
    "max_comment_chars": Sample("500", 500),
    "proxy_user_header": Sample(
        "X-Forwarded-User", "X-Forwarded-User", extra_env={"HITL_TRUSTED_PROXIES": '["10.0.0.2"]'}
    ),
    "trusted_proxies": Sample('["10.0.0.2"]', ["10.0.0.2"]),
    "oidc_issuer": Sample(
        "https://idp.example.com/realms/x",
        "https://idp.example.com/realms/x",
        extra_env={"HITL_OIDC_CLIENT_ID": "hitl", "HITL_OIDC_CLIENT_SECRET": "s3cret"},
    ),
    "oidc_client_id": Sample(
        "hitl",
        "hitl",
        extra_env={"HITL_OIDC_ISSUER": "https://idp.example", "HITL_OIDC_CLIENT_SECRET": "s"},
    ),
    "oidc_client_secret": Sample(
        "s3cret",
        SecretStr("s3cret"),
        extra_env={"HITL_OIDC_ISSUER": "https://idp.example", "HITL_OIDC_CLIENT_ID": "hitl"},
    ),
    "oidc_roles_claim": Sample("groups", "groups"),
    "oidc_scopes": Sample("openid email", "openid email"),
    "llm_base_url": Sample("http://127.0.0.1:11434/v1/", "http://127.0.0.1:11434/v1"),
    "llm_model": Sample("llama3.2", "llama3.2"),
    "llm_api_key": Sample("sk-test", SecretStr("sk-test")),
    "llm_max_retries": Sample("2", 2),
    "llm_backoff_seconds": Sample("0.25", 0.25),
    "llm_timeout_seconds": Sample("5", 5.0),
}

ROWS = documented_settings()


def field_of(row: Row) -> str:
    return row.variable.removeprefix("HITL_").lower()


def command_options(path: str) -> set[str]:
    command: Any = typer.main.get_command(app)
    for name in path.split():
        command = command.commands[name]
    options = {o for p in command.params for o in [*p.opts, *p.secondary_opts]}
    return {o for o in options if o.startswith("--") and o != "--help"}


COMMANDS = ("serve", "worker", "db upgrade")
# What each command runs once its settings are built, replaced in these tests by a recorder.
RUNNERS = {
    "serve": (serve_command, "run_server"),
    "worker": (serve_command, "run_worker"),
    "db upgrade": (db_command, "run_upgrade"),
}


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("HITL_"):
            monkeypatch.delenv(name)


@pytest.fixture
def settings_of(
    clean_env: None, monkeypatch: pytest.MonkeyPatch
) -> Callable[[str, list[str], dict[str, str]], Settings]:
    """Run a command's real argument parsing and settings building; return the settings it
    would run with, instead of running."""

    def run(command: str, args: list[str], env: dict[str, str]) -> Settings:
        got: list[Settings] = []
        module, name = RUNNERS[command]
        monkeypatch.setattr(module, name, lambda settings, *_: got.append(settings))
        result = CliRunner().invoke(app, [*command.split(), *args], env=env, prog_name="hitl")
        assert result.exit_code == 0, result.output
        [settings] = got
        return settings

    return run


def test_docs_list_every_setting_with_its_default() -> None:
    variables = [r.variable for r in ROWS]
    assert len(variables) == len(set(variables)), "a variable is listed twice"
    documented = {field_of(r) for r in ROWS}
    assert documented == set(Settings.model_fields), "docs/configuration.md and Settings differ"
    assert set(SAMPLES) == set(Settings.model_fields), "a setting without a sample in this test"
    for row in ROWS:
        default = Settings.model_fields[field_of(row)].get_default(call_default_factory=True)
        assert row.default == shown(default), row


def shown(value: Any) -> str:
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list):
        return json.dumps(value)
    return str(value)


def test_docs_list_every_flag_of_every_command() -> None:
    documented = {flag for row in ROWS for flag in row.flags}
    assert command_options("serve") == documented  # every flag of serve is a setting's
    assert command_options("worker") <= documented | {"--name"}
    assert command_options("db upgrade") <= documented | {"--revision"}
    for row in ROWS:
        sample = SAMPLES[field_of(row)]
        assert (sample.flag[0] in row.flags) if row.flags else not sample.flag, row


@pytest.mark.parametrize("row", ROWS, ids=lambda r: r.variable)
def test_every_setting_takes_effect_from_its_variable(
    row: Row, settings_of: Callable[[str, list[str], dict[str, str]], Settings]
) -> None:
    name, sample = field_of(row), SAMPLES[field_of(row)]
    assert sample.value != getattr(Settings(), name), "the sample must not be the default"
    settings = settings_of("serve", [], {row.variable: sample.env, **sample.extra_env})
    assert getattr(settings, name) == sample.value


FLAG_CASES = [
    (command, row)
    for command in COMMANDS
    for row in ROWS
    if row.flags and SAMPLES[field_of(row)].flag[0] in command_options(command)
]


@pytest.mark.parametrize(
    "command,row", FLAG_CASES, ids=[f"{c}-{r.flags[0]}" for c, r in FLAG_CASES]
)
def test_a_flag_wins_over_its_variable(
    command: str, row: Row, settings_of: Callable[[str, list[str], dict[str, str]], Settings]
) -> None:
    name, sample = field_of(row), SAMPLES[field_of(row)]
    assert sample.flag_value != sample.value, "the flag must give another value than the variable"
    env = {"HITL_DATABASE_URL": "postgresql://db/hitl"}  # `hitl worker` refuses SQLite
    env |= {row.variable: sample.env, **sample.extra_env}
    settings = settings_of(command, list(sample.flag), env)
    assert getattr(settings, name) == sample.flag_value


def test_every_command_with_a_flag_is_tested() -> None:
    assert {c for c, _ in FLAG_CASES} == set(COMMANDS)
    assert {r.variable for c, r in FLAG_CASES if c == "serve"} == {
        r.variable for r in ROWS if r.flags
    }


def test_no_workers_flag_and_the_worker_command(
    settings_of: Callable[[str, list[str], dict[str, str]], Settings],
) -> None:
    assert settings_of("serve", ["--no-workers"], {}).run_workers is False
    assert settings_of("serve", [], {}).run_workers is True
    # A worker runs workers whatever HITL_RUN_WORKERS says for the servers beside it.
    env = {"HITL_RUN_WORKERS": "false", "HITL_DATABASE_URL": "postgresql://db/hitl"}
    assert settings_of("worker", [], env).run_workers is True


@pytest.mark.parametrize(
    "env,message",
    [
        ({"HITL_ON_DEADLINE": "approve"}, "HITL_ON_DEADLINE needs HITL_REVIEW_DEADLINE_SECONDS"),
        (
            {"HITL_ON_DEADLINE": "reject", "HITL_REVIEW_DEADLINE_SECONDS": "5"},
            "invalid setting HITL_ON_DEADLINE",
        ),
        ({"HITL_LEASE_SECONDS": "0"}, "invalid setting HITL_LEASE_SECONDS"),
        ({"HITL_RUN_WORKERS": "maybe"}, "invalid setting HITL_RUN_WORKERS"),
        ({"HITL_FLOWS": "not json"}, "invalid setting HITL_FLOWS: it must be JSON"),
        (
            {"HITL_ALLOWED_HOSTS": "https://hitl.example.com"},
            "invalid setting HITL_ALLOWED_HOSTS: 'https://hitl.example.com' is not a host name",
        ),
        ({"HITL_LOG_LEVEL": "loud"}, "HITL_LOG_LEVEL: unknown level 'loud'"),
        ({"HITL_DATABASE_URL": "foo://x"}, "HITL_DATABASE_URL: unsupported database URL"),
    ],
)
def test_bad_settings_stop_serve_with_a_clear_message(
    env: dict[str, str], message: str, tmp_path: Path, clean_env: None
) -> None:
    db = tmp_path / "never.db"
    env.setdefault("HITL_DATABASE_URL", f"sqlite:///{db}")
    assert message in one_line(invoke("serve", env=env), 2)
    assert not db.exists()  # refused before touching anything


# -- errors: one line, exit code 1 or 2 --------------------------------------------------------


def one_line(result: Result, code: int) -> str:
    """The one line a failed command printed, once checked: its exit code, no traceback."""
    assert isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code == code, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert lines[0].startswith("hitl"), lines[0]
    return lines[0]


def invoke(*args: str, env: dict[str, str] | None = None, input: str | None = None) -> Result:
    return CliRunner().invoke(app, list(args), env=env, input=input, prog_name="hitl")


@pytest.fixture
def nobody() -> str:
    """The URL of a port where nothing listens."""
    return f"http://127.0.0.1:{free_port()}"


@pytest.mark.parametrize(
    "args",
    [
        ["tasks"],
        ["submit", "hello"],
        ["watch", "0123abcd"],
        ["approve", "0123abcd"],
        ["reject", "0123abcd", "--comment", "no"],
        ["reject", "0123abcd"],  # whether it needs a comment is the review's to say
    ],
    ids=lambda a: a[0],
)
def test_server_down(args: list[str], nobody: str) -> None:
    line = one_line(invoke(*args, "--server", nobody), 1)
    assert f"no hitl server answers at {nobody} (Connection refused)" in line
    assert "start one with `hitl serve`" in line


def test_server_down_found_through_host_and_port(clean_env: None) -> None:
    port = free_port()
    line = one_line(invoke("tasks", env={"HITL_PORT": str(port)}), 1)
    assert f"no hitl server answers at http://127.0.0.1:{port}" in line


@pytest.mark.parametrize(
    "args,code,message",
    [
        (
            ["tasks", "--status", "done"],
            2,
            "--status 'done' is not a task status: use one of queued, running,",
        ),
        (["submit", "--json", "{bad"], 2, "the input is not valid JSON (Expecting property name"),
        (["submit", "--json", "-"], 2, "the input is not valid JSON (Expecting value"),
        (["submit", "--json", '"\\ud800"'], 2, "the input is not valid UTF-8 text"),
        (["submit", "a\ud800"], 2, "the input is not valid UTF-8 text"),
        (["submit", "--json", "1e400"], 2, "holds a number that is not finite"),
        (["submit", "--json", "NaN"], 2, "holds a number that is not finite"),
        (["submit", "--json", "[" * 3000], 2, "the input JSON is nested too deeply"),
        (["submit", "--json", "1" * 5000], 2, "holds an integer of over 4,300 digits: send it"),
        (["tasks", "--limit", "0"], 2, "hitl tasks: Invalid value for '--limit'"),
        (["approve"], 2, "hitl approve: Missing argument 'task_id'."),
        (["launch"], 2, "hitl: No such command 'launch'."),
        (["tasks", "--server", "localhost:8000"], 2, "bad server URL 'localhost:8000'"),
        (["tasks", "--server", ""], 2, "--server (HITL_SERVER) is empty: give the server's URL"),
        (["tasks", "--server", "http://127.0.0.1:8000/?"], 2, "with no '?' or '#' part"),
        (
            ["tasks", "--server", "http://ann:pw@127.0.0.1:8000"],
            2,
            "bad server URL http://127.0.0.1:8000 with a user name or password in it",
        ),
        (["tasks", "--server", "http://127.0.0.1:8000/?x=1"], 2, "with no '?' or '#' part"),
        (["db", "upgrade", "--db", ""], 2, "--db: the database URL is empty: give one, such as"),
        (["serve", "--db", "foo://x"], 2, "--db: unsupported database URL 'foo://x': use sqlite"),
        (["worker", "--db", "foo://x"], 2, "--db: unsupported database URL 'foo://x'"),
        (["db", "upgrade", "--db", "foo://x"], 2, "--db: unsupported database URL 'foo://x'"),
        (["db", "upgrade", "--db", "nonsense"], 2, "--db: Could not parse"),
        (["token", "list", "--db", "nonsense"], 2, "such as sqlite:///hitl.db or postgresql://"),
        (["worker", "--db", "sqlite:///x.db"], 2, "a SQLite file belongs to one process"),
        (["serve", "--concurrency", "0"], 2, "invalid --concurrency 0: Input should be greater"),
        (["serve", "--flow", "nonsense"], 2, "bad flow 'nonsense'"),
        (["serve", "--allowed-host", "a b"], 2, "invalid --allowed-host ['a b']: 'a b' is not a"),
    ],
)
def test_usage_errors(
    args: list[str], code: int, message: str, nobody: str, tmp_path: Path, clean_env: None
) -> None:
    env = {"HITL_SERVER": nobody, "HITL_DATABASE_URL": f"sqlite:///{tmp_path / 'never.db'}"}
    assert message in one_line(invoke(*args, env=env, input=""), code)
    assert list(tmp_path.iterdir()) == []


def test_usage_errors_list_every_status() -> None:
    line = one_line(invoke("tasks", "--status", "done"), 2)
    assert all(status.value in line for status in TaskStatus)
    help_text = invoke("tasks", "--help").output
    assert all(status.value in help_text for status in TaskStatus)


def detail(text: str) -> bytes:
    return json.dumps({"detail": text}).encode()


@pytest.mark.parametrize(
    "answer,code,message",
    [
        (Stub(503, detail("the database is unavailable: retry")), 1, "unavailable: retry"),
        (Stub(500, b"Internal Server Error", "text/plain"), 1, "hitl: Internal Server Error"),
        (Stub(404, detail("no task '0123abcd'")), 1, "hitl: no task '0123abcd'"),
        (Stub(409, detail("2 tasks start with '0123'")), 1, "hitl: 2 tasks start with '0123'"),
        (Stub(422, detail("invalid request: limit: too big")), 2, "invalid request: limit"),
        (Stub(413, b"", "text/plain"), 2, "Too Large"),
        (Stub(200, b"<html>hello</html>", "text/html"), 1, "answered, but not as a hitl server"),
    ],
)
@pytest.mark.parametrize("command", [["tasks"], ["approve", "0123abcd"], ["submit", "x"]])
def test_server_answers_an_error(
    stub: tuple[Stub, str], answer: Stub, code: int, message: str, command: list[str]
) -> None:
    current, url = stub
    current.status, current.body, current.content_type = (
        answer.status,
        answer.body,
        answer.content_type,
    )
    assert message in one_line(invoke(*command, "--server", url), code)


# -- where the client commands look for the server ---------------------------------------------


@pytest.mark.parametrize(
    "env,url",
    [
        ({}, "http://127.0.0.1:8000"),
        ({"HITL_PORT": "9000"}, "http://127.0.0.1:9000"),
        ({"HITL_HOST": "10.1.2.3", "HITL_PORT": "9000"}, "http://10.1.2.3:9000"),
        ({"HITL_HOST": "0.0.0.0"}, "http://127.0.0.1:8000"),
        ({"HITL_HOST": "::"}, "http://[::1]:8000"),
        ({"HITL_HOST": "::1"}, "http://[::1]:8000"),
    ],
)
def test_without_server_url_clients_go_where_serve_listens(
    env: dict[str, str], url: str, clean_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert server_url(None) == url
    assert server_url("http://elsewhere:1/") == "http://elsewhere:1"


def test_server_flag_wins_over_its_variable_which_wins_over_host_and_port(
    clean_env: None,
) -> None:
    flag, variable, port = (f"http://127.0.0.1:{free_port()}" for _ in range(3))
    env = {"HITL_SERVER": variable, "HITL_PORT": port.rsplit(":", 1)[1]}
    assert f"answers at {flag} (" in one_line(invoke("tasks", "--server", flag, env=env), 1)
    assert f"answers at {variable} (" in one_line(invoke("tasks", env=env), 1)
    del env["HITL_SERVER"]
    assert f"answers at {port} (" in one_line(invoke("tasks", env=env), 1)
    assert "HITL_SERVER" in invoke("tasks", "--help").output


# -- process tuning belongs to the entry points --------------------------------------------------


def run_python(code: str) -> list[str]:
    """What the last line that `code` printed says, word by word."""
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    return out.stdout.splitlines()[-1].split()


def test_tuning_moves_start_up_objects_out_of_the_collector() -> None:
    before, after, threshold, interval = run_python(
        "import gc, sys\n"
        "from hitl.cli import tuning\n"
        "before = gc.get_freeze_count()\n"
        "tuning.tune_gc()\n"
        "tuning.tune_switch_interval()\n"
        "print(before, gc.get_freeze_count(), gc.get_threshold()[0] == tuning.GC_YOUNG_THRESHOLD,"
        " sys.getswitchinterval() == tuning.SWITCH_INTERVAL)\n"
    )
    assert int(before) == 0 and int(after) > 1000
    assert threshold == interval == "True"


def test_serve_tunes_its_process_before_serving(tmp_path: Path) -> None:
    db = tmp_path / "tuned.db"
    freeze_count, interval = run_python(
        "import gc, sys, uvicorn\n"
        "from hitl.cli import tuning\n"
        "def run(self, sockets=None):\n"
        "    print(gc.get_freeze_count(), sys.getswitchinterval() == tuning.SWITCH_INTERVAL)\n"
        "uvicorn.Server.run = run\n"
        "from hitl.cli.main import app\n"
        f"app(['serve', '--db', 'sqlite:///{db}', '--port', '0', '--log-level', 'warning'],"
        " standalone_mode=False)\n"
    )
    assert int(freeze_count) > 10_000 and interval == "True"


def test_embedding_hitl_changes_no_process_wide_setting(tmp_path: Path) -> None:
    db = tmp_path / "embedded.db"
    before, after = (
        line.split("|")
        for line in run_python(
            "import asyncio, gc, sys\n"
            "def state():\n"
            "    return f'{sys.getswitchinterval()}|{gc.get_freeze_count()}|{gc.get_threshold()}'"
            ".replace(' ', '')\n"
            "before = state()\n"
            "from hitl.app import create_app\n"
            "from hitl.config import Settings\n"
            f"app = create_app(Settings(database_url='sqlite:///{db}', process_delay=0))\n"
            "async def main():\n"
            "    async with app.router.lifespan_context(app):\n"
            "        pass\n"
            "asyncio.run(main())\n"
            "print(before, state())\n"
        )
    )
    assert db.exists()  # the service did start and stop
    assert before == after


def test_a_sqlite_file_that_cannot_be_opened_fails_at_once(tmp_path: Path) -> None:
    """Waiting does not make a missing directory appear: one line, no 30 s wait."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HITL_")}
    env["PYTHONPATH"] = str(ROOT)
    url = f"sqlite:///{tmp_path / 'no' / 'such' / 'dir' / 'x.db'}"
    done = subprocess.run(
        [sys.executable, "-m", "hitl", "serve", "--db", url, "--port", str(free_port())],
        env=env,
        capture_output=True,
        text=True,
        timeout=25,  # the database wait is 30 s: a run that waits fails here
    )
    assert done.returncode == 1, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "directory exists" in lines[0], done.stderr
    assert not (tmp_path / "no").exists()


def test_a_ctrl_c_while_the_command_line_loads_ends_it_quietly() -> None:
    """Ctrl+C during the second or so that `hitl` spends importing (before the command line
    can catch anything): exit 130, and no traceback. The interrupt is raised where the
    import of the command line would be interrupted."""
    code = (
        "import builtins\n"
        "real = builtins.__import__\n"
        "def interrupted(name, *args, **kwargs):\n"
        "    if name == 'hitl.cli.main':\n"
        "        raise KeyboardInterrupt\n"
        "    return real(name, *args, **kwargs)\n"
        "builtins.__import__ = interrupted\n"
        "import runpy\n"
        "runpy.run_module('hitl', run_name='__main__')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert (done.returncode, done.stdout, done.stderr) == (130, "", "")
    script = Path(sys.executable).with_name("hitl").read_text()  # the installed command
    assert "from hitl.cli.entry import main" in script


def test_a_command_ends_without_the_interpreter_s_tear_down_unless_a_thread_still_runs() -> None:
    """`leave`: the exit status as `sys.exit` gives it, the output flushed, and no tear-down
    (an atexit handler is the interpreter's tear-down starting); with another thread still
    running, the usual exit, which waits for it."""
    code = (
        "import atexit, logging, sys\n"
        "from hitl.cli.entry import leave\n"
        "atexit.register(print, 'torn down')\n"
        "logging.basicConfig(stream=sys.stderr)\n"
        "logging.getLogger('x').warning('logged')\n"
        "print('said', end='')\n"
        "leave(5)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert (done.returncode, done.stdout) == (5, "said") and "logged" in done.stderr
    working = threading.Event()
    busy = threading.Thread(target=working.wait)
    busy.start()
    try:
        with pytest.raises(SystemExit) as exited:
            leave("a message")
        assert exited.value.code == "a message"
    finally:
        working.set()
        busy.join()


FLAGS = {"events": "--event", "round": "--round", "form": "--field", "comment": "--comment"}


@pytest.mark.parametrize(
    ("said", "shown"),
    [
        (
            "invalid request: body.events.1: bad; body.round: big",
            "invalid request: --event: bad; --round: big",
        ),
        ("form.score: must be at most 5", "--field score: must be at most 5"),
        ("form.2024: must be a number", "--field 2024: must be a number"),  # a name of digits
        ("form.a.b: no such field for approve", "--field a.b: no such field for approve"),
        # What a problem quotes stays as it is: only the field it begins with is named anew.
        (
            "form.kind: must be one of ['a; comment: b']",
            "--field kind: must be one of ['a; comment: b']",
        ),
        (
            "comment: this review needs a comment to approve",
            "--comment: this review needs a comment to approve",
        ),
        ("invalid request: body.input.x: bad", "invalid request: body.input.x: bad"),
        ("the review is closed: form.x: y", "the review is closed: form.x: y"),
    ],
)
def test_the_api_s_complaint_names_the_command_s_flags(said: str, shown: str) -> None:
    assert _flagged(said, FLAGS) == shown


@pytest.mark.parametrize("number", [None, 0, 5, 2.5, -3.0, 1234567, 1e21, 0.1])
def test_show_words_a_bound_as_the_server_does(number: float | None) -> None:
    from hitl.cli.tasks import _bound
    from hitl.flow.review import bound

    assert _bound(number) == (None if number is None else bound(number))
