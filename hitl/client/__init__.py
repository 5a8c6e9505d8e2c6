"""A client for the hitl HTTP API, sync and async. Depends on nothing of the server."""

from __future__ import annotations

from hitl.client._client import AsyncClient, Client, HitlAPIError

__all__ = ["AsyncClient", "Client", "HitlAPIError"]
