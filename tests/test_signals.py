"""The search channels beside the image vector, as stored and searched: text read in photos, places, and
captions by meaning. What fills them (the OCR engine, the place data) has its own tests; here their rows
are written as those steps write them, and searched through the same code the CLI and the TUI use."""

from __future__ import annotations

import json

import numpy as np

from photod.cli import main
from photod.config import Config, WorkersConfig
from photod.index.indexer import Indexer
from photod.index.vectorindex import VectorIndex
from photod.labels import captions as labels
from photod.model.encoder import TextEncoder
from photod.search.captionmeaning import CaptionMeanings
from photod.search.finder import Filters, Query, find_once
from photod.store import signals
from photod.store.signals import FoundPlace, FoundText
from photod.store.stage import Stage
from tests.support.onnxkit import add_photos, install_active, stage_pictures

SANYA = FoundPlace(
    0,
    "v1",
    18.25,
    109.5,
    "CN",
    "海南 三亚 天涯区",
    "Tianya, Sanya, Hainan, China",
    ("中国", "China", "海南省", "海南", "Hainan", "三亚市", "三亚", "Sanya", "天涯区", "Tianya"),
)


def _find(data_dir, text: str = "", k: int = 20, **filters) -> list[dict]:
    return find_once(Config(data_dir=data_dir), Query(text=text, k=k, filters=Filters(**filters))).results


def _text(photo_id: int, *lines: str) -> FoundText:
    return FoundText(photo_id, "engine-1", tuple((line, 0.9, 0, 0, 10, 10) for line in lines))


def _place(photo_id: int, place: FoundPlace = SANYA) -> FoundPlace:
    return FoundPlace(
        photo_id,
        place.version,
        place.gps_lat,
        place.gps_lon,
        place.country_code,
        place.label_zh,
        place.label_en,
        place.names,
    )


def test_text_in_a_photo_finds_it_and_says_which_line(catalog, data_dir, tmp_path):
    ids = add_photos(catalog, tmp_path / "lib", 4)
    signals.store_text(catalog, [_text(ids[1], "欢迎光临", "三亚湾海鲜 大排档"), _text(ids[2])])
    [found] = _find(data_dir, "海鲜")
    assert found["id"] == ids[1]
    assert found["matched"] == [{"channel": "text", "text": "三亚湾海鲜 大排档"}]
    assert _find(data_dir, "光临")[0]["matched"] == [{"channel": "text", "text": "欢迎光临"}]
    assert _find(data_dir, "火锅") == []


def test_a_place_finds_its_photos_in_chinese_and_english_and_filters(catalog, data_dir, tmp_path):
    ids = add_photos(catalog, tmp_path / "lib", 4)
    signals.store_places(catalog, [_place(ids[0]), FoundPlace(ids[3], "v1", 10.0, -140.0)])  # ids[3]: at sea
    for words in ("三亚", "Sanya", "海南", "天涯"):
        found = _find(data_dir, words)
        assert [r["id"] for r in found] == [ids[0]], words
        assert found[0]["matched"] == [{"channel": "place", "text": "海南 三亚 天涯区"}]
        assert found[0]["place"] == "海南 三亚 天涯区"
    assert [r["id"] for r in _find(data_dir, place="三亚")] == [ids[0]]
    assert [r["id"] for r in _find(data_dir, "img", place="Hainan")] == [ids[0]]  # a filter on a name search
    assert _find(data_dir, place="北京") == []


def test_channels_of_one_photo_all_say_why(catalog, data_dir, tmp_path):
    ids = add_photos(catalog, tmp_path / "lib", 3)
    labels.add_captions(catalog, [ids[2]], "三亚的海边")
    signals.store_text(catalog, [_text(ids[2], "三亚欢迎你")])
    signals.store_places(catalog, [_place(ids[2])])
    [found] = _find(data_dir, "三亚")
    assert [m["channel"] for m in found["matched"]] == ["caption", "text", "place"]


def test_cli_says_why_in_words_and_json(catalog, data_dir, tmp_path, capsys):
    ids = add_photos(catalog, tmp_path / "lib", 2)
    signals.store_text(catalog, [_text(ids[0], "三亚湾海鲜")])
    signals.store_places(catalog, [_place(ids[0])])
    assert main(["search", "三亚"]) == 0
    out = capsys.readouterr().out
    assert "「文字: 三亚湾海鲜」「地点: 海南 三亚 天涯区」" in out
    assert main(["search", "--place", "Sanya", "--json"]) == 0
    [row] = json.loads(capsys.readouterr().out)
    assert row["id"] == ids[0] and row["place"] == "海南 三亚 天涯区" and row["text"] == "三亚湾海鲜"


def test_a_changed_file_loses_its_text_and_a_purged_photo_everything(catalog, data_dir, tmp_path):
    ids = add_photos(catalog, tmp_path / "lib", 2)
    signals.store_text(catalog, [_text(ids[0], "旧的字"), _text(ids[1], "留下")])
    signals.store_places(catalog, [_place(ids[1])])
    row = catalog.photo(ids[0])
    catalog.upsert_file(row["root_id"], row["rel_path"], row["size"] + 1, row["mtime_ns"])  # edited in place
    assert signals.text_of(catalog, ids[0]) is None and _find(data_dir, "旧的字") == []
    catalog.mark_deleted([ids[1]])
    catalog.purge([ids[1]])
    assert catalog.scalar("SELECT count(*) FROM photo_text") == 0
    assert catalog.scalar("SELECT count(*) FROM photo_places_fts") == 0


def test_readings_of_an_earlier_filter_are_filtered_in_place(catalog, data_dir, tmp_path):
    """A stray glyph (人 read at 0.75 in a black cat's fur) stored by the reader before its short-line rule is
    dropped from the stored lines, the text and its search index; the photo is not waiting to be read again."""
    from photod.ingest import ocr

    ids = add_photos(catalog, tmp_path / "lib", 3)
    old = ocr.FILTERED_ENGINES[0]
    signals.store_text(
        catalog,
        [
            FoundText(ids[0], old, (("人", 0.75, 0, 0, 440, 330),)),
            FoundText(
                ids[1], old, (("三亚湾海鲜", 0.62, 0, 0, 90, 20), ("5", 1.0, 0, 30, 9, 40), ("水", 0.52, 0, 0, 9, 9))
            ),
            FoundText(ids[2], old, error="the OCR engine failed: test"),
        ],
    )
    assert [r["id"] for r in _find(data_dir, "人")] == [ids[0]]
    assert signals.filter_text(catalog, ocr.FILTERED_ENGINES, ocr.ENGINE_ID, ocr.kept) == 3
    assert _find(data_dir, "人") == [] and _find(data_dir, "水") == []
    assert [r["id"] for r in _find(data_dir, "海鲜")] == [ids[1]]
    assert signals.text_of(catalog, ids[1])["text"] == "三亚湾海鲜\n5"
    assert signals.text_of(catalog, ids[0])["text"] == ""
    assert signals.text_of(catalog, ids[2])["error"] == "the OCR engine failed: test"  # the same reading's
    assert signals.text_progress(catalog, ocr.ENGINE_ID) == (3, 3)
    assert signals.text_pending(catalog, ocr.ENGINE_ID) == []
    assert signals.filter_text(catalog, ocr.FILTERED_ENGINES, ocr.ENGINE_ID, ocr.kept) == 0


def test_what_waits_for_each_channel(catalog, data_dir, tmp_path):
    ids = add_photos(catalog, tmp_path / "lib", 3)  # staged, online
    assert [r["id"] for r in signals.text_pending(catalog, "engine-1")] == ids
    signals.store_text(catalog, [_text(ids[0], "x"), FoundText(ids[1], "engine-1", error="broken")])
    assert [r["id"] for r in signals.text_pending(catalog, "engine-1")] == [ids[2]]
    assert len(signals.text_pending(catalog, "engine-2")) == 3  # another engine reads everything again
    assert signals.text_progress(catalog, "engine-1") == (2, 3)
    catalog.conn.execute("UPDATE photos SET gps_lat = 18.25, gps_lon = 109.5 WHERE id IN (?, ?)", ids[:2])
    assert [p[0] for p in signals.places_pending(catalog, "v1")] == ids[:2]
    signals.store_places(catalog, [_place(ids[0])])
    assert [p[0] for p in signals.places_pending(catalog, "v1")] == [ids[1]]
    catalog.conn.execute("UPDATE photos SET gps_lat = 20.0 WHERE id = ?", (ids[0],))  # GPS edited: look again
    assert [p[0] for p in signals.places_pending(catalog, "v1")] == ids[:2]
    assert len(signals.places_pending(catalog, "v2")) == 2


def test_status_reports_each_channel(catalog, data_dir, tmp_path, capsys):
    add_photos(catalog, tmp_path / "lib", 2)
    assert main(["status", "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["signals"]["text"]["total"] == 2 and status["signals"]["places"]["total"] == 0
    assert main(["status"]) == 0
    assert "text in photos:" in capsys.readouterr().out


# ---- captions by meaning ------------------------------------------------------------------------------------


def test_caption_vectors_follow_edits_and_removals(catalog, data_dir, tmp_path):
    ids = add_photos(catalog, tmp_path / "lib", 2)
    [a, b] = labels.add_captions(catalog, ids, "我家的白猫")
    assert [cid for cid, _ in signals.captions_without_vectors(catalog, "t1")] == [a, b]
    signals.store_caption_vectors(catalog, "t1", [a, b], np.eye(2, 8, dtype=np.float32))
    assert signals.captions_without_vectors(catalog, "t1") == []
    labels.edit_captions(catalog, [a], "红色的汽车")
    assert [cid for cid, _ in signals.captions_without_vectors(catalog, "t1")] == [a]
    labels.remove_captions(catalog, [b])
    assert catalog.scalar("SELECT count(*) FROM caption_vectors") == 0


def test_captions_are_found_by_meaning_past_the_neutral_cutoff(catalog, data_dir, tmp_path):
    # The tiny text tower (masked) sums token embeddings, so texts sharing characters are close: 我家白猫 is
    # near 我家的白猫 (its words do not match: 我家白猫 is not in the caption) and far from 红色的汽车.
    bundle = install_active(data_dir, tmp_path / "bundle", text_masked=True)
    ids = add_photos(catalog, tmp_path / "lib", 3)
    labels.add_captions(catalog, [ids[0]], "我家的白猫")
    labels.add_captions(catalog, [ids[1]], "红色的汽车")
    encoder = TextEncoder(bundle, threads=1)
    meanings = CaptionMeanings(catalog)
    query = encoder.encode(["我家白猫"])[0]
    hits = meanings.similar(encoder, bundle.text_id, bundle.embed_dim, query, k=5)
    assert [h.photo_id for h in hits] == [ids[0]]
    expected = float(encoder.encode(["我家的白猫"])[0] @ query)
    assert abs(hits[0].score - expected) < 1e-4  # embedded at query time: nothing was stored
    cutoff = meanings.cutoff(encoder, bundle.text_id, query)
    assert expected >= cutoff > float(encoder.encode(["红色的汽车"])[0] @ query)


def test_search_puts_caption_meaning_between_words_and_looks(catalog, data_dir, tmp_path):
    bundle = install_active(data_dir, tmp_path / "bundle", text_masked=True)
    ids = add_photos(catalog, tmp_path / "lib", 12)
    with Stage(data_dir) as stage:
        stage_pictures(stage, ids)
        Indexer(
            catalog,
            stage,
            bundle,
            VectorIndex(data_dir, bundle.image_id),
            WorkersConfig(batch_size=16, encode_threads=1),
        ).run_once()
    labels.add_captions(catalog, [ids[5]], "我家的白猫")
    labels.add_captions(catalog, [ids[7]], "我家白猫在睡觉")
    found = _find(data_dir, "我家白猫", k=12)
    assert found[0]["id"] == ids[7] and found[0]["matched"][0] == {"channel": "caption", "text": "我家白猫在睡觉"}
    second = found[1]["matched"][0]
    assert found[1]["id"] == ids[5] and second["channel"] == "caption" and second["score"] > 0.5
    assert [m["channel"] for m in found[1]["matched"]] == ["caption", "image"]
    off = find_once(
        Config(data_dir=data_dir), Query(text="我家白猫", k=12, captions_by_meaning=False, show_all=True)
    ).results
    assert [m["channel"] for m in off[1]["matched"]] == ["image"]
