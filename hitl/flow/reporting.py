"""Progress a node reports while it runs: a message, or text streamed a piece at a time.

A node that mixes in `Reporting` calls `self.progress(...)` from its code — a sync `exec` in a
worker thread, or async code on the event loop — and any code a node calls may use the module
function `progress(...)`. The runner binds a reporter to each leaf node it runs (a context
variable, which the runner's worker threads inherit) and hands every update to its
`on_progress` sink, always on the event loop's thread, in the order they were made. Outside a
run (PocketFlow's own `flow.run`, `run_flow`, a review node's `prep`) a report does nothing.

An update carries any of:

- `message`: a line saying where the node is ("calling the model", "3 of 10 done");
- `delta`: a piece of text that continues what the node streamed so far (tokens);
- `reset`: the streamed text starts over (a retried request): forget what came before;
- other JSON values by name (`usage={...}`), which the latest report of a name replaces.

The sink decides how often to store them (the service coalesces them: see
`hitl.service.worker`), so a node may report every token.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

# Names an update's values may not take: the event's own fields.
RESERVED = frozenset({"task_id", "status", "node", "message", "delta", "reset"})


@dataclass(frozen=True)
class Update:
    message: str | None = None
    delta: str | None = None
    reset: bool = False
    values: dict[str, Any] = field(default_factory=dict)


# Called on the event loop's thread with the leaf's path (as `on_node_started` names it).
ProgressSink = Callable[[list[str], Update], None]


class Reporter:
    """Hands one leaf's updates to a sink on the loop's thread, until the leaf has ended."""

    def __init__(self, sink: ProgressSink, path: list[str]) -> None:
        self.sink = sink
        self.path = path
        self.loop = asyncio.get_running_loop()
        self.thread = threading.get_ident()
        self.open = True

    def report(self, update: Update) -> None:
        if threading.get_ident() == self.thread:
            self._deliver(update)
        elif self.open:
            # Queued before the thread's own result is, so it arrives before the node ends.
            try:
                self.loop.call_soon_threadsafe(self._deliver, update)
            except RuntimeError:  # the loop has closed: the run is over
                self.open = False

    def close(self) -> None:
        """The leaf ended: a late report (from a thread the node left running) is dropped."""
        self.open = False

    def _deliver(self, update: Update) -> None:
        if self.open:
            self.sink(self.path, update)


_current: contextvars.ContextVar[Reporter | None] = contextvars.ContextVar(
    "hitl_progress", default=None
)


def bind(reporter: Reporter | None) -> contextvars.Token[Reporter | None]:
    """Make `reporter` the one `progress` reports to, in this context (the runner's call)."""
    return _current.set(reporter)


def unbind(token: contextvars.Token[Reporter | None]) -> None:
    _current.reset(token)


def progress(
    message: str | None = None, *, delta: str | None = None, reset: bool = False, **values: Any
) -> None:
    """Report progress of the node running now; nothing happens outside a run. Bad values
    raise at once (TypeError / ValueError), in or out of a run, so a node fails the same way
    in its tests as in the service."""
    update = _update(message, delta, reset, values)
    reporter = _current.get()
    if reporter is not None:
        reporter.report(update)


def _update(message: Any, delta: Any, reset: bool, values: dict[str, Any]) -> Update:
    if message is not None and not isinstance(message, str):
        raise TypeError(f"progress: message must be text, not {type(message).__name__}")
    if delta is not None and not isinstance(delta, str):
        raise TypeError(f"progress: delta must be text, not {type(delta).__name__}")
    if values:
        taken = sorted(RESERVED & values.keys())
        if taken:
            raise ValueError(f"progress: {', '.join(taken)} is the event's own; use another name")
        try:
            json.dumps(values, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"progress: values must be JSON ({exc})") from None
    return Update(message, delta, bool(reset), values)


class Reporting:
    """Mix into a node (`class Draft(Reporting, AsyncNode)`) for `self.progress(...)`."""

    def progress(
        self,
        message: str | None = None,
        *,
        delta: str | None = None,
        reset: bool = False,
        **values: Any,
    ) -> None:
        progress(message, delta=delta, reset=reset, **values)
