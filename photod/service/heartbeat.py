"""Whether a daemon is running on a data dir, and what it is doing: `daemon.json`, for `photod status` and the TUI.

The daemon rewrites the file every few seconds and before long work (a scan of a big share can take
minutes, during which it cannot write), and removes it when it stops cleanly. A reader trusts it only
while the process it names is alive and is the same process that wrote it (the start time in
/proc/PID/stat guards against a pid reused after a crash), so a `kill -9` leaves a file that reads as
"not running, last seen at ...", never as a daemon that is not there.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Any

from photod import durable
from photod.errors import DiskFullError

log = logging.getLogger(__name__)

FILENAME = "daemon.json"
INTERVAL = 10.0  # seconds between rewrites while idle


def _start_ticks(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (Linux), or None where it cannot be read."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: count fields after its last ')'.
    return int(stat.rpartition(")")[2].split()[19])


class Heartbeat:
    """The daemon's side: `beat(activity)` now and then, `close()` at a clean stop."""

    def __init__(self, data_dir: str | os.PathLike[str]):
        self.path = Path(data_dir) / FILENAME
        durable.remove_dead_temps(self.path.parent, FILENAME)  # left by a daemon killed while writing
        self.pid = os.getpid()
        self.started_at = time.time()
        self._last = 0.0

    def beat(self, activity: str = "watching", force: bool = True) -> None:
        """Write the file; with `force` false, only if INTERVAL has passed since the last write."""
        now = time.monotonic()
        if not force and now - self._last < INTERVAL:
            return
        self._last = now
        info = {
            "pid": self.pid,
            "start_ticks": _start_ticks(self.pid),
            "started_at": self.started_at,
            "updated_at": time.time(),
            "activity": activity,
        }
        try:
            # Atomic, so a reader never sees half of it; not fsynced: it is advisory, rewritten every few
            # seconds, and read as "not running" when a power cut leaves it stale or empty.
            durable.write_text(self.path, json.dumps(info), sync=False)
        except (OSError, DiskFullError) as exc:  # a full disk must not stop the daemon over a status file
            log.debug("cannot write %s: %s", self.path, exc)

    def close(self) -> None:
        try:
            self.path.unlink()
        except OSError:
            pass


def read(data_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """{"running": bool, ...}: with the pid, start, last heartbeat and activity when a daemon has written
    one; `running` only when that process is still alive."""
    try:
        info = json.loads((Path(data_dir) / FILENAME).read_text(encoding="utf-8"))
        pid = int(info["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return {"running": False}
    info["running"] = _alive(pid, info.get("start_ticks"))
    info["seconds_since"] = max(0.0, time.time() - float(info.get("updated_at", 0)))
    return info


def _alive(pid: int, start_ticks: int | None) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # alive, but another user's: the daemon of a system service read by a person
    return start_ticks is None or _start_ticks(pid) in (None, start_ticks)


def describe(info: dict[str, Any]) -> str:
    """One line for `photod status`."""
    if info.get("running"):
        since = time.strftime("%Y-%m-%d %H:%M", time.localtime(info["started_at"]))
        return f"daemon: running (pid {info['pid']}, since {since}): {info.get('activity', 'watching')}"
    if "updated_at" in info:
        seen = time.strftime("%Y-%m-%d %H:%M", time.localtime(info["updated_at"]))
        return f"daemon: not running (it stopped without cleaning up; last seen {seen})"
    return "daemon: not running (`photod run`, or `photod service install` to run it under systemd)"
