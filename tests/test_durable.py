"""Crash-safe writes: real files, a real kill -9 in the middle of a write, a real full disk."""

from __future__ import annotations

import errno
import os
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import lmdb
import pytest

from photod import durable
from photod.errors import DiskFullError

REPO = Path(__file__).resolve().parent.parent


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


# ---- files ---------------------------------------------------------------------------------------------


def test_write_replaces_the_content_and_leaves_no_temp_file(tmp_path):
    path = tmp_path / "ACTIVE"
    durable.write_text(path, "one\n")
    durable.write_text(path, "two\n")
    durable.write_bytes(tmp_path / "blob", b"\0\1")
    assert path.read_text() == "two\n" and (tmp_path / "blob").read_bytes() == b"\0\1"
    assert _leftovers(tmp_path) == []


def test_a_failed_write_keeps_the_old_content_and_removes_its_temp_file(tmp_path):
    path = tmp_path / "checkpoint.pt"
    path.write_bytes(b"old")
    with pytest.raises(ValueError):
        with durable.open_atomic(path) as f:
            f.write(b"half of the new")
            raise ValueError("the writer failed")
    assert path.read_bytes() == b"old"
    assert _leftovers(tmp_path) == []


WRITER = textwrap.dedent("""
    import sys
    from photod import durable
    path = sys.argv[1]
    print("ready", flush=True)
    while True:
        for fill in (b"a", b"b"):
            with durable.open_atomic(path) as f:
                for _ in range(64):
                    f.write(fill * 65536)
""")


def test_kill_9_in_the_middle_of_writes_leaves_the_old_or_the_new_content(tmp_path):
    path = tmp_path / "data.bin"
    path.write_bytes(b"a" * (64 << 16))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    for delay in (0.05, 0.2, 0.5):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, env=env)
        assert proc.stdout.readline().strip() == b"ready"
        time.sleep(delay)
        proc.kill()
        proc.wait()
        data = path.read_bytes()
        assert len(data) == 64 << 16 and data.count(data[:1]) == len(data), "a mix of two writes"
        # What the killed writer left is a dead temp file, which is cleared.
        durable.remove_dead_temps(tmp_path, path.name)
        assert _leftovers(tmp_path) == []


def test_dead_temps_spares_a_live_writer(tmp_path):
    mine = durable.temp_path(tmp_path / "x.json")
    mine.write_text("{}")
    dead = tmp_path / f".x.json.{2**22 + 12345}.1.tmp"  # no such pid: its writer is gone
    dead.write_text("{}")
    assert durable.dead_temps(tmp_path, "x.json") == [dead]


def test_a_crash_between_two_renames_keeps_the_later_temp_file_to_finish_from(tmp_path, monkeypatch):
    first, second = tmp_path / "index.faiss", tmp_path / "index.json"
    first.write_text("old index")
    second.write_text("old sidecar")
    real_replace = os.replace

    def die_before_second(src, dst):
        if Path(dst) == second:
            raise KeyboardInterrupt  # the process dies here
        real_replace(src, dst)

    monkeypatch.setattr(durable.os, "replace", die_before_second)
    with pytest.raises(KeyboardInterrupt):
        with durable.staged_files([first, second]) as (tmp1, tmp2):
            tmp1.write_text("new index")
            tmp2.write_text("new sidecar")
    monkeypatch.undo()
    assert first.read_text() == "new index" and second.read_text() == "old sidecar"
    (kept,) = tmp_path.glob(".index.json.*.tmp")
    durable.finish(kept, second)
    assert second.read_text() == "new sidecar" and _leftovers(tmp_path) == []


# ---- folders -------------------------------------------------------------------------------------------


def test_a_staged_folder_replaces_the_old_one_whole(tmp_path):
    final = tmp_path / "bundle"
    final.mkdir()
    (final / "old.onnx").write_text("old")
    with durable.staged_dir(final) as tmp:
        (tmp / "sub").mkdir()
        (tmp / "sub" / "new.onnx").write_text("new")
    assert sorted(str(p.relative_to(final)) for p in final.rglob("*")) == ["sub", "sub/new.onnx"]
    assert _leftovers(tmp_path) == []


def test_a_failed_staged_folder_leaves_the_old_one_and_no_leftovers(tmp_path):
    final = tmp_path / "dataset"
    final.mkdir()
    (final / "manifest.json").write_text("{}")
    with pytest.raises(RuntimeError):
        with durable.staged_dir(final) as tmp:
            (tmp / "half").write_text("x")
            raise RuntimeError("interrupted")
    assert [p.name for p in final.iterdir()] == ["manifest.json"]
    assert _leftovers(tmp_path) == []


def test_remove_dir_takes_the_name_away(tmp_path):
    doomed = tmp_path / "model"
    (doomed / "deep").mkdir(parents=True)
    (doomed / "deep" / "f").write_text("x")
    durable.remove_dir(doomed)
    assert list(tmp_path.iterdir()) == []


# ---- the folder fsync rule -----------------------------------------------------------------------------


def _fsync_failing_on_folders(monkeypatch, code: int) -> None:
    real_fsync = os.fsync

    def fsync(fd):
        if os.path.isdir(f"/proc/self/fd/{fd}"):
            raise OSError(code, os.strerror(code))
        real_fsync(fd)

    monkeypatch.setattr(durable.os, "fsync", fsync)


@pytest.mark.parametrize("code", [errno.EINVAL, errno.ENOTSUP])
def test_a_filesystem_that_cannot_fsync_a_folder_still_gets_atomic_writes(tmp_path, monkeypatch, code):
    _fsync_failing_on_folders(monkeypatch, code)
    durable.write_text(tmp_path / "SERVING", "lit-1\n")
    assert (tmp_path / "SERVING").read_text() == "lit-1\n"


def test_a_folder_fsync_that_fails_is_an_error(tmp_path, monkeypatch):
    _fsync_failing_on_folders(monkeypatch, errno.EIO)
    with pytest.raises(OSError) as err:
        durable.write_text(tmp_path / "SERVING", "lit-1\n")
    assert err.value.errno == errno.EIO


def test_an_advisory_write_does_not_fsync(tmp_path, monkeypatch):
    _fsync_failing_on_folders(monkeypatch, errno.EIO)
    durable.write_text(tmp_path / "daemon.json", "{}", sync=False)
    assert (tmp_path / "daemon.json").read_text() == "{}"


# ---- full disks ----------------------------------------------------------------------------------------


def test_disk_full_is_told_apart_from_other_errors(tmp_path):
    with pytest.raises(OSError) as full:
        with open("/dev/full", "wb") as f:  # every write there fails with a real ENOSPC
            f.write(b"x")
    assert durable.is_disk_full(full.value)
    assert durable.is_disk_full(DiskFullError("full"))
    assert durable.is_disk_full(lmdb.DiskError("write", "short write"))
    assert durable.is_disk_full(RuntimeError("Error: 'ret == (n)' failed: write error, No space left on device"))
    assert not durable.is_disk_full(RuntimeError("Error in faiss"), tmp_path)  # this disk has room


def test_a_full_sqlite_database_reads_as_a_full_disk(tmp_path):
    conn = sqlite3.connect(tmp_path / "catalog.db")
    conn.execute("PRAGMA max_page_count = 8")
    conn.execute("CREATE TABLE t (x BLOB)")
    with pytest.raises(sqlite3.OperationalError) as full:
        for _ in range(100):
            conn.execute("INSERT INTO t VALUES (zeroblob(4096))")
    conn.close()
    assert durable.is_disk_full(full.value)
    assert not durable.is_disk_full(sqlite3.OperationalError("no such table: photos"))


def test_a_write_on_a_full_disk_raises_disk_full_and_keeps_the_old_file(tiny_disk):
    path = tiny_disk / "manifest.json"
    durable.write_text(path, "old")
    with pytest.raises(DiskFullError) as err:
        durable.write_bytes(path, b"x" * (1 << 20))
    assert str(path) in err.value.message and "intact" in err.value.hint
    assert path.read_text() == "old" and _leftovers(tiny_disk) == []
    with pytest.raises(DiskFullError):
        with durable.staged_dir(tiny_disk / "bundle") as tmp:
            (tmp / "image.onnx").write_bytes(b"x" * (1 << 20))
    assert sorted(p.name for p in tiny_disk.iterdir()) == ["manifest.json"]


def test_errors_without_an_errno_on_a_full_disk_read_as_disk_full(tiny_disk):
    with pytest.raises(OSError), open(tiny_disk / "filler", "wb") as f:
        while True:
            f.write(b"x" * 4096)
            f.flush()
    # FAISS's failed write and LMDB's short write say nothing of space: the filesystem is asked.
    assert durable.is_disk_full(RuntimeError("Error in faiss::FileIOWriter: write failed"), tiny_disk)
    assert durable.is_disk_full(OSError(errno.EIO, "Input/output error"), tiny_disk)
    # A permission error is one, whatever the space left.
    assert not durable.is_disk_full(PermissionError(errno.EACCES, "Permission denied"), tiny_disk)
