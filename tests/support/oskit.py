"""What this machine lets a test do: ignore permission bits, mount a small filesystem to fill up."""

from __future__ import annotations

import contextlib
import os
import subprocess
import tempfile
from pathlib import Path

import pytest


def reads_everything() -> bool:
    """True for root with its usual capabilities, which ignore permission bits."""
    if os.geteuid() != 0:
        return False
    with tempfile.TemporaryDirectory() as d:
        os.chmod(d, 0)
        try:
            os.listdir(d)
            return True
        except PermissionError:
            return False
        finally:
            os.chmod(d, 0o700)


@contextlib.contextmanager
def tmpfs(path: Path, size: str):
    """A real filesystem of `size` (tmpfs) mounted at `path`, to fill up; the test is skipped where mounting
    is not allowed."""
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(path)], capture_output=True, text=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a size-limited tmpfs here ({done.stderr.strip()})")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)
