"""`photod finetune --mode lit` handed to a running daemon: text search changes, image vectors untouched."""

from __future__ import annotations

import json

import pytest

from photod.cli import main
from photod.model import registry
from photod.store.catalog import Catalog
from tests.support.daemonkit import DaemonThread, counts, load, wait_for, write_config

pytest.importorskip("cn_clip", reason="finetune needs the finetune extra (torch, cn_clip)")


def vector_rows(data_dir):
    with Catalog.in_data_dir(data_dir) as cat:
        return cat.query("SELECT photo_id, model_id, vector, created_at FROM vectors ORDER BY photo_id, model_id")


def test_lit_bundle_installed_into_a_running_daemon(tmp_path, data_dir, capsys):
    import random

    from tests.support import synthetic as syn
    from tests.support.smallmodels import build_small_checkpoint

    root = tmp_path / "photos"
    rng = random.Random(0)
    for concept in syn.concepts(["黄色", "紫色"], ["圆形", "方块"]):
        folder = root / concept.caption  # folder names become the captions
        folder.mkdir(parents=True)
        for i in range(5):
            syn.draw(concept, 64, rng).save(folder / f"{i}.jpg", quality=95)
    config = write_config(tmp_path, [root])
    ckpt, vision, text = build_small_checkpoint(tmp_path / "ckpt", "vit", seed=0)
    assert (
        main(
            [
                "--config",
                str(config),
                "model",
                "import",
                str(ckpt),
                "--vision-config",
                str(vision),
                "--text-config",
                str(text),
                "--precision",
                "fp32",
                "--name",
                "base",
                "--keep-checkpoint",
            ]
        )
        == 0
    )
    assert main(["--config", str(config), "scan"]) == 0
    assert main(["--config", str(config), "label", "import", "--folders"]) == 0
    assert counts(data_dir)["indexed"] == 20
    before_vectors = vector_rows(data_dir)

    def text_scores():
        capsys.readouterr()
        assert main(["--config", str(config), "search", "黄色的圆形", "-k", "20", "--all", "--json"]) == 0
        return {r["id"]: r["score"] for r in json.loads(capsys.readouterr().out)}

    before = text_scores()
    with DaemonThread(load(config)) as daemon:
        assert (
            main(
                [
                    "--config",
                    str(config),
                    "finetune",
                    "--mode",
                    "lit",
                    "--epochs",
                    "4",
                    "--batch-size",
                    "8",
                    "--lr",
                    "1e-3",
                    "--name",
                    "lit",
                    "--force",
                ]
            )
            == 0
        )
        out = capsys.readouterr().out
        assert "installed lit" in out and "nothing is re-encoded" in out
        wait_for(
            lambda: daemon.daemon.models.bundle is not None and daemon.daemon.models.bundle.name == "lit",
            timeout=30,
            what="the daemon to switch to the lit bundle",
        )
        after = text_scores()
        assert registry.serving_name(data_dir) == "lit"
    assert set(after) == set(before)
    assert max(abs(after[i] - before[i]) for i in before) > 1e-3, "text search did not change"
    assert vector_rows(data_dir) == before_vectors, "image vectors were touched"
    assert counts(data_dir)["indexed"] == 20
