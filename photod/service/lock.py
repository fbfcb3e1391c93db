"""One daemon per data dir.

A second `photod run` on the same library (the systemd service is up and a person starts one by hand) would
watch the same folders and decode, stage and encode every new photo twice, and the two would overwrite each
other's `daemon.json`, so `photod status` would describe only one. The catalog stays correct either way (it
is built for a daemon and a `photod scan` side by side), but the work and the status would not be.

The lock is an flock on `daemon.lock`, not a pid file: the kernel drops it when the process ends, however it
ends, so a `kill -9` or a power cut never leaves a stale lock that keeps the next start out.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path
from typing import Iterator

from photod.errors import AlreadyRunningError, PhotodError

FILENAME = "daemon.lock"


@contextlib.contextmanager
def held(data_dir: str | os.PathLike[str]) -> Iterator[None]:
    """Hold the data dir's daemon lock for the `with` block, or raise AlreadyRunningError naming the
    process that holds it."""
    path = Path(data_dir) / FILENAME
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        raise PhotodError(
            f"cannot open {path}: {exc.strerror}", "run photod as the user that owns the data dir"
        ) from exc
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode("ascii", "replace").strip() or "unknown"
            raise AlreadyRunningError(path.parent, holder) from None
        # Only for the message a second daemon shows; the lock itself is the flock.
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # closing drops the flock
