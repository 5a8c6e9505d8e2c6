"""The chat client against a real (fake) OpenAI-compatible server on 127.0.0.1: streaming,
usage, retries with their waits (a recording sleep, so no test waits them), refusals,
cancellation."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from hitl.llm import ChatClient, LLMConfig, LLMRefused, LLMUnavailable, Retrying
from tests.fake_llm import Fail, FakeLLM, Stream, serve_fake_llm

ASK = [{"role": "user", "content": "a note on queues"}]


@pytest.fixture(scope="module")
def server() -> Iterator[FakeLLM]:
    with serve_fake_llm() as fake:
        yield fake


@pytest.fixture
def fake(server: FakeLLM) -> FakeLLM:
    with server.lock:
        server.script.clear()
        server.requests.clear()
        server.default = Stream()
    return server


class Sleeps:
    """A sleep that records how long it was asked to wait, and does not."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        await asyncio.sleep(0)


def client(url: str, sleeps: Sleeps, **config: Any) -> ChatClient:
    settings = {"api_key": "sk-test-secret", "backoff_seconds": 1.0, **config}
    return ChatClient(LLMConfig(url, "fake-model", **settings), sleep=sleeps, random=lambda: 1.0)


async def test_an_answer_streams_a_piece_at_a_time_and_ends_with_its_usage(fake: FakeLLM) -> None:
    pieces: list[str] = []
    done = await client(fake.url, Sleeps()).complete(ASK, on_delta=pieces.append, temperature=0)
    [seen] = fake.seen()
    assert done.text == "".join(pieces) == "".join(seen.sent)
    assert len(pieces) > 10 and done.text.startswith("Draft 1: a note on queues.")
    assert done.usage == {
        "prompt_tokens": 4,
        "completion_tokens": len(pieces),
        "total_tokens": 4 + len(pieces),
    }
    assert (done.finish_reason, done.model, done.attempts) == ("stop", "fake-model", 1)
    assert seen.body["stream"] is True and seen.body["stream_options"] == {"include_usage": True}
    assert seen.body["messages"] == ASK and seen.body["temperature"] == 0
    assert seen.headers["authorization"] == "Bearer sk-test-secret"
    assert seen.ended == "done"


async def test_429_waits_its_retry_after_then_succeeds(fake: FakeLLM) -> None:
    fake.then(Fail(429, "slow down", {"Retry-After": "7"}))
    sleeps, retries = Sleeps(), list[Retrying]()
    done = await client(fake.url, sleeps).complete(ASK, on_retry=retries.append)
    assert done.attempts == 2 and done.text.startswith("Draft 2:")
    assert sleeps.waits == [pytest.approx(7.7)]  # all of it, and up to a tenth more
    [retry] = retries
    assert (retry.retry, retry.of, retry.reason) == (1, 4, "429 Too Many Requests: slow down")
    assert retry.wait == sleeps.waits[0]


async def test_5xx_and_broken_streams_back_off_exponentially_then_give_up(fake: FakeLLM) -> None:
    fake.then(Fail(500), Fail(503), Stream(break_after=2), Fail(502))
    sleeps = Sleeps()
    with pytest.raises(LLMUnavailable) as failed:
        await client(fake.url, sleeps, max_retries=3).complete(ASK)
    assert sleeps.waits == [1.0, 2.0, 4.0]
    assert str(failed.value) == (
        f"{fake.url}/chat/completions failed 4 times; the last: 502 Bad Gateway: the fake "
        "model is down"
    )
    assert fake.ended() == ["failed", "failed", "broken", "failed"]


async def test_a_retry_after_longer_than_hitl_waits_gives_up_at_once(fake: FakeLLM) -> None:
    fake.then(Fail(429, "quota", {"Retry-After": "3600"}))
    sleeps = Sleeps()
    with pytest.raises(LLMUnavailable, match="it asked to wait 3600 s, more than the 30 s"):
        await client(fake.url, sleeps).complete(ASK)
    assert sleeps.waits == [] and len(fake.seen()) == 1


async def test_a_refusal_is_not_retried_and_the_key_is_not_repeated(fake: FakeLLM) -> None:
    fake.then(Fail(401, "Incorrect API key provided: sk-test-secret"))
    sleeps = Sleeps()
    with pytest.raises(LLMRefused) as refused:
        await client(fake.url, sleeps).complete(ASK)
    assert str(refused.value) == (
        f"{fake.url}/chat/completions answered 401 Unauthorized: Incorrect API key provided: "
        "*** (check HITL_LLM_API_KEY)"
    )
    assert sleeps.waits == [] and len(fake.seen()) == 1


async def test_nobody_listening_is_retried_then_fails_clearly() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed when the block ends: nothing listens there
    sleeps = Sleeps()
    with pytest.raises(LLMUnavailable, match=r"failed 3 times; the last: ConnectError"):
        await client(f"http://127.0.0.1:{port}/v1", sleeps, max_retries=2).complete(ASK)
    assert sleeps.waits == [1.0, 2.0]


async def test_a_retry_starts_the_text_over(fake: FakeLLM) -> None:
    fake.then(Stream("one two three four", break_after=2), Stream("five six"))
    pieces: list[str] = []
    retries: list[Retrying] = []
    done = await client(fake.url, Sleeps()).complete(
        ASK, on_delta=pieces.append, on_retry=retries.append
    )
    assert pieces == ["one ", "two ", "five ", "six"] and done.text == "five six"
    assert [r.retry for r in retries] == [1]
    assert retries[0].reason.startswith("RemoteProtocolError: peer closed connection")


async def test_cancelling_a_call_closes_its_stream(fake: FakeLLM) -> None:
    fake.then(Stream(delay=0.05))
    first = asyncio.Event()
    call = asyncio.ensure_future(
        client(fake.url, Sleeps()).complete(ASK, on_delta=lambda _: first.set())
    )
    await asyncio.wait_for(first.wait(), 10)
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    async with asyncio.timeout(10):
        while fake.ended() != ["gone"]:  # the server saw the client go
            await asyncio.sleep(0.01)
    [seen] = fake.seen()
    assert 0 < len(seen.sent) < 10
