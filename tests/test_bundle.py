"""Model bundles on disk: strict manifests, hashes, and list/use/remove/install in a data dir (no torch)."""

from __future__ import annotations

import json
import logging
import shutil

import numpy as np
import pytest

from photod.errors import ModelError
from photod.model import bundle as bundles
from photod.model import registry
from tests.support.modelkit import session, tiny_bundle


@pytest.fixture
def src(tmp_path):
    return tiny_bundle(tmp_path / "src", name="tiny")


def _edit_manifest(bundle_dir, **changes):
    path = bundle_dir / bundles.MANIFEST
    data = json.loads(path.read_text())
    for key, value in changes.items():
        if value is ...:
            data.pop(key)
        else:
            data[key] = value
    path.write_text(json.dumps(data))


def test_load_round_trip_and_real_graphs(src):
    b = bundles.Bundle.load(src.path, verify_files=True)
    assert b == src
    assert b.image_path.name == "image.onnx" and b.text_path.name == "text.onnx" and b.vocab_path.is_file()
    assert b.image_id == b.files["image.onnx"][:16] and b.text_id == b.files["text.onnx"][:16]
    assert b.to_manifest()["format"] == 1 and "path" not in b.to_manifest()
    out = session(b.image_path).run(None, {"image": np.zeros((3, 3, 16, 16), np.float32)})[0]
    assert out.shape == (3, b.embed_dim)


@pytest.mark.parametrize(
    "field, value, words",
    [
        ("embed_dim", ..., "'embed_dim' is missing"),
        ("embed_dim", "32", "'embed_dim' must be an integer"),
        ("embed_dim", True, "'embed_dim' must be an integer"),
        ("image_size", 0, "'image_size' must be an integer between 1"),
        ("precision", "int4", "'precision' must be one of fp32, fp16, int8"),
        ("mean", [0.5, 0.5], "'mean' must be a list of 3 numbers"),
        ("std", [0.2, 0.0, 0.2], "'std' must be a list of 3 positive numbers"),
        ("format", 2, "'format' must be 1"),
        ("name", "../escape", "'name' must be a name"),
        ("files", {"image.onnx": "ab"}, "'files' has a malformed sha256"),
        ("vision_config", [], "'vision_config' must be a JSON object"),
        ("image_id", "0123456789abcdef", "'image_id' does not match"),
        ("model_id", "0123456789abcdef", "'model_id' does not match"),
        ("context_length", 77, "'model_id' does not match"),  # a field that changes results changes the id
    ],
)
def test_manifest_validation_names_the_field_and_bundle(src, field, value, words):
    _edit_manifest(src.path, **{field: value})
    with pytest.raises(ModelError) as err:
        bundles.Bundle.load(src.path)
    assert words in str(err.value)
    assert str(src.path) in str(err.value)


def test_unparseable_and_absent_manifest(src, tmp_path):
    (src.path / bundles.MANIFEST).write_text("{not json")
    with pytest.raises(ModelError, match="not valid JSON"):
        bundles.Bundle.load(src.path)
    (src.path / bundles.MANIFEST).unlink()
    with pytest.raises(ModelError, match="has no manifest.json"):
        bundles.Bundle.load(src.path)
    with pytest.raises(ModelError, match="does not exist"):
        bundles.Bundle.load(tmp_path / "nowhere")


def test_missing_file_and_hash_mismatch(src):
    shutil.copyfile(src.text_path, src.path / "text.bak")
    src.text_path.unlink()
    with pytest.raises(ModelError, match="file text.onnx is missing"):
        bundles.Bundle.load(src.path)
    shutil.copyfile(src.path / "text.bak", src.text_path)
    with src.image_path.open("r+b") as f:  # flip one byte inside the weights
        f.seek(-5, 2)
        byte = f.read(1)
        f.seek(-5, 2)
        f.write(bytes([byte[0] ^ 0xFF]))
    bundles.Bundle.load(src.path)  # without hashing, a quick start does not notice
    with pytest.raises(ModelError, match="image.onnx is corrupt"):
        bundles.Bundle.load(src.path, verify_files=True)


def test_install_use_list_remove(src, data_dir):
    assert registry.list_bundles(data_dir) == [] and registry.active_bundle(data_dir) is None
    a = registry.install_bundle(src.path, data_dir, "alpha")
    b = registry.install_bundle(src.path, data_dir, "beta")
    assert a.path == registry.models_dir(data_dir) / "alpha" and a.name == "alpha"
    assert a.model_id == b.model_id == src.model_id  # the name is not content
    assert src.name == "tiny" and bundles.Bundle.load(src.path).name == "tiny"  # the source is untouched
    assert registry.active_bundle(data_dir) is None  # installing does not activate
    assert [x.name for x in registry.list_bundles(data_dir)] == ["alpha", "beta"]
    assert registry.use_bundle(data_dir, "beta").name == "beta"
    assert (registry.models_dir(data_dir) / "ACTIVE").read_text().strip() == "beta"
    assert registry.active_bundle(data_dir).name == "beta"
    with pytest.raises(ModelError, match="is the active model"):
        registry.remove_bundle(data_dir, "beta")
    registry.remove_bundle(data_dir, "alpha")
    assert [x.name for x in registry.list_bundles(data_dir)] == ["beta"]
    registry.remove_bundle(data_dir, "beta", force=True)
    assert registry.active_bundle(data_dir) is None and registry.list_bundles(data_dir) == []
    assert sorted(p.name for p in registry.models_dir(data_dir).iterdir()) == []  # no temp files left
    with pytest.raises(ModelError, match="no model named 'beta'"):
        registry.use_bundle(data_dir, "beta")
    with pytest.raises(ModelError, match="no model named 'gamma'"):
        registry.remove_bundle(data_dir, "gamma")


def test_corrupt_bundle_refused_by_use_and_old_stays_active(src, data_dir):
    registry.install_bundle(src.path, data_dir, "good")
    registry.install_bundle(src.path, data_dir, "bad")
    registry.use_bundle(data_dir, "good")
    bad = registry.models_dir(data_dir) / "bad" / bundles.TEXT_FILE
    bad.write_bytes(bad.read_bytes()[:-100])
    with pytest.raises(ModelError, match="text.onnx is corrupt"):
        registry.use_bundle(data_dir, "bad")
    assert registry.active_bundle(data_dir).name == "good"


def test_install_refuses_taken_name_and_corrupt_source(src, data_dir, tmp_path):
    registry.install_bundle(src.path, data_dir, "m")
    with pytest.raises(ModelError, match="already installed"):
        registry.install_bundle(src.path, data_dir, "m")
    other = tiny_bundle(tmp_path / "other", seed=5)
    replaced = registry.install_bundle(other.path, data_dir, "m", replace=True)
    assert replaced.model_id == other.model_id != src.model_id
    src.vocab_path.write_text("changed\n")
    with pytest.raises(ModelError, match="vocab.txt is corrupt"):
        registry.install_bundle(src.path, data_dir, "n")
    assert sorted(p.name for p in registry.models_dir(data_dir).iterdir()) == ["m"]
    for bad in ("", ".hidden", "../up", "a/b", "x" * 65):
        with pytest.raises(ModelError, match="is not usable"):
            registry.install_bundle(other.path, data_dir, bad)


def test_list_skips_broken_and_temp_dirs(src, data_dir, caplog):
    registry.install_bundle(src.path, data_dir, "ok")
    registry.install_bundle(src.path, data_dir, "broken")
    _edit_manifest(registry.models_dir(data_dir) / "broken", precision="int3")
    (registry.models_dir(data_dir) / ".install-x-123").mkdir()  # an interrupted install
    with caplog.at_level(logging.WARNING, logger="photod.model.registry"):
        names = [b.name for b in registry.list_bundles(data_dir)]
    assert names == ["ok"]
    assert "broken" in caplog.text and "'precision'" in caplog.text


def test_active_names_a_missing_bundle(src, data_dir):
    registry.install_bundle(src.path, data_dir, "gone")
    registry.use_bundle(data_dir, "gone")
    shutil.rmtree(registry.models_dir(data_dir) / "gone")
    with pytest.raises(ModelError, match="active model 'gone' is not installed") as err:
        registry.active_bundle(data_dir)
    assert "photod model use" in str(err.value)


def test_image_id_survives_a_new_text_tower(tmp_path):
    # Fine-tuning the text tower only must keep every stored image vector valid.
    first = tiny_bundle(tmp_path / "a", seed=1, text_seed=10)
    second = tiny_bundle(tmp_path / "b", seed=1, text_seed=20)
    assert first.image_id == second.image_id
    assert first.text_id != second.text_id and first.model_id != second.model_id
    third = tiny_bundle(tmp_path / "c", seed=2, text_seed=10)
    assert third.image_id != first.image_id and third.text_id == first.text_id


def test_active_file_is_replaced_atomically(src, data_dir, monkeypatch):
    registry.install_bundle(src.path, data_dir, "one")
    registry.install_bundle(src.path, data_dir, "two")
    registry.use_bundle(data_dir, "one")

    def crash(*args, **kwargs):
        raise OSError("disk gone")

    # A failure before the rename leaves the old ACTIVE in place and no temp file behind.
    monkeypatch.setattr(bundles.os, "replace", crash)
    with pytest.raises(OSError):
        registry.use_bundle(data_dir, "two")
    monkeypatch.undo()
    assert registry.active_bundle(data_dir).name == "one"
    assert sorted(p.name for p in registry.models_dir(data_dir).iterdir()) == ["ACTIVE", "one", "two"]


def test_daemon_side_modules_do_not_import_torch():
    import subprocess
    import sys

    code = (
        "import sys, photod.model.bundle, photod.model.registry, photod.finetune.modelhub; "
        "bad = [m for m in ('torch', 'cn_clip', 'onnx') if m in sys.modules]; print(bad); sys.exit(bool(bad))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
