"""Logging set-up: one readable line per event, no timestamps when journald adds its own."""

from __future__ import annotations

import logging
import os
import sys


def under_journald() -> bool:
    """systemd sets JOURNAL_STREAM when stderr goes to the journal, which stamps every line itself."""
    return bool(os.environ.get("JOURNAL_STREAM"))


def setup_logging(level: str = "info", stream=None) -> None:
    fmt = (
        "%(levelname)s %(name)s: %(message)s" if under_journald() else "%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(logging.Formatter(fmt, datefmt="%Y-%m-%d %H:%M:%S"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Library chatter that would drown photod's own lines at info level.
    for noisy in ("watchdog", "PIL", "asyncio", "faiss.loader"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
