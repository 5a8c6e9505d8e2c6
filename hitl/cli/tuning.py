"""Process-wide tuning for the processes `hitl serve` and `hitl worker` own.

It lives here, at the entry points, and not in the library: a program that embeds hitl (or a
test suite) keeps its interpreter as it configured it.
"""

from __future__ import annotations

import asyncio
import gc
import sys
from collections.abc import Callable

# Database threads hand results back to the event loop constantly; the default 5 ms GIL switch
# interval would add up to that much latency to every hand-over, and 0.5 ms switched so often
# that it cost a tenth of the throughput (bench/throughput.py).
SWITCH_INTERVAL = 0.002

# Collect young objects after this many allocations, not CPython's 700: fewer collections,
# and most of a request's objects are gone before one runs.
GC_YOUNG_THRESHOLD = 5000


def tune_switch_interval() -> None:
    """Before serving: how often the interpreter lets another thread take the GIL."""
    sys.setswitchinterval(SWITCH_INTERVAL)


def tune_gc() -> None:
    """For a server process, once it is set up: move everything made so far (modules, FastAPI's
    and SQLAlchemy's objects) out of the collector's sight. They live as long as the process,
    and every full collection walked them all. With this, collections cost a twentieth of the CPU
    they did, about 8% of the server's CPU under load (bench/throughput.py)."""
    gc.collect()  # what is garbage already goes now; frozen objects are never collected
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])


def event_loop() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """The event loop `hitl worker` runs on: uvloop's when it is installed (hitl depends on it
    where it runs, and `hitl serve` runs on it, as uvicorn chooses), else None:
    asyncio's own. On it a PostgreSQL worker takes 8-10% less CPU a lifecycle."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop
