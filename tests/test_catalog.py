import os
import stat

import pytest

from photod.config import make_root
from photod.errors import CatalogError
from photod.store import schema, wordsearch
from photod.store.catalog import CaptionRow, Catalog, FailedRow, NameMatchRow, PendingRow, PhotoInfoRow, PhotoMeta
from photod.store.wordsearch import Filters


@pytest.fixture
def root(catalog, tmp_path):
    r = catalog.add_root(make_root(tmp_path / "root", label="Root"))
    catalog.set_root_online(r.id)
    return r


def test_migrations_apply_in_order_once(data_dir):
    cat = Catalog.in_data_dir(data_dir, migrate=False)
    names = [n for n, _ in schema.available_migrations()]
    assert names == sorted(names) and names[0].startswith("0001_")
    assert cat.migrate() == names
    assert cat.migrate() == []
    assert schema.applied_migrations(cat.conn) == names
    tables = {r[0] for r in cat.conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"roots", "photos", "captions", "vectors", "photos_fts"} <= tables
    cat.close()


def test_failed_migration_leaves_catalog_unchanged(data_dir, monkeypatch):
    cat = Catalog.in_data_dir(data_dir, migrate=False)
    good = schema.available_migrations()[:1]
    monkeypatch.setattr(
        schema, "available_migrations", lambda: good + [("0099_broken.sql", "CREATE TABLE half (x); CREATE TABLE (;")]
    )
    with pytest.raises(CatalogError, match="0099_broken.sql"):
        cat.migrate()
    assert schema.applied_migrations(cat.conn) == [good[0][0]]
    assert cat.scalar("SELECT count(*) FROM sqlite_master WHERE name = 'half'") == 0


def test_catalog_newer_than_code_is_refused(data_dir):
    cat = Catalog.in_data_dir(data_dir)
    cat.conn.execute("INSERT INTO _migrations VALUES ('9999_future.sql', 0)")
    cat.close()
    with pytest.raises(CatalogError, match="newer photod"):
        Catalog.in_data_dir(data_dir)


def test_catalog_file_is_private_and_wal(data_dir, catalog):
    assert stat.S_IMODE(os.stat(catalog.path).st_mode) == 0o600
    assert catalog.scalar("PRAGMA journal_mode") == "wal"


def test_not_a_database_gives_a_clear_error(data_dir):
    (data_dir / "catalog.db").write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(CatalogError, match="not a photod catalog"):
        Catalog.in_data_dir(data_dir)


def test_upsert_new_unchanged_changed(catalog, root):
    pid, todo = catalog.upsert_file(root.id, "a/b.jpg", 10, 1)
    assert todo
    catalog.mark_staged(pid, PhotoMeta(width=4, height=3), "hash")
    assert catalog.upsert_file(root.id, "a/b.jpg", 10, 1) == (pid, False)
    assert catalog.photo(pid)["state"] == "staged"
    assert catalog.upsert_file(root.id, "a/b.jpg", 11, 2) == (pid, True)
    row = catalog.photo(pid)
    assert row["state"] == "new" and row["content_hash"] is None and row["staged_at"] is None


def test_offline_and_back_restores_each_state(catalog, root):
    a, _ = catalog.upsert_file(root.id, "a.jpg", 1, 1)
    b, _ = catalog.upsert_file(root.id, "b.jpg", 1, 1)
    catalog.mark_staged(b, PhotoMeta(), "hb")
    c, _ = catalog.upsert_file(root.id, "c.jpg", 1, 1)
    catalog.mark_failed(c, "bad")
    assert catalog.set_root_offline(root.id) == 3
    assert catalog.counts()["offline"] == 3 and catalog.counts()["deleted"] == 0
    assert catalog.set_root_online(root.id) == 3
    assert [catalog.photo(i)["state"] for i in (a, b, c)] == ["new", "staged", "failed"]


def test_move_by_content_keeps_id_captions_and_stage_claim(catalog, root):
    old, _ = catalog.upsert_file(root.id, "x/one.jpg", 5, 5)
    catalog.mark_staged(old, PhotoMeta(), "same")
    catalog.add_caption(old, "我家的猫")
    catalog.mark_deleted([old])
    new, _ = catalog.upsert_file(root.id, "y/one.jpg", 5, 5)
    assert catalog.deleted_match("same", exclude_id=new) == old
    catalog.adopt(old, new)
    row = catalog.photo(old)
    assert row["rel_path"] == "y/one.jpg" and row["state"] == "staged" and row["staged_at"] is not None
    assert catalog.photo(new) is None
    assert [c["text"] for c in catalog.captions(old)] == ["我家的猫"]


def test_folder_rename_moves_every_photo_under_it(catalog, root):
    ids = [catalog.upsert_file(root.id, f"2019 三亚/{i}.jpg", 1, 1)[0] for i in range(5)]
    other, _ = catalog.upsert_file(root.id, "2019 三亚 other/x.jpg", 1, 1)
    assert catalog.move_folder(root.id, "2019 三亚", "trips/sanya") == 5
    assert {catalog.photo(i)["rel_path"] for i in ids} == {f"trips/sanya/{i}.jpg" for i in range(5)}
    assert catalog.photo(other)["rel_path"] == "2019 三亚 other/x.jpg"
    assert {r["id"] for r in wordsearch.search_name(catalog, "sanya")} == set(ids)


def test_name_search_matches_chinese_substrings_and_prefixes(catalog, root):
    wedding, _ = catalog.upsert_file(root.id, "2019三亚婚礼/DSC_0001.JPG", 1, 1)
    cat_photo, _ = catalog.upsert_file(root.id, "pets/小白 on sofa.jpg", 1, 1)
    assert [r["id"] for r in wordsearch.search_name(catalog, "三亚")] == [wedding]
    assert [r["id"] for r in wordsearch.search_name(catalog, "婚礼 dsc")] == [wedding]
    assert [r["id"] for r in wordsearch.search_name(catalog, "sof")] == [cat_photo]
    assert [r["id"] for r in wordsearch.search_name(catalog, "小白")] == [cat_photo]
    assert wordsearch.search_name(catalog, "北京") == []
    assert wordsearch.search_name(catalog, '"') == []  # only syntax: nothing searchable, no FTS error


def test_name_search_filters(catalog, root, tmp_path):
    other = catalog.add_root(make_root(tmp_path / "other"))
    a, _ = catalog.upsert_file(root.id, "trip/a.jpg", 1, 1)
    b, _ = catalog.upsert_file(root.id, "trip/b.jpg", 1, 1)
    c, _ = catalog.upsert_file(other.id, "trip/c.jpg", 1, 1)
    catalog.mark_staged(
        a, PhotoMeta(taken_at="2019-05-01T10:00:00", camera_make="Canon", camera_model="Canon EOS 40D"), "ha"
    )
    catalog.mark_staged(b, PhotoMeta(taken_at="2021-01-01T10:00:00", camera_model="NIKON D70"), "hb")

    def ids(**kw):
        return {r["id"] for r in wordsearch.search_name(catalog, "trip", filters=Filters(**kw))}

    assert ids() == {a, b, c}
    assert ids(after="2020-01-01") == {b}
    assert ids(before="2020-01-01", root_id=root.id) == {a}
    assert ids(camera="canon") == {a}
    assert ids(root_id=other.id) == {c}
    assert ids(folder="trip") == {a, b, c} and ids(folder="tri") == set()


def test_deleted_row_back_at_same_path_is_restored_without_restaging(catalog, root):
    pid, _ = catalog.upsert_file(root.id, "a.jpg", 3, 3)
    catalog.mark_staged(pid, PhotoMeta(), "h")
    catalog.remove_root(root.id)
    assert catalog.photo(pid)["state"] == "deleted"
    assert catalog.active_roots() == []
    again = catalog.add_root(make_root(root.path))
    assert again.id == root.id
    assert catalog.upsert_file(root.id, "a.jpg", 3, 3) == (pid, False)
    assert catalog.photo(pid)["state"] == "staged"


def test_purge_forgets_expired_deletions(catalog, root):
    pid, _ = catalog.upsert_file(root.id, "a.jpg", 3, 3)
    catalog.add_caption(pid, "x")
    catalog.mark_deleted([pid])
    assert catalog.purgeable(0) == []
    assert catalog.purgeable(2e9) == [pid]
    catalog.purge([pid])
    assert catalog.photo(pid) is None and catalog.captions() == []


def test_readers_see_committed_state_while_a_writer_holds_a_transaction(data_dir, catalog, root):
    reader = Catalog.in_data_dir(data_dir)
    with catalog.transaction():
        catalog.upsert_file(root.id, "in-flight.jpg", 1, 1)
        assert reader.counts()["total"] == 0  # no "database is locked", no half-written state
    assert reader.counts()["total"] == 1
    reader.close()


def test_two_processes_opening_a_new_catalog_at_once_both_succeed(data_dir):
    import subprocess
    import sys

    code = (
        "import sys; from photod.store.catalog import Catalog; "
        "[Catalog.in_data_dir(sys.argv[1]).close() for _ in range(3)]"
    )
    procs = [subprocess.Popen([sys.executable, "-c", code, str(data_dir)], stderr=subprocess.PIPE) for _ in range(4)]
    for p in procs:
        assert p.wait(timeout=60) == 0, p.stderr.read().decode()
    with Catalog.in_data_dir(data_dir) as cat:
        assert schema.applied_migrations(cat.conn) == [n for n, _ in schema.available_migrations()]


def test_folder_operations_tell_folders_apart_by_case_and_by_prefix(catalog, tmp_path):
    """On Linux `Photos/` and `photos/` are two folders, and `2019/` is not `2019 trip/`: a folder rename
    or removal touches exactly its own subtree, whatever LIKE would match."""
    from photod.config import make_root

    root = catalog.add_root(make_root(tmp_path))
    ids = {
        rel: catalog.upsert_file(root.id, rel, 1, 1)[0]
        for rel in (
            "Photos/a.jpg",
            "photos/b.jpg",
            "Photos/x/c.jpg",
            "Photos0.jpg",
            "Photos_/d.jpg",
            "2019/e.jpg",
            "2019 trip/f.jpg",
        )
    }
    assert sorted(catalog.ids_under(root.id, "Photos")) == sorted([ids["Photos/a.jpg"], ids["Photos/x/c.jpg"]])
    assert catalog.ids_under(root.id, "2019/") == [ids["2019/e.jpg"]]
    assert catalog.move_folder(root.id, "Photos", "Pictures") == 2
    paths = {r["rel_path"] for r in catalog.query("SELECT rel_path FROM photos")}
    assert paths == {
        "Pictures/a.jpg",
        "photos/b.jpg",
        "Pictures/x/c.jpg",
        "Photos0.jpg",
        "Photos_/d.jpg",
        "2019/e.jpg",
        "2019 trip/f.jpg",
    }


def test_rows_have_exactly_the_columns_their_types_name(catalog, root):
    """The TypedDicts a reader trusts for the catalog's rows must follow the migrations."""

    def keys(row_type):
        return row_type.__required_keys__ | row_type.__optional_keys__

    pid, _ = catalog.upsert_file(root.id, "a/b.jpg", 10, 1)
    assert set(catalog.pending()[0]) == keys(PendingRow)
    assert set(catalog.photo(pid)) == keys(PhotoInfoRow)
    assert set(wordsearch.search_name(catalog, "b")[0]) == keys(NameMatchRow)
    with catalog.transaction() as conn:
        conn.execute("INSERT INTO captions (photo_id, text, created_at) VALUES (?, 'x', 0)", (pid,))
    assert set(catalog.captions(pid)[0]) == keys(CaptionRow)
    catalog.mark_failed(pid, "bad")
    assert set(catalog.failed()[0]) == keys(FailedRow)
