"""The reconcile walk and scan on real folders and a real catalog."""

from __future__ import annotations

import inspect
import logging
import os
import sys
import threading

import pytest

from photod.config import DEFAULT_EXCLUDE, DEFAULT_INCLUDE, make_root
from photod.roots import listing, scanner
from photod.roots.matcher import Matcher
from photod.roots.scanner import reconcile, walk
from tests.support.oskit import reads_everything


def touch(path, data=b"\xff\xd8\xff photo"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def names(root):
    return sorted(e.rel_path for e in walk(root, DEFAULT_INCLUDE, DEFAULT_EXCLUDE))


@pytest.fixture
def tree(tmp_path):
    root = tmp_path / "photos"
    touch(root / "a.jpg")
    touch(root / "2019 三亚 婚礼" / "IMG_0001.JPG")
    touch(root / "2019 三亚 婚礼" / "notes.txt")
    touch(root / "deep" / "er" / "x.heic")
    touch(root / "@eaDir" / "a.jpg" / "SYNOPHOTO_THUMB_XL.jpg")
    touch(root / ".hidden" / "b.jpg")
    touch(root / "$RECYCLE.BIN" / "c.jpg")
    touch(root / "$Recycle.Bin" / "d.jpg")
    touch(root / ".trash.jpg")
    return root


def test_walk_includes_photos_case_insensitively_and_excludes_system_folders(tree):
    assert names(tree) == ["2019 三亚 婚礼/IMG_0001.JPG", "a.jpg", "deep/er/x.heic"]


def test_walk_reports_size_and_mtime(tree):
    entry = next(e for e in walk(tree, ["*.jpg"], []) if e.rel_path == "a.jpg")
    st = os.stat(tree / "a.jpg")
    assert (entry.size, entry.mtime_ns) == (st.st_size, st.st_mtime_ns)


def test_bracketed_names_match_literally_as_well_as_as_globs(tmp_path):
    touch(tmp_path / "[Originals]" / "a.jpg")
    touch(tmp_path / "keep" / "b.jpg")
    touch(tmp_path / "x1" / "c.jpg")
    found = sorted(e.rel_path for e in walk(tmp_path, ["*.jpg"], ["[Originals]", "x[0-9]"]))
    assert found == ["keep/b.jpg"]


def test_matcher_paths_agree_with_the_walk():
    m = Matcher(DEFAULT_INCLUDE, DEFAULT_EXCLUDE)
    assert m.path_ok("2020/IMG.JPG")
    assert not m.path_ok("2020/@eaDir/IMG.JPG")
    assert not m.path_ok("$RECYCLE.BIN/x.jpg")
    assert not m.path_ok("2020/notes.txt")
    assert m.dir_path_ok("") and m.dir_path_ok("2020/trip") and not m.dir_path_ok("a/.git/b")
    assert Matcher([], []).file_ok("anything.bin")


def test_symlink_loops_and_symlinked_files_are_not_followed(tmp_path):
    touch(tmp_path / "real" / "a.jpg")
    os.symlink(tmp_path, tmp_path / "real" / "loop")
    os.symlink(tmp_path / "real" / "a.jpg", tmp_path / "link.jpg")
    assert [e.rel_path for e in walk(tmp_path, ["*.jpg"], [])] == ["real/a.jpg"]


def test_fifo_is_skipped_and_never_opened(tmp_path):
    touch(tmp_path / "a.jpg")
    os.mkfifo(tmp_path / "pipe.jpg")
    found: list[str] = []
    t = threading.Thread(target=lambda: found.extend(e.rel_path for e in walk(tmp_path, ["*.jpg"], [])))
    t.start()
    t.join(5)  # opening a FIFO with no writer would block forever
    assert not t.is_alive()
    assert found == ["a.jpg"]


def test_a_tree_deeper_than_the_recursion_limit(tmp_path):
    deep = str(tmp_path)
    for _ in range(200):  # built a level at a time: pathlib's own mkdir(parents=True) recurses
        deep += "/d"
        os.mkdir(deep)
    with open(deep + "/bottom.jpg", "wb") as f:
        f.write(b"x")
    old_limit = sys.getrecursionlimit()
    sys.setrecursionlimit(len(inspect.stack()) + 60)  # far fewer frames than the tree has levels
    try:
        [entry] = list(walk(tmp_path, ["*.jpg"], []))
    finally:
        sys.setrecursionlimit(old_limit)
    assert entry.rel_path.endswith("/d/bottom.jpg") and entry.rel_path.count("/") == 200


def test_names_that_are_not_utf8_are_kept_and_logged_once(tmp_path, caplog):
    touch(tmp_path / "ok.jpg")
    for raw in (b"caf\xe9.jpg", b"na\xefve.jpg"):
        with open(os.path.join(os.fsencode(tmp_path), raw), "wb") as f:
            f.write(b"x")
    with caplog.at_level(logging.INFO, logger="photod.roots.scanner"):
        w = walk(tmp_path, ["*.jpg"], [])
        found = [e.rel_path for e in w]
    assert len(found) == 3 and len(w.bad_names) == 2
    assert [r for r in caplog.records if "UTF-8" in r.getMessage()].__len__() == 1
    assert os.fsencode(tmp_path / w.bad_names[0]).endswith(b".jpg")  # surrogates map back to the bytes


@pytest.mark.skipif(reads_everything(), reason="root reads every folder regardless of its permissions")
def test_unreadable_folder_is_logged_and_the_walk_goes_on(tree, caplog):
    locked = tree / "deep"
    locked.chmod(0)
    try:
        w = walk(tree, DEFAULT_INCLUDE, DEFAULT_EXCLUDE)
        found = sorted(e.rel_path for e in w)
    finally:
        locked.chmod(0o755)
    assert found == ["2019 三亚 婚礼/IMG_0001.JPG", "a.jpg"]
    assert w.failed == ["deep"] and not w.complete


def python_listing(monkeypatch):
    """Errors are injected through os.scandir, so these tests run the pure-Python listing (the C one is
    held to the same results by tests/test_listing.py, which also fails real folders in both)."""
    monkeypatch.setattr(listing, "_fastwalk", None)


def fail_on(monkeypatch, bad_dir):
    """Make listing one folder fail the way an unreadable folder or a failing disk does."""
    python_listing(monkeypatch)
    real = os.scandir

    def scandir(path):
        if os.fspath(path) == os.fspath(bad_dir):
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real(path)

    monkeypatch.setattr(scanner.os, "scandir", scandir)


def test_folder_error_marks_the_walk_incomplete(tree, monkeypatch, caplog):
    fail_on(monkeypatch, tree / "deep")
    with caplog.at_level(logging.WARNING, logger="photod.roots.scanner"):
        w = walk(tree, DEFAULT_INCLUDE, DEFAULT_EXCLUDE)
        found = sorted(e.rel_path for e in w)
    assert found == ["2019 三亚 婚礼/IMG_0001.JPG", "a.jpg"]
    assert w.failed == ["deep"] and w.finished and not w.complete
    assert any("deep" in r.getMessage() and "deletes nothing" in r.getMessage() for r in caplog.records)


# ---- reconcile ------------------------------------------------------------------------------------


@pytest.fixture
def root(catalog, tree):
    return catalog.add_root(make_root(tree))


def states(catalog, root_id):
    return {
        r["rel_path"]: r["state"]
        for r in catalog.query("SELECT rel_path, state FROM photos WHERE root_id = ?", (root_id,))
    }


def test_reconcile_new_changed_unchanged_deleted(catalog, root, tree):
    seen: list[int] = []
    first = reconcile(catalog, root, present=lambda: True, on_progress=seen.append)
    assert (first.seen, first.new, first.deleted, first.complete) == (3, 3, 0, True)
    assert seen[-1] == 3
    assert set(states(catalog, root.id).values()) == {"new"}
    assert catalog.root(root.id).last_scan_at is not None

    again = reconcile(catalog, root, present=lambda: True)
    assert (again.unchanged, again.new, again.changed, again.deleted) == (3, 0, 0, 0)

    (tree / "a.jpg").write_bytes(b"\xff\xd8\xff a longer photo now")
    (tree / "deep" / "er" / "x.heic").unlink()
    touch(tree / "new" / "n.png")
    third = reconcile(catalog, root, present=lambda: True)
    assert (third.seen, third.new, third.changed, third.deleted, third.unchanged) == (3, 1, 1, 1, 1)
    st = states(catalog, root.id)
    assert st["deep/er/x.heic"] == "deleted" and st["new/n.png"] == "new"
    row = catalog.query("SELECT size FROM photos WHERE rel_path = 'a.jpg'")[0]
    assert row["size"] == os.path.getsize(tree / "a.jpg")


def test_root_vanishing_mid_scan_deletes_and_writes_nothing(catalog, root, tree):
    reconcile(catalog, root, present=lambda: True)
    before = catalog.root(root.id).last_scan_at
    for p in ("a.jpg", "deep/er/x.heic"):
        (tree / p).unlink()
    touch(tree / "late.jpg")
    report = reconcile(catalog, root, present=lambda: False)
    assert report.deleted == 0 and not report.complete and not report.root_present
    assert report.kept_missing == 2
    assert "deleted" not in states(catalog, root.id).values()
    assert "late.jpg" not in states(catalog, root.id)
    assert catalog.root(root.id).last_scan_at == before


def test_a_failing_presence_check_counts_as_gone(catalog, root, tree):
    reconcile(catalog, root, present=lambda: True)
    (tree / "a.jpg").unlink()

    def broken() -> bool:
        raise OSError("stale file handle")

    assert reconcile(catalog, root, present=broken).deleted == 0


def test_files_under_an_unreadable_folder_are_not_deleted(catalog, root, tree, monkeypatch):
    touch(tree / "deep" / "y.jpg")
    reconcile(catalog, root, present=lambda: True)
    (tree / "a.jpg").unlink()
    fail_on(monkeypatch, tree / "deep" / "er")
    report = reconcile(catalog, root, present=lambda: True)
    assert report.deleted == 1 and report.kept_missing == 1 and not report.complete
    assert report.failed_paths == ["deep/er"] and report.errors == 1
    st = states(catalog, root.id)
    assert st["a.jpg"] == "deleted" and st["deep/er/x.heic"] == "new" and st["deep/y.jpg"] == "new"


def test_many_unreadable_folders_are_summarised(tmp_path, monkeypatch, caplog):
    for i in range(8):
        touch(tmp_path / f"locked{i}" / "a.jpg")
    python_listing(monkeypatch)
    real = os.scandir

    def scandir(path):
        if os.path.basename(os.fspath(path)).startswith("locked"):
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real(path)

    monkeypatch.setattr(scanner.os, "scandir", scandir)
    with caplog.at_level(logging.INFO, logger="photod.roots.scanner"):
        w = walk(tmp_path, ["*.jpg"], [])
        assert list(w) == []
    assert len(w.failed) == 8
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == scanner.MAX_ERROR_LINES + 1 and "8 folders" in messages[-1]


def test_unreadable_root_deletes_nothing(catalog, root, tree, monkeypatch):
    reconcile(catalog, root, present=lambda: True)
    fail_on(monkeypatch, tree)
    report = reconcile(catalog, root, present=lambda: True)
    assert report.seen == 0 and report.deleted == 0 and report.kept_missing == 3


def test_a_move_is_a_deletion_written_before_the_new_file(catalog, root, tree):
    reconcile(catalog, root, present=lambda: True)
    (tree / "a.jpg").rename(tree / "moved.jpg")
    report = reconcile(catalog, root, present=lambda: True)
    assert (report.new, report.deleted) == (1, 1)
    old = catalog.query("SELECT deleted_at FROM photos WHERE rel_path = 'a.jpg'")[0]
    new = catalog.query("SELECT created_at FROM photos WHERE rel_path = 'moved.jpg'")[0]
    assert old["deleted_at"] <= new["created_at"]


def test_offline_photos_come_back_with_their_state(catalog, root, tree):
    reconcile(catalog, root, present=lambda: True)
    catalog.conn.execute("UPDATE photos SET state = 'staged'")
    catalog.set_root_offline(root.id)
    report = reconcile(catalog, root, present=lambda: True)
    assert report.unchanged == 3 and report.deleted == 0
    assert set(states(catalog, root.id).values()) == {"staged"}


def test_non_utf8_names_are_cataloged_with_their_exact_bytes(catalog, tmp_path):
    base = tmp_path / "r"
    touch(base / "ok.jpg")
    with open(os.path.join(os.fsencode(base), b"caf\xe9.jpg"), "wb") as f:
        f.write(b"x")
    bad_folder = os.path.join(os.fsencode(base), "三亚".encode("gbk"))
    os.mkdir(bad_folder)
    with open(os.path.join(bad_folder, b"inside.jpg"), "wb") as f:
        f.write(b"x")
    r = catalog.add_root(make_root(base))
    report = reconcile(catalog, r, present=lambda: True)
    assert (report.seen, report.new, report.errors) == (3, 3, 0)
    assert states(catalog, r.id) == {"ok.jpg": "new", "caf\\xe9.jpg": "new", "\\xc8\\xfd\\xd1\\xc7/inside.jpg": "new"}
    raw = {row["rel_path"]: row["rel_bytes"] for row in catalog.query("SELECT rel_path, rel_bytes FROM photos")}
    assert raw == {
        "ok.jpg": None,
        "caf\\xe9.jpg": b"caf\xe9.jpg",
        "\\xc8\\xfd\\xd1\\xc7/inside.jpg": "三亚".encode("gbk") + b"/inside.jpg",
    }
    assert not catalog.failed()
    again = reconcile(catalog, r, present=lambda: True)  # stable: the same rows, nothing new or deleted
    assert (again.new, again.deleted, again.unchanged) == (0, 0, 3)
    os.unlink(os.path.join(bad_folder, b"inside.jpg"))
    gone = reconcile(catalog, r, present=lambda: True)  # a deletion is seen by the exact name too
    assert (gone.deleted, gone.unchanged) == (1, 2)


def test_writes_are_batched(catalog, tmp_path, monkeypatch):
    base = tmp_path / "many"
    for i in range(25):
        touch(base / f"{i:02d}.jpg")
    r = catalog.add_root(make_root(base))
    opened = []
    real = catalog.transaction

    def counting():
        opened.append(catalog.conn.in_transaction)
        return real()

    monkeypatch.setattr(catalog, "transaction", counting)
    assert reconcile(catalog, r, present=lambda: True, write_batch=10).new == 25
    assert opened.count(False) == 5  # 3 batches of upserts, the folder signatures, the last_scan_at update
