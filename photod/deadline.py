"""Calls that may never return, run on a thread of their own against a deadline.

A read from a sleeping NAS, a hung NFS mount or an FFmpeg decode that spins can block for minutes or forever,
and no Python code can interrupt it. So such a call runs on a daemon thread; whoever waits for it gives up at
the deadline and goes on, and the thread finishes (or hangs) on its own, its result dropped.
"""

from __future__ import annotations

import threading
import time
from typing import Callable, Generic, TypeVar

T = TypeVar("T")
D = TypeVar("D")


class Running(Generic[T]):
    """A call started by `run_with_deadline`; `result()` waits for it until its deadline."""

    def __init__(self, call: Callable[[], T], seconds: float, name: str):
        self.deadline = time.monotonic() + seconds
        self._lock = threading.Lock()
        self._outcome: list[tuple[T | None, BaseException | None]] = []  # set once the call has ended in time
        self._abandoned = False
        self._thread = threading.Thread(target=self._run, args=(call,), name=name, daemon=True)
        self._thread.start()

    def _run(self, call: Callable[[], T]) -> None:
        try:
            outcome: tuple[T | None, BaseException | None] = (call(), None)
        except BaseException as exc:  # noqa: BLE001 - handed to the waiter, which raises it
            outcome = (None, exc)
        # The race: the call may end just as the waiter gives up. Both sides decide under the lock, so exactly
        # one wins: either the outcome is kept and `result()` returns it, or the waiter has already reported
        # the call as not answering and the late outcome is dropped here. So a caller never treats a call as
        # hung and then acts on its value too, nor loses a value that came in time.
        with self._lock:
            if not self._abandoned:
                self._outcome.append(outcome)

    def result(self, default: D) -> T | D:
        """The call's value when it ended by its deadline (what it raised is raised here), else `default`, and
        then the call is abandoned for good: whatever it returns later is dropped."""
        self._thread.join(max(0.0, self.deadline - time.monotonic()))
        with self._lock:
            if not self._outcome:
                self._abandoned = True
                return default
        value, error = self._outcome[0]
        if error is not None:
            raise error
        return value  # type: ignore[return-value]  # a call that raised nothing returned a T


def run_with_deadline(call: Callable[[], T], seconds: float, name: str) -> Running[T]:
    """Start `call` on a daemon thread named `name`; its `result()` waits at most until `seconds` from now.

    The deadline counts from the start, not from `result()`, so that calls started together (one per worker)
    each get their `seconds`, however long the waiter spent on the ones before."""
    return Running(call, seconds, name)
