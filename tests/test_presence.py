"""Root presence: an unplugged drive or a hung share is offline, never empty."""

from __future__ import annotations

import dataclasses
import os
import threading
import time

import pytest

from photod.config import make_root
from photod.roots.presence import check_root
from tests.support.oskit import reads_everything
from tests.support.polling import wait_for


@pytest.fixture
def root(catalog, tmp_path):
    path = tmp_path / "usb"
    path.mkdir()
    (path / "a.jpg").write_bytes(b"x")
    return catalog.add_root(make_root(path))


def test_present_root_is_online_with_its_device(root):
    p = check_root(root, known_photos=1)
    assert p.online and p.device == os.stat(root.path).st_dev


def test_missing_path_is_offline(root):
    (root.path / "a.jpg").unlink()
    root.path.rmdir()
    p = check_root(root, known_photos=1)
    assert not p.online and "does not exist" in p.reason and str(root.path) in p.reason


def test_a_file_where_the_folder_was_is_offline(root):
    (root.path / "a.jpg").unlink()
    root.path.rmdir()
    root.path.write_text("not a folder")
    p = check_root(root, known_photos=1)
    assert not p.online and "not a folder" in p.reason


def test_empty_mount_point_is_offline_only_when_photos_are_known(root):
    (root.path / "a.jpg").unlink()
    p = check_root(root, known_photos=5)
    assert not p.online
    assert p.reason == (
        f"{root.path} is an empty folder; the drive is probably not mounted (photod knows 5 photos there)"
    )
    assert check_root(root, known_photos=0).online  # a new, empty root is just empty


def test_different_device_is_offline(root):
    real = os.stat(root.path).st_dev
    moved = dataclasses.replace(root, device=real + 1)
    p = check_root(moved, known_photos=1)
    assert not p.online and p.device == real and "different device" in p.reason


def test_same_photos_under_a_new_device_number_are_online(root):
    moved = dataclasses.replace(root, device=os.stat(root.path).st_dev + 1)
    assert check_root(moved, known_photos=1, sample=["a.jpg"]).online
    assert not check_root(moved, known_photos=1, sample=["a.jpg", "gone.jpg"]).online


@pytest.mark.skipif(reads_everything(), reason="root reads every folder regardless of its permissions")
def test_unreadable_root_is_offline(root):
    root.path.chmod(0)
    try:
        p = check_root(root, known_photos=1)
    finally:
        root.path.chmod(0o755)
    assert not p.online and "permission denied" in p.reason


def test_stat_error_is_offline(root):
    def stale(path):
        raise OSError(116, "Stale file handle", path)

    p = check_root(root, known_photos=1, stat=stale)
    assert not p.online and "Stale file handle" in p.reason


def test_hung_stat_is_offline_within_the_timeout(root):
    release = threading.Event()

    def hung(path):
        release.wait(30)  # a hung NFS server: the call does not return
        return os.stat(path)

    try:
        t0 = time.monotonic()
        p = check_root(root, known_photos=1, timeout=0.3, stat=hung)
        assert time.monotonic() - t0 < 2
        assert not p.online and "not answering" in p.reason

        # A second check of the same path waits on the stuck one rather than starting another.
        # Count only this path's probes: other tests' threads may end meanwhile.
        def probes():
            return sum(t.name == f"photod-presence {root.path}" for t in threading.enumerate())

        assert probes() == 1
        assert not check_root(root, known_photos=1, timeout=0.2, stat=hung).online
        assert probes() == 1
    finally:
        release.set()
    # The share answers again.
    wait_for(lambda: check_root(root, known_photos=1).online, timeout=5, interval=0.05, what="the share to answer")
