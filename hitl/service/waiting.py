"""Waiting for an `asyncio.Event` with a timeout, without losing a cancellation."""

from __future__ import annotations

import asyncio


async def wait_set(event: asyncio.Event, timeout: float) -> bool:
    """Wait until `event` is set or `timeout` seconds pass; True if it was set.

    `asyncio.wait_for(event.wait(), timeout)` cannot be used in a loop that is stopped by
    cancelling it: on Python 3.11, a cancellation that arrives just as the event is set is
    swallowed (wait_for returns the result instead), and the loop never stops.
    `asyncio.timeout` counts cancellations and lets that one through.
    """
    try:
        async with asyncio.timeout(timeout):
            await event.wait()
    except TimeoutError:
        return event.is_set()
    return True
