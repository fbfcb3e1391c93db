"""Semantic search end to end: `photod model import`, the daemon encoding, `photod search`."""

from __future__ import annotations

import json
import shutil

import pytest

from photod.cli import main
from photod.store.catalog import Catalog
from tests.support.daemonkit import DaemonThread, counts, load, make_photos, wait_for, write_config

pytest.importorskip("cn_clip", reason="model import needs the finetune extra (torch, cn_clip)")


@pytest.fixture(scope="module")
def small_checkpoint(tmp_path_factory):
    from tests.support.smallmodels import build_small_checkpoint

    return build_small_checkpoint(tmp_path_factory.mktemp("ckpt"), "vit", seed=0)


def import_model(config, ckpt, precision="fp32", name="small"):
    checkpoint, vision, text = ckpt
    assert (
        main(
            [
                "--config",
                str(config),
                "model",
                "import",
                str(checkpoint),
                "--vision-config",
                str(vision),
                "--text-config",
                str(text),
                "--precision",
                precision,
                "--name",
                name,
            ]
        )
        == 0
    )


def search_json(capsys, config, *args):
    capsys.readouterr()
    assert main(["--config", str(config), "search", *args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_photo_dropped_into_a_watched_folder_is_found_by_like(tmp_path, data_dir, small_checkpoint, capsys, samples):
    root = tmp_path / "library"
    make_photos(root / "old", 12)
    config = write_config(tmp_path, [root])
    # Cataloged and staged with no model: everything is encoded as soon as one is installed.
    assert main(["--config", str(config), "scan"]) == 0
    assert "no model installed" in capsys.readouterr().out
    import_model(config, small_checkpoint)
    with DaemonThread(load(config)):
        wait_for(lambda: counts(data_dir)["indexed"] == 12, what="the staged photos to be encoded")
        dropped = root / "new" / "canon.jpg"
        dropped.parent.mkdir()
        shutil.copy(samples / "jpg" / "Canon_40D.jpg", dropped)
        wait_for(lambda: counts(data_dir)["indexed"] == 13, what="the dropped photo to be encoded")
    rows = search_json(capsys, config, "--like", str(dropped), "-k", "5", "--all")
    assert rows[0]["path"] == str(dropped) and rows[0]["score"] > 0.999
    assert rows[1]["score"] < rows[0]["score"]
    by_id = search_json(capsys, config, "--like", str(rows[0]["id"]), "-k", "3")
    assert by_id[0]["id"] == rows[0]["id"]
    text = search_json(capsys, config, "海边的日落", "-k", "13", "--all")
    assert len(text) == 13 and all(-1.0 <= r["score"] <= 1.0 for r in text)
    assert [r["score"] for r in text] == sorted((r["score"] for r in text), reverse=True)
    filtered = search_json(capsys, config, "海边的日落", "--folder", "new", "--all")
    assert [r["path"] for r in filtered] == [str(dropped)]


def test_scan_encodes_everything_and_exits(tmp_path, data_dir, small_checkpoint, capsys):
    root = tmp_path / "library"
    make_photos(root, 20)
    config = write_config(tmp_path, [root])
    import_model(config, small_checkpoint, precision="int8", name="small-int8")
    capsys.readouterr()
    assert main(["--config", str(config), "scan"]) == 0
    out = capsys.readouterr().out
    assert "encoded 20 with small-int8" in out
    assert counts(data_dir)["indexed"] == 20
    with Catalog.in_data_dir(data_dir) as cat:
        assert cat.scalar("SELECT count(DISTINCT photo_id) FROM vectors") == 20


def test_model_list_use_and_offline_results(tmp_path, data_dir, small_checkpoint, capsys):
    root = tmp_path / "usb"
    make_photos(root, 5)
    config = write_config(tmp_path, [root])
    import_model(config, small_checkpoint, name="a")
    assert main(["--config", str(config), "scan"]) == 0
    capsys.readouterr()
    assert main(["--config", str(config), "model", "list", "--json"]) == 0
    assert [(m["name"], m["active"]) for m in json.loads(capsys.readouterr().out)] == [("a", True)]
    root.rename(tmp_path / "unplugged")
    assert main(["--config", str(config), "scan"]) == 0
    rows = search_json(capsys, config, "红色", "-k", "5", "--all")
    assert len(rows) == 5 and all(r["online"] is False for r in rows)


def test_reindex_works_on_a_copied_data_dir_without_the_roots(
    tmp_path, data_dir, small_checkpoint, capsys, monkeypatch
):
    root = tmp_path / "nas"
    make_photos(root, 8)
    config = write_config(tmp_path, [root])
    assert main(["--config", str(config), "scan"]) == 0  # staged, no model yet
    gpu_box = tmp_path / "copy-on-gpu-box"
    shutil.copytree(data_dir, gpu_box)
    shutil.rmtree(root)  # the GPU box cannot see the NAS
    monkeypatch.setenv("PHOTOD_DATA_DIR", str(gpu_box))
    import_model(config, small_checkpoint)
    capsys.readouterr()
    assert main(["--config", str(config), "reindex"]) == 0
    assert "encoded 8 photos with small" in capsys.readouterr().out
    assert counts(gpu_box)["indexed"] + counts(gpu_box)["offline"] == 8
    with Catalog.in_data_dir(gpu_box) as cat:
        assert cat.scalar("SELECT count(*) FROM vectors") == 8
