"""The query language end to end, on a real catalog (and a tiny real model): dates, exact phrases, words held
as text excluded, the CLI's handling of `-词`, and bad input that never ends in a traceback."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from photod.cli import main
from photod.config import Config, WorkersConfig
from photod.index.indexer import Indexer
from photod.index.vectorindex import VectorIndex
from photod.labels import captions as labels
from photod.search.finder import Query, find_once
from photod.store import signals
from photod.store.stage import Stage
from tests.support.onnxkit import add_photos, install_active, stage_pictures

TODAY = dt.date(2026, 12, 3)


def _ids(data_dir, text: str, **kw) -> list[int]:
    return [r["id"] for r in find_once(Config(data_dir=data_dir), Query(text=text, today=TODAY, **kw)).results]


@pytest.fixture
def library(catalog, data_dir, tmp_path):
    """Six photos: two from the summer of 2019, one from 春节 2020, a menu, a sign, a caption."""
    ids = []
    for taken in (
        "2019-07-14T10:00:00",
        "2019-08-30T18:00:00",
        "2020-01-26T12:00:00",
        "2021-03-01T09:00:00",
        "2025-06-01T09:00:00",
        "2026-11-15T09:00:00",
    ):
        ids += add_photos(catalog, tmp_path / f"lib{len(ids)}", 1, taken_at=taken)
    signals.store_text(
        catalog,
        [
            signals.FoundText(ids[0], "e", (("三亚湾海鲜 菜单", 0.9, 0, 0, 9, 9),)),
            signals.FoundText(ids[3], "e", (("三亚 湾仔 码头", 0.9, 0, 0, 9, 9),)),
        ],
    )
    labels.add_captions(catalog, [ids[1]], "小白在海边")
    labels.add_captions(catalog, [ids[2]], "小白和全家福")
    return ids


def test_date_words_filter_and_are_shown_back(library, data_dir):
    ids = library
    outcome = find_once(Config(data_dir=data_dir), Query(text="2019年夏天 小白", today=TODAY))
    assert [r["id"] for r in outcome.results] == [ids[1]]
    assert outcome.understood == ["日期 2019-06-01 … 2019-08-31"]
    assert _ids(data_dir, "2020年春节 小白") == [ids[2]]  # 2020-01-26 is 初二
    assert _ids(data_dir, "春节 小白") == [ids[2]]  # any year's Spring Festival
    assert _ids(data_dir, "去年") == [ids[4]] and _ids(data_dir, "上个月") == [ids[5]]
    assert set(_ids(data_dir, "2019")) == {ids[0], ids[1]}


def test_an_exact_phrase_is_required_and_words_across_channels_combine(library, data_dir):
    ids = library
    assert _ids(data_dir, '"三亚湾"') == [ids[0]]  # not 三亚 湾仔, whose characters are apart
    assert set(_ids(data_dir, "三亚 湾")) == {ids[0], ids[3]}
    assert _ids(data_dir, '"三亚湾" 菜单') == [ids[0]]


def test_an_excluded_word_drops_the_photos_that_hold_it(library, data_dir):
    ids = library
    assert set(_ids(data_dir, "小白")) == {ids[1], ids[2]}
    assert _ids(data_dir, "小白 -全家福") == [ids[1]]
    assert _ids(data_dir, '小白 -"海边"') == [ids[2]]


def test_the_cli_reads_an_exclusion_and_says_what_it_understood(library, data_dir, capsys):
    ids = library
    assert main(["search", "小白", "-全家福", "2019年", "--json"]) == 0
    out = capsys.readouterr()
    assert [r["id"] for r in json.loads(out.out)] == [ids[1]]
    assert "「日期 2019-01-01 … 2019-12-31」" in out.err and "「排除 全家福」" in out.err
    assert main(["search", "--", "小白", "-全家福"]) == 0  # after --, as English exclusions are written
    assert "img_" in capsys.readouterr().out


def test_the_cutoff_hides_weak_looks_and_all_shows_them(catalog, data_dir, tmp_path, capsys):
    """A random tiny model: nothing stands out, so nothing is shown by its look; --all shows the ranking."""
    bundle = install_active(data_dir, tmp_path / "bundle")
    ids = add_photos(catalog, tmp_path / "lib", 80)
    with Stage(data_dir) as stage:
        stage_pictures(stage, ids)
        Indexer(
            catalog,
            stage,
            bundle,
            VectorIndex(data_dir, bundle.image_id),
            WorkersConfig(batch_size=16, encode_threads=1),
        ).run_once()
    outcome = find_once(Config(data_dir=data_dir), Query(text="海边的日落", k=10))
    assert len(outcome.results) + outcome.hidden == 10 and outcome.hidden >= 8
    every = find_once(Config(data_dir=data_dir), Query(text="海边的日落", k=10, show_all=True)).results
    assert len(every) == 10 and sum(r.get("below_cutoff", False) for r in every) == outcome.hidden
    assert main(["search", "海边的日落", "-k", "10"]) == 0
    assert f"{outcome.hidden} weaker match" in capsys.readouterr().err


@pytest.mark.parametrize(
    "text",
    [
        "x" * 10_000,
        "!!!",
        "-",
        "+",
        "---",
        '"unbalanced',
        '""',
        "😀🐱",
        "猫 🐱 cat ネコ 고양이",
        "2019年2月30日 海边",
        "like:",
        "-like:/nowhere.jpg 猫",
        "\x00",
        "2:",
        "0:猫 -0:狗",
        "((()))",
        "*",
        "NEAR(a b)",
        "a OR b",
        "^海边",
        '"三亚" -"三亚"',
    ],
)
def test_bad_queries_never_fail(library, data_dir, capsys, text):
    outcome = find_once(Config(data_dir=data_dir), Query(text=text, today=TODAY))
    assert isinstance(outcome.results, list)
    assert main(["search", text]) == 0
    assert "Traceback" not in capsys.readouterr().err


def test_texts_embedded_ahead_are_waited_for_not_embedded_twice(data_dir, tmp_path):
    """The query language starts the text model on a query's words as soon as it is parsed
    (Searcher.embed_ahead): encode_texts then waits for them, and the vectors are those embedded alone."""
    import threading

    import numpy as np

    from photod.search.searcher import Searcher

    install_active(data_dir, tmp_path / "bundle")
    with Searcher(data_dir, threads=1) as s:
        alone = {t: s.encode_text(t) for t in ("海边", "日落", "人")}
        s.forget_texts()
        encoder = s._serving().text_encoder()
        asked, release, real = [], threading.Event(), encoder.encode

        def slow(texts):
            asked.append(list(texts))
            release.wait(10)
            return real(texts)

        encoder.encode = slow
        s.embed_ahead(["海边", "人"])
        threading.Timer(0.2, release.set).start()
        got = s.encode_texts(["人", "日落", "海边"])  # 人 and 海边 are being embedded: only 日落 is asked
        assert sorted(map(sorted, asked)) == [["人", "海边"], ["日落"]]
        for text, vec in zip(["人", "日落", "海边"], got):
            assert np.allclose(vec, alone[text], atol=1e-6)  # an fp32 tower runs the batch as one call
        s.embed_ahead(["海边"])  # remembered: nothing to do
        assert len(asked) == 2

        def broken(texts):
            raise RuntimeError("the text model failed")

        encoder.encode = broken
        s.embed_ahead(["雪山"])
        with pytest.raises(RuntimeError, match="the text model failed"):
            s.encode_texts(["雪山"])
        encoder.encode = real
        assert np.allclose(s.encode_text("雪山"), real(["雪山"])[0], atol=1e-6)  # a failed text is embedded again


def test_the_filters_a_person_gives_reach_the_catalog_resolved_once(catalog, tmp_path):
    """A root named by path, label or id becomes its id, and a query's dates become the catalog's ranges,
    in the one Filters every channel takes."""
    from photod.config import make_root
    from photod.errors import RootError
    from photod.search.finder import Filters
    from photod.search.query import parse
    from photod.store import wordsearch

    root = catalog.add_root(make_root(tmp_path / "lib", label="lib"))
    asked = Filters(after="2019", root="lib", camera="canon", folder="trip", place="三亚", online_only=True)
    want = wordsearch.Filters(after="2019", root_id=root.id, camera="canon", folder="trip", place="三亚")
    assert asked.resolved(catalog) == want
    assert Filters(root=str(root.id)).resolved(catalog).root_id == root.id
    summer = Filters().resolved(catalog, parse("2019年夏天 海边", today=TODAY))
    assert summer.dates == (("2019-06-01", "2019-09-01"),) and summer.yearly is None and summer.active()
    assert not Filters(online_only=True).resolved(catalog).active()  # applied to the page, not the catalog
    with pytest.raises(RootError, match="no root named 'elsewhere'"):
        Filters(root="elsewhere").resolved(catalog)


def test_text_embeddings_embed_each_text_once_whichever_thread_asks(tmp_path):
    """Prefetches and queries from several threads at once: every text is embedded once, by whoever asked
    first, and each caller gets its own texts' embeddings in order; only the tower's own texts are kept."""
    import threading
    import time
    from concurrent.futures import ThreadPoolExecutor

    import numpy as np

    from photod.search.textcache import TextEmbeddings

    asked: list[str] = []

    def encode(texts):
        asked.extend(texts)
        time.sleep(0.05)  # long enough for the other threads to ask meanwhile
        return [np.full(3, len(t), dtype=np.float64) for t in texts]

    with ThreadPoolExecutor(2) as pool:
        cache = TextEmbeddings("tower-a", encode, pool, remembered=3)
        cache.prefetch(["海", "海边"])
        got: list[list[np.ndarray]] = []
        threads = [threading.Thread(target=lambda: got.append(cache.get(["海边", "日落了", "海"]))) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
    assert sorted(asked) == sorted(["海", "海边", "日落了"])
    assert len(got) == 4 and all([v.tolist() for v in g] == [[2.0] * 3, [3.0] * 3, [1.0] * 3] for g in got)
    assert all(v.dtype == np.float32 and v.flags.c_contiguous for g in got for v in g)
    cache.get(["新的"])  # a fourth text: the oldest is dropped, and embedded again when asked for
    cache.get(["海"])
    assert asked[-2:] == ["新的", "海"]
