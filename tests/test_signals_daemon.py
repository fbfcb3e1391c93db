"""The search channels filled by a real daemon and `photod scan` on real files: text read while photos are
staged, read later for photos staged before, places named from real camera GPS, copies reusing their text,
and all of it found by `photod search` without a model."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest

from photod.config import Config, SignalsConfig, load_config
from photod.ingest import ocr
from photod.search.finder import Filters, Query, find_once
from photod.service.scan import scan_once
from photod.store import signals
from photod.store.catalog import Catalog
from tests.support.daemonkit import DaemonThread, settled, wait_for, write_config
from tests.support.rendered_text import PHOTOS, as_large_photo, render, sample_photos

pytestmark = pytest.mark.skipif(ocr.unavailable() is not None, reason=str(ocr.unavailable()))

GPS = PHOTOS / "exif-samples" / "jpg" / "gps"


def _library(folder: Path) -> dict[str, str]:
    """Two photos with text (1600 pixels wide once staged), three without, with GPS (Arezzo): {file name:
    word to search}."""
    folder.mkdir(parents=True)
    words = {}
    for i, (path, phrase, word) in enumerate(
        [(sample_photos()[0], "三亚湾海鲜大排档", "海鲜"), (sample_photos()[1], "Grand Hotel Sanya", "Hotel")]
    ):
        render(as_large_photo(path, side=2000), phrase, 0.04, seed=i).save(folder / f"sign{i}.jpg", quality=90)
        words[f"sign{i}.jpg"] = word
    shutil.copy(GPS / "DSCN0012.jpg", folder / "plain.jpg")
    for name in ("DSCN0010.jpg", "DSCN0021.jpg"):
        shutil.copy(GPS / name, folder / name)
    return words


def _config(tmp_path: Path, root: Path, **signal_keys) -> Config:
    cfg = load_config(write_config(tmp_path, [root], data_dir=str(tmp_path / "data")))
    return dataclasses.replace(cfg, signals=SignalsConfig(**signal_keys))


def _find(cfg: Config, text: str = "", **filters) -> list[dict]:
    return find_once(cfg, Query(text=text, filters=Filters(**filters))).results


def test_a_daemon_reads_text_and_names_places_while_it_stages(tmp_path):
    root = tmp_path / "photos"
    words = _library(root)
    cfg = _config(tmp_path, root)
    with DaemonThread(cfg):
        wait_for(settled(cfg.data_dir, 5), what="5 photos staged")
        with Catalog.in_data_dir(cfg.data_dir) as cat:
            wait_for(lambda: signals.places_progress(cat, _version()) == (3, 3), what="places named")
            assert signals.text_progress(cat, ocr.ENGINE_ID) == (5, 5)  # read while staged, nothing left after
    for name, word in words.items():
        found = _find(cfg, word)
        assert [r["filename"] for r in found] == [name], word
        assert found[0]["matched"][0]["channel"] == "text"
    arezzo = _find(cfg, place="Arezzo")
    assert sorted(r["filename"] for r in arezzo) == ["DSCN0010.jpg", "DSCN0021.jpg", "plain.jpg"]
    assert arezzo[0]["place"] == "意大利 Arezzo"
    assert len(_find(cfg, "意大利")) == 3 and len(_find(cfg, "Italy")) == 3


def test_photos_staged_before_text_was_read_are_read_from_their_drive(tmp_path):
    root = tmp_path / "photos"
    words = _library(root)
    before = _config(tmp_path, root, ocr=False)
    scan_once(before, encode=False)
    with Catalog.in_data_dir(before.data_dir) as cat:
        assert signals.text_progress(cat, ocr.ENGINE_ID) == (0, 5)
    summary = scan_once(_config(tmp_path, root), encode=False)  # OCR now on: the backfill reads the files
    assert summary.channels["text"] == 5 and summary.staged == 0
    assert [r["filename"] for r in _find(before, words["sign0.jpg"])] == ["sign0.jpg"]


def test_a_copy_reuses_the_text_read_in_its_original(tmp_path):
    root = tmp_path / "photos"
    _library(root)
    cfg = _config(tmp_path, root)
    scan_once(cfg, encode=False)
    (root / "again").mkdir()
    shutil.copy(root / "sign0.jpg", root / "again" / "sign0-copy.jpg")
    summary = scan_once(cfg, encode=False)
    assert summary.staged == 1 and summary.channels["text"] == 0  # copied, not read again
    with Catalog.in_data_dir(cfg.data_dir) as cat:
        texts = {
            r["filename"]: r["text"]
            for r in cat.query("SELECT p.filename, t.text FROM photos p JOIN photo_text t ON t.photo_id = p.id")
        }
    assert texts["sign0-copy.jpg"] == texts["sign0.jpg"] != ""


def test_text_read_before_the_short_line_rule_is_filtered_not_read_again(tmp_path):
    root = tmp_path / "photos"
    words = _library(root)
    cfg = _config(tmp_path, root)
    scan_once(cfg, encode=False)
    with Catalog.in_data_dir(cfg.data_dir) as cat, cat.transaction() as conn:  # as the earlier reader left it
        conn.execute(
            "UPDATE photo_text SET engine = ?, text = text || char(10) || '人',"
            " lines_json = json_insert(lines_json, '$[#]', json_array('人', 0.75, 0, 0, 640, 480))",
            (ocr.FILTERED_ENGINES[0],),
        )
    assert len(_find(cfg, "人")) == 5
    summary = scan_once(cfg, encode=False)
    assert summary.channels["filtered"] == 5 and summary.channels["text"] == 0  # no photo read again
    assert "the stored text of 5 filtered for stray marks" in summary.summary()
    assert _find(cfg, "人") == []
    for name, word in words.items():
        assert [r["filename"] for r in _find(cfg, word)] == [name], word


def test_an_image_the_reader_chokes_on_loses_only_its_text(tmp_path, monkeypatch):
    from photod.errors import OcrError

    root = tmp_path / "photos"
    _library(root)
    real = ocr.TextReader.read

    def choke(self, image):
        if image.width == 1600:  # the two rendered photos; the camera photos are 640 wide
            raise OcrError("the OCR engine failed: test")
        return real(self, image)

    monkeypatch.setattr(ocr.TextReader, "read", choke)
    cfg = _config(tmp_path, root)
    summary = scan_once(cfg, encode=False)
    assert summary.staged == 5 and summary.failed == 0
    with Catalog.in_data_dir(cfg.data_dir) as cat:
        errors = [r["error"] for r in cat.query("SELECT error FROM photo_text WHERE error IS NOT NULL")]
        assert errors == ["the OCR engine failed: test"] * 2
        assert signals.text_progress(cat, ocr.ENGINE_ID) == (5, 5)  # recorded: not retried with this engine


def _version() -> str:
    from photod.ingest.places import DATA_VERSION

    return DATA_VERSION
