"""Reviews for any code: `POST /api/v1/reviews`, the client's `ask()`, its waits and
`@require_approval`, against a real `hitl serve` (SQLite and PostgreSQL).

The asker signs in as a submitter (a program's token); an admin decides, as a reviewer would
from the queue. Each decision is made on the `review.requested` event that an admin's stream
of every task's events delivers, so no test waits a fixed time.
"""

from __future__ import annotations

import asyncio
import json
import threading
import uuid
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import httpx
import pytest

from hitl.client import (
    AsyncClient,
    Client,
    FormField,
    HitlAPIError,
    Rejected,
    TaskEnded,
    WaitTimeout,
    require_approval,
)
from tests.conftest import Server, free_port, make_token
from tests.integration.helpers import TIMEOUT, Event, Stream, client, db_rows, read_stream

T = TypeVar("T")
WAIT = 60.0  # no test's wait should come near this


@pytest.fixture(scope="module")
def server(start_module_server: Callable[..., Server]) -> Server:
    return start_module_server()


@pytest.fixture(scope="module")
def asker(server: Server) -> str:
    """A program's token: it may submit, not review."""
    return make_token(server.db_url, ("submitter",))


def marker() -> str:
    return f"m-{uuid.uuid4().hex[:12]}"


class Reviewer:
    """An admin reading every task's events from now on, who returns the id of the next
    review whose output holds `mark` (`next_review`), once its stream is open (`opened`)."""

    def __init__(self, server: Server, mark: str) -> None:
        self.server, self.mark = server, mark
        self.opened = asyncio.Event()

    def wanted(self, stream: Stream) -> bool:
        last = stream.events[-1] if stream.events else None
        return (
            last is not None
            and last.type == "review.requested"
            and self.mark in json.dumps(last.data["output"])
        )

    async def next_review(self) -> Event:
        """The `review.requested` event of the review."""

        async def opened() -> None:
            self.opened.set()

        async with client(self.server) as admin:
            stream = await read_stream(
                admin, "/api/v1/events", on_open=opened, until=self.wanted, timeout=WAIT
            )
        return stream.events[-1]


async def decide_next(
    server: Server, mark: str, ask: Callable[[], Awaitable[T]], **decision: Any
) -> T:
    """Start `ask()`, decide the review it opens with `decision` (POST .../decision, as the
    queue's reviewers do), and return what `ask` returned."""
    reviewer = Reviewer(server, mark)
    watching = asyncio.create_task(reviewer.next_review())
    await reviewer.opened.wait()
    asking = asyncio.ensure_future(ask())
    requested = await watching
    async with client(server) as admin:
        url = f"/api/v1/reviews/{requested.data['review_id']}/decision"
        answered = await admin.post(url, json=decision)
        assert answered.status_code == 200, answered.text
    return await asyncio.wait_for(asking, WAIT)


# -- ask() -------------------------------------------------------------------------------------


async def test_ask_is_approved_and_says_who_decided(server: Server, asker: str) -> None:
    mark = marker()
    async with AsyncClient(server.url, token=asker) as hitl:

        async def ask() -> Any:
            return await hitl.ask({"send": mark}, prompt="Send it?", timeout=WAIT)

        answer = await decide_next(server, mark, ask, decision="approve", comment="fine")
    assert answer.approved and answer.decision == "approve" and answer.comment == "fine"
    assert answer.output == {"send": mark} and answer.edited_output is None
    assert answer.decided_by and answer.decided_by.startswith("test-")  # the admin's token
    async with client(server) as admin:
        task = (await admin.get(f"/api/v1/tasks/{answer.task_id}")).json()
    assert task["flow"] == "review" and task["status"] == "completed"
    assert task["result"]["decision"] == "approve" and task["reviews"][0]["prompt"] == "Send it?"


async def test_ask_rejected_edited_and_with_a_form_sync_client(server: Server, asker: str) -> None:
    form = [
        FormField(name="risk", type="choice", choices=["low", "high"], required=True),
        FormField(name="score", type="integer", min=1, max=5, decisions=["approve"]),
    ]
    with Client(server.url, token=asker) as hitl:
        mark = marker()
        rejected = await decide_next(
            server,
            mark,
            lambda: asyncio.to_thread(
                hitl.ask, mark, form=form, comment_required=["reject"], timeout=WAIT
            ),
            decision="reject",
            comment="too risky",
            form={"risk": "high"},
        )
        assert not rejected.approved and rejected.decision == "reject"
        assert rejected.comment == "too risky" and rejected.form == {"risk": "high"}

        mark = marker()
        edited = await decide_next(
            server,
            mark,
            lambda: asyncio.to_thread(hitl.ask, {"to": mark, "amount": 5}, timeout=WAIT),
            decision="edit",
            edited_output={"to": mark, "amount": 3},
        )
        assert edited.approved and edited.decision == "edit"
        assert edited.edited_output == edited.output == {"to": mark, "amount": 3}

        mark = marker()
        scored = await decide_next(
            server,
            mark,
            lambda: asyncio.to_thread(
                hitl.ask, mark, form=form, decisions=["approve", "reject"], timeout=WAIT
            ),
            decision="approve",
            form={"risk": "low", "score": 4},
        )
        assert scored.approved and scored.form == {"risk": "low", "score": 4}


async def test_ask_times_out_and_withdraws_its_review(server: Server, asker: str) -> None:
    async with AsyncClient(server.url, token=asker) as hitl:
        with pytest.raises(WaitTimeout) as waited:
            await hitl.ask(marker(), timeout=0.5)
        assert "no decision on task" in str(waited.value)
        withdrawn = await hitl.get_task(waited.value.task_id)
    assert withdrawn.status == "cancelled"  # nobody decides what nobody waits for


async def test_a_deadline_decides_or_ends_the_task(server: Server, asker: str) -> None:
    async with AsyncClient(server.url, token=asker) as hitl:
        by_default = await hitl.ask(
            marker(), deadline_seconds=0.2, on_deadline="reject", timeout=WAIT
        )
        assert by_default.decision == "reject" and by_default.decided_by == "deadline"
        with pytest.raises(TaskEnded) as ended:
            await hitl.ask(marker(), deadline_seconds=0.2, timeout=WAIT)
        assert ended.value.task.status == "failed" and "failed" in str(ended.value)


# -- the server restarts while ask() waits ------------------------------------------------------


class Watched(httpx.SyncByteStream):
    """A response's bytes, passed on as they come; `seen` is set once the reader has taken
    in the whole chunk in which `text` came (it asks for the next one), and then the reader
    waits for `go` before it gets more: a network that stalls."""

    def __init__(
        self, inner: httpx.SyncByteStream, text: bytes, seen: threading.Event, go: threading.Event
    ) -> None:
        self.inner, self.text, self.seen, self.go = inner, text, seen, go

    def __iter__(self) -> Iterator[bytes]:
        tail = b""
        for chunk in self.inner:
            yield chunk
            window = tail + chunk  # the text may begin in one chunk and end in the next
            if self.text in window:
                self.seen.set()
                self.go.wait(WAIT)
            tail = window[-len(self.text) :]

    def close(self) -> None:
        self.inner.close()


class Recording(httpx.HTTPTransport):
    """A real transport that keeps the `Last-Event-ID` of each request for an event stream,
    and says when its reader has taken in a `review.requested` event (`read_review`); from
    then on, the stream's reader gets nothing more until `go` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.streams: list[str | None] = []
        self.read_review = threading.Event()
        self.go = threading.Event()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        if not request.url.path.endswith("/events"):
            return response
        self.streams.append(request.headers.get("Last-Event-ID"))
        assert isinstance(response.stream, httpx.SyncByteStream)
        watched = Watched(response.stream, b"event: review.requested", self.read_review, self.go)
        return httpx.Response(
            response.status_code,
            headers=response.headers,
            stream=watched,
            extensions=response.extensions,
        )


@pytest.fixture
def restartable(start_server: Callable[..., Server]) -> Server:
    return start_server(lease_seconds=2)


@pytest.mark.parametrize("moment", ["before the decision", "just after the decision"])
async def test_ask_survives_a_server_restart_mid_wait(restartable: Server, moment: str) -> None:
    """kill -9 while ask() follows its stream; the same decision comes back to it, whether
    it was made after the restart, or before the crash while ask() was not reading (its
    network stalled: it had not seen the decision)."""
    server = restartable
    token = make_token(server.db_url, ("submitter",))
    transport = Recording()
    mark = marker()
    hitl = Client(server.url, token=token, transport=transport)
    reviewer = Reviewer(server, mark)
    watching = asyncio.create_task(reviewer.next_review())
    await reviewer.opened.wait()
    asking = asyncio.ensure_future(asyncio.to_thread(hitl.ask, {"deploy": mark}, timeout=WAIT))
    requested = await watching
    assert await asyncio.to_thread(transport.read_review.wait, WAIT)  # ask() has seen it
    decision = {"decision": "edit", "edited_output": {"deploy": "canary"}, "comment": "slowly"}
    url = f"/api/v1/reviews/{requested.data['review_id']}/decision"
    if moment == "just after the decision":
        async with client(server) as admin:
            assert (await admin.post(url, json=decision)).status_code == 200
    await asyncio.to_thread(server.restart)  # kill -9, then start on the same port
    transport.go.set()
    if moment == "before the decision":
        async with client(server) as admin:
            assert (await admin.post(url, json=decision)).status_code == 200
    answer = await asyncio.wait_for(asking, WAIT)
    hitl.close()
    assert answer.decision == "edit" and answer.output == {"deploy": "canary"}
    assert answer.comment == "slowly" and answer.approved
    # It came back to its stream from the last event it had seen, not from the start (unless
    # what the server wrote before it died was enough: the decision made, the task done).
    assert requested.id is not None
    first, *again = transport.streams
    assert first is None and (again or moment == "just after the decision"), transport.streams
    assert all(seen is not None and int(seen) >= requested.id for seen in again), again


# -- @require_approval --------------------------------------------------------------------------


async def test_require_approval_runs_the_approved_call_with_the_edit(
    server: Server, asker: str
) -> None:
    calls: list[tuple[str, int]] = []
    hitl = Client(server.url, token=asker)

    @require_approval(hitl, timeout=WAIT, assignees=["role:admin"])
    def transfer(to: str, amount: int = 10) -> str:
        calls.append((to, amount))
        return f"sent {amount} to {to}"

    mark = marker()
    # The reviewer changes the amount, as text: the parameter's hint makes it a number.
    edited = {"to": mark, "amount": "7"}
    result = await decide_next(
        server,
        mark,
        lambda: asyncio.to_thread(transfer, mark),
        decision="edit",
        edited_output=edited,
    )
    assert result == f"sent 7 to {mark}" and calls == [(mark, 7)]

    mark = marker()
    with pytest.raises(Rejected) as rejected:
        await decide_next(
            server,
            mark,
            lambda: asyncio.to_thread(transfer, mark, 99),
            decision="reject",
            comment="not today",
        )
    assert rejected.value.comment == "not today" and "transfer" in str(rejected.value)
    assert "not today" in str(rejected.value) and len(calls) == 1  # it did not run
    hitl.close()


async def test_require_approval_of_an_async_function(server: Server, asker: str) -> None:
    async with AsyncClient(server.url, token=asker) as hitl:

        @require_approval(hitl, timeout=WAIT, prompt="Delete these?")
        async def delete(*paths: str, force: bool = False) -> list[str]:
            return [f"{p}{'!' if force else ''}" for p in paths]

        mark = marker()
        done = await decide_next(server, mark, lambda: delete(mark, "b"), decision="approve")
        assert done == [mark, "b"]
        mark = marker()
        edit = {"paths": [mark], "force": True}
        narrowed = await decide_next(
            server, mark, lambda: delete(mark, "b"), decision="edit", edited_output=edit
        )
        assert narrowed == [f"{mark}!"]
        mark = marker()
        with pytest.raises(TypeError, match="does not take"):
            bad = {"paths": [mark], "recursive": True}
            await decide_next(
                server, mark, lambda: delete(mark), decision="edit", edited_output=bad
            )


def test_require_approval_needs_the_right_client(server: Server) -> None:
    async def later() -> None:
        pass

    with Client(server.url, token="") as hitl, pytest.raises(TypeError, match="AsyncClient"):
        require_approval(hitl)(later)


# -- POST /api/v1/reviews ----------------------------------------------------------------------


def counts(server: Server) -> tuple[Any, ...]:
    return db_rows(server, "SELECT (SELECT count(*) FROM tasks), (SELECT count(*) FROM events)")[0]


BAD_BODIES = [
    ({}, "body.output: Field required"),
    ({"output": None}, "body.output: output: required"),
    ({"output": "x", "on_deadline": "approve"}, "body.on_deadline: on_deadline needs deadline"),
    (
        {"output": "x", "deadline_seconds": 5, "on_deadline": "edit"},
        "body.on_deadline: on_deadline must be one of the decisions",
    ),
    (
        {"output": "x", "decisions": ["approve"], "deadline_seconds": 5, "on_deadline": "reject"},
        "body.on_deadline: on_deadline must be one of the decisions ['approve']",
    ),
    ({"output": "x", "deadline_seconds": -1}, "body.deadline_seconds: deadline_seconds must be"),
    ({"output": "x", "form": [{"name": "a b"}]}, "body.form.0.name: a form field's name must"),
    ({"output": "x", "form": [{"name": "c", "type": "choice"}]}, "body.form.0.choices: field"),
    ({"output": "x", "form": [{"name": "c", "type": "colour"}]}, "body.form.0.type: Input should"),
    ({"output": "x", "form": [{"name": "c"}, {"name": "c"}]}, "body.form: the form names a field"),
    (
        {"output": "x", "decisions": ["approve"], "form": [{"name": "c", "decisions": ["edit"]}]},
        "body.form: field 'c' names decisions this review lacks",
    ),
    (
        {"output": "x", "decisions": ["approve"], "comment_required": ["reject"]},
        "body.comment_required: comment_required names decisions this review lacks",
    ),
    ({"output": "x", "decisions": ["maybe"]}, "body.decisions.0: Input should be"),
    ({"output": "x", "decisions": []}, "body.decisions: List should have at least 1"),
    ({"output": "x", "quorum": 0}, "body.quorum: Input should be greater than or equal to 1"),
    ({"output": "x", "allow_self_review": True}, "body.allow_self_review: Extra inputs"),
    ({"output": "x", "max_rounds": 2}, "body.max_rounds: Extra inputs"),
    ({"output": "x", "on_deadline": "escalate", "deadline_seconds": 1}, "body.escalate_to: on_"),
    ({"output": "x", "assignees": ["a,b"]}, "body.assignees: assignees must be names without"),
    ({"output": "x", "assignees": ["role:boss"]}, "assignees: no role 'boss'"),
    ({"output": "x", "assignees": ["a\x00b"]}, "body.assignees.0: String should match pattern"),
    ({"output": "x", "escalate_to": ["role:boss"]}, "escalate_to: no role 'boss'"),
]


@pytest.mark.parametrize("body,detail", BAD_BODIES, ids=[d for _, d in BAD_BODIES])
async def test_a_bad_review_is_refused_naming_its_field_and_changes_nothing(
    server: Server, asker: str, body: dict[str, Any], detail: str
) -> None:
    before = counts(server)
    async with httpx.AsyncClient(
        base_url=server.url, timeout=TIMEOUT, headers={"Authorization": f"Bearer {asker}"}
    ) as c:
        refused = await c.post("/api/v1/reviews", json=body)
    assert refused.status_code == 422, refused.text
    assert detail in refused.json()["detail"], refused.json()
    assert counts(server) == before


async def test_who_may_create_a_review(server: Server) -> None:
    reviewer = make_token(server.db_url, ("reviewer",))
    for token, status in ((reviewer, 403), ("", 401)):
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        async with httpx.AsyncClient(base_url=server.url, headers=headers) as c:
            refused = await c.post("/api/v1/reviews", json={"output": "x"})
        assert refused.status_code == status, refused.text
    with Client(server.url, token=reviewer) as hitl, pytest.raises(HitlAPIError) as error:
        hitl.create_review("x")
    assert error.value.status_code == 403 and "submitter role" in error.value.detail


async def test_a_standalone_review_is_an_ordinary_review(server: Server, asker: str) -> None:
    """It is in the queue with what was asked, it is claimed and decided by the usual routes,
    audited, and its task page shows it."""
    mark = marker()
    async with AsyncClient(server.url, token=asker) as hitl:
        asked: dict[str, Any] = {
            "prompt": "Pay it?",
            "decisions": ["approve", "reject"],
            "dangerous": ["approve"],
            "form": [FormField(name="note", max_length=20)],
            "assignees": ["role:admin"],
            "deadline_seconds": 3600,
            "on_deadline": "reject",
            "idempotency_key": mark,
        }
        created = await hitl.create_review({"invoice": mark}, **asked)
        again = await hitl.create_review({"invoice": mark}, **asked)  # the same request again
        assert again.task_id == created.task_id
        assert created.links.task == f"/api/v1/tasks/{created.task_id}"
        assert created.links.events.endswith("/events")
        async with AsyncClient(server.url, token=server.token) as admin:
            opened = await admin.wait_for_review(created.task_id, timeout=WAIT)
            queue = (await admin.list_reviews(flow="review", q=mark)).data
            [listed] = queue
            assert listed.id == opened.id and listed.flow == "review"
            assert listed.output == {"invoice": mark} and listed.prompt == "Pay it?"
            assert listed.decisions == ["approve", "reject"] and listed.dangerous == ["approve"]
            assert [f.name for f in listed.form] == ["note"] and listed.form[0].max_length == 20
            assert listed.assignees == ["role:admin"] and listed.on_deadline == "reject"
            assert listed.deadline is not None and listed.may_decide
            assert (await admin.claim(listed.id)).claimed_by
            with pytest.raises(HitlAPIError) as refused:
                await admin.decide(listed.id, "edit", edited_output="y")
            assert refused.value.status_code == 409  # not among its decisions
            await admin.decide(
                listed.id,
                "approve",
                round=listed.round,
                content_hash=listed.content_hash,
                form={"note": "paid"},
            )
            done = await hitl.wait_for_result(created.task_id, timeout=WAIT)
            assert done.status == "completed" and isinstance(done.result, dict)
            assert done.result["decision"] == "approve" and done.result["form"] == {"note": "paid"}
            [entry] = (await admin.audit(created.task_id)).data
            assert entry.action == "review.decide"
            with pytest.raises(TaskEnded):
                await admin.wait_for_review(created.task_id)
        async with client(server) as c:
            page = await c.get(f"/tasks/{created.task_id}", headers={"Accept": "text/html"})
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]


def test_the_client_says_what_is_wrong(server: Server, asker: str) -> None:
    """As a user meets it: a wrong URL, a server that is down, a bad token."""
    from hitl.client import BadServerURL, HitlConnectionError

    with pytest.raises(BadServerURL, match="bad server URL 'localhost:8000'"):
        Client("localhost:8000")
    with pytest.raises(BadServerURL, match="bad server URL 8765: give it as text"):
        Client(8765)  # type: ignore[arg-type]
    with Client(server.url, token=asker) as typed:
        with pytest.raises(ValueError, match="an id is text, not float 1.5"):
            typed.get_task(1.5)  # type: ignore[arg-type]
        with pytest.raises(HitlAPIError, match="no task '1234'"):
            typed.get_task(1234)  # type: ignore[arg-type]
    for port in ("99999", "0"):
        with pytest.raises(BadServerURL, match="its port must be from 1 to 65535"):
            Client(f"http://127.0.0.1:{port}")
    for timeout in ("x", 0, -1, True, 10**400):  # (10**400: past a float, no OverflowError)
        with pytest.raises(ValueError, match="timeout: give the seconds each request may take"):
            Client(server.url, timeout=timeout)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="timeout: give the seconds each request may take"):
            AsyncClient(server.url, timeout=timeout)  # type: ignore[arg-type]
    # A wait's timeout, and a stream's read_timeout, are checked before anything is sent:
    # for a task that does not exist, the ValueError comes, not the 404.
    nobody = "0123abcd-0000-7000-8000-000000000000"
    with Client(server.url, token=asker) as sync:
        for bad in (-1, "abc", float("nan"), 10**400):
            for wait in (sync.wait_for_result, sync.wait_for_review):
                with pytest.raises(ValueError, match="timeout: give the seconds to wait"):
                    wait(nobody, timeout=bad)  # type: ignore[arg-type]
        for bad in (0, -1, "x", 10**400):
            with pytest.raises(ValueError, match="read_timeout: give the seconds"):
                next(sync.events(nobody, read_timeout=bad))  # type: ignore[arg-type]

    async def waits() -> None:
        async with AsyncClient(server.url, token=asker) as a:
            for wait in (a.wait_for_result, a.wait_for_review):
                with pytest.raises(ValueError, match="timeout: give the seconds to wait"):
                    await wait(nobody, timeout=-1)
            with pytest.raises(ValueError, match="read_timeout: give the seconds"):
                await anext(a.events(nobody, read_timeout=0))

    asyncio.run(waits())
    nowhere = f"http://127.0.0.1:{free_port()}"
    said = rf"^no hitl server answers at {nowhere} \(Connection refused\)$"
    down = Client(nowhere, token=asker)
    with down, pytest.raises(HitlConnectionError, match=said):
        down.ask("x")

    async def down_async() -> None:  # in the same words as the sync client's
        async with AsyncClient(nowhere, token=asker) as a:
            with pytest.raises(HitlConnectionError, match=said):
                await a.ask("x")

    asyncio.run(down_async())
    refused = Client(server.url, token="hitl_" + "x" * 43)
    with refused, pytest.raises(HitlAPIError) as error:
        refused.ask("x")
    assert error.value.status_code == 401 and "token" in error.value.detail
    # A wait that could not be waited is refused before the review is asked for.
    before = counts(server)
    with Client(server.url, token=asker) as hitl:
        for timeout in ("5", -1, float("nan"), True):
            with pytest.raises(ValueError, match="timeout: give the seconds to wait"):
                hitl.ask("x", timeout=timeout)  # type: ignore[arg-type]
    assert counts(server) == before
