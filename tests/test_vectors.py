"""Vectors in the catalog: float16 round trip, stored in the transaction that marks photos indexed."""

from __future__ import annotations

import sqlite3

import numpy as np
import pytest

from photod.store import vectors
from photod.store.catalog import PhotoMeta
from tests.support.onnxkit import add_photos, unit_vectors

M = "model-a"


def states(catalog, ids):
    return {
        r["id"]: (r["state"], r["prev_state"])
        for r in catalog.query(f"SELECT id, state, prev_state FROM photos WHERE id IN ({','.join(map(str, ids))})")
    }


def test_round_trip_is_float16_exact_and_marks_indexed(catalog, tmp_path):
    ids = add_photos(catalog, tmp_path / "root", 20)
    vecs = unit_vectors(20, 64, seed=1)
    stored = vectors.store_vectors(catalog, M, ids, vecs)
    assert stored == ids
    got_ids, got = vectors.load_vectors(catalog, M)
    assert got_ids.tolist() == ids
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, vecs.astype(np.float16).astype(np.float32))
    assert np.abs(got - vecs).max() < 1e-3
    assert catalog.scalar("SELECT length(vector) FROM vectors LIMIT 1") == 64 * 2
    assert all(s == ("indexed", None) for s in states(catalog, ids).values())
    assert catalog.scalar("SELECT count(*) FROM photos WHERE indexed_at IS NULL") == 0
    sub_ids, sub = vectors.load_vectors(catalog, M, ids=[ids[3], ids[1], 999999])
    assert sub_ids.tolist() == [ids[1], ids[3]]
    np.testing.assert_array_equal(sub[1], got[3])


def test_state_indexed_iff_vector_stored_even_when_the_transaction_fails(catalog, tmp_path):
    ids = add_photos(catalog, tmp_path / "root", 10)
    vectors.store_vectors(catalog, M, ids[:5], unit_vectors(5, 16))
    # A failure inside the transaction (a CHECK violation on the state update) rolls back both halves.
    catalog.conn.execute(
        "CREATE TRIGGER boom BEFORE UPDATE OF state ON photos WHEN NEW.id = %d"
        " BEGIN SELECT RAISE(ABORT, 'boom'); END" % ids[7]
    )
    with pytest.raises(sqlite3.IntegrityError):
        vectors.store_vectors(catalog, M, ids[5:], unit_vectors(5, 16, seed=2))
    catalog.conn.execute("DROP TRIGGER boom")
    with_vec = set(vectors.indexed_ids(catalog, M).tolist())
    indexed = {r[0] for r in catalog.conn.execute("SELECT id FROM photos WHERE state = 'indexed'")}
    assert with_vec == indexed == set(ids[:5])


def test_offline_and_deleted_photos_keep_state_and_remember_indexed(catalog, tmp_path):
    ids = add_photos(catalog, tmp_path / "root", 6)
    root_id = catalog.photo(ids[0])["root_id"]
    catalog.set_root_offline(root_id)
    catalog.mark_deleted([ids[5]])
    assert states(catalog, ids)[ids[0]] == ("offline", "staged")
    assert vectors.pending_encode(catalog, M, 100) == ids[:5]  # the stage lets offline photos be encoded
    vectors.store_vectors(catalog, M, ids[:5], unit_vectors(5, 8))
    assert all(states(catalog, ids)[i] == ("offline", "indexed") for i in ids[:5])
    catalog.set_root_online(root_id)
    assert all(states(catalog, ids)[i] == ("indexed", None) for i in ids[:5])
    # Deleted photos are neither pending nor loaded.
    assert vectors.pending_encode(catalog, M, 100) == []
    vectors.store_vectors(catalog, M, [ids[5]], unit_vectors(1, 8))
    assert ids[5] not in vectors.load_vectors(catalog, M)[0].tolist()
    assert states(catalog, ids)[ids[5]][0] == "deleted"


def test_vectors_of_a_photo_that_left_the_stage_are_not_stored(catalog, tmp_path):
    ids = add_photos(catalog, tmp_path / "root", 4)
    catalog.unstage([ids[2]])
    stored = vectors.store_vectors(catalog, M, ids, unit_vectors(4, 8))
    assert stored == [ids[0], ids[1], ids[3]]
    assert states(catalog, ids)[ids[2]] == ("new", None)
    assert vectors.indexed_ids(catalog, M).tolist() == stored


def test_pending_counts_and_pages(catalog, tmp_path):
    ids = add_photos(catalog, tmp_path / "root", 30)
    add_photos(catalog, tmp_path / "other", 5, staged=False)  # not staged: nothing to encode from
    assert vectors.count_pending(catalog, M) == 30
    first = vectors.pending_encode(catalog, M, 10)
    assert first == ids[:10]
    assert vectors.pending_encode(catalog, M, 10, after_id=first[-1]) == ids[10:20]
    vectors.store_vectors(catalog, M, ids[:25], unit_vectors(25, 8))
    assert vectors.pending_encode(catalog, M, 100) == ids[25:]
    assert vectors.pending_encode(catalog, "model-b", 100) == ids  # another model has encoded nothing
    assert vectors.count_vectors(catalog, M) == 25


def test_reset_for_model_switches_what_indexed_means(catalog, tmp_path):
    ids = add_photos(catalog, tmp_path / "root", 8)
    vectors.store_vectors(catalog, M, ids, unit_vectors(8, 8))
    vectors.store_vectors(catalog, "model-b", ids[:3], unit_vectors(3, 8, seed=3))
    catalog.mark_deleted([ids[7]])
    up, down = vectors.reset_for_model(catalog, "model-b")
    assert (up, down) == (0, 4)
    st = states(catalog, ids)
    assert [st[i][0] for i in ids[:7]] == ["indexed"] * 3 + ["staged"] * 4
    assert st[ids[7]] == ("deleted", "staged")
    up, down = vectors.reset_for_model(catalog, M)
    assert (up, down) == (4, 0)
    assert states(catalog, ids)[ids[7]] == ("deleted", "indexed")


def test_changed_file_drops_its_vector(catalog, tmp_path):
    ids = add_photos(catalog, tmp_path / "root", 3)
    vectors.store_vectors(catalog, M, ids, unit_vectors(3, 8))
    row = catalog.photo(ids[1])
    catalog.upsert_file(row["root_id"], row["rel_path"], row["size"] + 1, row["mtime_ns"])
    assert vectors.indexed_ids(catalog, M).tolist() == [ids[0], ids[2]]
    before = vectors.max_rowid(catalog)
    catalog.mark_staged(ids[1], PhotoMeta(), "newhash")
    vectors.store_vectors(catalog, M, [ids[1]], unit_vectors(1, 8, seed=9))
    assert ids[1] in vectors.changed_since(catalog, M, before, 1e18).tolist()
