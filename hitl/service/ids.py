"""Ids for tasks and reviews: UUID version 7 (RFC 9562), time-ordered and unguessable.

A version-7 id starts with the time in milliseconds, so the ids of recent tasks sort together:
the index entries a busy server writes (events by task, reviews by task) land on a few hot
pages instead of one random page each, which keeps every commit small. The other 74 bits are
random, from the operating system's generator, so an id still cannot be guessed.

Random bytes are read 4 KiB at a time: one `os.urandom` call per 256 ids, not one per id (each
call releases the GIL, which on a busy server hands the core to another thread).
"""

from __future__ import annotations

import os
import threading
import time

_CHUNK = 4096
_lock = threading.Lock()
_pool = b""
_at = 0


def _reset() -> None:
    """A forked child must not hand out its parent's next random bytes, nor inherit the lock
    held by a thread that does not exist in it."""
    global _lock, _pool, _at
    _lock, _pool, _at = threading.Lock(), b"", 0


os.register_at_fork(after_in_child=_reset)


def _random16() -> bytes:
    global _pool, _at
    with _lock:
        if _at + 16 > len(_pool):
            _pool, _at = os.urandom(_CHUNK), 0
        chunk = _pool[_at : _at + 16]
        _at += 16
    return chunk


def new_id() -> str:
    """A new UUIDv7, as the usual 36-character text."""
    value = (time.time_ns() // 1_000_000) << 80 | int.from_bytes(_random16()[:10], "big")
    value = (value & ~(0xF << 76)) | (0x7 << 76)  # version 7
    value = (value & ~(0x3 << 62)) | (0x2 << 62)  # RFC 9562 variant
    text = f"{value:032x}"
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"
