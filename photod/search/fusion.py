"""One ranked list from several channels, and where a query's matches end.

**Fusion is by rank (reciprocal rank fusion).** Each channel ranks the photos it found — the words (names,
captions, text in photos, places: photos holding more of the query's words first), captions by meaning, and
the look (CLIP similarity) — and a photo's fused score is the sum over channels of 1 / (RANK_OFFSET + its rank
there). The channels' own scores live on scales that do not compare (a cosine near 0.3, a count of words
matched, a caption's similarity to the query's text), and calibrating them would need labelled queries a
person's library does not have; ranks need nothing, and the result is easy to explain: a photo near the top of
two channels beats one at the top of only one. RANK_OFFSET 60 is the value of the original study (Cormack et
al., 2009), where it was found to be insensitive.

**The cutoff is per query.** A fixed similarity threshold does not carry across queries (海边 scores photos
higher than 小白 does, on every photo), so each query's similarities are compared with its own similarities over
the library (a fixed random sample of it): a photo is a match when it stands out of that distribution by
STANDOUT robust standard deviations (median + STANDOUT × 1.4826 × median absolute deviation; the median and MAD
describe the bulk of unrelated photos even when a fair share of the library matches, where a mean and
standard deviation would be dragged up by the matches themselves). A photo halfway from the bulk to a
perfect match (cosine 1) is a match whatever the spread says: in a small library the spread is measured on a
handful of photos and can put the bar above anything reachable, and a near-duplicate of an example photo is
always what was asked for.
"""

from __future__ import annotations

from typing import Hashable, Iterable, Sequence

import numpy as np

RANK_OFFSET = 60
STANDOUT = 3.0
HALFWAY = 0.5
MAD_TO_SIGMA = 1.4826  # the MAD of a normal distribution times this is its standard deviation


def fuse(rankings: Iterable[Sequence[Hashable]], offset: int = RANK_OFFSET) -> dict[Hashable, float]:
    """Reciprocal rank fusion: each item's summed 1 / (offset + rank) over the rankings (rank 1 = best)."""
    fused: dict[Hashable, float] = {}
    for ranking in rankings:
        for rank, item in enumerate(ranking, start=1):
            fused[item] = fused.get(item, 0.0) + 1.0 / (offset + rank)
    return fused


def standout(scores: np.ndarray, z: float = STANDOUT) -> float:
    """The score a photo needs to stand out of `scores` (this query's scores over a sample of the library)."""
    scores = np.asarray(scores, dtype=np.float64)
    if scores.size == 0:
        return float("-inf")
    median = float(np.median(scores))
    spread = MAD_TO_SIGMA * float(np.median(np.abs(scores - median)))
    return min(median + z * max(spread, 1e-6), median + HALFWAY * (1.0 - median))


def bulk(scores: np.ndarray) -> float:
    """Where the bulk of unrelated photos lies (the median): an exclusion lowers a photo by how far above it
    the photo is for the excluded term."""
    return float(np.median(scores)) if np.asarray(scores).size else 0.0
