"""How a followed stream counts an outage: from its first loss until the server is heard
again (an event or a heartbeat), not merely until a stream opens."""

from __future__ import annotations

import logging

import pytest

from hitl.client import HitlError
from hitl.client._client import _Stream


def stream(patience: float | None) -> _Stream:
    return _Stream("t1", "http://127.0.0.1:1", None, "task t1", patience=patience)


def test_a_server_that_opens_streams_and_drops_them_is_still_away(
    caplog: pytest.LogCaptureFixture,
) -> None:
    gone = HitlError("the stream ended before the task did")
    flapping = stream(patience=0.0)
    with caplog.at_level(logging.WARNING, logger="hitl.client"):
        assert flapping.lost(gone) == 0.0  # a last try at once: the patience is over
        flapping.opened()  # it opens, and ends with nothing said
        with pytest.raises(HitlError) as raised:
            flapping.lost(gone)
    assert raised.value is gone
    [warning] = caplog.records  # said once an outage, however often it flaps
    assert "lost the event stream of task t1" in warning.getMessage()


def test_a_heartbeat_ends_the_outage() -> None:
    gone = HitlError("connection reset")
    back = stream(patience=0.0)
    back.lost(gone)
    back.opened()
    assert back.feed(": heartbeat") is None  # heard: a new outage starts at the next loss
    assert back.lost(gone) == 0.0
    waits = stream(patience=None)  # the waits: no patience, only their own timeout
    for _ in range(20):
        assert 0 < waits.lost(gone) <= 2.0
        waits.opened()
