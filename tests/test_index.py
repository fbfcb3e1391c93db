"""The FAISS index: exact equals brute force, approximate recall, atomic saves, catch-up from the catalog."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from photod.config import IndexConfig
from photod.index.vectorindex import VectorIndex, index_paths, resolve_kind
from photod.store import vectors
from photod.store.catalog import PhotoMeta
from tests.support.onnxkit import REPO, add_photos, unit_vectors

M = "model-a"


def brute_top_k(q, ids, vecs, k):
    scores = q @ vecs.T
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(scores, order, axis=1), ids[order]


def stored_library(catalog, tmp_path, n, dim=64, seed=0, clusters=None):
    ids = add_photos(catalog, tmp_path / "root", n)
    vectors.store_vectors(catalog, M, ids, unit_vectors(n, dim, seed=seed, clusters=clusters))
    return ids


def recall_at(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(f) & set(t)) / len(t) for f, t in zip(found, truth)]))


def test_exact_search_equals_brute_force_over_stored_vectors(catalog, data_dir, tmp_path):
    stored_library(catalog, tmp_path, 1500, seed=1)
    index = VectorIndex.open(data_dir, M, catalog, IndexConfig(kind="exact"))
    assert index.kind == "exact" and len(index) == 1500
    ids, vecs = vectors.load_vectors(catalog, M)
    queries = unit_vectors(12, 64, seed=2)
    for k in (1, 10, 50):
        scores, found = index.search(queries, k)
        want_scores, want_ids = brute_top_k(queries, ids, vecs, k)
        np.testing.assert_array_equal(found, want_ids)
        np.testing.assert_allclose(scores, want_scores, atol=1e-5)
    # restricted to a subset: the brute force over that subset
    allowed = ids[::7]
    scores, found = index.search(queries, 10, allowed_ids=allowed.tolist())
    sub = np.isin(ids, allowed)
    want_scores, want_ids = brute_top_k(queries, ids[sub], vecs[sub], 10)
    np.testing.assert_array_equal(found, want_ids)
    np.testing.assert_allclose(scores, want_scores, atol=1e-5)
    # a query equal to a stored vector finds that photo first, with cosine 1
    scores, found = index.search(vecs[[42]], 3)
    assert found[0, 0] == ids[42] and scores[0, 0] == pytest.approx(1.0, abs=1e-3)  # float16 storage


def test_k_larger_than_the_library_and_empty_index(data_dir):
    index = VectorIndex(data_dir, M, IndexConfig(kind="exact"))
    scores, found = index.search(unit_vectors(2, 8), 5)
    assert found.shape == (2, 0)
    index.add([3, 9, 4], unit_vectors(3, 8, seed=4))
    scores, found = index.search(unit_vectors(2, 8, seed=5), 10)
    assert found.shape == (2, 3) and sorted(found[0].tolist()) == [3, 4, 9]
    assert index.search(unit_vectors(1, 8), 5, allowed_ids=[77])[1].shape == (1, 0)


@pytest.mark.parametrize("kind", ["hnsw", "ivf"])
def test_approximate_recall_at_10(kind, data_dir):
    n, dim = 20_000, 64
    data = unit_vectors(n, dim, seed=11, clusters=200)
    ids = np.arange(1, n + 1, dtype=np.int64)
    queries = unit_vectors(200, dim, seed=12, clusters=200)
    exact = VectorIndex(data_dir, "exact-model", IndexConfig(kind="exact"))
    exact.add(ids, data)
    approx = VectorIndex(data_dir, M, IndexConfig(kind=kind))
    if kind == "ivf":
        approx._create("ivf", dim, train=data)
    else:
        approx._create("hnsw", dim)
    approx.add(ids, data)
    assert approx.kind == kind
    _, truth = exact.search(queries, 10)
    _, found = approx.search(queries, 10)
    recall = recall_at(found, truth)
    print(f"{kind} recall@10 = {recall:.4f}")
    assert recall >= 0.95
    # and with an allowed subset (small: searched exactly; large: through the selector)
    for allowed in (ids[::50], ids[: n // 2 + 1000]):
        _, truth = exact.search(queries, 10, allowed_ids=allowed)
        _, found = approx.search(queries, 10, allowed_ids=allowed)
        assert np.isin(found, allowed).all()
        assert recall_at(found, truth) >= 0.95


def test_hnsw_removal_uses_tombstones_and_replacing_a_vector_works(data_dir):
    index = VectorIndex(data_dir, M, IndexConfig(kind="hnsw"))
    index._create("hnsw", 16)
    data = unit_vectors(500, 16, seed=3)
    ids = np.arange(1, 501)
    index.add(ids, data)
    assert index.remove([5, 6, 7, 9999]) == 3
    assert len(index) == 497 and 5 not in index
    _, found = index.search(data[[4, 5, 6]], 5)
    assert not np.isin(found, [5, 6, 7]).any()
    # photo 8 encoded again (its file changed): the new vector replaces the old one, held once
    new = unit_vectors(1, 16, seed=99)
    index.add([8], new)
    assert len(index) == 497
    scores, found = index.search(new, 2)
    assert found[0, 0] == 8 and scores[0, 0] == pytest.approx(1.0, abs=1e-5)
    assert (found[0] == 8).sum() == 1
    # many removals compact the graph: no tombstones, still searchable
    index.remove(range(1, 300))
    assert index._tombstones == 0 and len(index) == 500 - 299
    _, found = index.search(data[[400]], 1)
    assert found[0, 0] == 401


def test_save_then_catch_up_adds_removes_and_replaces(catalog, data_dir, tmp_path):
    ids = stored_library(catalog, tmp_path, 300, dim=16)
    index = VectorIndex.open(data_dir, M, catalog, IndexConfig(kind="exact"))
    assert index.save() is True
    assert index.save() is False  # nothing changed: no rewrite
    path, meta_path = index_paths(data_dir, M)
    meta = json.loads(meta_path.read_text())
    assert meta["count"] == 300 and meta["model_id"] == M and meta["kind"] == "exact"
    mtime = path.stat().st_mtime_ns

    more = add_photos(catalog, tmp_path / "root2", 40, label="two")
    vectors.store_vectors(catalog, M, more, unit_vectors(40, 16, seed=7))  # catalog only, index not told
    catalog.mark_deleted(ids[:10])
    catalog.purge(ids[10:15])
    # photo ids[20]'s file changed and was encoded again: same id, new vector
    row = catalog.photo(ids[20])
    catalog.upsert_file(row["root_id"], row["rel_path"], row["size"] + 1, row["mtime_ns"])
    catalog.mark_staged(ids[20], PhotoMeta(), "changed")
    fresh = unit_vectors(1, 16, seed=1234)
    vectors.store_vectors(catalog, M, [ids[20]], fresh)

    loaded = VectorIndex.open(data_dir, M, catalog, IndexConfig(kind="exact"))
    assert path.stat().st_mtime_ns == mtime  # loading never rewrote the file
    want = vectors.indexed_ids(catalog, M)
    assert np.array_equal(loaded.ids(), want)
    assert len(loaded) == vectors.count_vectors(catalog, M) == 300 - 15 + 40
    np.testing.assert_allclose(loaded.vector(ids[20]), fresh[0].astype(np.float16), atol=1e-6)
    # and the index is exactly the catalog: brute force over the catalog agrees
    cat_ids, cat_vecs = vectors.load_vectors(catalog, M)
    q = unit_vectors(5, 16, seed=8)
    np.testing.assert_array_equal(loaded.search(q, 10)[1], brute_top_k(q, cat_ids, cat_vecs, 10)[1])


@pytest.mark.parametrize("damage", ["garbage", "truncate", "no-sidecar", "sidecar-lies", "other-model"])
def test_unusable_file_is_rebuilt_from_the_catalog(damage, catalog, data_dir, tmp_path, caplog):
    stored_library(catalog, tmp_path, 200, dim=16)
    VectorIndex.open(data_dir, M, catalog).save()
    path, meta_path = index_paths(data_dir, M)
    if damage == "garbage":
        path.write_bytes(os.urandom(4096))
    elif damage == "truncate":
        path.write_bytes(path.read_bytes()[:-100])
    elif damage == "no-sidecar":
        meta_path.unlink()
    elif damage == "sidecar-lies":
        meta = json.loads(meta_path.read_text())
        meta["count"] += 1
        meta_path.write_text(json.dumps(meta))
    else:
        meta = json.loads(meta_path.read_text())
        meta["model_id"] = "model-b"
        meta_path.write_text(json.dumps(meta))
    caplog.set_level("WARNING")
    index = VectorIndex.open(data_dir, M, catalog)
    assert "rebuilding it from the catalog" in caplog.text
    assert np.array_equal(index.ids(), vectors.indexed_ids(catalog, M))
    assert index.save() is True  # a rebuilt index is saved, replacing the bad file
    caplog.clear()
    VectorIndex.open(data_dir, M, catalog)
    assert "rebuilding" not in caplog.text


def test_kind_follows_config_and_size(catalog, data_dir, tmp_path):
    assert resolve_kind("auto", 10, 100) == "exact"
    assert resolve_kind("auto", 101, 100) == "hnsw"  # too few to train IVF lists
    assert resolve_kind("auto", 20_001, 20_000) == "ivf"
    assert resolve_kind("ivf", 50, 100) == "exact"  # too few vectors to train k-means
    stored_library(catalog, tmp_path, 150, dim=16)
    a = VectorIndex.open(data_dir, M, catalog, IndexConfig(kind="auto", approximate_above=100))
    assert a.kind == "hnsw" and len(a) == 150
    a.save()
    b = VectorIndex.open(data_dir, M, catalog, IndexConfig(kind="exact"))  # config changed: rebuilt as exact
    assert b.kind == "exact" and len(b) == 150


def test_background_build_for_a_new_model_while_the_old_serves(catalog, data_dir, tmp_path):
    import threading

    from photod.store.catalog import Catalog

    ids = stored_library(catalog, tmp_path, 400, dim=16)
    vectors.store_vectors(catalog, "model-b", ids, unit_vectors(400, 24, seed=5))
    old = VectorIndex.open(data_dir, M, catalog)
    built = {}

    def build():  # as the daemon does after a model switch: a catalog of its own thread, then a save
        with Catalog(catalog.path) as cat:
            built["b"] = VectorIndex.open(data_dir, "model-b", cat)
        built["b"].save()

    t = threading.Thread(target=build)
    t.start()
    while t.is_alive():
        assert old.search(unit_vectors(1, 16), 3)[1].shape == (1, 3)
    t.join()
    new = built["b"]
    assert new.dim == 24 and len(new) == 400 and index_paths(data_dir, "model-b")[0].exists()


SAVER = textwrap.dedent("""
    import sys, numpy as np
    from photod.store.catalog import Catalog
    from photod.config import IndexConfig
    from photod.index.vectorindex import VectorIndex
    from photod.store import vectors
    data_dir = sys.argv[1]
    cat = Catalog.in_data_dir(data_dir)
    index = VectorIndex.open(data_dir, "model-a", cat, IndexConfig(kind="exact"))
    ids, vecs = vectors.load_vectors(cat, "model-a")
    rng = np.random.default_rng()
    print("ready", flush=True)
    while True:
        # Drop a random part, save, put it back, save: every save really writes a different file.
        part = rng.random(len(ids)) < 0.3
        index.remove(ids[part])
        index.save()
        index.add(ids[part], vecs[part])
        index.save()
""")


def test_kill_9_while_saving_the_index_repeatedly(catalog, data_dir, tmp_path):
    stored_library(catalog, tmp_path, 2000, dim=64)
    seed = int(os.environ.get("PHOTOD_TEST_SEED", time.time_ns() % 100000))
    print(f"seed {seed}")
    rng = np.random.default_rng(seed)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    want = vectors.indexed_ids(catalog, M)
    for trial in range(int(os.environ.get("PHOTOD_KILL_TRIALS", 4))):
        proc = subprocess.Popen([sys.executable, "-c", SAVER, str(data_dir)], stdout=subprocess.PIPE, env=env, cwd=REPO)
        assert proc.stdout.readline().strip() == b"ready"
        time.sleep(rng.uniform(0.05, 0.6))
        proc.kill()
        proc.wait()
        mid_save = bool(list(index_paths(data_dir, M)[0].parent.glob(".*.tmp")))
        print(f"trial {trial}: killed {'while writing a temp file' if mid_save else 'between saves'}")
        index = VectorIndex.open(data_dir, M, catalog, IndexConfig(kind="exact"))
        held = index.ids()
        assert np.array_equal(held, want), f"trial {trial} (seed {seed})"
        assert len(index) == vectors.count_vectors(catalog, M) == index._index.ntotal
        # the vectors are the catalog's, not some half-written version
        cat_ids, cat_vecs = vectors.load_vectors(catalog, M, ids=held[:50])
        np.testing.assert_allclose(np.vstack([index.vector(i) for i in cat_ids]), cat_vecs, atol=1e-6)
    assert not list(index_paths(data_dir, M)[0].parent.glob(".*.tmp"))  # temp files of the dead are cleared


def test_save_interrupted_between_its_two_renames_rolls_forward(catalog, data_dir, tmp_path, monkeypatch, caplog):
    import photod.index.vectorindex as index_module

    ids = stored_library(catalog, tmp_path, 100, dim=16)
    index = VectorIndex.open(data_dir, M, catalog, IndexConfig(kind="exact"))
    index.save()
    index.remove(ids[:10])  # the index now differs from the catalog: only a real save records that
    real_replace = os.replace

    def die_before_sidecar(src, dst):
        if str(dst).endswith(".json"):
            raise KeyboardInterrupt  # the process dies here: no cleanup runs
        real_replace(src, dst)

    monkeypatch.setattr(index_module.os, "replace", die_before_sidecar)
    with pytest.raises(KeyboardInterrupt):
        index.save()
    monkeypatch.setattr(index_module.os, "replace", real_replace)
    path, meta_path = index_paths(data_dir, M)
    (leftover,) = path.parent.glob(".model-a.json.*.tmp")
    dead = leftover.with_name(f".model-a.json.{2**22 + 12345}.1.tmp")  # as if its writer had died
    leftover.rename(dead)
    caplog.set_level("INFO")
    loaded = VectorIndex.open(data_dir, M, catalog, IndexConfig(kind="exact"))
    assert "completed a save interrupted" in caplog.text and "rebuilding" not in caplog.text
    assert json.loads(meta_path.read_text())["count"] == 90 and not dead.exists()
    assert np.array_equal(loaded.ids(), vectors.indexed_ids(catalog, M))  # and caught up: 100 again
