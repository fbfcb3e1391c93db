"""The model slot: one bundle at a time, its encoders and index opened on first use and let go together
when the marker names another model."""

from __future__ import annotations

import pytest

from photod.errors import ModelError, NoModelError
from photod.index.modelslot import ModelSlot
from photod.model import bundle as bundles
from photod.model import registry
from tests.support.onnxkit import add_photos, install_active, unit_vectors


def test_follows_the_marker_and_reopens_only_for_another_model(catalog, data_dir, tmp_path):
    slot = ModelSlot(data_dir, catalog, registry.active_name, threads=1)
    assert slot.follow() is None
    with pytest.raises(NoModelError):
        slot.text_encoder()

    alpha = install_active(data_dir, tmp_path / "alpha", name="alpha", seed=1)
    assert slot.follow().model_id == alpha.model_id
    text, image, index = slot.text_encoder(), slot.image_encoder(), slot.index()
    assert slot.follow().name == "alpha"
    assert (slot.text_encoder(), slot.image_encoder(), slot.index()) == (text, image, index)  # opened once

    # The same export under another name is the same model: what is open stays open.
    registry.install_bundle(tmp_path / "alpha", data_dir, "alias")
    registry.use_bundle(data_dir, "alias")
    assert slot.follow().name == "alias"
    assert slot.text_encoder() is text and slot.index() is index

    beta = install_active(data_dir, tmp_path / "beta", name="beta", seed=7)
    assert slot.follow().model_id == beta.model_id
    assert slot.text_encoder() is not text and slot.image_encoder() is not image
    assert slot.index() is not index and slot.index().model_id == beta.image_id

    # Another model installed in place under the active name is a switch too.
    opened = slot.text_encoder()
    registry.install_bundle(tmp_path / "alpha", data_dir, "beta", replace=True)
    assert slot.follow().model_id == alpha.model_id
    assert slot.text_encoder() is not opened

    registry.models_dir(data_dir).joinpath(registry.ACTIVE_FILE).unlink()
    assert slot.follow() is None and slot.bundle is None


def test_a_broken_bundle_leaves_the_old_one_in_use(catalog, data_dir, tmp_path):
    slot = ModelSlot(data_dir, catalog, registry.active_name, threads=1)
    alpha = install_active(data_dir, tmp_path / "alpha", name="alpha", seed=1)
    text = (slot.follow(), slot.text_encoder())[1]
    install_active(data_dir, tmp_path / "beta", name="beta", seed=7)
    (registry.models_dir(data_dir) / "beta" / bundles.MANIFEST).write_text("{")
    with pytest.raises(ModelError, match="not valid JSON"):
        slot.follow()
    assert slot.bundle.model_id == alpha.model_id and slot.text_encoder() is text


def test_only_a_slot_that_keeps_the_index_saves_it_when_letting_go(catalog, data_dir, tmp_path):
    from photod.index.vectorindex import index_paths
    from photod.store import vectors

    bundle = install_active(data_dir, tmp_path / "alpha", name="alpha", seed=1)
    ids = add_photos(catalog, tmp_path / "root", 5)
    vecs = unit_vectors(5, bundle.embed_dim)
    vectors.store_vectors(catalog, bundle.image_id, ids[:3], vecs[:3])
    reader = ModelSlot(data_dir, catalog, registry.active_name)
    reader.follow()
    assert reader.index().rebuilt  # no file yet: built from the catalog, and saved at once
    path, _ = index_paths(data_dir, bundle.image_id)
    saved = path.stat().st_mtime_ns
    vectors.store_vectors(catalog, bundle.image_id, ids[3:], vecs[3:])
    assert reader.index().refresh(catalog) == 2
    reader.close()
    assert path.stat().st_mtime_ns == saved

    writer = ModelSlot(data_dir, catalog, registry.active_name, keeps_index=True)
    writer.follow()
    assert len(writer.index()) == 5  # caught up with the catalog when opened, not saved yet
    assert path.stat().st_mtime_ns == saved
    writer.close()
    assert path.stat().st_mtime_ns != saved
