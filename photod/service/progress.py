"""A one-line progress display for the one-shot commands (`photod scan`), silent when not on a terminal."""

from __future__ import annotations

import sys
import time


class Progress:
    def __init__(self, label: str, total: int | None = None, stream=None, min_interval: float = 0.1):
        self.label = label
        self.total = total
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty()
        self.min_interval = min_interval
        self.count = 0
        self.started = time.monotonic()
        self._last = 0.0

    def update(self, count: int, total: int | None = None) -> None:
        self.count = count
        if total is not None:
            self.total = total
        now = time.monotonic()
        if self.enabled and now - self._last >= self.min_interval:
            self._last = now
            self._draw(now)

    def advance(self, n: int = 1) -> None:
        self.update(self.count + n)

    def _draw(self, now: float) -> None:
        rate = self.count / max(now - self.started, 1e-6)
        if self.total:
            width = 30
            done = int(width * min(self.count / self.total, 1.0))
            bar = "#" * done + "-" * (width - done)
            text = f"{self.label} [{bar}] {self.count}/{self.total} ({rate:.0f}/s)"
        else:
            text = f"{self.label} {self.count} ({rate:.0f}/s)"
        self.stream.write("\r\033[K" + text)
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self._draw(time.monotonic())
            self.stream.write("\n")
            self.stream.flush()
