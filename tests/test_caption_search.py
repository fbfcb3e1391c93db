"""Captions as a search channel: a photo is found by the words its owner gave it, with or without a model,
and every result says which channel found it (caption, name, image similarity)."""

from __future__ import annotations

import json
import sqlite3

import pytest

from photod.cli import main
from photod.config import Config, WorkersConfig
from photod.index.indexer import Indexer
from photod.index.vectorindex import VectorIndex
from photod.labels import captions as labels
from photod.search.finder import Query, find_once
from photod.store.catalog import Catalog
from photod.store.stage import Stage
from tests.support.onnxkit import add_photos, install_active, stage_pictures


def _find(data_dir, text: str, k: int = 20, show_all: bool = False) -> list[dict]:
    return find_once(Config(data_dir=data_dir), Query(text=text, k=k, show_all=show_all)).results


def test_a_caption_finds_its_photo_without_a_model(catalog, data_dir, tmp_path):
    ids = add_photos(catalog, tmp_path / "lib", 6)
    labels.add_captions(catalog, [ids[2]], "小白在沙发上睡觉")
    labels.add_captions(catalog, [ids[4]], "wedding in Sanya")
    found = _find(data_dir, "小白")
    assert [r["id"] for r in found] == [ids[2]]
    assert found[0]["matched"] == [{"channel": "caption", "text": "小白在沙发上睡觉"}]
    assert [r["id"] for r in _find(data_dir, "sanya wed")] == [ids[4]]  # latin words as prefixes, any order
    assert _find(data_dir, "小黑") == []


def test_names_and_captions_each_say_why_they_matched(catalog, data_dir, tmp_path):
    ids = add_photos(catalog, tmp_path / "lib", 6)  # files album0/img_000000.jpg ...
    labels.add_captions(catalog, [ids[1]], "album trip")
    found = {r["id"]: r["matched"] for r in _find(data_dir, "album1")}
    assert found == {ids[1]: [{"channel": "name"}]}
    found = {r["id"]: r["matched"] for r in _find(data_dir, "trip")}
    assert found == {ids[1]: [{"channel": "caption", "text": "album trip"}]}
    both = {r["id"]: r["matched"] for r in _find(data_dir, "album")}
    assert both[ids[1]] == [{"channel": "caption", "text": "album trip"}, {"channel": "name"}]
    assert both[ids[0]] == [{"channel": "name"}]


def test_edited_removed_and_purged_captions_leave_the_index(catalog, data_dir, tmp_path):
    ids = add_photos(catalog, tmp_path / "lib", 3)
    [cid] = labels.add_captions(catalog, [ids[0]], "三亚的海边")
    labels.edit_captions(catalog, [cid], "厦门的海边")
    assert _find(data_dir, "三亚") == [] and [r["id"] for r in _find(data_dir, "厦门")] == [ids[0]]
    labels.remove_captions(catalog, [cid])
    assert _find(data_dir, "厦门") == []
    labels.add_captions(catalog, [ids[1]], "猫")
    catalog.purge([ids[1]])  # a deleted photo's grace period is over: its captions go with it
    assert catalog.scalar("SELECT count(*) FROM captions_fts") == 0


def test_the_migration_indexes_captions_written_before_it(tmp_path):
    path = tmp_path / "catalog.db"
    with Catalog(path) as cat:
        ids = add_photos(cat, tmp_path / "lib", 2)
    # Take the catalog back to before 0004_caption_search.sql, and write a caption as photod did then.
    conn = sqlite3.connect(path, isolation_level=None)
    for statement in (
        "DROP TRIGGER captions_fts_insert",
        "DROP TRIGGER captions_fts_update",
        "DROP TRIGGER captions_fts_delete",
        "DROP TABLE captions_fts",
        "DELETE FROM _migrations WHERE name LIKE '0004%'",
    ):
        conn.execute(statement)
    conn.execute(
        "INSERT INTO captions (photo_id, text, source, created_at) VALUES (?, '我家的猫', 'user', 0)", (ids[1],)
    )
    conn.close()
    with Catalog(path) as cat:  # migrates
        assert cat.scalar("SELECT count(*) FROM captions_fts") == 1
    assert [r["id"] for r in _find(tmp_path, "猫")] == [ids[1]]


def test_a_caption_match_comes_before_photos_found_by_meaning(catalog, data_dir, tmp_path):
    bundle = install_active(data_dir, tmp_path / "bundle")
    ids = add_photos(catalog, tmp_path / "lib", 30)
    with Stage(data_dir) as stage:
        stage_pictures(stage, ids)
        index = VectorIndex(data_dir, bundle.image_id)
        Indexer(catalog, stage, bundle, index, WorkersConfig(batch_size=16, encode_threads=1)).run_once()
    labels.add_captions(catalog, [ids[17]], "小白在沙发上")
    found = _find(data_dir, "小白", k=10, show_all=True)
    assert found[0]["id"] == ids[17]
    reasons = [m["channel"] for m in found[0]["matched"]]
    assert reasons[0] == "caption" and reasons[-1] == "image"  # also similar: both reasons, the caption first
    assert all([m["channel"] for m in r["matched"]] == ["image"] for r in found[1:])
    assert len(found) == 10 and len({r["id"] for r in found}) == 10
    # Without --all, photos that merely resemble the query as much as any other photo does are hidden; the
    # one holding the word is not.
    outcome = find_once(Config(data_dir=data_dir), Query(text="小白", k=10))
    assert [r["id"] for r in outcome.results][0] == ids[17]
    assert len(outcome.results) + outcome.hidden == 10


def test_cli_output_names_the_matching_caption(catalog, data_dir, tmp_path, capsys):
    ids = add_photos(catalog, tmp_path / "lib", 2)
    labels.add_captions(catalog, [ids[0]], "小白在沙发上")
    assert main(["search", "小白"]) == 0
    out = capsys.readouterr()
    assert "img_000000.jpg" in out.out and "「标注: 小白在沙发上」" in out.out
    assert "searching captions, text in photos, places and file names instead" in out.err  # no model: once
    assert main(["search", "小白", "--json"]) == 0
    [row] = json.loads(capsys.readouterr().out)
    assert row["matched"] == [{"channel": "caption", "text": "小白在沙发上"}]


@pytest.mark.parametrize("text", ['"', "AND", "小白 OR", "*"])
def test_odd_queries_never_break_the_caption_search(catalog, data_dir, tmp_path, text):
    ids = add_photos(catalog, tmp_path / "lib", 2)
    labels.add_captions(catalog, [ids[0]], "AND OR 小白")
    assert isinstance(_find(data_dir, text), list)
