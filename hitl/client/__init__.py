"""A client for the hitl HTTP API, sync and async. Depends on nothing of the server.

`Client(url, token=...)` signs in with an API token, or with `HITL_TOKEN` when `token` is left
out: every request sends `Authorization: Bearer <token>`.
"""

from __future__ import annotations

from hitl.client._client import AsyncClient, Client, HitlAPIError

__all__ = ["AsyncClient", "Client", "HitlAPIError"]
