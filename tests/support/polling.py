"""Waiting for a condition in tests: one deadline loop for threads and processes, one for a Textual Pilot.

Both return the condition's first truthy value, so a test can wait for a thing and use it, and both raise
AssertionError when the time runs out, so a wait that never ends fails the test where it waited.
`what` says what was awaited; a callable is asked only on timeout, so it can describe the last state seen.
"""

from __future__ import annotations

import time
from typing import Any, Callable, TypeVar

T = TypeVar("T")

What = str | Callable[[], str]


def timed_out(timeout: float, what: What) -> AssertionError:
    said = what() if callable(what) else what
    return AssertionError(f"timed out after {timeout:g} s waiting for {said}")


def wait_for(predicate: Callable[[], T], timeout: float = 60.0, interval: float = 0.1, what: What = "condition") -> T:
    """Call `predicate` every `interval` seconds until it returns something truthy; return that."""
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        if time.monotonic() > deadline:
            raise timed_out(timeout, what)
        time.sleep(interval)
    return value


async def until(
    pilot: Any,
    condition: Callable[[], T],
    timeout: float = 10.0,
    interval: float = 0.02,
    what: What = "the UI to reach the expected state",
) -> T:
    """Let a Textual app run (timers, workers, messages) under `pilot` until `condition` holds; return its value.

    The app is given a pause before the first look, so a key just pressed is handled before the condition
    is judged, and one more after, so what the condition saw has been drawn.
    """
    deadline = time.monotonic() + timeout
    while True:
        await pilot.pause(interval)
        if value := condition():
            await pilot.pause()
            return value
        if time.monotonic() > deadline:
            raise timed_out(timeout, what)
