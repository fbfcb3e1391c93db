"""The watcher on real folders with real watchdog observers (inotify and polling)."""

from __future__ import annotations

import errno
import logging
import os
import shutil
import threading
import time

import pytest
from watchdog.observers.inotify import InotifyObserver
from watchdog.observers.polling import PollingEmitter, PollingObserverVFS

from photod.config import make_root
from photod.errors import RootError
from photod.roots.watcher import Watcher, WatchEvent
from tests.support.polling import wait_for

SETTLE = 0.3
ARRIVES = 5.0  # seconds an event may take to be reported, on a busy test machine


@pytest.fixture
def events() -> list[WatchEvent]:
    """The watch events reported, in order (appended from the watcher's threads)."""
    return []


@pytest.fixture
def folder(tmp_path):
    d = tmp_path / "photos"
    d.mkdir()
    return d


@pytest.fixture
def local_mounts(tmp_path):
    """A mount table saying the temp folder is local ext4, whatever the test machine has."""
    f = tmp_path / "mountinfo"
    f.write_text(
        f"27 1 254:0 / / rw - ext4 /dev/vda rw\n90 27 0:77 / {os.path.realpath(tmp_path)} rw - ext4 /dev/sdz1 rw\n"
    )
    return f


@pytest.fixture
def watcher_factory(events, local_mounts):
    made: list[Watcher] = []

    def make(**kw):
        kw.setdefault("settle_seconds", SETTLE)
        kw.setdefault("mounts_path", local_mounts)
        w = Watcher(events.append, **kw)
        made.append(w)
        return w

    yield make
    for w in made:
        w.stop()


def add(catalog, watcher, path, **kw):
    root = catalog.add_root(make_root(path, **kw))
    return root, watcher.add_root(root)


def test_root_on_cifs_is_polled_and_a_new_photo_arrives_once(
    catalog, events, watcher_factory, folder, tmp_path, samples
):
    table = tmp_path / "cifs-mountinfo"
    table.write_text(
        f"27 1 254:0 / / rw - ext4 /dev/vda rw\n"
        f"91 27 0:78 / {os.path.realpath(folder)} rw,relatime - cifs //nas/photos rw\n"
    )
    watcher = watcher_factory(mounts_path=table)
    root, mode = add(catalog, watcher, folder, poll_interval=0.2)
    assert mode == "poll" and watcher.modes() == {root.id: "poll"}
    assert any(isinstance(t, PollingEmitter) for t in threading.enumerate())

    shutil.copyfile(next(samples.rglob("*.jpg")), folder / "new.jpg")
    wait_for(lambda: events, timeout=ARRIVES, what="the new photo's event")
    time.sleep(0.2 + SETTLE + 0.3)  # a second event, if there were one, would come by now
    assert events == [WatchEvent("file", root.id, "new.jpg")]


@pytest.mark.parametrize("watch", ["inotify", "poll"])
def test_a_file_written_in_20_chunks_is_reported_once(catalog, events, watcher_factory, folder, watch):
    settle = 0.6  # well above the pauses between writes, even on a busy test machine
    watcher = watcher_factory(settle_seconds=settle)
    root, mode = add(catalog, watcher, folder, watch=watch, poll_interval=0.1)
    assert mode == watch
    with open(folder / "slow.jpg", "wb") as f:
        for _ in range(20):
            f.write(os.urandom(4096))
            f.flush()
            time.sleep(0.04)
    wait_for(lambda: events, timeout=ARRIVES, what="the written file's event")
    time.sleep(settle + 0.3)
    assert events == [WatchEvent("file", root.id, "slow.jpg")]


def test_folder_rename_is_one_dir_moved(catalog, events, watcher_factory, folder):
    (folder / "2019").mkdir()
    for i in range(3):
        (folder / "2019" / f"{i}.jpg").write_bytes(b"x")
    watcher = watcher_factory()
    root, mode = add(catalog, watcher, folder)
    assert mode == "inotify"
    (folder / "2019").rename(folder / "2019 三亚")
    wait_for(lambda: any(e.kind == "dir_moved" for e in events), timeout=ARRIVES, what="a dir_moved event")
    time.sleep(SETTLE + 0.3)
    assert events == [WatchEvent("dir_moved", root.id, "2019", "2019 三亚")]


def test_delete_move_and_finished_download(catalog, events, watcher_factory, folder):
    (folder / "a.jpg").write_bytes(b"a")
    (folder / "b.jpg").write_bytes(b"b")
    watcher = watcher_factory()
    root, _ = add(catalog, watcher, folder)
    (folder / "a.jpg").unlink()
    (folder / "b.jpg").rename(folder / "c.jpg")
    (folder / "d.jpg.part").write_bytes(b"downloading")
    (folder / "d.jpg.part").rename(folder / "d.jpg")
    wait_for(lambda: any(e.kind == "file" for e in events), timeout=ARRIVES, what="the finished download")
    time.sleep(SETTLE)
    assert events == [
        WatchEvent("deleted", root.id, "a.jpg"),
        WatchEvent("moved", root.id, "b.jpg", "c.jpg"),
        WatchEvent("file", root.id, "d.jpg"),
    ]


def test_excluded_and_non_photo_files_are_ignored(catalog, events, watcher_factory, folder):
    watcher = watcher_factory()
    root, _ = add(catalog, watcher, folder)
    for rel in ("@eaDir/a.jpg/SYNOPHOTO_THUMB.jpg", ".hidden/b.jpg", "$RECYCLE.BIN/c.jpg", "notes.txt", "sub/.d.jpg"):
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_bytes(b"x")
    (folder / "sub" / "ok.JPG").write_bytes(b"x")
    wait_for(lambda: events, timeout=ARRIVES, what="the photo's event")
    time.sleep(SETTLE + 0.2)
    assert events == [WatchEvent("file", root.id, "sub/ok.JPG")]


def test_files_in_a_folder_moved_in_from_outside_arrive(catalog, events, watcher_factory, folder, tmp_path):
    outside = tmp_path / "outside" / "trip"
    outside.mkdir(parents=True)
    for i in range(3):
        (outside / f"{i}.jpg").write_bytes(b"x")
    watcher = watcher_factory()
    root, _ = add(catalog, watcher, folder)
    outside.rename(folder / "trip")
    wait_for(lambda: len(events) >= 3, timeout=ARRIVES, what="the three moved-in files")
    time.sleep(SETTLE)
    assert sorted(events, key=lambda e: e.rel_path) == [WatchEvent("file", root.id, f"trip/{i}.jpg") for i in range(3)]


class ExhaustedInotify(InotifyObserver):
    """An inotify observer on a system whose fs.inotify.max_user_watches is used up."""

    def schedule(self, *args, **kwargs):
        raise OSError(errno.ENOSPC, "inotify watch limit reached")


def test_inotify_out_of_watches_falls_back_to_polling_with_one_warning(
    catalog, events, watcher_factory, folder, caplog
):
    watcher = watcher_factory(inotify_observer=ExhaustedInotify)
    with caplog.at_level(logging.WARNING, logger="photod.roots.watcher"):
        root, mode = add(catalog, watcher, folder, poll_interval=0.2)
    assert mode == "poll" and watcher.modes()[root.id] == "poll"
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "fs.inotify.max_user_watches" in warnings[0]
    assert "sudo sysctl fs.inotify.max_user_watches=524288" in warnings[0]
    (folder / "x.jpg").write_bytes(b"x")
    wait_for(lambda: events, timeout=ARRIVES, what="the polled photo's event")
    assert events == [WatchEvent("file", root.id, "x.jpg")]


def test_out_of_inotify_instances_also_falls_back(catalog, watcher_factory, folder):
    def no_instances():
        raise OSError(errno.EMFILE, "inotify instance limit reached")

    watcher = watcher_factory(inotify_observer=no_instances)
    assert add(catalog, watcher, folder)[1] == "poll"


def test_missing_root_is_refused(catalog, watcher_factory, folder):
    watcher = watcher_factory()
    root = catalog.add_root(make_root(folder))
    folder.rmdir()
    with pytest.raises(RootError, match=str(folder)):
        watcher.add_root(root)
    assert watcher.modes() == {}


def test_removed_root_reports_nothing_more(catalog, events, watcher_factory, folder):
    watcher = watcher_factory()
    root, _ = add(catalog, watcher, folder)
    (folder / "pending.jpg").write_bytes(b"x")  # not settled yet when the root goes
    watcher.remove_root(root.id)
    assert watcher.modes() == {} and not watcher.is_watching(root.id)
    (folder / "later.jpg").write_bytes(b"x")
    time.sleep(SETTLE + 0.4)
    assert events == []


def test_a_failing_consumer_does_not_stop_the_watcher(catalog, watcher_factory, folder):
    got: list[WatchEvent] = []

    def flaky(event):
        got.append(event)
        if len(got) == 1:
            raise RuntimeError("consumer bug")

    watcher = watcher_factory()
    watcher._on_event = flaky
    root, _ = add(catalog, watcher, folder)
    (folder / "1.jpg").write_bytes(b"x")
    wait_for(lambda: got, timeout=ARRIVES, what="the first event")
    (folder / "2.jpg").write_bytes(b"x")
    wait_for(lambda: len(got) >= 2, timeout=ARRIVES, what="the event after the consumer failed")
    assert [e.rel_path for e in got] == ["1.jpg", "2.jpg"] and watcher.is_watching(root.id)


def test_removing_a_root_on_a_hung_share_does_not_hang(catalog, watcher_factory, folder, caplog):
    hang, release = threading.Event(), threading.Event()

    def stat(path):
        if hang.is_set():
            release.wait(30)  # the NFS server stopped answering
        return os.lstat(path)

    watcher = watcher_factory(
        polling_observer=lambda interval, matcher: PollingObserverVFS(stat, os.scandir, polling_interval=0.05),
        stop_wait=0.3,
    )
    root, mode = add(catalog, watcher, folder, watch="poll")
    hang.set()
    time.sleep(0.2)  # the next poll is now stuck in stat
    try:
        t0 = time.monotonic()
        with caplog.at_level(logging.WARNING, logger="photod.roots.watcher"):
            watcher.remove_root(root.id)
        assert time.monotonic() - t0 < 2
        assert watcher.modes() == {}
        assert any("did not stop" in r.getMessage() for r in caplog.records)
    finally:
        release.set()
