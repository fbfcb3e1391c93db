"""Search by meaning: the photos whose look matches a query's terms (texts, example photos), and the
captions that mean what its words say, narrowed by date/root/camera/folder/place filters, with scores.

A `Searcher` is the read side of the look and captions channels (photod.search.channels); every query, from
the CLI or the TUI, goes through photod.search.finder.find. It opens its own catalog connection (WAL: it reads
while the daemon writes) and, only when a semantic query needs them, the serving model's encoders and FAISS
index (held by a photod.index.modelslot.ModelSlot, which follows model switches). The index is loaded once
and then kept up to date cheaply: before each query, if the catalog changed since the last look (`PRAGMA
data_version`), the vectors written since its checkpoint are added, and now and then it is fully reconciled.
Hits are checked against the catalog, which also drops photos deleted meanwhile.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path
from typing import Any, Iterator, Sequence

import faiss
import numpy as np
from PIL import Image

from photod.config import Config, IndexConfig, StageConfig, WorkersConfig
from photod.errors import DecodeError, NoModelError, PhotodError
from photod.index.modelslot import ModelSlot
from photod.index.vectorindex import VectorIndex
from photod.model import registry
from photod.search import fusion
from photod.search.captionmeaning import CaptionMeanings
from photod.search.query import Term
from photod.search.results import Result
from photod.search.textcache import TextEmbeddings
from photod.store import vectors, wordsearch
from photod.store.catalog import Catalog
from photod.store.wordsearch import EVERYTHING, Filters

FULL_SYNC_SECONDS = 30.0  # how often a long-lived searcher reconciles deletions with the catalog
OVERFETCH = 8  # first try: this many times k nearest, then keep those passing the filters
SUBSET_LIMIT = 50_000  # else filters matching at most this many photos restrict the vector search itself
SAMPLE_SIZE = 2048  # vectors a query's scores over the library are estimated from (the cutoff)
TEXTS_REMEMBERED = 256  # excluded texts whose cutoffs are kept between queries


@dataclass(frozen=True)
class Hit:
    """A photo found by its look, before its catalog row is read (only the photos shown get one: see
    photod.search.finder): its id (a video's for a matching frame, with that frame and its time) and its
    similarity, rounded as Result rounds it."""

    id: int
    score: float
    frame_id: int | None = None
    video_time: float | None = None

    def result(self, row: Any) -> Result:
        """The result this hit shows as, from its catalog row (search_name's)."""
        result = Result.from_row(row, self.score)
        if self.frame_id is not None:
            result.video_time, result.frame_id = self.video_time, self.frame_id
        return result


@dataclass
class MeaningHits:
    """Photos by their look, for what a query asks (best first, excluded photos taken out), with the
    similarity this query needs for a match (photod.search.fusion.standout)."""

    results: list[Hit] = field(default_factory=list)
    cutoff: float = float("-inf")
    excluded: set[int] = field(default_factory=set)  # stand out for an excluded term: dropped everywhere

    def matches(self, result: Hit | Result) -> bool:
        return result.score is not None and result.score >= self.cutoff


@dataclass
class _Sample:
    """A fixed random sample of the library's vectors (unit length), and the (cutoff, bulk) over it of each
    excluded text, by (text tower, text)."""

    index: VectorIndex
    size: int  # the index's, when the sample was drawn
    vectors: np.ndarray
    bars: dict[tuple[str, str], tuple[float, float]] = field(default_factory=dict)


class Searcher:
    """Searches one data dir. Keep one per thread; it holds its model and index in memory between queries."""

    def __init__(
        self,
        data_dir: str | os.PathLike,
        *,
        threads: int = WorkersConfig.encode_threads,
        index: IndexConfig = IndexConfig(),
        stage: StageConfig = StageConfig(),
    ):
        self.data_dir = Path(data_dir)
        self.stage_settings = stage
        self.catalog = Catalog.in_data_dir(self.data_dir)
        # One query at a time: OpenMP's threads only add barrier waits. Measured at 10k vectors on a busy
        # 2-core machine: exact search p50 37 ms with 2 threads, 1.7 ms with 1.
        faiss.omp_set_num_threads(1)
        _one_blas_thread()
        self.model = ModelSlot(self.data_dir, self.catalog, registry.serving_name, threads=threads, index=index)
        self.captions = CaptionMeanings(self.catalog)
        self._pinned: ModelSlot | None = None  # the model one_model holds to
        self._allowed: tuple[set[int], int, np.ndarray] | None = None  # the last allowed set, listed
        self._synced: VectorIndex | None = None  # the index the two fields below describe
        self._data_version: int | None = None
        self._full_sync_at = 0.0
        self._sample: _Sample | None = None
        self._texts: TextEmbeddings | None = None  # the serving text tower's, made anew when it changes
        self._texts_lock = threading.Lock()  # embed_ahead is called from other threads (the TUI's)
        # Embeds texts ahead of their query (embed_ahead). Two: the words without those held as text start
        # while the words and exclusions run. Its threads start with the first text embedded ahead.
        self._ahead = ThreadPoolExecutor(2, "photod-texts")

    @classmethod
    def from_config(cls, config: Config) -> "Searcher":
        """A searcher with the data dir, threads, index and stage settings of a photod Config."""
        return cls(config.data_dir, threads=config.workers.encode_threads, index=config.index, stage=config.stage)

    def close(self) -> None:
        self._ahead.shutdown(wait=True)
        self.model.close()
        self.catalog.close()

    def __enter__(self) -> "Searcher":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # ---- the serving model and its index, loaded on first use ----------------------------------------------

    def _serving(self) -> ModelSlot:
        """The model slot, holding the serving bundle (see photod.model.registry.serving_name); NoModelError when none
        is installed. Follows `photod model use` switches once the daemon has finished encoding for the new
        model."""
        if self._pinned is not None:
            return self._pinned
        if self.model.follow() is None:
            raise NoModelError()
        return self.model

    @contextlib.contextmanager
    def one_model(self) -> Iterator[None]:
        """The calls made inside use the model serving as it is entered: a query's look and captions ask
        for it a dozen times, and each look-up reads two small files (0.2 ms). NoModelError when none is."""
        if self._pinned is not None:
            yield
            return
        self._pinned = self._serving()
        try:
            yield
        finally:
            self._pinned = None

    def index(self) -> VectorIndex:
        """The serving model's index, caught up with everything the daemon has indexed so far."""
        index = self._serving().index()
        if index is not self._synced:  # just opened, so caught up by its load
            self._synced = index
            self._data_version = self._catalog_version()
            self._full_sync_at = time.monotonic()
            return index
        version = self._catalog_version()
        if version != self._data_version:
            self._data_version = version
            if time.monotonic() - self._full_sync_at > FULL_SYNC_SECONDS:
                index.catch_up(self.catalog)
                self._full_sync_at = time.monotonic()
            else:
                index.refresh(self.catalog)
        return index

    def _catalog_version(self) -> int:
        # Changes whenever another connection commits: a free test for "did the daemon write anything?"
        return int(self.catalog.scalar("PRAGMA data_version"))

    # ---- queries -----------------------------------------------------------------------------------

    def encode_text(self, text: str) -> np.ndarray:
        """The unit embedding of a text query (remembered: the TUI asks for the same words at every key)."""
        return self.encode_texts([text])[0]

    def encode_texts(self, texts: Sequence[str]) -> list[np.ndarray]:
        """Unit embeddings of texts; the ones not remembered are embedded in one batch (a query's words,
        its exclusions and the words without those held as text: one text-model call instead of three).
        A text being embedded already (embed_ahead) is waited for, not embedded twice."""
        return self._text_embeddings().get(texts)

    def embed_ahead(self, texts: Sequence[str]) -> None:
        """Start embedding the texts not remembered on a worker thread and return at once: a query embeds
        its words and exclusions while its other channels run, and encode_texts then waits for them (the
        words without those held as text are known only once the words channel has run)."""
        self._text_embeddings().prefetch(texts)

    def forget_texts(self) -> None:
        """Forget the text embeddings and exclusion cutoffs remembered so far, so that the next query runs as
        if typed for the first time (the benchmarks time queries so)."""
        with self._texts_lock:
            self._texts = None
        if self._sample is not None:
            self._sample.bars.clear()

    def _text_embeddings(self) -> TextEmbeddings:
        """The remembered embeddings of the serving text tower; a new tower starts with none."""
        slot = self._serving()
        tower = _tower(slot)
        with self._texts_lock:
            if self._texts is None or self._texts.tower != tower:
                self._texts = TextEmbeddings(tower, lambda texts: slot.text_encoder().encode(texts), self._ahead)
            return self._texts

    def encode_like(self, like: str | int | os.PathLike) -> np.ndarray:
        """The unit embedding of an example photo: a photo id, a cataloged file, or any image file."""
        photo_id = _as_id(like)
        if photo_id is not None and not Path(str(like)).exists():
            vec = self._stored_vector(photo_id)
            if vec is None:
                raise PhotodError(
                    f"photo {photo_id} has no vector of the active model yet",
                    "it is indexed shortly after it is staged; see `photod status`",
                )
            return vec
        path = Path(like).expanduser()
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise DecodeError(
                f"cannot read {path}: {exc.strerror or exc}", "give an image file or a photo id"
            ) from None
        from photod.ingest.decode import content_hash, decode_photo

        for row in self.catalog.query(
            "SELECT id FROM photos WHERE content_hash = ? AND state != 'deleted'", (content_hash(data),)
        ):
            vec = self._stored_vector(row["id"])
            if vec is not None:
                return vec
        # Not in the library: decode it exactly as staging would, so its vector is comparable.
        staged = decode_photo(data, str(path), size=self.stage_settings.size)
        with Image.open(BytesIO(staged.jpeg)) as img:
            return self._serving().image_encoder().encode([img.convert("RGB")])[0]

    def _stored_vector(self, photo_id: int) -> np.ndarray | None:
        vec = self.index().vector(photo_id)
        if vec is None:
            ids, vecs = vectors.load_vectors(self.catalog, self._serving().bundle.image_id, [photo_id])
            vec = vecs[0] if ids.size else None
        return None if vec is None else _unit(vec)

    def by_captions(self, text: str, k: int = 20, filters: Filters = EVERYTHING) -> list[Result]:
        """Photos whose captions mean what `text` says (the text tower's embeddings of both), best first,
        narrowed by the same filters as by_meaning."""
        slot = self._serving()
        bundle = slot.bundle
        assert bundle is not None
        hits = self.captions.similar(slot.text_encoder(), bundle.text_id, bundle.embed_dim, self.encode_text(text), k)
        if not hits:
            return []
        ids = [h.photo_id for h in hits]
        rows = {r["id"]: r for r in wordsearch.search_name(self.catalog, filters=filters, ids=ids, limit=None)}
        results = []
        for hit in hits:
            if hit.photo_id in rows:
                result = Result.from_row(rows[hit.photo_id], None)
                result.matched = [{"channel": "caption", "text": hit.caption, "score": hit.score}]
                results.append(result)
        return results

    def by_meaning(
        self,
        terms: Sequence[Term],
        exclusions: Sequence[Term] = (),
        k: int = 60,
        *,
        allowed: set[int] | None = None,
        filters: Filters = EVERYTHING,
    ) -> MeaningHits:
        """Photos whose look matches the terms (their embeddings, weighted, as one query), narrowed by the
        filters, or, when `allowed` is given, among exactly those photos (the caller has applied the filters
        to them: photod.search.channels lists them once for every channel). An excluded term drops the photos
        that stand out for it and lowers the rest by how much closer to it they are than the library's bulk."""
        if not terms:
            return MeaningHits()
        self.encode_texts([t.text for t in (*terms, *exclusions) if t.like is None])  # one batch
        query = _unit(sum(t.weight * self._term_vector(t) for t in terms))
        results = self._nearest(query, k, filters, allowed)
        if not results:  # nothing to cut off or exclude; and an index holding no vector yet has no sample
            return MeaningHits()
        sample = self._library_sample()
        hits = MeaningHits(results, fusion.standout(sample.vectors @ query))
        if exclusions:
            order = {r.id: float(r.score or 0.0) for r in results}
            ids, vecs = self.index().vectors(order)
            for term in exclusions:
                vec = self._term_vector(term)
                threshold, floor = self._bar(term, vec, sample)
                for photo_id, score in zip(ids.tolist(), (vecs @ vec).tolist()):
                    if score >= threshold:
                        hits.excluded.add(photo_id)
                    order[photo_id] -= term.weight * max(0.0, score - floor)
            hits.results = sorted((r for r in results if r.id not in hits.excluded), key=lambda r: -order[r.id])
        return hits

    def _bar(self, term: Term, vec: np.ndarray, sample: _Sample) -> tuple[float, float]:
        """(cutoff, bulk) of an excluded term's scores over the sample, remembered for a text term: the TUI
        asks for `-人` again at every key typed after it."""
        if term.like is not None:
            return _cutoffs(sample.vectors @ vec)
        key = (_tower(self._serving()), term.text)
        if key not in sample.bars:
            sample.bars[key] = _cutoffs(sample.vectors @ vec)
            while len(sample.bars) > TEXTS_REMEMBERED:
                sample.bars.pop(next(iter(sample.bars)))
        return sample.bars[key]

    def _term_vector(self, term: Term) -> np.ndarray:
        return self.encode_like(term.like) if term.like is not None else self.encode_text(term.text)

    def _library_sample(self) -> _Sample:
        """A fixed random sample of the library's vectors (unit length), kept until the library has grown
        or shrunk by a tenth."""
        index = self.index()
        size = len(index)
        memo = self._sample
        if memo is not None and memo.index is index:
            if memo.size == size or (memo.size > SAMPLE_SIZE and abs(size - memo.size) < memo.size / 10):
                return memo
        vecs = index.sample(SAMPLE_SIZE)
        vecs = vecs / np.maximum(np.linalg.norm(vecs, axis=1, keepdims=True), 1e-12)
        self._sample = _Sample(index, size, vecs.astype(np.float32))
        return self._sample

    def _nearest(self, query: np.ndarray, k: int, filters: Filters, allowed: set[int] | None = None) -> list[Hit]:
        """The nearest k photos that pass the filters, or, when `allowed` is given, among those photos (no
        catalog rows read: photod.search.finder reads them for the page shown only)."""
        if k <= 0:
            return []
        index = self.index()
        if allowed is not None and len(allowed) <= SUBSET_LIMIT:  # already filtered: search only them
            return self._within(index, query, k, self._listed(allowed))
        if allowed is not None:  # too many to list for FAISS: the filters' own way, then only those
            return [r for r in self._filtered(index, query, k * OVERFETCH, filters) if r.id in allowed][:k]
        if filters.active():
            return self._filtered(index, query, k, filters)
        return self._ranked(index, query, k)

    def _ranked(self, index: VectorIndex, query: np.ndarray, k: int) -> list[Hit]:
        fetch = k + 16
        while True:
            scores, ids = index.search(query, fetch)
            hits = self._join(scores[0], ids[0])
            if len(hits) >= k or ids.shape[1] < fetch:
                return hits[:k]
            fetch *= 2  # photos deleted since the index last caught up were dropped by the join

    def _filtered(self, index: VectorIndex, query: np.ndarray, k: int, filters: Filters) -> list[Hit]:
        if filters.dates is not None:  # a date filter is selective, and listing it is cheap (indexed)
            matching = wordsearch.matching_ids(self.catalog, filters=filters, limit=SUBSET_LIMIT + 1)
            if len(matching) <= SUBSET_LIMIT:
                return self._within(index, query, k, matching)
        # First the nearest few times k, kept if they pass the filters: enough when the filters are loose.
        fetch = k * OVERFETCH
        scores, ids = index.search(query, fetch)
        hits = self._join(scores[0], ids[0], filters)
        if len(hits) >= k or ids.shape[1] < fetch:
            return hits[:k]
        # Selective filters: search only the photos that pass them, when they are few enough to list.
        matching = wordsearch.matching_ids(self.catalog, filters=filters, limit=SUBSET_LIMIT + 1)
        if len(matching) <= SUBSET_LIMIT:
            return self._within(index, query, k, matching)
        while True:
            fetch *= 4
            scores, ids = index.search(query, fetch)
            hits = self._join(scores[0], ids[0], filters)
            if len(hits) >= k or ids.shape[1] < fetch:
                return hits[:k]

    def _listed(self, allowed: set[int]) -> np.ndarray:
        """The allowed photos as a sorted id array, listed once for both of a query's looks (they are given
        the same set): 1.7 ms at 10,000 photos."""
        memo = self._allowed
        if memo is None or memo[0] is not allowed or memo[1] != len(allowed):
            listed = np.sort(np.fromiter(allowed, dtype=np.int64, count=len(allowed)))
            memo = self._allowed = (allowed, len(allowed), listed)
        return memo[2]

    def _within(self, index: VectorIndex, query: np.ndarray, k: int, matching: Sequence[int] | np.ndarray) -> list[Hit]:
        """The nearest k among the photos listed (those that pass the filters)."""
        if len(matching) == 0:
            return []
        scores, ids = index.search(query, k, allowed_ids=matching)
        return self._join(scores[0], ids[0])[:k]

    def _join(self, scores: np.ndarray, ids: np.ndarray, filters: Filters = EVERYTHING) -> list[Hit]:
        """FAISS's hits as the photos a search shows, in score order, read from the catalog as ids and kinds
        only: those search_name would show with these filters (photos deleted meanwhile are dropped), and
        each video once, at its best-ranked frame, carrying that frame and its time (a frame of a video the
        catalog no longer shows is dropped)."""
        keep = ids >= 0
        scores, ids = scores[keep], ids[keep]
        shown = wordsearch.shown(self.catalog, ids.tolist(), filters) if ids.size else {}
        found = [(int(i), float(s)) for s, i in zip(scores, ids) if int(i) in shown]
        wanted = sorted({shown[i][1] for i, _ in found if shown[i][0] == "frame"})
        videos = wordsearch.shown(self.catalog, wanted) if wanted else {}
        hits: list[Hit] = []
        seen: set[int] = set()
        for i, score in found:
            kind, parent, at = shown[i]
            vid = parent if kind == "frame" and parent is not None else i
            if vid in seen or (kind == "frame" and vid not in videos):
                continue
            seen.add(vid)
            score = round(score, 6)
            hits.append(Hit(vid, score, i, at) if kind == "frame" else Hit(i, score))
        return hits


def _one_blas_thread() -> None:
    """NumPy's BLAS on one thread, as FAISS is: a query's matrix products are small (the 2,048-vector sample,
    the captions), and OpenBLAS's second thread, spinning between them, took a core from the text tower's two
    workers. At 100,000 photos on a busy 2-core machine (benchmarks/bench_fusion.py, ViT-B-16 int8) a query
    in the query language ran p50 21 % faster with one (interleaved, load average 3.3). The limit is the
    process's, like FAISS's. Without threadpoolctl, BLAS is left as it is."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - a dependency; only a broken install lacks it
        return
    threadpool_limits(1, user_api="blas")


def _cutoffs(scores: np.ndarray) -> tuple[float, float]:
    """(cutoff, bulk) of a term's scores over the library (photod.search.fusion)."""
    return fusion.standout(scores), fusion.bulk(scores)


def _tower(slot: ModelSlot) -> str:
    """The id of the slot's text tower (the key of the text embeddings it makes)."""
    return slot.bundle.text_id if slot.bundle is not None else ""


def _unit(vec: np.ndarray) -> np.ndarray:
    vec = np.asarray(vec, dtype=np.float32)
    return vec / max(float(np.linalg.norm(vec)), 1e-12)


def _as_id(value: Any) -> int | None:
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None
