"""When to try again: exponential backoff with jitter, and the endpoint's `Retry-After`."""

from __future__ import annotations

import email.utils
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Backoff:
    """Retry `n` (0 for the first) waits about `base * 2**n` seconds, at most `cap`: between
    half and all of it, at random ("equal jitter"), so that callers that failed together do
    not come back together. A `Retry-After` the endpoint sent is waited in full, plus up to a
    tenth; one longer than `cap` is not waited at all (`delay` returns None: give up)."""

    base: float = 1.0
    cap: float = 30.0

    def delay(
        self, retry: int, retry_after: float | None, random: Callable[[], float]
    ) -> float | None:
        if retry_after is not None:
            if retry_after > self.cap:
                return None
            return retry_after * (1 + 0.1 * random())
        full = min(self.cap, self.base * 2.0**retry)
        return full / 2 + full / 2 * random()


def retry_after(value: str | None, now: Callable[[], float] = time.time) -> float | None:
    """A `Retry-After` header's seconds (it may be a number or an HTTP date); None if absent
    or unreadable."""
    if value is None:
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            return None
        seconds = when.timestamp() - now()
    if seconds != seconds:  # NaN
        return None
    return max(0.0, seconds)
