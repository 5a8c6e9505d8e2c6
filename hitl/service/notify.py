"""Notifications: events sent to channels, as durably as the events themselves.

A channel is a webhook, whose deliveries are signed per Standard Webhooks, or an Apprise URL
(Slack, Teams, Discord, e-mail and many more), whose deliveries are short messages with a link.

The event log is the outbox. An event commits in the transaction of the change it records, and
each channel keeps a cursor into the log. A scan turns the events after a channel's cursor that
the channel receives into deliveries, and moves the cursor past them, in one transaction; a
crash before it commits leaves the cursor where it was, and the next scan does it again. A
delivery is sent until it is delivered (a 2xx answer), retried with exponential backoff and
jitter until `delivery_retry_seconds` after it was made, and then marked failed. A delivery
being sent is leased for LEASE_SECONDS, so that processes sharing a database send each at most
once at a time; one whose process died while sending it is sent again when the lease ends, with
the same idempotency id (`webhook-id`), by which its receiver knows it has it already.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import re
import secrets
import time
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any, TypeVar
from urllib.parse import urlsplit

from hitl.service import access
from hitl.service.errors import Conflict, Invalid, NotFound
from hitl.service.identity import audit
from hitl.service.ids import new_id
from hitl.service.metrics import Metrics
from hitl.service.poster import Poster, Withdrawn
from hitl.service.principal import Principal
from hitl.service.waiting import wait_set
from hitl.store import ChannelRow, DeliveryRow, EventRow, Store, Tx, Unavailable

log = logging.getLogger(__name__)

KINDS = ("webhook", "apprise")
# A channel's name: 1 to 100 characters, no control character, no '/', not '.' or '..' (its
# address, /api/v1/channels/{name}, must reach it). The API's schemas declare this pattern
# (so it has no look-ahead: pydantic's regular expressions have none).
_NAME_CHAR = r"[^\x00-\x1f/]"
_NOT_DOT = r"[^\x00-\x1f/.]"
CHANNEL_NAME = (
    rf"^(?:{_NOT_DOT}{_NAME_CHAR}{{0,99}}|\.{_NOT_DOT}{_NAME_CHAR}{{0,98}}"
    rf"|\.\.{_NAME_CHAR}{{1,98}})$"
)


def _named(name: object) -> str:
    """A channel's name as stored and looked up: NFC, as user names are (the same text typed
    on another keyboard is the same name)."""
    if not isinstance(name, str):
        raise Invalid(f"name: a channel's name is text, not {type(name).__name__}")
    return unicodedata.normalize("NFC", name)


CHANNEL_NAME_RULE = "1 to 100 characters, with no '/' or control character, and not '.' or '..'"
# What a channel receives unless it says: reviews asked for, escalated, near their deadline
# and decided; tasks completed and failed.
WEBHOOK_EVENTS = (
    "review.requested",
    "review.escalated",
    "review.deadline_near",
    "review.decided",
    "task.completed",
    "task.failed",
)
# What a channel may receive.
EVENTS = ("task.created", *WEBHOOK_EVENTS, "task.cancelled")
# An Apprise channel's default: a review is assigned to someone, or its deadline is near.
APPRISE_EVENTS = ("review.requested", "review.escalated", "review.deadline_near")

PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"
LEASE_SECONDS = 60.0  # a delivery being sent: longer than its connection may take (4 TIMEOUTs)
TIMEOUT = 10.0  # seconds a receiver has to answer (each of a batch's answers)
FIRST_RETRY = 1.0  # seconds; each retry waits twice as long as the one before, up to MAX_WAIT
MAX_WAIT = 3600.0
BATCH = 50  # deliveries leased at once
SENDING = 16  # Apprise deliveries in flight at once, per process (webhooks: poster.KEEP)
SCAN = 1000  # events read at once
RECORD = 100  # outcomes written by one statement
GATHER = 0.01  # seconds a wake-up waits, so that one scan takes the commits close behind it
BUSY, BUSY_GATHER = 32, 0.05  # ... and after a scan that made BUSY deliveries or more
CHANNELS_TTL = 5.0  # seconds before the channels are read again (another process's changes)


# The jitter's own generator: drawing from the `random` module's would move the program's
# shared state from a background task (property-based tests see it move under them).
_JITTER = random.Random()


def backoff(attempts: int, rand: Callable[[], float] = _JITTER.random) -> float:
    """Seconds to wait after the `attempts`-th failed attempt: FIRST_RETRY doubled each time,
    up to MAX_WAIT, with "full jitter" between half of it and all of it."""
    wait: float = min(MAX_WAIT, FIRST_RETRY * 2.0 ** max(0, attempts - 1))
    return wait * (0.5 + rand() / 2)


@dataclass(frozen=True)
class Sent:
    """How one attempt went: whether it was delivered, the receiver's status code (a
    webhook's), and what went wrong."""

    ok: bool
    code: int | None = None
    error: str | None = None


REMOVED = Sent(False, None, "the channel was removed")  # not sent, and never will be


# What a delivery is sent to and what it says; or why it can't be sent (None: nothing known).
_Found = Sent | tuple[DeliveryRow, ChannelRow, EventRow | None] | None


class Notifier:
    """Scans the log into deliveries and sends them, while started; manages the channels."""

    def __init__(
        self,
        store: Store,
        public_url: str,
        retry_seconds: float,
        poll_interval: float = 1.0,
        metrics: Metrics | None = None,
        home: str = "",
    ) -> None:
        self.store = store
        self.home = home  # where this process runs: its deliveries' lease owner
        self.public_url = public_url.rstrip("/")
        self.retry_seconds = retry_seconds
        self.poll_interval = poll_interval
        self.metrics = metrics
        self.clock: Callable[[], float] = time.time
        self._wake = asyncio.Event()
        self._channels: list[ChannelRow] | None = None
        self._read_at = 0.0
        self._task: asyncio.Task[None] | None = None
        self._sending: set[asyncio.Task[None]] = set()
        self._in_hand: set[str] = set()  # deliveries this process is sending (or about to)
        self._slots = asyncio.Semaphore(SENDING)
        self._poster = Poster(TIMEOUT)
        self._signers: dict[str, Any] = {}  # a webhook's secret: its Standard Webhooks signer
        self._retry_at = 0.0  # when a delivery of this process is due again (at start: now)
        self._recent: dict[int, EventRow] = {}  # events just scanned: sent without a read

    # -- running -------------------------------------------------------------------------------

    def wake(self, _: object = None) -> None:
        """Something was committed: look for what to send (cheap when there are no channels)."""
        if self._channels is None or self._channels:
            self._wake.set()

    async def start(self, release: str | None) -> None:
        """Start sending. `release`: "all" when this is the only process sending (SQLite), so
        whatever is leased was being sent by one that died; "home" when this process took
        over its home (host and port) from one that died. Those deliveries are sent again at
        once, not when their leases end."""
        if release is not None:
            where = {"status": PENDING} | ({"lease_owner": self.home} if release == "home" else {})
            await self.store.write(
                lambda tx: tx.change(DeliveryRow, where, lease_until=None, lease_owner=None)
            )
        self._task = asyncio.create_task(self._loop(), name="hitl-notifier")

    async def stop(self) -> None:
        tasks = [t for t in [self._task, *self._sending] if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._poster.close()

    async def _loop(self) -> None:
        polled, gather = 0.0, GATHER
        while True:
            self._wake.clear()
            try:
                batch = await self.scan()
                # Busy: wait longer for the next, so that the many come in fewer, larger batches.
                gather = BUSY_GATHER if len(batch) >= BUSY else GATHER
                now = self.clock()
                if now >= self._retry_at or time.monotonic() - polled >= self.poll_interval:
                    polled = time.monotonic()
                    self._retry_at = float("inf")
                    batch += await self.claim_due(now)
                if batch:
                    task = asyncio.create_task(self.deliver(batch), name="hitl-deliveries")
                    self._sending.add(task)
                    task.add_done_callback(self._sending.discard)
            except Unavailable as exc:
                log.warning("notifications: %s", exc, extra={"action": "notify"})
            except Exception:
                log.exception("notifications failed", extra={"action": "notify"})
            wait = min(self.poll_interval, max(0.0, self._retry_at - self.clock()))
            if await wait_set(self._wake, wait):
                await asyncio.sleep(gather)  # let the commits close behind it come along

    async def channels(self) -> list[ChannelRow]:
        """The enabled channels, read again after CHANNELS_TTL (or a change made here)."""
        now = time.monotonic()
        if self._channels is None or now - self._read_at > CHANNELS_TTL:
            rows = await self.store.read(
                lambda r: r.select(ChannelRow, order="created_at", disabled_at=None)
            )
            self._channels, self._read_at = rows, now
        return self._channels

    async def scan(self) -> list[DeliveryRow]:
        """Make the deliveries of the events after each channel's cursor, leased to this
        process to be sent now, and move the cursors past those events, in one transaction."""
        channels = await self.channels()
        if not channels:
            return []
        after = min(c.cursor for c in channels)
        rows = await self.store.events_after(after, None, SCAN)
        if not rows:
            return []
        now = self.clock()
        made: list[DeliveryRow] = []
        moves: list[tuple[ChannelRow, int]] = []
        for channel in channels:
            fresh = [r for r in rows if r.id > channel.cursor]
            if not fresh:
                continue
            wanted = set(channel.events.split())
            moves.append((channel, fresh[-1].id))
            made += [
                DeliveryRow(
                    id=new_id(),
                    channel_id=channel.id,
                    event_id=r.id,
                    task_id=r.task_id,
                    type=r.type,
                    status=PENDING,
                    attempts=1,
                    next_at=now,
                    created_at=now,
                    lease_until=now + LEASE_SECONDS,
                    lease_owner=self.home,
                )
                for r in fresh
                if r.type in wanted
            ]
        try:
            await self.store.write(partial(_advance, moves=moves, made=made))
        except Conflict:  # another process moved a cursor: read the channels again
            self._channels = None
            return []
        for channel, cursor in moves:
            channel.cursor = cursor
        if len(self._recent) > 10_000:
            self._recent.clear()
        self._recent.update((r.id, r) for r in rows)
        return made

    async def claim_due(self, now: float) -> list[DeliveryRow]:
        """Lease the deliveries due again (retries, and those a dead process left). Those whose
        lease ran out while this process still has them in hand (waiting for a receiver that
        hangs, say) are not sent twice: their lease is renewed, and no try is counted."""

        def claim(tx: Tx) -> list[DeliveryRow]:
            claimed = tx.claim_deliveries(self.home, PENDING, now, now + LEASE_SECONDS, BATCH)
            for held in (d for d in claimed if d.id in self._in_hand):
                tx.change(DeliveryRow, {"id": held.id}, attempts=held.attempts - 1)
            return [d for d in claimed if d.id not in self._in_hand]

        return await self.store.write(claim)

    async def deliver(self, batch: list[DeliveryRow]) -> None:
        """Send each delivery once, all at once, then record every outcome in one transaction.
        A webhook's deliveries go together (`Poster.post_many`); Apprise's each on its own,
        SENDING at a time."""
        ids = {d.id for d in batch}
        self._in_hand |= ids
        try:
            await self._deliver(batch)
        finally:
            self._in_hand -= ids

    async def _deliver(self, batch: list[DeliveryRow]) -> None:
        sent: dict[str, Sent | None] = {}
        webhooks: dict[str, list[tuple[DeliveryRow, ChannelRow, EventRow | None]]] = {}
        others: list[tuple[DeliveryRow, ChannelRow, EventRow | None]] = []
        known: dict[str, _Found] = {d.id: self._known(d) for d in batch}
        unknown = [d for d in batch if known[d.id] is None]  # read, all at once
        for delivery, found in zip(
            unknown, await asyncio.gather(*(self._find(d) for d in unknown)), strict=True
        ):
            known[delivery.id] = found
        for delivery in batch:
            found = known[delivery.id]
            if found is None or isinstance(found, Sent):
                sent[delivery.id] = found
            elif found[1].kind == "webhook":
                webhooks.setdefault(found[1].id, []).append(found)
            else:
                others.append(found)
        results = await asyncio.gather(
            *(self._post(items) for items in webhooks.values()),
            *(self._notify(*item) for item in others),
        )
        for each in results:
            sent.update(each)
        now = self.clock()
        changes: list[tuple[str, dict[str, Any]]] = []
        for delivery in batch:
            outcome = sent.get(delivery.id)
            if outcome is None:
                continue  # the database was away: its lease ends, and it is sent again then
            found = known[delivery.id]
            # None: it was removed (before, or while it waited for a connection)
            channel = found[1] if isinstance(found, tuple) and outcome != REMOVED else None
            changes.append((delivery.id, self._outcome(delivery, outcome, now, channel)))
        if not changes:
            return
        with contextlib.suppress(Unavailable):  # their leases end, and they are sent again
            await self.store.write(partial(_record, changes=changes))

    def _outcome(
        self, delivery: DeliveryRow, sent: Sent, now: float, channel: ChannelRow | None
    ) -> dict[str, Any]:
        """What an attempt leaves of a delivery; `channel`: the one it was sent to (not the
        cache of channels, which a channel added or removed meanwhile empties)."""
        wait = backoff(delivery.attempts)
        if sent.ok:
            status = DELIVERED
        elif channel is None or now + wait > delivery.created_at + self.retry_seconds:
            status = FAILED
        else:
            status = PENDING
            self._retry_at = min(self._retry_at, now + wait)
        if self.metrics is not None:
            outcome = "delivered" if sent.ok else status if status == FAILED else "retrying"
            self.metrics.delivered(channel.kind if channel else "removed", outcome)
        if status == FAILED:
            log.warning(
                "delivery %s of event %s to %s failed for good: %s",
                delivery.id,
                delivery.event_id,
                channel.name if channel else delivery.channel_id,
                sent.error or f"answered {sent.code}",
                extra={"action": "deliver", "task_id": delivery.task_id},
            )
        return {
            "status": status,
            "next_at": now + wait if status == PENDING else now,
            "lease_until": None,
            "lease_owner": None,
            "last_code": sent.code,
            "last_error": sent.error,
            "done_at": None if status == PENDING else now,
        }

    def _channel(self, channel_id: str) -> ChannelRow | None:
        return next((c for c in self._channels or [] if c.id == channel_id), None)

    def _known(self, delivery: DeliveryRow) -> tuple[DeliveryRow, ChannelRow, EventRow] | None:
        """A delivery's channel and event, if both are at hand (as a scan's own are)."""
        channel = self._channel(delivery.channel_id)
        event = self._recent.get(delivery.event_id)
        if channel is None or channel.disabled_at is not None or event is None:
            return None
        return delivery, channel, event

    async def _find(self, delivery: DeliveryRow) -> _Found:
        """What a delivery is sent to and what it says; or why it can't be sent (None: the
        database was away, nothing known, nothing sent)."""
        try:
            channel = self._channel(delivery.channel_id) or await self.store.read(
                lambda r: _one(r.select(ChannelRow, id=delivery.channel_id))
            )
            if channel is None or channel.disabled_at is not None:
                return REMOVED
            event = self._recent.get(delivery.event_id) or await self.store.read(
                lambda r: r.event(delivery.event_id)
            )
        except Unavailable:
            return None
        except Exception as exc:  # a bug, say: retried like any failure, then failed
            log.exception("delivery %s failed", delivery.id, extra={"action": "deliver"})
            return Sent(False, None, f"{type(exc).__name__}: {exc}")
        return delivery, channel, event

    async def _notify(
        self, delivery: DeliveryRow, channel: ChannelRow, event: EventRow | None
    ) -> dict[str, Sent]:
        """Send one Apprise delivery once."""
        data = event.data if event is not None else json.dumps({"task_id": delivery.task_id})
        try:
            async with self._slots:
                sent = await _apprise(
                    channel.url, *message(delivery.type, json.loads(data), self.public_url)
                )
        except Exception as exc:  # a bug in composing it, say: retried like any failure
            log.exception("delivery %s failed", delivery.id, extra={"action": "deliver"})
            sent = Sent(False, None, f"{type(exc).__name__}: {exc}")
        return {delivery.id: sent}

    async def _post(
        self, items: list[tuple[DeliveryRow, ChannelRow, EventRow | None]]
    ) -> dict[str, Sent]:
        """POST each event to its webhook (one channel), together."""
        try:
            return await self._post_all(items)
        except Exception as exc:  # a bug in composing them, say: retried like any failure
            log.exception("deliveries to %s failed", items[0][1].name, extra={"action": "deliver"})
            return {d.id: Sent(False, None, f"{type(exc).__name__}: {exc}") for d, _, _ in items}

    async def _post_all(
        self, items: list[tuple[DeliveryRow, ChannelRow, EventRow | None]]
    ) -> dict[str, Sent]:
        """Each event as its webhook receives it: its data (JSON text, an object, as stored)
        with its id and links added, signed."""
        channel = items[0][1]
        assert channel.secret is not None
        signer = self._signers.get(channel.secret)
        if signer is None:
            from standardwebhooks.webhooks import Webhook

            signer = self._signers[channel.secret] = Webhook(channel.secret)
        at = datetime.fromtimestamp(int(self.clock()), UTC)
        stamp = at.isoformat().replace("+00:00", "Z")
        seconds = str(int(at.timestamp()))
        posts: list[tuple[bytes, dict[str, str]]] = []
        for delivery, _, event in items:
            data = event.data if event is not None else json.dumps({"task_id": delivery.task_id})
            task = f"{self.public_url}/tasks/{delivery.task_id}"
            extra = f'"event_id":{delivery.event_id},"links":{{"task":{json.dumps(task)}}}'
            body = (
                f'{{"type":"{delivery.type}","timestamp":"{stamp}","data":'
                f"{data[:-1]}{',' if len(data) > 2 else ''}{extra}}}}}"
            )
            msg_id = f"msg_{delivery.id}"
            headers = {
                "Content-Type": "application/json",
                "User-Agent": "hitl-webhooks",
                "webhook-id": msg_id,
                "webhook-timestamp": seconds,
                "webhook-signature": signer.sign(msg_id, at, body),
            }
            posts.append((body.encode(), headers))

        async def wanted() -> bool:  # (removed while its receiver kept the connections busy?)
            with contextlib.suppress(Unavailable):
                if any(c.id == channel.id for c in await self.channels()):
                    return True
                self._channels = None  # read before it was added, maybe: read them again
                return any(c.id == channel.id for c in await self.channels())
            return True

        answers = await self._poster.post_many(channel.url, posts, wanted)
        sent: dict[str, Sent] = {}
        for (delivery, _, _), answer in zip(items, answers, strict=True):
            if isinstance(answer, Withdrawn):
                sent[delivery.id] = REMOVED
                continue
            if isinstance(answer, Exception):
                name = type(answer).__name__
                sent[delivery.id] = Sent(False, None, f"{name}: {answer}" if str(answer) else name)
                continue
            ok = 200 <= answer.status < 300
            why = None if ok else (answer.body.decode(errors="replace") or answer.reason)
            sent[delivery.id] = Sent(ok, answer.status, why)
        return sent

    # -- managing channels (admins) -------------------------------------------------------------

    async def add(
        self,
        who: Principal | None,
        name: str,
        kind: str,
        url: str,
        events: list[str] | None = None,
        address: str | None = None,
    ) -> tuple[ChannelRow, str | None]:
        """Register a channel; it receives the events committed from now on. Returns it, and a
        webhook's signing secret (shown this once)."""
        access.administer(who, "manage notification channels")
        name = _named(name)
        if not re.fullmatch(CHANNEL_NAME, name):
            raise Invalid(f"name: {name!r} cannot name a channel: use {CHANNEL_NAME_RULE}")
        if kind not in KINDS:
            raise Invalid(f"kind: {kind!r} is not a channel kind; use one of {', '.join(KINDS)}")
        default = APPRISE_EVENTS if kind == "apprise" else WEBHOOK_EVENTS
        chosen = list(dict.fromkeys(events or default))
        unknown = [e for e in chosen if e not in EVENTS]
        if unknown:
            raise Invalid(f"events: {unknown[0]!r} is not one of {', '.join(EVENTS)}")
        if kind == "webhook":
            check_webhook_url(url)
        else:
            check_apprise_url(url)
        secret = "whsec_" + _b64(secrets.token_bytes(32)) if kind == "webhook" else None
        by = who.name if who is not None else None

        def write(tx: Tx) -> ChannelRow:
            taken = _one(tx.select(ChannelRow, name=name))
            if taken is not None:
                why = " (removed: a name stays with its delivery log)" if taken.disabled_at else ""
                raise Conflict(
                    f"there is a channel named {name!r} already{why}: choose another name"
                )
            row = ChannelRow(
                id=new_id(),
                name=name,
                kind=kind,
                url=url,
                events=" ".join(chosen),
                cursor=tx.last_event_id(),
                created_at=self.clock(),
                created_by=by,
                secret=secret,
            )
            tx.insert(row)
            audit(tx, by, "channel.add", name, address, kind=kind, events=chosen)
            return row

        row = await self.store.write(write)
        self._channels = None
        self.wake()
        return row, secret

    async def listed(self, who: Principal | None) -> list[ChannelRow]:
        access.administer(who, "manage notification channels")
        return await self.store.read(lambda r: r.select(ChannelRow, order="created_at"))

    async def remove(
        self, who: Principal | None, name: str, address: str | None = None
    ) -> ChannelRow:
        """Stop sending to a channel (its deliveries log stays)."""
        access.administer(who, "manage notification channels")
        by = who.name if who is not None else None
        now = self.clock()
        name = _named(name)

        def write(tx: Tx) -> ChannelRow:
            row = _one(tx.select(ChannelRow, name=name))
            if row is None:
                raise NotFound(f"no channel named {name!r}")
            if row.disabled_at is None:
                tx.change(ChannelRow, {"id": row.id}, disabled_at=now)
                row.disabled_at = now
                audit(tx, by, "channel.remove", name, address)
            return row

        row = await self.store.write(write)
        self._channels = None
        return row

    async def deliveries(
        self,
        who: Principal | None,
        channel: str | None = None,
        status: str | None = None,
        limit: int = 100,
    ) -> list[tuple[DeliveryRow, str]]:
        """The delivery log, newest first, with each delivery's channel name."""
        access.administer(who, "read the delivery log")
        if status is not None and status not in (PENDING, DELIVERED, FAILED):
            raise Invalid(f"status: {status!r} is not pending, delivered or failed")

        def read(r: Any) -> list[tuple[DeliveryRow, str]]:
            channels = {c.id: c.name for c in r.select(ChannelRow)}
            where: dict[str, Any] = {}
            if channel is not None:
                ids = [i for i, n in channels.items() if n == channel]
                if not ids:
                    raise NotFound(f"no channel named {channel!r}")
                where["channel_id"] = ids[0]
            if status is not None:
                where["status"] = status
            rows = r.select(DeliveryRow, order="created_at DESC, id DESC", limit=limit, **where)
            return [(d, channels.get(d.channel_id, "?")) for d in rows]

        return await self.store.read(read)

    async def replay(
        self, who: Principal | None, delivery_id: str, address: str | None = None
    ) -> tuple[DeliveryRow, str]:
        """Send a delivery again, now, with the same idempotency id; its retries start over.
        Returns it, and its channel's name."""
        access.administer(who, "replay deliveries")
        by = who.name if who is not None else None
        now = self.clock()

        def write(tx: Tx) -> tuple[DeliveryRow, str]:
            row = _one(tx.select(DeliveryRow, id=delivery_id))
            if row is None:
                raise NotFound(f"no delivery {delivery_id!r}")
            if row.status == PENDING:
                raise Conflict("this delivery is being sent already: wait for its outcome")
            channel = _one(tx.select(ChannelRow, id=row.channel_id))
            if channel is None or channel.disabled_at is not None:
                raise Conflict(
                    "its channel was removed, and sends nothing any more (its name stays "
                    "taken: a channel under another name gets the events from now on)"
                )
            # Sent now, and retried for as long as a new one; its tries keep counting (the log
            # shows every one the receiver got), and so its waits go on from them.
            values = {"status": PENDING, "next_at": now, "created_at": now, "done_at": None}
            tx.change(DeliveryRow, {"id": row.id}, **values, lease_until=None)
            audit(tx, by, "delivery.replay", row.id, address, event_id=row.event_id)
            for name, value in values.items():
                setattr(row, name, value)
            return row, channel.name

        replayed = await self.store.write(write)
        self.wake()
        return replayed


def _advance(tx: Tx, moves: list[tuple[ChannelRow, int]], made: list[DeliveryRow]) -> None:
    for channel, cursor in moves:
        if not tx.change(ChannelRow, {"id": channel.id, "cursor": channel.cursor}, cursor=cursor):
            raise Conflict("a channel's cursor moved")
    tx.insert_all(made)


def _record(tx: Tx, changes: list[tuple[str, dict[str, Any]]]) -> None:
    """Each delivery's outcome; those with the same (most, delivered together) in one
    statement."""
    alike: dict[tuple[tuple[str, Any], ...], list[str]] = {}
    for delivery_id, values in changes:
        alike.setdefault(tuple(values.items()), []).append(delivery_id)
    for same, ids in alike.items():
        for start in range(0, len(ids), RECORD):
            tx.change_all(DeliveryRow, ids[start : start + RECORD], **dict(same))


T = TypeVar("T")


def _one(rows: list[T]) -> T | None:
    return rows[0] if rows else None


def _b64(raw: bytes) -> str:
    import base64

    return base64.b64encode(raw).decode()


def check_webhook_url(url: str) -> None:
    """An http(s) URL with a host, and a port if any that is one (the poster reads both)."""
    wanted = f"url: a webhook needs an http:// or https:// URL with a host, not {url!r}"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (read for its check: out of range, or not a number)
    except ValueError as exc:  # "[::1" (an unclosed IPv6 address), ":99999", ":abc"
        raise Invalid(f"{wanted} ({exc})") from None
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.port == 0:
        raise Invalid(wanted)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Apprise logs an ERROR for a URL it cannot parse: here, that is the caller's mistake,
    answered with a 422, not the server's."""
    apprise_log = logging.getLogger("apprise")
    level = apprise_log.level
    apprise_log.setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        apprise_log.setLevel(level)


def _instantiate(url: str) -> Any:
    import apprise

    with _quiet():
        return apprise.Apprise.instantiate(url, suppress_exceptions=True)


def check_apprise_url(url: str) -> None:
    if _instantiate(url) is None:
        raise Invalid(
            f"url: Apprise does not know {_private(url)!r}: see "
            "https://github.com/caronc/apprise/wiki for the URL of each service"
        )


def _private(url: str) -> str:
    """An Apprise URL with its secrets (passwords, tokens) hidden, for showing."""
    plugin = _instantiate(url)
    if plugin is None:
        return url.split("://", 1)[0] + "://…"
    return str(plugin.url(privacy=True))


def shown_url(channel: ChannelRow) -> str:
    return channel.url if channel.kind == "webhook" else _private(channel.url)


def message(kind: str, data: dict[str, Any], public_url: str) -> tuple[str, str]:
    """An Apprise message's title and body: what happened, and the link to open."""
    link = f"{public_url.rstrip('/')}/tasks/{data.get('task_id')}"
    who = ", ".join(data.get("assignees") or []) or "any reviewer"
    what = data.get("prompt") or data.get("node") or "a review"
    if kind == "review.requested":
        return (f"hitl: review waiting for {who}", f"{what} (round {data.get('round')})\n{link}")
    if kind == "review.escalated":
        return (f"hitl: review now assigned to {who}", f"{what}\n{link}")
    if kind == "review.deadline_near":
        deadline = datetime.fromtimestamp(float(data.get("deadline") or 0), UTC)
        at = deadline.strftime("%Y-%m-%d %H:%M UTC")
        return (f"hitl: review deadline near ({at})", f"{what}, for {who}\n{link}")
    if kind == "review.decided":
        return (
            f"hitl: review {data.get('decision')} by {data.get('decided_by') or 'hitl'}",
            f"{data.get('comment') or ''}\n{link}".strip(),
        )
    if kind == "task.failed":
        return ("hitl: task failed", f"{data.get('error')}\n{link}")
    return ("hitl: task completed", link)


async def _apprise(url: str, title: str, body: str) -> Sent:
    import apprise

    def send() -> Sent:
        sender = apprise.Apprise()
        if not sender.add(url):
            return Sent(False, None, "Apprise does not know this URL")
        ok = bool(sender.notify(title=title, body=body))
        return Sent(ok, None, None if ok else "Apprise could not send it: see the server's log")

    return await asyncio.to_thread(send)
