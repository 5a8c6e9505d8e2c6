"""Notifications' bookkeeping on a real database: the log as outbox (cursors and deliveries
made once), leases that keep two senders apart, the retry schedule, deadline warnings said
once, and who may manage channels. Sending itself is tested against real receivers in
tests/integration/test_notifications.py."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from hitl.config import Settings
from hitl.service import Conflict, Forbidden, Invalid, Service
from hitl.service.notify import (
    FIRST_RETRY,
    LEASE_SECONDS,
    MAX_WAIT,
    PENDING,
    Notifier,
    backoff,
    message,
)
from hitl.service.principal import Principal
from hitl.store import DeliveryRow

ADMIN = Principal("ops", frozenset({"admin"}))
RITA = Principal("rita", frozenset({"reviewer"}))


@pytest.fixture
async def svc(migrated_database: Callable[[], str]) -> AsyncIterator[Service]:
    # No workers: nothing runs or sends by itself; each test drives the notifier.
    service = Service(
        Settings(database_url=migrated_database(), process_delay=0, run_workers=False)
    )
    await service.start()
    yield service
    await service.stop()


async def receiver(
    handle: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]],
) -> tuple[asyncio.Server, str]:
    """A webhook receiver on 127.0.0.1 that handles each connection with `handle`, and its
    URL (the caller closes it)."""
    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/"


async def delivered_rows(svc: Service) -> list[DeliveryRow]:
    return await svc.store.read(lambda r: r.select(DeliveryRow, order="event_id"))


def test_the_retry_schedule_doubles_with_jitter_up_to_its_cap() -> None:
    assert backoff(1, lambda: 1.0) == FIRST_RETRY
    assert backoff(2, lambda: 1.0) == 2 * FIRST_RETRY
    assert backoff(5, lambda: 1.0) == 16 * FIRST_RETRY
    assert backoff(5, lambda: 0.0) == 8 * FIRST_RETRY  # never less than half
    assert backoff(100, lambda: 1.0) == MAX_WAIT


async def test_a_channel_gets_the_events_after_it_was_added_once_each(svc: Service) -> None:
    await svc.tasks.submit("before the channel")
    channel, secret = await svc.notifier.add(
        ADMIN, "all", "webhook", "http://127.0.0.1:9/", ["task.created", "task.cancelled"]
    )
    assert secret is not None and secret.startswith("whsec_")
    task, _ = await svc.tasks.submit("after it")
    await svc.tasks.cancel(task.id, ADMIN, reason="enough")
    made = await svc.notifier.scan()
    assert [(d.type, d.task_id, d.attempts) for d in made] == [
        ("task.created", task.id, 1),
        ("task.cancelled", task.id, 1),
    ]
    assert all(d.lease_until is not None for d in made)  # made leased, to be sent at once
    assert await svc.notifier.scan() == []  # the cursor moved past them
    rows = await delivered_rows(svc)
    assert [(r.type, r.task_id, r.status) for r in rows] == [
        ("task.created", task.id, PENDING),
        ("task.cancelled", task.id, PENDING),
    ]
    # A second process scanning from the same cursor makes none twice.
    other = Notifier(svc.store, "http://x", 60)
    assert await other.scan() == []
    assert len(await delivered_rows(svc)) == 2


async def test_a_leased_delivery_is_not_sent_by_another_sender(svc: Service) -> None:
    await svc.notifier.add(ADMIN, "c", "webhook", "http://127.0.0.1:9/", ["task.created"])
    await svc.tasks.submit("one")
    [made] = await svc.notifier.scan()  # leased to this process, for LEASE_SECONDS
    now = svc.notifier.clock()

    def claim(owner: str, at: float) -> Callable[..., list[DeliveryRow]]:
        return lambda tx: tx.claim_deliveries(owner, PENDING, at, at + 60, 10)

    assert await svc.store.write(claim("b:2", now + 30)) == []  # still leased
    first, second = await asyncio.gather(
        svc.store.write(claim("b:2", now + 61)), svc.store.write(claim("c:3", now + 61))
    )
    assert len(first) + len(second) == 1  # its lease ended: one other sender takes it
    [leased] = first or second
    assert leased.id == made.id and leased.attempts == 2
    assert leased.lease_owner in ("b:2", "c:3")
    assert await svc.store.write(claim("d:4", now + 90)) == []


async def test_a_delivery_in_hand_is_not_taken_again_when_its_lease_runs_out(
    svc: Service,
) -> None:
    """A receiver that hangs past a delivery's lease: the process still sending it does not
    lease it again from the database, which would send it twice at once."""
    heard: asyncio.Queue[bytes] = asyncio.Queue()
    release = asyncio.Event()

    async def hang(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        heard.put_nowait(await reader.readuntil(b"\r\n\r\n"))
        await release.wait()
        writer.close()

    server, url = await receiver(hang)
    await svc.notifier.add(ADMIN, "slow", "webhook", url, ["task.created"])
    await svc.tasks.submit("one")
    [made] = await svc.notifier.scan()
    sending = asyncio.create_task(svc.notifier.deliver([made]))
    await asyncio.wait_for(heard.get(), 10)
    later = svc.notifier.clock() + LEASE_SECONDS + 1  # its lease has run out by then
    assert await svc.notifier.claim_due(later) == []
    release.set()  # the receiver lets go: the attempt failed, and is recorded
    await sending
    server.close()
    [row] = await delivered_rows(svc)
    assert row.status == PENDING and row.last_error is not None
    assert row.attempts == made.attempts == 1  # one POST, one try: the renewal counted none
    assert [d.id for d in await svc.notifier.claim_due(later + 86_400)] == [made.id]  # due again


async def test_a_sender_that_read_its_channels_before_one_was_added_still_sends_to_it(
    svc: Service,
) -> None:
    """Another process's notifier read the channels (it keeps them a few seconds) before this
    one was added: a delivery to it is sent, not failed as if the channel had been removed."""
    other = Notifier(svc.store, "http://x", 60)
    assert await other.channels() == []

    async def ok(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        await reader.readexactly(length)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        await writer.drain()
        writer.close()

    server, url = await receiver(ok)
    await svc.notifier.add(ADMIN, "new", "webhook", url, ["task.created"])
    await svc.tasks.submit("one")
    batch = await svc.notifier.scan()
    await other.deliver(batch)
    server.close()
    await other.stop()
    [row] = await delivered_rows(svc)
    assert (row.status, row.last_code) == ("delivered", 200), row


async def test_another_channel_added_while_one_is_sent_to_fails_none_of_its_deliveries(
    svc: Service,
) -> None:
    """Adding a channel empties the notifier's cache of channels: a delivery sent meanwhile,
    whose receiver refused it, is retried later, not failed as if its channel were gone."""
    await svc.notifier.add(ADMIN, "down", "webhook", "http://127.0.0.1:9/", ["task.created"])
    await svc.tasks.submit("one")
    batch = await svc.notifier.scan()
    await svc.notifier.add(ADMIN, "other", "webhook", "http://127.0.0.1:9/", ["task.cancelled"])
    await svc.notifier.deliver(batch)
    [row] = await delivered_rows(svc)
    assert (row.status, row.attempts, row.done_at) == (PENDING, 1, None), row
    assert row.last_error is not None and "refused" in row.last_error.lower()


async def test_a_near_deadline_is_said_once_and_only_near_it(svc: Service) -> None:
    task, _ = await svc.tasks.submit("wait", flow="feedback")
    assert svc.deadlines is None  # (no workers here): give the task a review by hand
    from hitl.service import machine
    from hitl.service.ids import new_id
    from hitl.store import ReviewRow

    now = svc.tasks.clock()
    review = ReviewRow(
        id=new_id(),
        task_id=task.id,
        round=1,
        status="open",
        node="review",
        request='{"output": "x", "assignees": ["rita"], "prompt": "Check it"}',
        created_at=now,
        deadline=now + 1000,
    )
    await svc.store.write(lambda tx: tx.insert_review(review))
    due = await svc.store.due_warnings("open", now + 500, warn=900)
    assert due == []  # more than a fifth of its time is left
    due = await svc.store.due_warnings("open", now + 850, warn=100)
    assert due == []  # less than a fifth, but more than `warn` seconds
    due = await svc.store.due_warnings("open", now + 900, warn=100)
    assert due == [review.id]
    assert await svc.store.write(lambda tx: machine.warn(tx, review, now + 900)) is True
    assert await svc.store.write(lambda tx: machine.warn(tx, review, now + 901)) is False
    assert await svc.store.due_warnings("open", now + 950, warn=100) == []
    [event] = [e for e in await svc.store.events_after(0, task.id) if "deadline" in e.type]
    assert event.type == "review.deadline_near"


async def test_only_admins_manage_channels_and_bad_ones_are_refused(svc: Service) -> None:
    with pytest.raises(Forbidden, match="rita may not manage notification channels"):
        await svc.notifier.add(RITA, "x", "webhook", "http://127.0.0.1:9/")
    with pytest.raises(Forbidden):
        await svc.notifier.deliveries(RITA)
    with pytest.raises(Invalid, match="not a channel kind"):
        await svc.notifier.add(ADMIN, "x", "sms", "http://127.0.0.1:9/")
    with pytest.raises(Invalid, match="task.exploded"):
        await svc.notifier.add(ADMIN, "x", "webhook", "http://127.0.0.1:9/", ["task.exploded"])
    with pytest.raises(Invalid, match="Apprise does not know"):
        await svc.notifier.add(ADMIN, "x", "apprise", "nonsense://x")
    # A name its address (/api/v1/channels/{name}) could not reach, said once for every caller.
    for name in ("", ".", "..", "a/b", "tab\there", "x" * 101):
        with pytest.raises(Invalid, match=r"cannot name a channel: use 1 to 100 characters"):
            await svc.notifier.add(ADMIN, name, "webhook", "http://127.0.0.1:9/")
    assert await svc.notifier.listed(ADMIN) == []  # nothing was made
    # A name is the same name however its accents were typed (NFC), as a user's is; a removed
    # channel keeps its name, and saying so is the answer to taking it again.
    await svc.notifier.add(ADMIN, "cafe\u0301", "webhook", "http://127.0.0.1:9/")
    with pytest.raises(Conflict, match="named 'café' already: choose"):
        await svc.notifier.add(ADMIN, "café", "webhook", "http://127.0.0.1:9/")
    assert (await svc.notifier.remove(ADMIN, "café")).name == "café"
    with pytest.raises(Conflict, match=r"already \(removed: a name stays with its delivery log\)"):
        await svc.notifier.add(ADMIN, "cafe\u0301", "webhook", "http://127.0.0.1:9/")


def test_messages_say_what_happened_and_link_to_the_task() -> None:
    data = {"task_id": "t1", "round": 2, "assignees": ["rita", "role:legal"], "prompt": "Check"}
    title, body = message("review.requested", data, "https://hitl.example.com/")
    assert title == "hitl: review waiting for rita, role:legal"
    assert body == "Check (round 2)\nhttps://hitl.example.com/tasks/t1"
    title, body = message("review.deadline_near", data | {"deadline": 0}, "https://h")
    assert title == "hitl: review deadline near (1970-01-01 00:00 UTC)"
    assert "for rita, role:legal" in body and body.endswith("https://h/tasks/t1")
