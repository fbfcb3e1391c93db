"""Queries as the CLI and the TUI ask them, and the one rule for running them: photos whose captions or
names hold the words first, then by meaning when a model is installed (by words alone when none is, or when
only names were asked for).

Kept free of FAISS and the model runtime: a filename search, or a search by meaning with no model
installed, never loads them (photod.search.searcher is imported only when a searcher is opened).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import time
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

from photod.config import Config
from photod.errors import NoModelError
from photod.search.results import Result
from photod.store.catalog import Catalog, open_catalog

if TYPE_CHECKING:
    from photod.search.searcher import Searcher

# Over-fetch when results are filtered after the query (online only), so a page still fills.
ONLINE_OVERFETCH = 4

_DATE = re.compile(r"^\d{4}(-\d{2}(-\d{2})?)?$")

OpenCatalog = Callable[[], AbstractContextManager[Catalog]]
OpenSearcher = Callable[[], AbstractContextManager["Searcher | None"]]


@dataclass(frozen=True)
class Filters:
    """What narrows a search. Dates are ISO prefixes (YYYY, YYYY-MM or YYYY-MM-DD; see parse_date)."""

    after: str | None = None
    before: str | None = None
    root: str | None = None  # a root's path, label or id, as text (the TUI gives its id)
    folder: str | None = None
    camera: str | None = None
    place: str | None = None  # a place name's words: 三亚, 海南, Sanya
    online_only: bool = False

    def active(self) -> bool:
        return any((self.after, self.before, self.root, self.folder, self.camera, self.place, self.online_only))

    def keywords(self) -> dict:
        """The filters as Searcher.search and Searcher.by_captions take them."""
        return {"after": self.after, "before": self.before, "root": self.root, "camera": self.camera,
                "folder": self.folder, "place": self.place}


@dataclass(frozen=True)
class Query:
    """One search as the person asked for it."""

    text: str = ""
    like: int | str | None = None  # photo id, or (from the CLI) an image file: "more like this"
    names_only: bool = False
    name: str = ""  # filename words that narrow a search by meaning (`photod search --name`)
    filters: Filters = field(default_factory=Filters)
    k: int = 60
    captions_by_meaning: bool = True  # `[signals] caption_meaning`


@dataclass
class Outcome:
    """Results of a query (as `photod search --json` prints them) and how the search was done."""

    query: Query
    results: list[dict]
    mode: str  # "meaning", "like", "names" or "recent"
    elapsed: float
    fallback: NoModelError | None = None  # why a search by meaning was done by filename instead

    @property
    def note(self) -> str | None:
        """What to tell the person about how the search was done, if anything."""
        if self.fallback is None:
            return None
        return ("No model installed, so this searches captions and file names. To search by meaning, "
                + self.fallback.hint)


def parse_date(text: str) -> str | None:
    """A date filter as typed ('2019', '2019-06', '2019-06-01'), checked; None when empty.

    Raises ValueError naming the text when it is not a real date, so the filter bar can mark it.
    """
    text = text.strip()
    if not text:
        return None
    if not _DATE.match(text):
        raise ValueError(f"{text!r} is not a date: use YYYY, YYYY-MM or YYYY-MM-DD")
    parts = [int(p) for p in text.split("-")]
    try:
        dt.date(parts[0], parts[1] if len(parts) > 1 else 1, parts[2] if len(parts) > 2 else 1)
    except ValueError as exc:
        raise ValueError(f"{text!r} is not a date: {exc}") from None
    return text


def find(query: Query, catalog: OpenCatalog, searcher: OpenSearcher) -> Outcome:
    """Run a query: captions and names that hold its words, then by meaning when a model is installed.

    `catalog()` and `searcher()` open what the search reads, for as long as it reads it: the CLI opens
    them for one query, the TUI lends its resident ones under their locks. A searcher may be None where
    semantic search is not available. An example photo with no model is a NoModelError: there is no
    filename search to fall back on.
    """
    started = time.perf_counter()
    fallback = None
    if query.like is not None:
        results, mode = _by_meaning(query, searcher), "like"
        if results is None:
            raise NoModelError()
    elif query.text.strip() and not query.names_only:
        by_meaning, mode = _by_meaning(query, searcher), "meaning"
        results = _by_name(query, catalog)
        if by_meaning is None:
            fallback, mode = NoModelError(), "names"
        else:
            results = _words_first(results, by_meaning)
    else:
        results = _by_name(query, catalog)
        mode = "names" if query.text.strip() or query.name else "recent"
    if query.filters.online_only:
        results = [r for r in results if r["online"]]
    return Outcome(query, results[:query.k], mode, time.perf_counter() - started, fallback)


def find_once(cfg: Config, query: Query) -> Outcome:
    """find() with a catalog and a searcher opened for this one query (`photod search`)."""
    if not cfg.signals.caption_meaning:
        query = dataclasses.replace(query, captions_by_meaning=False)
    return find(query, lambda: open_catalog(cfg), lambda: _open_searcher(cfg))


def _open_searcher(cfg: Config) -> "Searcher":
    from photod.search.searcher import Searcher

    return Searcher.from_config(cfg)


def _fetch(query: Query) -> int:
    return query.k * (ONLINE_OVERFETCH if query.filters.online_only else 1)


def _by_name(query: Query, catalog: OpenCatalog) -> list[dict]:
    """Caption, filename and folder matches of the name words and the text, newest first."""
    f = query.filters
    words = " ".join(w for w in (query.name, query.text.strip()) if w) or None
    with catalog() as cat:
        root_id = cat.find_root(f.root).id if f.root else None
        rows = cat.search_name(words, after=f.after, before=f.before, root_id=root_id, camera=f.camera,
                               folder=f.folder, place=f.place, limit=_fetch(query))
    return [Result.from_row(r, None, words).to_json() for r in rows]


def _words_first(by_words: list[dict], by_meaning: list[dict]) -> list[dict]:
    """Photos whose caption or name has the words the person typed, then the rest by similarity: a match of
    their own words is the surest sign of what they meant. A photo found both ways keeps both reasons."""
    similar = {r["id"]: r for r in by_meaning}
    merged = []
    for r in by_words:
        also = similar.pop(r["id"], None)
        merged.append(r if also is None else {**also, "matched": r["matched"] + also["matched"]})
    return merged + [r for r in by_meaning if r["id"] in similar]


def _by_meaning(query: Query, searcher: OpenSearcher) -> list[dict] | None:
    """Results by meaning, or None when no model is installed: photos whose captions mean the text first
    (the owner's own words, compared by the text tower), then by the look of the photo."""
    text = query.text.strip() or None
    with searcher() as s:
        if s is None:
            return None
        try:
            found = s.search(text=text, like=query.like, name=query.name or None, k=_fetch(query),
                             **query.filters.keywords())
            if text and query.like is None and query.captions_by_meaning:
                found = _merge(s.by_captions(text, k=_fetch(query), **query.filters.keywords()), found)
        except NoModelError:
            return None
    return [r.to_json() for r in found]


def _merge(first: list[Result], then: list[Result]) -> list[Result]:
    """`first`, then the rest of `then`; a photo in both keeps both reasons and the similarity score."""
    later = {r.id: r for r in then}
    merged = []
    for r in first:
        also = later.pop(r.id, None)
        if also is not None:
            r.score, r.matched = also.score, r.matched + also.matched
        merged.append(r)
    return merged + [r for r in then if r.id in later]
