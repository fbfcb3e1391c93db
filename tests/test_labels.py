"""Labels: add/list/remove, and imports of every format, on a real catalog and stage of real JPEG files."""

from __future__ import annotations

import base64
import json
import time

import pytest

from photod.errors import LabelError
from photod.labels.captions import (
    add_captions,
    add_label,
    edit_captions,
    labelled_pairs,
    list_labels,
    record_feedback,
    remove_label,
)
from photod.labels.imports import detect_format, import_folder_labels, import_labels
from photod.store.catalog import Catalog
from photod.store.stage import Stage
from tests.support import synthetic as syn

RED = syn.Concept("红色", "圆形")
BLUE = syn.Concept("蓝色", "方块", 2)


@pytest.fixture
def lib(data_dir, tmp_path):
    """Six real photos (two folders of three, files 000-002.jpg in each), catalogued and staged, no captions."""
    return syn.make_library(data_dir, tmp_path / "photos", [RED, BLUE], 3, size=32, caption=[])


@pytest.fixture
def cat(lib):
    with Catalog.in_data_dir(lib.data_dir) as c:
        yield c


def n_captions(cat: Catalog) -> int:
    return cat.scalar("SELECT count(*) FROM captions")


def test_add_list_remove_by_id_and_path(lib, cat, monkeypatch):
    red1, red2 = lib.photos[RED][:2]
    blue1 = lib.photos[BLUE][0]
    a = add_label(cat, red1, "  小红 球  ")
    b = add_label(cat, str(lib.paths[red2]), "小红")
    monkeypatch.chdir(lib.root)  # a path relative to where the command runs
    c = add_label(cat, f"{BLUE.caption}/000.jpg", "蓝色方块")
    rows = list_labels(cat)
    assert [(r["id"], r["photo_id"], r["text"]) for r in rows] == [
        (a, red1, "小红 球"),
        (b, red2, "小红"),
        (c, blue1, "蓝色方块"),
    ]
    assert rows[0]["path"] == str(lib.paths[red1])
    assert [r["id"] for r in list_labels(cat, photo=red2)] == [b]
    assert remove_label(cat, a)["text"] == "小红 球"
    assert [r["id"] for r in list_labels(cat)] == [b, c]
    with pytest.raises(LabelError, match="no caption with id"):
        remove_label(cat, a)
    with pytest.raises(LabelError, match="empty"):
        add_label(cat, red1, "   ")
    with pytest.raises(LabelError, match="no photo in the catalog"):
        add_label(cat, "/nowhere/x.jpg", "x")
    # Every photo here is 000.jpg, 001.jpg or 002.jpg: a bare filename names two photos.
    with pytest.raises(LabelError, match="ambiguous"):
        add_label(cat, "001.jpg", "x")


def test_every_way_of_adding_keeps_a_caption_once(lib, cat, tmp_path):
    red0, red1 = lib.photos[RED][:2]
    first = add_label(cat, red0, "小红\n 球")
    assert add_label(cat, red0, "小红 球") == first  # the CLI again: the caption it already has
    # On a selection, the photo that has it keeps its caption and the other one gets it.
    assert add_captions(cat, [red0, red1], "  小红  球 ") == [first, first + 1]
    csv_file = tmp_path / "again.csv"
    csv_file.write_text(f"{lib.paths[red1]},小红 球\n", encoding="utf-8")
    assert import_labels(cat, csv_file).duplicates == 1
    assert [(r["photo_id"], r["text"]) for r in list_labels(cat)] == [(red0, "小红 球"), (red1, "小红 球")]
    with pytest.raises(LabelError, match="no photo with id 999"):
        add_captions(cat, [red0, 999], "蓝")
    assert n_captions(cat) == 2  # all or none


def test_editing_a_caption_into_one_the_photo_has_leaves_one(lib, cat):
    red0, red1 = lib.photos[RED][:2]
    [keep, _] = add_captions(cat, [red0, red1], "小红")
    [edited] = add_captions(cat, [red0], "红色的球")
    edit_captions(cat, [edited], " 小红 ")
    assert [(r["id"], r["text"]) for r in cat.captions(red0)] == [(keep, "小红")]
    edit_captions(cat, [keep], "小红  球")
    assert [r["text"] for r in cat.captions(red0)] == ["小红 球"]
    with pytest.raises(LabelError, match="empty"):
        edit_captions(cat, [keep], " \n ")


def test_a_mark_is_tidied_like_a_caption_and_the_latest_counts(lib, cat):
    red0 = lib.photos[RED][0]
    record_feedback(cat, red0, " 小红  球", True)
    record_feedback(cat, red0, "小红 球 ", False)
    assert cat.query("SELECT query, relevant FROM feedback") == [{"query": "小红 球", "relevant": 0}]


def test_csv_import_with_header_relative_and_absolute_paths(lib, cat, tmp_path):
    red = lib.photos[RED]
    csv_file = tmp_path / "labels.csv"
    csv_file.write_text(
        "path,caption\n"
        f"{RED.caption}/000.jpg,小红球\n"
        f'{lib.paths[red[1]]},"小红球, 在桌上"\n'
        f"{BLUE.caption}/002.jpg,两个蓝块\n",
        encoding="utf-8",
    )
    report = import_labels(cat, csv_file, base=lib.root)
    assert (report.added, report.photos, report.format) == (3, 3, "csv")
    got = {(r["photo_id"], r["text"], r["source"]) for r in cat.captions()}
    assert got == {
        (red[0], "小红球", "import"),
        (red[1], "小红球, 在桌上", "import"),
        (lib.photos[BLUE][2], "两个蓝块", "import"),
    }
    again = import_labels(cat, csv_file, base=lib.root)
    assert (again.added, again.duplicates) == (0, 3)
    assert n_captions(cat) == 3


def test_csv_without_header_paths_relative_to_their_root(lib, cat, tmp_path):
    csv_file = tmp_path / "plain.csv"
    csv_file.write_text(f"{RED.caption}/001.jpg,圆\n", encoding="utf-8")
    assert import_labels(cat, csv_file, fmt="csv").added == 1  # no base: matched by relative path
    assert cat.captions()[0]["photo_id"] == lib.photos[RED][1]


def test_malformed_csv_names_the_line_and_imports_nothing(lib, cat, tmp_path):
    csv_file = tmp_path / "bad.csv"
    csv_file.write_text(
        f"{RED.caption}/000.jpg,好的一行\n"
        f"{RED.caption}/001.jpg,多了,一列\n"
        f"{RED.caption}/404.jpg,没有这张\n"
        f"{RED.caption}/002.jpg,\n",
        encoding="utf-8",
    )
    with pytest.raises(LabelError) as err:
        import_labels(cat, csv_file, base=lib.root)
    text = str(err.value)
    assert str(csv_file) in text
    assert "line 2: expected 2 columns" in text
    assert "line 3: no photo in the catalog" in text
    assert "line 4: the caption is empty" in text
    assert "nothing from it was imported" in text
    assert n_captions(cat) == 0


def test_non_utf8_file_names_the_line(lib, cat, tmp_path):
    bad = tmp_path / "gbk.csv"
    bad.write_bytes(f"{RED.caption}/000.jpg,ok\n".encode() + "红色/001.jpg,小红\n".encode("gbk"))
    with pytest.raises(LabelError, match=r"line 2: not UTF-8"):
        import_labels(cat, bad, base=lib.root)
    assert n_captions(cat) == 0


def test_flickr8k_json_list(lib, cat, tmp_path):
    items = [
        {"image": str(lib.paths[lib.photos[RED][0]]), "caption": ["一个红色的圆", "红球"]},
        {"image": f"{BLUE.caption}/001.jpg", "caption": "两个蓝色方块"},
    ]
    f = tmp_path / "flickr8k-cn.json"
    f.write_text(json.dumps(items, ensure_ascii=False, indent=2), encoding="utf-8")
    report = import_labels(cat, f, base=lib.root)
    assert (report.format, report.added, report.photos) == ("flickr8k", 3, 2)
    assert sorted(r["text"] for r in cat.captions(lib.photos[RED][0])) == ["一个红色的圆", "红球"]


def test_flickr8k_malformed_item_names_its_line(lib, cat, tmp_path):
    f = tmp_path / "bad.json"
    f.write_text(
        f'[\n  {{"image": "{RED.caption}/000.jpg", "caption": ["好"]}},\n  {{"image": "{RED.caption}/001.jpg"}},\n]\n',
        encoding="utf-8",
    )
    with pytest.raises(LabelError, match=r"bad\.json: line 3: the item for .* has no \"caption\""):
        import_labels(cat, f, base=lib.root)
    broken = tmp_path / "broken.json"
    broken.write_text(
        '[\n {"image": "a.jpg", "caption": ["x"]},\n {"image": "b.jpg" "caption": []}\n]\n', encoding="utf-8"
    )
    with pytest.raises(LabelError, match=r"line 3: not valid JSON"):
        import_labels(cat, broken, base=lib.root)
    assert n_captions(cat) == 0


def _tsv_line(image_id: int, data: bytes) -> str:
    return f"{image_id}\t{base64.urlsafe_b64encode(data).decode()}\n"


def test_cnclip_files_match_images_by_content(lib, cat, tmp_path):
    red0, red1 = lib.photos[RED][:2]
    blue0 = lib.photos[BLUE][0]
    with Stage(lib.data_dir, readonly=True) as stage:
        staged_blue = stage.get_jpeg(blue0)
    stranger = syn.make_labels([syn.Concept("绿色", "三角形")], 1, size=32, seed=9)[1][1]
    (tmp_path / "mine_imgs.tsv").write_text(
        _tsv_line(1000, lib.paths[red0].read_bytes())  # the original file: matched by content hash
        + _tsv_line(1001, lib.paths[red1].read_bytes())
        + _tsv_line(blue0, staged_blue)  # photod's own export: id is the photo id, bytes the staged JPEG
        + _tsv_line(2000, stranger),
        encoding="utf-8",
    )
    texts = tmp_path / "mine_texts.jsonl"
    texts.write_text(
        json.dumps({"text_id": 1, "text": "小红", "image_ids": [1000, 1001]}, ensure_ascii=False)
        + "\n"
        + json.dumps({"text_id": 2, "text": "蓝色的东西", "image_ids": [blue0]}, ensure_ascii=False)
        + "\n"
        + json.dumps({"text_id": 3, "text": "绿色三角", "image_ids": [2000]}, ensure_ascii=False)
        + "\n",
        encoding="utf-8",
    )
    with pytest.raises(LabelError, match=r"line 3: image 2000 of mine_imgs\.tsv matches no photo"):
        import_labels(cat, texts, data_dir=lib.data_dir)
    assert n_captions(cat) == 0
    report = import_labels(cat, texts, data_dir=lib.data_dir, unmatched="skip")
    assert (report.format, report.added, report.unmatched) == ("cnclip", 3, ["2000"])
    assert {(r["photo_id"], r["text"]) for r in cat.captions()} == {
        (red0, "小红"),
        (red1, "小红"),
        (blue0, "蓝色的东西"),
    }


def test_cnclip_texts_without_tsv_use_photo_ids(lib, cat, tmp_path):
    red0 = lib.photos[RED][0]
    texts = tmp_path / "valid_texts.jsonl"
    texts.write_text(json.dumps({"text_id": 7, "text": "圆", "image_ids": [red0]}) + "\n", encoding="utf-8")
    assert import_labels(cat, texts).added == 1
    texts.write_text(
        json.dumps({"text_id": 7, "text": "圆", "image_ids": [red0]})
        + "\n"
        + json.dumps({"text_id": 8, "text": "方", "image_ids": [99999]})
        + "\n",
        encoding="utf-8",
    )
    with pytest.raises(LabelError, match=r"line 2: image id 99999 is not a photo id"):
        import_labels(cat, texts)


def test_cnclip_malformed_jsonl_names_the_line(lib, cat, tmp_path):
    texts = tmp_path / "x_texts.jsonl"
    texts.write_text(
        json.dumps({"text_id": 1, "text": "好", "image_ids": [lib.photos[RED][0]]})
        + "\n"
        + json.dumps({"text_id": 2, "image_ids": [lib.photos[RED][1]]})
        + "\n"
        + "{not json\n"
        + json.dumps({"text_id": 4, "text": "x", "image_ids": ["1"]})
        + "\n",
        encoding="utf-8",
    )
    with pytest.raises(LabelError) as err:
        import_labels(cat, texts)
    assert "line 2: missing field text" in str(err.value)
    assert "line 3: not valid JSON" in str(err.value)
    assert n_captions(cat) == 0


def test_cnclip_malformed_tsv_names_the_line(lib, cat, tmp_path):
    (tmp_path / "y_imgs.tsv").write_text("1\tAAAA\nnot-a-line\n", encoding="utf-8")
    texts = tmp_path / "y_texts.jsonl"
    texts.write_text(json.dumps({"text_id": 1, "text": "好", "image_ids": [1]}) + "\n", encoding="utf-8")
    with pytest.raises(LabelError, match=r"y_imgs\.tsv: line 2: expected image_id<TAB>base64"):
        import_labels(cat, texts)


def test_folder_names_as_weak_captions(lib, cat):
    report = import_folder_labels(cat)
    assert report.added == 6
    assert {r["text"] for r in cat.captions(lib.photos[BLUE][0])} == {BLUE.caption}
    assert {r["source"] for r in cat.captions()} == {"folder"}
    assert import_folder_labels(cat).added == 0  # idempotent


def test_labelled_pairs_count_marked_search_results(lib, cat):
    red0, red1 = lib.photos[RED][:2]
    add_label(cat, red0, "小红")
    with cat.transaction() as conn:
        conn.executemany(
            "INSERT INTO feedback (photo_id, query, relevant, created_at) VALUES (?, ?, ?, ?)",
            [(red1, "小红", 1, time.time()), (red0, "蓝色", 0, time.time()), (red0, "小红", 1, time.time())],
        )
    pairs = labelled_pairs(cat)
    assert [(p.photo_id, p.text, p.source) for p in pairs] == [(red0, "小红", "user"), (red1, "小红", "feedback")]
    assert [p.photo_id for p in labelled_pairs(cat, feedback=False)] == [red0]
    cat.mark_deleted([red1])
    assert [p.photo_id for p in labelled_pairs(cat)] == [red0]


def test_detect_format(tmp_path):
    assert detect_format(tmp_path / "train_texts.jsonl") == "cnclip"
    assert detect_format(tmp_path / "flickr8k.json") == "flickr8k"
    assert detect_format(tmp_path / "a.csv") == "csv"
    with pytest.raises(LabelError, match="--format"):
        detect_format(tmp_path / "a.txt")
