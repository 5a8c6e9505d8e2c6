"""The `hitl` command (and `python -m hitl`): the command line, which a Ctrl+C ends quietly
(exit 130) even while it is still loading, before the command line could catch it.

A command ends without the interpreter's tear-down, which frees everything the command
imported one object at a time: 0.2 s of CPU for a client command, 0.5 s for `hitl serve`
(a third of what `hitl show` costs), and far longer on a busy machine. By then nothing is
left to do: the standard streams are flushed and the log handlers closed here, and every
command closed what it opened (the servers their databases, the clients their connections).
If a thread other than the main one is still running (a flow's node finishing after a stop),
the usual exit waits for it, as before.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading


def main() -> None:
    try:
        from hitl.cli.main import app
    except KeyboardInterrupt:
        sys.exit(130)
    try:
        app()
    except SystemExit as exc:
        leave(exc.code)


def leave(code: str | int | None) -> None:
    """Exit with `code`, as `sys.exit(code)` would, without the interpreter's tear-down when
    no other thread is running."""
    others = [t for t in threading.enumerate() if t is not threading.main_thread()]
    if any(t.is_alive() and not t.daemon for t in others):
        sys.exit(code)
    if code is None:
        status = 0
    elif isinstance(code, int):
        status = code
    else:  # as sys.exit says a message
        print(code, file=sys.stderr)
        status = 1
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(status)
