"""The heap settings the daemon and `photod scan` apply before decoding photos."""

from __future__ import annotations

import subprocess
import sys


def test_heap_settings_apply_on_glibc_and_nowhere_else():
    # In a child process: mallopt changes the whole process, and this test must not change pytest's.
    code = (
        "from photod.service.heap import keep_heap_small; import platform; "
        "ok = keep_heap_small(); print(ok, platform.libc_ver()[0])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out[0] == ("True" if out[1:] == ["glibc"] else "False")
