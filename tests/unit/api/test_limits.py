"""Limits per principal: requests a second (429 and Retry-After), and comment size."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx

from hitl.app import create_app
from hitl.config import Settings


class Clock:
    """Seconds that pass only when a test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@asynccontextmanager
async def signed_in(path: Path, **settings: Any) -> AsyncIterator[Callable[[str], Any]]:
    app = create_app(Settings(database_url=f"sqlite:///{path}", process_delay=0, **settings))
    async with app.router.lifespan_context(app):
        identity = app.state.service.identity
        clients: list[httpx.AsyncClient] = []

        async def client(name: str) -> httpx.AsyncClient:
            secret, _ = await identity.create_token(name, ["admin"])
            made = httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app),
                base_url="http://127.0.0.1",
                headers={"Authorization": f"Bearer {secret}"},
            )
            clients.append(made)
            return made

        client.limits = app.front.keywords["limits"]  # type: ignore[attr-defined]
        try:
            yield client
        finally:
            for made in clients:
                await made.aclose()


async def test_a_principal_over_its_rate_gets_429_and_others_do_not(tmp_path: Path) -> None:
    async with signed_in(tmp_path / "rate.db", rate_limit=5) as client:
        clock = Clock()
        client.limits.clock = clock  # type: ignore[attr-defined]
        busy, calm = await client("busy"), await client("calm")
        answers = [(await busy.get("/api/v1/tasks")).status_code for _ in range(10)]
        assert answers == [200] * 10  # a burst of twice the rate, and no time has passed
        before = (await calm.get("/api/v1/tasks")).json()["count"]
        refused = await busy.post("/submit", json={"data": "x"})  # the fast path too
        assert refused.status_code == 429, refused.text
        assert refused.headers["retry-after"] == "1"
        assert "at most 5 a second (HITL_RATE_LIMIT)" in refused.json()["detail"]
        assert (await calm.get("/api/v1/tasks")).json()["count"] == before  # nothing was made
        assert (await busy.get("/healthz")).status_code == 200  # open routes count for no one
        clock.now += 0.2  # one request's worth of refill
        assert (await busy.post("/submit", json={"data": "x"})).status_code == 202
        assert (await busy.get("/api/v1/tasks")).status_code == 429


async def test_no_rate_limit_when_it_is_zero(tmp_path: Path) -> None:
    async with signed_in(tmp_path / "free.db", rate_limit=0) as client:
        busy = await client("busy")
        for _ in range(300):
            assert (await busy.get("/api/v1/tasks")).status_code == 200


async def test_a_comment_over_the_limit_is_refused_and_changes_nothing(tmp_path: Path) -> None:
    async with signed_in(tmp_path / "comment.db", max_comment_chars=20, rate_limit=0) as client:
        admin = await client("admin-token")
        task = (await admin.post("/api/v1/tasks", json={"input": "draft"})).json()["id"]
        while not (await admin.get(f"/api/v1/tasks/{task}")).json()["reviews"]:
            pass
        review = (await admin.get(f"/api/v1/tasks/{task}")).json()["reviews"][0]["id"]
        long = await admin.post(
            f"/api/v1/reviews/{review}/decision", json={"decision": "reject", "comment": "x" * 21}
        )
        assert long.status_code == 422
        assert "21 characters; the most is 20 (HITL_MAX_COMMENT_CHARS)" in long.json()["detail"]
        assert (await admin.get(f"/api/v1/tasks/{task}")).json()["status"] == "waiting_for_review"
        ok = await admin.post(
            f"/api/v1/reviews/{review}/decision", json={"decision": "reject", "comment": "x" * 20}
        )
        assert ok.status_code == 200, ok.text
