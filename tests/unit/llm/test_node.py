"""ChatNode: its prompt (with every rejected draft and comment), its shared store, what it
reports while it runs, and its settings."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from pocketflow import AsyncFlow

from hitl.config import Settings
from hitl.flow import Runner, Update
from hitl.llm import ChatNode, LLMConfig, LLMError, add_usage, chat_messages
from tests.fake_llm import Fail, FakeLLM, Stream, serve_fake_llm


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeLLM]:
    with serve_fake_llm() as server:
        yield server


async def _sleep(seconds: float) -> None:
    return None


def test_the_prompt_carries_each_rejected_draft_and_its_comment() -> None:
    feedback = [{"draft": "v1", "comment": "shorter"}, {"draft": "v2", "comment": ""}]
    messages = chat_messages("Be brief.", {"topic": "queues"}, feedback)
    assert [m["role"] for m in messages] == [
        "system",
        "user",
        "assistant",
        "user",
        "assistant",
        "user",
    ]
    assert messages[1]["content"] == '{\n  "topic": "queues"\n}'
    assert messages[2]["content"] == "v1"
    assert "Their comment: shorter" in messages[3]["content"]
    assert messages[4]["content"] == "v2"
    assert "Their comment: (no comment)" in messages[5]["content"]


def test_usage_adds_up_over_calls() -> None:
    one = add_usage(None, {"prompt_tokens": 3, "completion_tokens": 5, "total_tokens": 8})
    two = add_usage(one, None)  # an endpoint that said nothing: the call still counts
    assert two == {"prompt_tokens": 3, "completion_tokens": 5, "total_tokens": 8, "calls": 2}


async def test_the_node_streams_its_draft_as_progress_and_keeps_its_usage(fake: FakeLLM) -> None:
    fake.then(Fail(503), Stream("a short draft"))
    node = ChatNode(LLMConfig(fake.url, "m", backoff_seconds=0.0), sleep=_sleep)
    reports: list[Update] = []
    shared: dict[str, Any] = {
        "task_input": "write",
        "feedback": [{"draft": "old", "comment": "more"}],
        "llm_usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2, "calls": 1},
    }
    runner = Runner(AsyncFlow(start=node), on_progress=lambda path, u: reports.append(u))
    await runner.run(shared)
    assert shared["draft"] == "a short draft"
    words = sum(len(m["content"].split()) for m in fake.seen()[-1].messages)  # the fake's count
    usage = {"prompt_tokens": words, "completion_tokens": 3, "total_tokens": words + 3}
    assert shared["llm_usage"] == {
        "prompt_tokens": words + 1,
        "completion_tokens": 4,
        "total_tokens": words + 5,
        "calls": 2,
    }
    assert [m["content"] for m in fake.seen()[-1].messages][2:] == [
        "old",
        "A reviewer rejected that draft. Their comment: more\n\nWrite a revised draft that "
        "addresses it. Reply with the draft only.",
    ]
    assert reports[0] == Update("asking m", reset=True)
    assert reports[1].message is not None and reports[1].message.startswith(
        "503 Service Unavailable: the fake model is down; retry 1 of 4 in 0.0 s"
    )
    assert reports[1].reset and reports[1].values == {"retry": 1}
    assert "".join(u.delta or "" for u in reports) == "a short draft"
    assert reports[-1] == Update(
        f"done: {words + 3} tokens", values={"usage": usage, "usage_total": shared["llm_usage"]}
    )


def test_its_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HITL_LLM_BASE_URL", "HITL_LLM_MODEL", "HITL_LLM_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(LLMError, match="HITL_LLM_BASE_URL and HITL_LLM_MODEL are not set"):
        LLMConfig.from_settings(Settings())
    monkeypatch.setenv("HITL_LLM_BASE_URL", "http://127.0.0.1:9/v1/")
    monkeypatch.setenv("HITL_LLM_MODEL", "m")
    monkeypatch.setenv("HITL_LLM_API_KEY", "sk-secret")
    config = LLMConfig.from_settings(Settings())
    assert config.url == "http://127.0.0.1:9/v1/chat/completions"
    assert config.api_key == "sk-secret" and "sk-secret" not in repr(config)


@pytest.mark.parametrize(
    "env,says",
    [
        ({"HITL_LLM_BASE_URL": "127.0.0.1:8080"}, "is not a base URL"),
        (
            {"HITL_LLM_BASE_URL": "http://llm.example.com/v1", "HITL_LLM_API_KEY": "k"},
            "would travel in the clear",
        ),
    ],
)
def test_bad_settings_say_what_to_fix(
    env: dict[str, str], says: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match=says):
        Settings()
