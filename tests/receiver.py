"""A real HTTP receiver on 127.0.0.1 for notification tests: it records every request and
answers each with the next status of its script (200 when the script is done), and can hold
requests unanswered until told to let them go."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    url: str = ""
    received: list[Received] = field(default_factory=list)
    script: list[int] = field(default_factory=list)  # the statuses to answer, in order
    release: threading.Event = field(default_factory=threading.Event)  # unset: hold requests
    _changed: threading.Condition = field(default_factory=threading.Condition)

    def __post_init__(self) -> None:
        self.release.set()

    def wait_for(self, count: int, timeout: float = 30.0) -> list[Received]:
        """Once at least `count` requests came: all of them."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while len(self.received) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"{len(self.received)} requests came, not {count}")
                self._changed.wait(left)
            return list(self.received)

    def _take(self, received: Received) -> int:
        with self._changed:
            self.received.append(received)
            self._changed.notify_all()
            return self.script.pop(0) if self.script else 200


@contextmanager
def receiver() -> Iterator[Receiver]:
    answers = Receiver()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            headers = {k.lower(): v for k, v in self.headers.items()}
            status = answers._take(Received(self.path, headers, body))
            answers.release.wait()
            reply = b"ok" if status < 300 else b"not now"
            self.send_response(status)
            self.send_header("content-length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    answers.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield answers
    finally:
        answers.release.set()
        server.shutdown()
        server.server_close()
