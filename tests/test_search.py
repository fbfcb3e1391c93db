"""Search: text and example-photo queries against the catalog's vectors, filters, offline and deleted
photos, and searching while the daemon writes. Queries go the way the CLI and the TUI send them
(photod.search.finder.find), and the look (Searcher.by_meaning) is checked against brute force on its own."""

from __future__ import annotations

import threading
import time
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import pytest

from photod.config import Config, WorkersConfig
from photod.errors import NoModelError
from photod.index.indexer import Indexer
from photod.index.vectorindex import VectorIndex
from photod.ingest.decode import content_hash
from photod.search.finder import Filters, Query, find, find_once
from photod.search.query import Term
from photod.search.searcher import Hit, Searcher
from photod.store import vectors, wordsearch
from photod.store.catalog import Catalog
from photod.store.stage import Stage
from tests.support.onnxkit import add_photos, install_active, jpeg_bytes, picture, stage_pictures, unit_vectors


def brute(query, ids, vecs, k):
    scores = vecs @ query
    order = np.argsort(-scores, kind="stable")[:k]
    return ids[order].tolist(), scores[order]


def found(s: Searcher, text: str = "", like: int | str | None = None, k: int = 20, **filters) -> list[dict]:
    """A query as `photod search --all` runs it (every match shown, none hidden by the cutoff), with this
    searcher and its catalog lent as the TUI lends its resident ones."""
    query = Query(text=text, like=like, k=k, filters=Filters(**filters), show_all=True)
    return find(query, lambda: nullcontext(s.catalog), lambda: nullcontext(s)).results


def look(s: Searcher, text: str, k: int, allowed: set[int] | None = None) -> list[Hit]:
    """The look alone: the photos whose image embedding is nearest the text's."""
    return s.by_meaning([Term(text)], k=k, allowed=allowed).results


@pytest.fixture
def library(catalog, data_dir, tmp_path):
    """Two roots of staged, indexed photos (real stage, real tiny model), and the active bundle."""
    bundle = install_active(data_dir, tmp_path / "bundle")
    a = add_photos(catalog, tmp_path / "lib", 40, label="lib", camera="Canon EOS 5D", taken_at="2019-06-01T10:00:00")
    b = add_photos(catalog, tmp_path / "nas", 30, label="nas", camera="iPhone 12", taken_at="2021-03-01T10:00:00")
    with Stage(data_dir) as stage:
        stage_pictures(stage, a + b)
        index = VectorIndex(data_dir, bundle.image_id)
        Indexer(catalog, stage, bundle, index, WorkersConfig(batch_size=16, encode_threads=1)).run_once()
    return bundle, a, b


def test_no_model_means_a_plain_error_but_name_search_still_works(catalog, data_dir, tmp_path):
    ids = add_photos(catalog, tmp_path / "lib", 5)
    with Searcher(data_dir, threads=1) as s:
        with pytest.raises(NoModelError, match="no model is installed") as err:
            look(s, "海边的日落", k=20)
        assert "photod model pull" in str(err.value) and "photod model import" in str(err.value)
    cfg = Config(data_dir=data_dir)
    by_meaning = find_once(cfg, Query(text="海边的日落"))
    assert isinstance(by_meaning.fallback, NoModelError) and by_meaning.mode == "names"
    hits = find_once(cfg, Query(name="img_000003")).results
    assert [r["id"] for r in hits] == [ids[3]] and hits[0]["score"] is None
    assert hits[0]["path"] == str(tmp_path / "lib" / "album3" / "img_000003.jpg")


def test_a_search_by_meaning_before_anything_is_indexed_finds_by_words(catalog, data_dir, tmp_path):
    """A model installed, its index still empty (the daemon has just started): the look finds nothing, and
    the query is answered by the words alone."""
    install_active(data_dir, tmp_path / "bundle")
    ids = add_photos(catalog, tmp_path / "lib", 5)
    outcome = find_once(Config(data_dir=data_dir), Query(text="img_000002 海边 -人"))
    assert outcome.fallback is None and outcome.mode == "meaning"  # the look ran, and found nothing
    assert [r["id"] for r in outcome.results] == [ids[2]]


def test_text_search_equals_brute_force_over_stored_vectors(data_dir, library, catalog):
    bundle, a, b = library
    ids, vecs = vectors.load_vectors(catalog, bundle.image_id)
    assert ids.size == 70
    with Searcher(data_dir, threads=1) as s:
        for text in ("海边的日落", "我家的猫在沙发上", "red dress 红色"):
            want_ids, want_scores = brute(s.encode_text(text), ids, vecs, 10)
            hits = look(s, text, k=10)
            assert [h.id for h in hits] == want_ids
            np.testing.assert_allclose([h.score for h in hits], want_scores, atol=1e-5)
            # No photo holds these words as text: the query's page is the look's ranking, with its scores.
            results = found(s, text, k=10)
            assert [r["id"] for r in results] == want_ids
            np.testing.assert_allclose([r["score"] for r in results], want_scores, atol=1e-5)
        top = results[0]
        row = catalog.photo(top["id"])
        assert top["path"] == str(Path(row["root_path"]) / row["rel_path"])
        assert top["root"] in ("lib", "nas") and top["online"] is True
        assert top["camera"] in ("Canon EOS 5D", "iPhone 12")
        assert top["matched"] == [{"channel": "image", "score": top["score"]}]


def test_like_a_photo_id_or_a_file_ranks_that_photo_first(data_dir, library, catalog, tmp_path):
    bundle, a, b = library
    with Searcher(data_dir, threads=1) as s:
        hits = found(s, like=a[5], k=3)
        assert hits[0]["id"] == a[5] and hits[0]["score"] == pytest.approx(1.0, abs=2e-3)
        assert found(s, like=str(b[2]), k=1)[0]["id"] == b[2]
        # A file never seen by photod, with the same picture as photo b[7]: decoded and encoded as staging
        # would, it finds that photo first.
        twin = tmp_path / "twin.jpg"
        twin.write_bytes(jpeg_bytes(picture(b[7]), quality=95))
        hits = found(s, like=str(twin), k=3)
        assert hits[0]["id"] == b[7] and hits[0]["score"] > 0.98
        # A cataloged file (same content hash): its stored vector is used, no model run at all.
        catalog.conn.execute("UPDATE photos SET content_hash = ? WHERE id = ?", (content_hash(twin.read_bytes()), a[9]))

        def no_image_model():
            raise AssertionError("the image model ran for a cataloged file")

        s.model.image_encoder = no_image_model
        hits = found(s, like=str(twin), k=1)
        assert hits[0]["id"] == a[9] and hits[0]["score"] == pytest.approx(1.0, abs=2e-3)


def test_filters_combine_with_semantic_search(data_dir, library, catalog):
    bundle, a, b = library
    ids, vecs = vectors.load_vectors(catalog, bundle.image_id)
    with Searcher(data_dir, threads=1) as s:
        q = s.encode_text("海边的日落")
        cases = [
            ({"root": "nas"}, set(b)),
            ({"camera": "canon"}, set(a)),
            ({"after": "2020-01-01"}, set(b)),
            ({"before": "2020-01-01", "folder": "album3"}, {i for i in a if (i - a[0]) % 7 == 3}),
        ]
        for filters, allowed in cases:
            results = found(s, "海边的日落", k=5, **filters)
            mask = np.isin(ids, list(allowed))
            want_ids, want_scores = brute(q, ids[mask], vecs[mask], 5)
            assert [r["id"] for r in results] == want_ids, filters
            np.testing.assert_allclose([r["score"] for r in results], want_scores, atol=1e-5)
        # The look among the photos the words leave (file names starting img_00001), as the query's channels
        # narrow it.
        named = set(wordsearch.matching_ids(catalog, "img_00001"))
        assert named == {i for i in a + b if catalog.photo(i)["filename"].startswith("img_00001")}
        hits = look(s, "海边的日落", k=5, allowed=named)
        mask = np.isin(ids, list(named))
        want_ids, want_scores = brute(q, ids[mask], vecs[mask], 5)
        assert [h.id for h in hits] == want_ids
        np.testing.assert_allclose([h.score for h in hits], want_scores, atol=1e-5)
        # filters alone: name search, newest first, no scores
        plain = found(s, k=100, root="lib")
        assert {r["id"] for r in plain} == set(a) and all(r["score"] is None for r in plain)


def test_offline_photos_are_found_and_flagged_deleted_ones_are_not(data_dir, library, catalog):
    bundle, a, b = library
    with Searcher(data_dir, threads=1) as s:
        before = found(s, like=b[0], k=70)
        assert len(before) == 70
        catalog.set_root_offline(catalog.photo(b[0])["root_id"])
        catalog.mark_deleted([a[0], a[1]])
        after = found(s, like=b[0], k=70)
        assert {r["id"] for r in after} == set(a[2:]) | set(b)
        assert all(not r["online"] for r in after if r["id"] in b) and all(r["online"] for r in after if r["id"] in a)
        assert after[0]["id"] == b[0] and after[0]["state"] == "offline"


def test_searcher_sees_photos_indexed_after_it_loaded(data_dir, library, catalog, tmp_path):
    bundle, a, b = library
    with Searcher(data_dir, threads=1) as s:
        assert len(found(s, "日落", k=100)) == 70
        more = add_photos(catalog, tmp_path / "new", 12, label="new")
        with Stage(data_dir) as stage:
            stage_pictures(stage, more)
            index = VectorIndex.open(data_dir, bundle.image_id, catalog)
            assert Indexer(catalog, stage, bundle, index, WorkersConfig(encode_threads=1)).run_once() == 12
        hits = found(s, "日落", k=100)
        assert len(hits) == 82 and {r["id"] for r in hits} >= set(more)
        assert found(s, like=more[3], k=1)[0]["id"] == more[3]


def test_searching_while_the_daemon_writes(data_dir, library, catalog, tmp_path):
    bundle, a, b = library
    more = add_photos(catalog, tmp_path / "bulk", 600, label="bulk")
    vecs = unit_vectors(600, bundle.embed_dim, seed=3)
    errors: list[BaseException] = []
    done = threading.Event()

    def writer():
        try:
            with Catalog.in_data_dir(data_dir) as cat:
                for start in range(0, 600, 20):
                    vectors.store_vectors(cat, bundle.image_id, more[start : start + 20], vecs[start : start + 20])
                    cat.mark_deleted([more[start]])  # and other writes the daemon makes
                    time.sleep(0.02)
        except BaseException as exc:
            errors.append(exc)
        finally:
            done.set()

    searches = 0
    with Searcher(data_dir, threads=1) as s:
        thread = threading.Thread(target=writer)
        thread.start()
        try:
            while not done.is_set() or searches < 3:
                found(s, "海边的日落", k=10)
                found(s, like=a[1], k=5, root="lib")
                searches += 1
        finally:
            thread.join()
        assert not errors, errors
        assert found(s, like=more[1], k=3)[0]["id"] == more[1]
        assert len(found(s, "日落", k=1000)) == 70 + 600 - 30
    print(f"{searches} searches ran while the writer stored 600 vectors")
