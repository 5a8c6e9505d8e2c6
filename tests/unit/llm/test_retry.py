"""Backoff: exponential, capped, jittered; Retry-After as seconds or as a date."""

from __future__ import annotations

import email.utils

import pytest

from hitl.llm import Backoff, retry_after


def test_each_retry_waits_twice_as_long_up_to_the_cap() -> None:
    backoff = Backoff(base=0.5, cap=3.0)
    assert [backoff.delay(n, None, lambda: 1.0) for n in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]


def test_jitter_waits_between_half_and_all_of_it() -> None:
    backoff = Backoff(base=1.0, cap=30.0)
    assert backoff.delay(2, None, lambda: 0.0) == 2.0
    assert backoff.delay(2, None, lambda: 0.5) == 3.0
    assert backoff.delay(2, None, lambda: 1.0) == 4.0


def test_retry_after_is_waited_in_full_and_one_past_the_cap_is_not_waited() -> None:
    backoff = Backoff(base=1.0, cap=10.0)
    assert backoff.delay(0, 7.0, lambda: 0.0) == 7.0
    assert backoff.delay(3, 7.0, lambda: 1.0) == pytest.approx(7.7)
    assert backoff.delay(0, 0.0, lambda: 1.0) == 0.0
    assert backoff.delay(0, 11.0, lambda: 0.0) is None


@pytest.mark.parametrize(
    "header,seconds",
    [
        (None, None),
        ("3", 3.0),
        (" 1.5 ", 1.5),
        ("-4", 0.0),
        ("soon", None),
        ("nan", None),
        (email.utils.formatdate(1_000_030.0, usegmt=True), 30.0),
        (email.utils.formatdate(999_000.0, usegmt=True), 0.0),
    ],
)
def test_retry_after_header(header: str | None, seconds: float | None) -> None:
    assert retry_after(header, now=lambda: 1_000_000.0) == seconds
