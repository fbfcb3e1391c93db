"""photod.deadline: a call that returns in time gives its value, one that does not is abandoned for good."""

from __future__ import annotations

import threading
import time

import pytest

from photod.deadline import run_with_deadline


def test_a_call_that_returns_in_time_gives_its_value():
    assert run_with_deadline(lambda: 42, 5.0, "test").result(default=None) == 42


def test_a_call_past_its_deadline_is_abandoned_and_its_late_value_dropped():
    release, ended = threading.Event(), threading.Event()

    def slow() -> str:
        release.wait(10)
        ended.set()
        return "late"

    running = run_with_deadline(slow, 0.2, "test")
    t0 = time.monotonic()
    assert running.result(default="hung") == "hung"
    assert time.monotonic() - t0 < 2
    release.set()
    assert ended.wait(5)
    time.sleep(0.05)
    assert running.result(default="hung") == "hung"  # decided once: the late value never shows


def test_the_deadline_counts_from_the_start():
    running = [run_with_deadline(lambda i=i: time.sleep(0.3) or i, 1.0, "test") for i in range(3)]
    time.sleep(0.5)
    t0 = time.monotonic()
    assert [r.result(default=None) for r in running] == [0, 1, 2]
    assert time.monotonic() - t0 < 0.5


def test_what_the_call_raises_is_raised_to_the_waiter():
    def broken() -> None:
        raise ValueError("a bug in the call")

    with pytest.raises(ValueError, match="a bug in the call"):
        run_with_deadline(broken, 5.0, "test").result(default=None)
