"""Captions found by meaning: the text tower's embedding of each caption compared with the query's, so that
小白 finds the photo captioned 我家的白猫 as well as the one captioned 小白在沙发上睡觉.

The daemon stores each caption's embedding (photod.service.signals); a searcher holds them in memory and
embeds the few it finds without one itself (a caption added a moment ago, or no daemon running), without
storing them: search only reads. A person's captions number hundreds or thousands, so one matrix product
per query is all the search there is.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from photod.store import signals
from photod.store.catalog import Catalog

# A caption counts as meaning what the query says when it is closer to the query than texts that say
# nothing in particular are, by a margin: at least halfway from the query's similarity to those neutral
# texts up to 1 (the query itself). A fixed cosine does not carry across text towers (a tower that puts
# every caption at 0.6 from every other, as CLIP-style towers tend to, would let everything through at 0.6);
# the neutral texts measure this tower's floor for this query.
NEUTRAL_TEXTS = ("一张照片", "照片", "a photo")
MEANING_MARGIN = 0.5
# Captions without a stored embedding that one query embeds itself, at most: the daemon does the rest.
EMBED_AT_QUERY = 256


@dataclass(frozen=True)
class CaptionHit:
    photo_id: int
    caption: str
    score: float


class CaptionMeanings:
    """The caption embeddings of one text tower, kept in step with the catalog."""

    def __init__(self, catalog: Catalog):
        self.catalog = catalog
        self._key: tuple | None = None
        self._stamp: tuple | None = None  # (model, data_version, total_changes) at the last look
        self._photos: np.ndarray = np.zeros(0, dtype=np.int64)
        self._texts: list[str] = []
        self._vectors: np.ndarray = np.zeros((0, 0), dtype=np.float32)
        self._neutral: tuple[str, np.ndarray] | None = None  # (text tower id, embeddings of NEUTRAL_TEXTS)

    def similar(self, encoder, model_id: str, dim: int, query: np.ndarray, k: int) -> list[CaptionHit]:
        """The captions closest in meaning to `query` (a unit text embedding), past this query's cutoff
        (`cutoff`), best first, one per photo, at most `k`. `encoder` embeds captions that have no stored
        vector yet."""
        self._load(encoder, model_id, dim)
        if not self._texts:
            return []
        scores = self._vectors @ query.astype(np.float32)
        floor = self.cutoff(encoder, model_id, query)
        hits, seen = [], set()
        for i in np.argsort(-scores, kind="stable"):
            if scores[i] < floor or len(hits) >= k:
                break
            pid = int(self._photos[i])
            if pid not in seen:
                seen.add(pid)
                hits.append(CaptionHit(pid, self._texts[i], round(float(scores[i]), 6)))
        return hits

    def cutoff(self, encoder, model_id: str, query: np.ndarray) -> float:
        """The similarity a caption needs to count as meaning `query` (see NEUTRAL_TEXTS)."""
        if self._neutral is None or self._neutral[0] != model_id:
            self._neutral = (model_id, np.asarray(encoder.encode(list(NEUTRAL_TEXTS)), dtype=np.float32))
        baseline = float(np.max(self._neutral[1] @ query.astype(np.float32)))
        return baseline + MEANING_MARGIN * (1.0 - baseline)

    def _load(self, encoder, model_id: str, dim: int) -> None:
        # Nothing committed since the last look, by another connection (data_version) or this one
        # (total_changes): the captions are those held. Cheaper than counting them (2.5 ms at 5,000).
        stamp = (model_id, self.catalog.scalar("PRAGMA data_version"), self.catalog.conn.total_changes)
        if stamp == self._stamp:
            return
        key = (
            model_id,
            *self.catalog.conn.execute(
                "SELECT count(*), max(id), (SELECT count(*) FROM caption_vectors WHERE model_id = ?) FROM captions",
                (model_id,),
            ).fetchone(),
        )
        if key == self._key:
            self._stamp = stamp
            return
        ids, photos, texts, vecs = signals.caption_vectors(self.catalog, model_id, dim)
        missing = self.catalog.query(
            "SELECT c.id, c.photo_id, c.text FROM captions c LEFT JOIN caption_vectors v ON v.caption_id = c.id"
            " AND v.model_id = ? WHERE v.caption_id IS NULL ORDER BY c.id DESC LIMIT ?",
            (model_id, EMBED_AT_QUERY),
        )
        if missing:
            photos += [r["photo_id"] for r in missing]
            texts += [r["text"] for r in missing]
            vecs = np.concatenate([vecs.reshape(len(ids), dim), encoder.encode([r["text"] for r in missing])])
        self._photos, self._texts = np.asarray(photos, dtype=np.int64), texts
        self._vectors = np.asarray(vecs, dtype=np.float32).reshape(len(texts), dim)
        self._key, self._stamp = key, stamp
