"""ONNX encoders and the indexer: real sessions on tiny graphs, a real LMDB stage, real FAISS, kill -9."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import onnxruntime as ort
import pytest

from photod.config import IndexConfig, WorkersConfig
from photod.errors import ModelError
from photod.index.indexer import Indexer
from photod.index.vectorindex import VectorIndex
from photod.model.encoder import ImageEncoder, TextEncoder, choose_providers
from photod.model.preprocess import preprocess_batch
from photod.model.tokenizer import Tokenizer
from photod.store import vectors
from photod.store.catalog import Catalog
from photod.store.stage import Stage
from tests.support.onnxkit import REPO, add_photos, make_bundle, picture, stage_pictures


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return make_bundle(tmp_path_factory.mktemp("bundle") / "tiny")


def reference(path, feed):
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    out = sess.run(None, {sess.get_inputs()[0].name: feed})[0]
    return out / np.linalg.norm(out, axis=1, keepdims=True)


def test_image_encoder_matches_the_onnx_graph_and_is_batch_invariant(tiny):
    enc = ImageEncoder(tiny, threads=1)
    images = [picture(i) for i in range(5)]
    got = enc.encode(images)
    assert got.shape == (5, tiny.embed_dim) and got.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-6)
    want = reference(tiny.image_path, preprocess_batch(images, tiny.image_size, tiny.mean, tiny.std))
    np.testing.assert_allclose(got, want, atol=1e-6)
    one_by_one = np.vstack([enc.encode([img]) for img in images])
    np.testing.assert_allclose(got, one_by_one, atol=1e-6)
    assert enc.model_id == tiny.image_id
    assert enc.encode([]).shape == (0, tiny.embed_dim)
    assert float(got[0] @ got[1]) < 0.99  # different pictures, different vectors


def test_text_encoder_uses_the_bundle_tokenizer_and_context_length(tiny):
    enc = TextEncoder(tiny, threads=1)
    texts = ["海边的日落", "我家的猫在沙发上", "a red dress", "海边的日落"]
    got = enc.encode(texts)
    tokens = Tokenizer.from_vocab(tiny.vocab_path).tokenize(texts, tiny.context_length)
    assert tokens.shape == (4, tiny.context_length)
    np.testing.assert_allclose(got, reference(tiny.text_path, tokens), atol=1e-6)
    np.testing.assert_allclose(got[0], got[3], atol=1e-7)
    assert float(got[0] @ got[1]) < 0.999


@pytest.fixture(scope="module")
def tiny_int8(tmp_path_factory):
    return make_bundle(tmp_path_factory.mktemp("bundle") / "tiny-int8", precision="int8")


@pytest.mark.parametrize("threads", [1, 2])
def test_int8_vectors_do_not_depend_on_batch_mates(tiny_int8, threads):
    images = [picture(i) for i in range(12)]
    pixels = preprocess_batch(images, tiny_int8.image_size, tiny_int8.mean, tiny_int8.std)
    # The graph itself quantizes activations over the whole batch: run as one batch, photo 0 moves
    # with its batch-mates (a dark, flat picture among bright ones changes the scale).
    dark = (pixels[1:2] * 0 - 2.0).astype(np.float32)
    bright = (pixels[1:2] * 0 + 2.5).astype(np.float32)
    alone, mixed = (
        reference(tiny_int8.image_path, pixels[:1]),
        reference(tiny_int8.image_path, np.concatenate([pixels[:1], dark, bright])),
    )
    assert not np.array_equal(alone[0], mixed[0])
    enc = ImageEncoder(tiny_int8, threads=threads)
    assert enc.rowwise
    want = np.vstack([enc.encode_array(pixels[i : i + 1]) for i in range(len(pixels))])
    mixes = [pixels, pixels[::-1], np.concatenate([dark, pixels[5:], bright, pixels[:5]])]
    got = [enc.encode_array(m) for m in mixes]
    assert np.array_equal(got[0], want)
    assert np.array_equal(got[1], want[::-1])
    assert np.array_equal(got[2][1:8], want[5:]) and np.array_equal(got[2][9:], want[:5])
    assert np.array_equal(enc.encode(images[3:4]), want[3:4])
    np.testing.assert_allclose(want, reference(tiny_int8.image_path, pixels), atol=0.05)  # still that model
    texts = ["海边的日落", "我家的猫在沙发上", "a red dress"]
    text = TextEncoder(tiny_int8, threads=threads)
    assert np.array_equal(text.encode(texts)[1], text.encode(texts[1:2])[0])


def test_sessions_stay_resident(tiny, monkeypatch):
    enc = TextEncoder(tiny, threads=1)
    opened = []
    monkeypatch.setattr(ort, "InferenceSession", lambda *a, **k: opened.append(a))
    for _ in range(3):
        enc.encode(["日落"])
    assert opened == []


def test_providers_prefer_cuda_when_present(monkeypatch):
    assert choose_providers() == ["CPUExecutionProvider"]  # this machine has no GPU
    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"])
    assert choose_providers() == ["CUDAExecutionProvider", "CPUExecutionProvider"]
    with pytest.raises(ModelError, match="TensorrtExecutionProvider"):
        choose_providers(["TensorrtExecutionProvider"])


def test_a_broken_model_file_is_a_model_error_naming_it(tmp_path):
    bundle = make_bundle(tmp_path / "b")
    bundle.image_path.write_bytes(b"not an onnx file")
    with pytest.raises(ModelError, match="image.onnx"):
        ImageEncoder(bundle)


@pytest.fixture
def library(catalog, data_dir, tmp_path, tiny):
    ids = add_photos(catalog, tmp_path / "root", 60)
    stage = Stage(data_dir)
    pics = stage_pictures(stage, ids)
    yield ids, stage, pics
    stage.close()


def test_indexer_encodes_everything_staged_and_hands_back_missing_entries(catalog, data_dir, tiny, library):
    ids, stage, pics = library
    stage.delete_many([ids[7], ids[30]])
    index = VectorIndex(data_dir, tiny.image_id, IndexConfig(kind="exact"))
    indexer = Indexer(catalog, stage, tiny, index, WorkersConfig(batch_size=8, encode_threads=1, decode=2))
    assert indexer.pending() == 60
    assert indexer.run_once() == 58
    assert indexer.pending() == 0 and indexer.run_once() == 0
    got_ids, got = vectors.load_vectors(catalog, tiny.image_id)
    assert set(got_ids.tolist()) == set(ids) - {ids[7], ids[30]}
    # the stored vectors are the encoder's, of the staged JPEGs
    enc = ImageEncoder(tiny, threads=1)
    want = enc.encode([stage.get_image(int(i)) for i in got_ids[:10]])
    np.testing.assert_allclose(got[:10], want, atol=2e-3)  # float16 storage
    assert np.array_equal(index.ids(), got_ids) and len(index) == 58
    assert index.path.exists()  # saved at the end of the run
    assert catalog.photo(ids[7])["state"] == "new" and catalog.photo(ids[7])["staged_at"] is None
    assert catalog.counts()["indexed"] == 58


def test_decoding_runs_ahead_on_a_bounded_queue(catalog, data_dir, tiny, library):
    _, stage, _ = library
    index = VectorIndex(data_dir, tiny.image_id, IndexConfig(kind="exact"))
    indexer = Indexer(
        catalog, stage, tiny, index, WorkersConfig(batch_size=4, encode_threads=1, decode=2), queue_batches=2
    )
    prepared = []
    ahead = []
    real_prepare, real_encode = indexer._prepare, indexer.encoder.encode_array

    def prepare(pid):
        prepared.append(pid)
        return real_prepare(pid)

    def slow_encode(batch):
        time.sleep(0.05)  # a slow model: decoding must wait for it, not run away
        ahead.append(len(prepared) - 4 * (len(ahead) + 1))
        return real_encode(batch)

    indexer._prepare, indexer.encoder.encode_array = prepare, slow_encode
    assert indexer.run_once() == 60
    # While the model worked on batch i, later batches were already decoded...
    assert max(ahead) >= 4
    # ...but never more than the queue (2 batches) plus the one being prepared and the one being put.
    assert max(ahead) <= 4 * (2 + 2)


def test_stop_finishes_the_batch_in_hand(catalog, data_dir, tiny, library):
    _, stage, _ = library
    index = VectorIndex(data_dir, tiny.image_id, IndexConfig(kind="exact"))
    indexer = Indexer(catalog, stage, tiny, index, WorkersConfig(batch_size=5, encode_threads=1))
    stop = threading.Event()
    real = indexer.encoder.encode_array

    def encode_then_stop(batch):
        stop.set()
        return real(batch)

    indexer.encoder.encode_array = encode_then_stop
    assert indexer.run_once(stop) == 5
    assert vectors.count_vectors(catalog, tiny.image_id) == 5 == len(index)
    indexer.encoder.encode_array = real
    assert indexer.run_once() == 55


WORKER = textwrap.dedent("""
    import sys
    from photod.model.bundle import Bundle
    from photod.store.catalog import Catalog
    from photod.config import IndexConfig, WorkersConfig
    from photod.index.vectorindex import VectorIndex
    from photod.index.indexer import Indexer
    from photod.store.stage import Stage
    data_dir, bundle_dir = sys.argv[1], sys.argv[2]
    bundle = Bundle.load(bundle_dir)
    cat = Catalog.in_data_dir(data_dir)
    index = VectorIndex.open(data_dir, bundle.image_id, cat, IndexConfig(kind=sys.argv[3]))
    stage = Stage(data_dir)
    indexer = Indexer(cat, stage, bundle, index, WorkersConfig(batch_size=4, encode_threads=1, decode=2),
                      save_every=12)
    print("ready", flush=True)
    indexer.run_once()
""")


@pytest.mark.parametrize("kind", ["exact", "hnsw"])
def test_kill_9_while_encoding_repeatedly(kind, catalog, data_dir, tmp_path, tiny):
    ids = add_photos(catalog, tmp_path / "root", 300)
    with Stage(data_dir) as stage:
        stage_pictures(stage, ids, size=40)
    seed = int(os.environ.get("PHOTOD_TEST_SEED", time.time_ns() % 100000))
    print(f"seed {seed}")
    rng = np.random.default_rng(seed)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    progress = []
    trials = int(os.environ.get("PHOTOD_KILL_TRIALS", 4 if kind == "exact" else 3))
    for trial in range(trials):
        proc = subprocess.Popen(
            [sys.executable, "-c", WORKER, str(data_dir), str(tiny.path), kind],
            stdout=subprocess.PIPE,
            env=env,
            cwd=REPO,
        )
        assert proc.stdout.readline().strip() == b"ready", f"trial {trial}"
        time.sleep(rng.uniform(0.0, 0.4))
        proc.kill()
        proc.wait()
        with Catalog.in_data_dir(data_dir) as cat:
            index = VectorIndex.open(data_dir, tiny.image_id, cat, IndexConfig(kind=kind))
            want = vectors.indexed_ids(cat, tiny.image_id)
            held = index.ids()
            assert np.array_equal(held, want), f"trial {trial}, seed {seed}"
            assert len(index) == vectors.count_vectors(cat, tiny.image_id) == held.size
            assert index._slots() - index._tombstones == held.size  # each photo once
            indexed = {r[0] for r in cat.conn.execute("SELECT id FROM photos WHERE state = 'indexed'")}
            assert indexed == set(want.tolist())
            progress.append(held.size)
    print("indexed after each kill:", progress)
    # finishing the job leaves everything indexed once
    with Stage(data_dir) as stage, Catalog.in_data_dir(data_dir) as cat:
        index = VectorIndex.open(data_dir, tiny.image_id, cat, IndexConfig(kind=kind))
        Indexer(cat, stage, tiny, index, WorkersConfig(batch_size=16, encode_threads=1)).run_once()
        assert len(index) == 300 and np.array_equal(index.ids(), np.array(sorted(ids)))
