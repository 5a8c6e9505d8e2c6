"""The Python client, `Client` and `AsyncClient`, against a real `hitl serve`."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator

import pytest

from hitl.client import (
    AsyncClient,
    Client,
    Event,
    HitlAPIError,
    HitlConnectionError,
    HitlProtocolError,
)
from tests.conftest import Server, Stub

# A stream that sends nothing, not even a heartbeat, for this long fails the test.
READ_TIMEOUT = 30.0
# Ids are UUIDv7: tasks made within a minute share their first 8 characters (the time), so a
# prefix that finds one task is longer than git's usual 7.
UNIQUE = 23


@pytest.fixture(scope="module")
def server(start_module_server: Callable[..., Server]) -> Server:
    return start_module_server()


def read_until(events: Iterator[Event], kind: str) -> list[Event]:
    """The events up to and including the first of type `kind`."""
    seen = []
    with contextlib.closing(events):  # type: ignore[type-var]
        for event in events:
            seen.append(event)
            if event.type == kind:
                return seen
    raise AssertionError(f"the stream ended before {kind}: {[e.type for e in seen]}")


async def aread_until(events: AsyncIterator[Event], kind: str) -> list[Event]:
    seen = []
    async with contextlib.aclosing(events):  # type: ignore[type-var]
        async for event in events:
            seen.append(event)
            if event.type == kind:
                return seen
    raise AssertionError(f"the stream ended before {kind}: {[e.type for e in seen]}")


def test_client_through_a_task_s_life(server: Server) -> None:
    with Client(server.url, token=server.token) as client:
        key = f"key-{uuid.uuid4()}"
        task = client.create_task("a note on leases", idempotency_key=key)
        assert task.status == "queued" and task.flow == "feedback"
        assert task.input == "a note on leases"
        tid = task.id
        # The same key: the same task, whatever the body; another key: another task.
        assert client.create_task("a note on leases", idempotency_key=key).id == tid
        other = client.create_task("a note on leases", idempotency_key=key + "-2")
        assert other.id != tid

        seen = read_until(client.events(tid, read_timeout=READ_TIMEOUT), "review.requested")
        assert seen[0].type == "task.created" and seen[0].data["task_id"] == tid
        waiting = client.get_task(tid)
        assert waiting.status == "waiting_for_review"
        [review] = waiting.reviews or []
        assert review.status == "open" and str(review.output).startswith("Revision 1:")
        assert waiting.open_review == review
        assert client.get_task(tid[:UNIQUE]) == waiting  # a unique prefix finds the task
        listed = client.list_tasks(status="waiting_for_review", limit=500)
        assert tid in {t.id for t in listed.data} and listed.count >= 1
        assert review.id in {r.id for r in client.list_reviews(limit=500).data}

        decided = client.decide(review.id, "approve", comment="fine as it is")
        assert decided.decision == "approve" and decided.comment == "fine as it is"
        last = seen[-1].id or 0
        rest = list(client.events(tid, after=last, read_timeout=READ_TIMEOUT))
        assert all((e.id or 0) > last for e in rest)
        assert rest[0].type == "review.decided" and rest[-1].type == "task.completed"
        done = client.get_task(tid)
        assert done.status == "completed" and done.result == review.output and done.finished
        assert tid in {t.id for t in client.list_tasks(status="completed", limit=500).data}
        assert review.id not in {r.id for r in client.list_reviews(limit=500).data}
        decided_reviews = client.list_reviews(status="decided", limit=500).data
        assert review.id in {r.id for r in decided_reviews}

        with pytest.raises(HitlAPIError) as again:
            client.decide(review.id, "reject", comment="too late")
        assert again.value.status_code == 409 and "already decided" in again.value.detail

        cancelled = client.cancel(other.id)
        assert cancelled.status == "cancelled"
        final = list(client.events(other.id, read_timeout=READ_TIMEOUT))
        assert final[0].type == "task.created" and final[-1].type == "task.cancelled"


def test_client_errors_carry_the_server_s_status_and_detail(server: Server) -> None:
    missing = str(uuid.uuid4())
    with Client(server.url, token=server.token) as client:
        for call in (
            lambda: client.get_task(missing),
            lambda: client.cancel(missing),
            lambda: next(client.events(missing)),
        ):
            with pytest.raises(HitlAPIError) as error:
                call()
            assert error.value.status_code == 404
            assert error.value.detail == f"no task {missing!r}"
        with pytest.raises(HitlAPIError) as error:
            client.create_task("x", flow="no-such-flow")
        assert error.value.status_code == 422 and "no-such-flow" in error.value.detail
        with pytest.raises(HitlAPIError) as error:
            client.decide(missing, "approve")
        assert error.value.status_code == 404
        # An id is one path segment, whatever it holds: it cannot reach another route.
        # ('/' and 'x/' the server answers with a redirect to the path without its slash.)
        for odd in ("../reviews", "..", "a/b", "/", "x/", "x?status=open"):
            with pytest.raises(HitlAPIError) as error:
                client.get_task(odd)
            assert error.value.status_code in (404, 422), (odd, error.value)
            # ...and the answer is of the id, not of the server's address.
            assert "give the server's own address" not in error.value.detail, odd
        # An empty one would name the list, which is not a task: refused before it is sent.
        for empty in (lambda: client.get_task(""), lambda: client.decide("", "approve")):
            with pytest.raises(ValueError, match="the id is empty"):
                empty()


async def test_async_client_rejects_with_a_comment_then_takes_an_edit(server: Server) -> None:
    async with AsyncClient(server.url, token=server.token) as client:
        key = f"key-{uuid.uuid4()}"
        task = await client.create_task({"topic": "queues"}, idempotency_key=key)
        again = await client.create_task({"topic": "queues"}, idempotency_key=key)
        assert again.id == task.id
        tid = task.id

        seen = await aread_until(client.events(tid, read_timeout=READ_TIMEOUT), "review.requested")
        first = (await client.wait_for_review(tid)).id
        await client.decide(first, "reject", comment="Say why leases expire")
        after = seen[-1].id or 0
        more = await aread_until(
            client.events(tid, after=after, read_timeout=READ_TIMEOUT), "review.requested"
        )
        assert all((e.id or 0) > after for e in more)
        second = (await client.get_task(tid[:UNIQUE])).open_review
        assert second is not None and second.round == 2
        assert "Say why leases expire" in str(second.output)
        open_ids = {r.id for r in (await client.list_reviews(limit=500)).data}
        assert second.id in open_ids and first not in open_ids

        edited = {"title": "Leases", "body": "They expire so that a dead worker's task moves on."}
        await client.decide(second.id, "edit", edited_output=edited, comment="tightened")
        rest = [e async for e in client.events(tid, after=more[-1].id or 0)]
        assert rest[-1].type == "task.completed" and rest[-1].data["result"] == edited
        done = await client.wait_for_result(tid, timeout=60)
        assert done.result == edited
        assert [r.decision for r in done.reviews or []] == ["reject", "edit"]
        listed = await client.list_tasks(status="completed", limit=500)
        assert tid in {t.id for t in listed.data}

        doomed = await client.create_task("to be cancelled")
        assert (await client.cancel(doomed.id)).status == "cancelled"
        with pytest.raises(HitlAPIError) as error:
            await client.cancel(doomed.id)
        assert error.value.status_code == 409
        with pytest.raises(HitlAPIError) as error:
            await client.get_task(str(uuid.uuid4()))
        assert error.value.status_code == 404 and error.value.detail.startswith("no task")


def test_another_server_s_web_page_is_a_protocol_error(stub: tuple[Stub, str]) -> None:
    """What answers with a web page is not hitl (or is a proxy in front of it): HitlProtocolError,
    as the docs say, not an HitlAPIError whose 404 a caller would take for "no such task"."""
    answer, url = stub
    answer.status, answer.content_type = 404, "text/html"
    answer.body = b"<!DOCTYPE html><title>Error response</title><p>Error code: 404</p>"
    with Client(url, token="hitl_x") as client, pytest.raises(HitlProtocolError) as error:
        client.get_task("0123abcd")
    message = str(error.value)
    assert message.startswith(f"404 Not Found: {url}/api/v1/tasks/0123abcd answered with a web")
    assert "<" not in message


def test_follow_goes_on_across_a_restart_and_gives_up_on_a_server_that_stays_away(
    start_server: Callable[..., Server],
) -> None:
    """`follow`: one task's events across a `kill -9` and a restart of the server, on one
    iterator, each once and in order; then, with the server gone, it raises what it met
    once the server stayed away `give_up_after` seconds. The same for `AsyncClient`."""
    server = start_server()
    with Client(server.url, token=server.token) as client:
        task_id = client.create_task("followed across a restart").id
        followed = client.follow(task_id[:UNIQUE], give_up_after=60)  # a part of the id
        seen = []
        for event in followed:
            seen.append(event)
            if event.type == "review.requested":
                break
        server.kill9()
        server.start()
        with Client(server.url, token=server.token) as other:
            review = other.wait_for_review(task_id, timeout=READ_TIMEOUT)
            other.decide(review.id, "approve")
        seen += list(followed)  # the same iterator, on to the task's end
        assert seen[-1].type == "task.completed"
        ids = [e.id for e in seen]
        assert ids == [e.id for e in client.events(task_id)], ids  # the whole log, once each

        for bad in (-1, 10**400):
            with pytest.raises(ValueError, match="give_up_after: give the seconds"):
                client.follow(task_id, give_up_after=bad)
        with pytest.raises(ValueError, match="after: give an event id"):
            client.follow(task_id, after="3")  # type: ignore[arg-type]
        second = client.create_task("followed until the server is gone").id
        lasting = client.follow(second, give_up_after=0.5)
        for event in lasting:  # (the iterator stays open)
            if event.type == "review.requested":
                break
        server.kill9()
        gone = time.monotonic()
        with pytest.raises(HitlConnectionError, match=f"no hitl server answers at {server.url}"):
            for event in lasting:
                assert event.type != "task.completed", event
        assert time.monotonic() - gone >= 0.5  # it tried for as long as it was told
        began = time.monotonic()  # a part of the id, looked up while the server is away
        with pytest.raises(HitlConnectionError, match="no hitl server answers"):
            next(client.follow(second[:UNIQUE], give_up_after=0.5))
        assert time.monotonic() - began >= 0.5
        with pytest.raises(ValueError, match="after: give an event id"):
            client.follow(task_id, after=2**63)

    async def async_follow() -> None:
        server.start()
        async with AsyncClient(server.url, token=server.token) as a:
            third = (await a.create_task("followed by the async client")).id
            async with contextlib.aclosing(a.follow(third, give_up_after=0.3)) as events:
                async for event in events:
                    if event.type == "review.requested":
                        server.kill9()
                        gone = time.monotonic()
                        break
                with pytest.raises(HitlConnectionError, match="no hitl server answers"):
                    async for event in events:
                        assert event.type != "task.completed", event
            assert time.monotonic() - gone >= 0.3

    asyncio.run(async_follow())
