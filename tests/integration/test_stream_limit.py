"""One principal may hold HITL_MAX_STREAMS event streams open at once; others are not held up."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import httpx

from tests.conftest import Server, user_token
from tests.integration.helpers import TIMEOUT, client, create_task, wait_for


async def test_a_principal_over_its_open_streams_gets_429(
    start_server: Callable[..., Server],
) -> None:
    server = start_server(max_streams=2)
    other = {"Authorization": f"Bearer {user_token(server.db_url, 'ann', 'admin')}"}
    async with client(server) as c, contextlib.AsyncExitStack() as held:
        task = await create_task(c, "watched")
        for _ in range(2):
            stream = await held.enter_async_context(c.stream("GET", "/api/v1/events"))
            assert stream.status_code == 200
        third = await c.get(f"/stream/{task['id']}")
        assert third.status_code == 429, third.text
        assert "HITL_MAX_STREAMS" in third.json()["detail"]
        assert third.headers["retry-after"] == "1"
        assert (await c.get(f"/api/v1/tasks/{task['id']}")).status_code == 200  # not a stream
        ann = await held.enter_async_context(
            httpx.AsyncClient(base_url=server.url, timeout=TIMEOUT, headers=other)
        )
        async with ann.stream("GET", "/api/v1/events") as theirs:
            assert theirs.status_code == 200  # another principal's streams are not counted
    # Closed streams are counted off (once the server has seen them close): one may open again.
    async with client(server) as c:

        async def opens() -> bool:
            async with c.stream("GET", "/api/v1/events") as again:
                return again.status_code == 200

        await wait_for(opens, what="a stream to open again")
