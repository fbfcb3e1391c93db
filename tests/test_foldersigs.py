"""Folder signatures: an unchanged folder is passed over, and nothing else ever is."""

from __future__ import annotations

import os
import sqlite3

import pytest

from photod.config import make_root
from photod.roots import foldersigs, listing
from photod.roots.scanner import reconcile
from photod.store import schema
from photod.store.catalog import Catalog


def write(path, data=b"\xff\xd8\xff photo"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


@pytest.fixture
def tree(tmp_path):
    root = tmp_path / "photos"
    for folder in ("2019 三亚 婚礼", "2020/春节", "2020/夏天", ""):
        for i in range(3):
            write(root / folder / f"IMG_{i:04d}.jpg")
    write(root / "2020" / "春节" / "IMG_0000.xmp")  # not a photo: in the listing, not in the catalog
    return root


@pytest.fixture
def root(catalog, tree):
    r = catalog.add_root(make_root(tree))
    first = reconcile(catalog, r, present=lambda: True)
    assert (first.new, first.compared) == (12, 4)
    return r


def scan(catalog, root):
    return reconcile(catalog, catalog.root(root.id), present=lambda: True)


def signatures(catalog, root_id):
    return {
        r["folder"]: r["signature"]
        for r in catalog.query("SELECT folder, signature FROM scan_folders WHERE root_id = ?", (root_id,))
    }


def state(catalog, rel):
    return catalog.query("SELECT state FROM photos WHERE rel_path = ?", (rel,))[0]["state"]


def test_an_unchanged_tree_is_passed_over_folder_by_folder(catalog, root):
    report = scan(catalog, root)
    assert (report.seen, report.unchanged, report.folders, report.compared) == (12, 12, 5, 0)  # and '2020'
    assert all(sig is not None for sig in signatures(catalog, root.id).values())


def test_an_edit_in_place_that_keeps_the_size_is_found(catalog, root, tree):
    photo = tree / "2020" / "夏天" / "IMG_0001.jpg"
    st = photo.stat()
    photo.write_bytes(b"\xff\xd8\xff PHOTO")  # same length, new pixels
    os.utime(photo, ns=(st.st_atime_ns, st.st_mtime_ns + 1))  # one nanosecond later, as a fast copy can be
    report = scan(catalog, root)
    assert (report.changed, report.compared, report.unchanged) == (1, 1, 11)


def test_a_change_to_a_file_that_is_not_a_photo_only_costs_a_comparison(catalog, root, tree):
    (tree / "2020" / "春节" / "IMG_0000.xmp").write_bytes(b"<x:xmpmeta rating='5'/>")
    report = scan(catalog, root)
    assert (report.compared, report.new, report.changed, report.unchanged) == (1, 0, 0, 12)
    assert scan(catalog, root).compared == 0


def test_a_catalog_change_made_elsewhere_forgets_the_signature(catalog, root):
    """A signature vouches only for a catalog nobody changed since: here a photo is marked deleted while
    its file is still there (as a watcher that misread an event would), and the next scan revives it."""
    photo_id = catalog.file_id(root.id, "2020/春节/IMG_0002.jpg")
    catalog.mark_deleted([photo_id])
    assert signatures(catalog, root.id)["2020/春节"] is None
    report = scan(catalog, root)
    assert (report.compared, report.new) == (1, 1)
    assert state(catalog, "2020/春节/IMG_0002.jpg") == "new"


def test_a_drive_back_online_is_scanned_like_an_unchanged_one(catalog, root):
    catalog.set_root_offline(root.id)
    catalog.set_root_online(root.id)
    report = scan(catalog, root)
    assert (report.compared, report.unchanged) == (0, 12)


def test_a_drive_back_with_a_change_made_elsewhere_finds_it(catalog, root, tree):
    catalog.set_root_offline(root.id)
    (tree / "2020" / "春节" / "IMG_0001.jpg").write_bytes(b"\xff\xd8\xff edited on a laptop")
    catalog.set_root_online(root.id)
    report = scan(catalog, root)
    assert (report.compared, report.changed, report.unchanged) == (1, 1, 11)


def test_no_signature_is_trusted_while_photos_are_offline(catalog, root):
    """A scan of a root whose photos are still marked offline compares every folder: the comparison is
    what brings each photo back."""
    catalog.set_root_offline(root.id)
    report = scan(catalog, root)
    assert report.compared == 4 and report.unchanged == 12
    assert {r["state"] for r in catalog.query("SELECT state FROM photos")} == {"new"}
    assert scan(catalog, root).compared == 0


def test_a_vanished_folder_deletes_its_photos_and_then_its_signature(catalog, root, tree):
    for p in (tree / "2019 三亚 婚礼").iterdir():
        p.unlink()
    (tree / "2019 三亚 婚礼").rmdir()
    report = scan(catalog, root)
    assert (report.deleted, report.compared) == (3, 1)
    assert "2019 三亚 婚礼" not in signatures(catalog, root.id)
    assert scan(catalog, root).compared == 0


def test_a_moved_folder_is_compared_at_both_ends(catalog, root, tree):
    (tree / "2020" / "夏天").rename(tree / "2020" / "summer")
    report = scan(catalog, root)
    assert (report.new, report.deleted, report.compared) == (3, 3, 2)


def test_new_globs_compare_every_folder(catalog, root):
    narrower = catalog.root(root.id)
    narrower = type(narrower)(**{**narrower.__dict__, "include": ("IMG_0000.*",)})
    report = reconcile(catalog, narrower, present=lambda: True)
    assert (report.compared, report.deleted, report.unchanged) == (4, 8, 4)


def test_a_signature_is_not_stored_over_a_catalog_changed_during_the_scan(catalog, root, tree, monkeypatch):
    """Between the comparison and the signature, another writer adds a row for a file the listing never
    had: the signature must not vouch for that folder, so the next scan finds the stray row."""
    write(tree / "2020" / "夏天" / "IMG_0009.jpg")
    real = foldersigs.remember

    def racing(cat, root_id, listed, vanished):
        cat.upsert_file(root_id, "2020/夏天/ghost.jpg", 1, 1)
        return real(cat, root_id, listed, vanished)

    monkeypatch.setattr(foldersigs, "remember", racing)
    assert scan(catalog, root).new == 1
    monkeypatch.setattr(foldersigs, "remember", real)
    assert signatures(catalog, root.id)["2020/夏天"] is None
    report = scan(catalog, root)
    assert (report.compared, report.deleted) == (1, 1)
    assert state(catalog, "2020/夏天/ghost.jpg") == "deleted"
    assert scan(catalog, root).compared == 0


def test_a_folder_with_names_that_are_not_utf8_is_always_compared(catalog, root, tree):
    with open(os.path.join(os.fsencode(tree / "2020" / "春节"), b"caf\xe9.jpg"), "wb") as f:
        f.write(b"x")
    scan(catalog, root)
    assert signatures(catalog, root.id)["2020/春节"] is None
    assert scan(catalog, root).compared == 1


def test_a_folder_that_could_not_be_read_is_not_passed_over(catalog, root, tree, monkeypatch):
    before = signatures(catalog, root.id)
    monkeypatch.setattr(listing, "_fastwalk", None)
    real = os.scandir

    def scandir(path):
        if os.fspath(path) == os.fspath(tree / "2020" / "夏天"):
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real(path)

    monkeypatch.setattr(os, "scandir", scandir)
    report = scan(catalog, root)
    assert report.kept_missing == 3 and report.deleted == 0 and report.compared == 1
    assert signatures(catalog, root.id) == before  # its photos were kept as they were: still true
    monkeypatch.setattr(os, "scandir", real)
    assert scan(catalog, root).compared == 0


def test_the_migration_lists_the_folders_of_an_existing_catalog(data_dir, monkeypatch, tree):
    everything = schema.available_migrations()
    monkeypatch.setattr(schema, "available_migrations", lambda: everything[:2])
    with Catalog.in_data_dir(data_dir) as old:
        r = old.add_root(make_root(tree))
        for rel, folder in (("a/b/c.jpg", "a/b"), ("top.jpg", "")):  # as the code of that schema wrote them
            old.conn.execute(
                "INSERT INTO photos (root_id, rel_path, filename, folder, size, mtime_ns,"
                " created_at, updated_at) VALUES (?, ?, ?, ?, 1, 1, 0, 0)",
                (r.id, rel, rel.rsplit("/", 1)[-1], folder),
            )
        with pytest.raises(sqlite3.OperationalError):
            old.query("SELECT * FROM scan_folders")
    monkeypatch.setattr(schema, "available_migrations", lambda: everything)
    with Catalog.in_data_dir(data_dir) as cat:
        assert signatures(cat, r.id) == {"a/b": None, "": None}
        report = reconcile(cat, cat.root(r.id), present=lambda: True)
        assert (report.new, report.deleted) == (12, 2)
        assert scan(cat, r).compared == 0


def test_a_folder_rename_the_watcher_followed_leaves_nothing_to_redo(catalog, root, tree):
    (tree / "2020" / "夏天").rename(tree / "2020" / "summer")
    assert catalog.move_folder(root.id, "2020/夏天", "2020/summer") == 3
    assert signatures(catalog, root.id)["2020/summer"] is None
    report = scan(catalog, root)
    assert (report.new, report.deleted, report.unchanged, report.compared) == (0, 0, 12, 2)
    assert "2020/夏天" not in signatures(catalog, root.id)
    assert scan(catalog, root).compared == 0
