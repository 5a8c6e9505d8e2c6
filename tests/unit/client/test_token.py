"""The client signs in with a token: `token=`, else HITL_TOKEN; and never shows it."""

from __future__ import annotations

import logging
from collections.abc import Callable

import httpx
import pytest

from hitl.client import AsyncClient, Client, HitlAPIError

TOKEN = "hitl_" + "A" * 43
# What the server answers: a page of tasks, and a task.
PAGE = {"data": [], "count": 0}
TASK = {
    "id": "0123abcd",
    "flow": "feedback",
    "status": "queued",
    "input": "x",
    "created_at": "2026-12-01T10:00:00Z",
    "updated_at": "2026-12-01T10:00:00Z",
}


@pytest.fixture
def no_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HITL_TOKEN", raising=False)


def recorder(status: int = 200) -> tuple[list[httpx.Request], httpx.MockTransport]:
    """A transport that answers every request with `status` and keeps the requests."""
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        page = request.method == "GET" and request.url.path == "/api/v1/tasks"
        body = (PAGE if page else TASK) if status == 200 else {"detail": "sign in"}
        return httpx.Response(status, json=body)

    return seen, httpx.MockTransport(answer)


def authorization(make: Callable[..., Client], **kwargs: object) -> str | None:
    seen, transport = recorder()
    with make("http://hitl.test", transport=transport, **kwargs) as client:
        client.list_tasks()
        client.create_task("x")
    assert len(seen) == 2 and len({r.headers.get("authorization") for r in seen}) == 1
    return seen[0].headers.get("authorization")


def test_the_token_goes_with_every_request(no_token: None) -> None:
    assert authorization(Client, token=TOKEN) == f"Bearer {TOKEN}"


def test_without_a_token_argument_hitl_token_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HITL_TOKEN", TOKEN)
    assert authorization(Client) == f"Bearer {TOKEN}"
    assert authorization(Client, token="hitl_other") == "Bearer hitl_other"  # the argument wins
    assert authorization(Client, token="") is None  # an empty one: none at all
    # Headers the caller set themselves are theirs: the environment does not override them.
    assert authorization(Client, headers={"Authorization": "Bearer mine"}) == "Bearer mine"


def test_no_token_no_header(no_token: None, monkeypatch: pytest.MonkeyPatch) -> None:
    assert authorization(Client) is None
    monkeypatch.setenv("HITL_TOKEN", "")
    assert authorization(Client) is None


async def test_the_async_client_sends_it_too(monkeypatch: pytest.MonkeyPatch) -> None:
    for environment, argument, sent in [
        (TOKEN, None, f"Bearer {TOKEN}"),
        (None, TOKEN, f"Bearer {TOKEN}"),
        (TOKEN, "", None),
    ]:
        if environment is None:
            monkeypatch.delenv("HITL_TOKEN", raising=False)
        else:
            monkeypatch.setenv("HITL_TOKEN", environment)
        seen, transport = recorder()
        async with AsyncClient("http://hitl.test", token=argument, transport=transport) as client:
            await client.list_tasks()
            await client.get_task("0123abcd")
        assert [r.headers.get("authorization") for r in seen] == [sent, sent]


@pytest.mark.parametrize("bad", ["hitl_abc\r\nX-Injected: 1", "hitl_é", "hitl_a b", "a\tb"])
def test_a_token_that_cannot_be_sent_is_refused_without_repeating_it(
    bad: str, no_token: None
) -> None:
    for make in (Client, AsyncClient):
        with pytest.raises(ValueError) as refused:
            make("http://hitl.test", token=bad)
        assert "hitl_" not in str(refused.value).replace("`hitl token create`", "")
        assert "printable ASCII" in str(refused.value)


def test_surrounding_white_space_is_not_part_of_the_token(no_token: None) -> None:
    """As `$(cat token.txt)` or a file with a final newline would give it."""
    assert authorization(Client, token=f"  {TOKEN}\n") == f"Bearer {TOKEN}"


def test_the_token_appears_in_no_log_and_no_error(
    no_token: None, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    _, transport = recorder(401)
    with Client("http://hitl.test", token=TOKEN, transport=transport) as client:
        with pytest.raises(HitlAPIError) as refused:
            client.list_tasks()
        assert TOKEN not in repr(client._http.headers)  # httpx masks it in its repr
    assert refused.value.status_code == 401 and refused.value.detail == "sign in"
    assert TOKEN not in str(refused.value) and TOKEN not in repr(refused.value)
    assert caplog.records, "httpx logged nothing: this test would not see a leak"
    assert TOKEN not in caplog.text
