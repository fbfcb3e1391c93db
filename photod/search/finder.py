"""Queries as the CLI and the TUI ask them, and the one way they are run.

A query's text is parsed (photod.search.query: dates, places, exclusions, weights, exact phrases); each
channel then ranks what it finds — the words (in names, captions, text in photos and places), captions by
meaning, and the look (CLIP) — and photod.search.fusion fuses the rankings into one list and decides, per
query, where the look's matches end: weaker matches are hidden, and counted, unless `show_all`. A photo that
holds the words is never hidden; a photo that stands out for an excluded term, or holds it, is dropped.

Kept free of FAISS and the model runtime: a search by words, or a search by meaning with no model installed,
never loads them (photod.search.searcher is imported only when a searcher is opened).
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
from photod.search import fusion
from photod.search.query import ParsedQuery, Term, parse
from photod.search.results import Result, merge_reasons
from photod.store import signals
from photod.store.catalog import Catalog, open_catalog
from photod.store.textsearch import fts_any

if TYPE_CHECKING:
    from photod.search.searcher import MeaningHits, Searcher

# Over-fetch when results are filtered after the query (online only), so a page still fills.
ONLINE_OVERFETCH = 4
# Each channel ranks this many times k (at least CHANNEL_MIN): fusion needs the photos each channel ranks a
# little lower, since one that is second in two channels may beat one that is first in only one.
CHANNEL_DEPTH = 3
CHANNEL_MIN = 100
PLACE_NAMES_TTL = 30.0  # seconds a process trusts the library's place names it read (one query over places)

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

    def keywords(self, parsed: ParsedQuery | None = None) -> dict:
        """The filters as Searcher.search and Searcher.by_captions take them, with the dates a parsed
        query names."""
        dates = parsed.dates if parsed else None
        return {"after": self.after, "before": self.before, "root": self.root, "camera": self.camera,
                "folder": self.folder, "place": self.place,
                "dates": dates.sql_ranges() if dates and not dates.yearly else None,
                "yearly": dates.sql_yearly() if dates else None}


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
    show_all: bool = False  # the weaker matches the cutoff hides, too (`photod search --all`, the TUI's `a`)
    today: dt.date | None = None  # what 去年 and last month count from (None: today)


@dataclass
class Outcome:
    """Results of a query (as `photod search --json` prints them) and how the search was done."""

    query: Query
    results: list[dict]
    mode: str  # "meaning", "like", "names" or "recent"
    elapsed: float
    fallback: NoModelError | None = None  # why a search by meaning was done by filename instead
    parsed: ParsedQuery | None = None
    hidden: int = 0  # weaker matches the cutoff hid from this page (shown with Query.show_all)
    stages: dict[str, float] = field(default_factory=dict)  # seconds spent in each stage

    @property
    def understood(self) -> list[str]:
        """What the query was understood to ask, as shown back (「日期 2019-06-01 … 2019-08-31」, 「排除 人」)."""
        return self.parsed.understood() if self.parsed else []

    @property
    def note(self) -> str | None:
        """What to tell the person about how the search was done, if anything."""
        notes = list(self.parsed.notes) if self.parsed else []
        if self.fallback is not None:
            notes.append("No model installed, so this searches captions, text in photos, places and file "
                         "names. To search by meaning, " + self.fallback.hint)
        return "\n".join(notes) or None


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
    """Run a query: parsed, searched in every channel, fused, cut off (see the module's docstring).

    `catalog()` and `searcher()` open what the search reads, for as long as it reads it: the CLI opens
    them for one query, the TUI lends its resident ones under their locks. A searcher may be None where
    semantic search is not available. An example photo with no model is a NoModelError: there is no
    search by words to fall back on.
    """
    started = time.perf_counter()
    if query.names_only or (not query.text.strip() and query.like is None):
        results = _by_name(query, catalog)
        mode = "names" if query.text.strip() or query.name else "recent"
        return _finish(Outcome(query, results, mode, 0.0), started)
    outcome = _search(query, catalog, searcher)
    return _finish(outcome, started)


def _finish(outcome: Outcome, started: float) -> Outcome:
    if outcome.query.filters.online_only:
        outcome.results = [r for r in outcome.results if r["online"]]
    outcome.results = outcome.results[:outcome.query.k]
    outcome.elapsed = time.perf_counter() - started
    return outcome


def _search(query: Query, catalog: OpenCatalog, searcher: OpenSearcher) -> Outcome:
    stages: dict[str, float] = {}
    clock = _Clock(stages)
    with catalog() as cat:
        parsed = parse(query.text, today=query.today or dt.date.today(), places=_known_places(cat))
        if query.like is not None:
            parsed = dataclasses.replace(parsed, terms=parsed.terms + (Term(str(query.like), like=str(query.like)),))
        clock.lap("parse")
        filters = query.filters.keywords(parsed)
        if not parsed.searches_anything() and not parsed.exclusions:
            results = _by_name(dataclasses.replace(query, text=""), catalog, filters)
            return Outcome(query, results, "recent", 0.0, parsed=parsed, stages=stages)
        words = _WordHits.find(cat, parsed, filters, _depth(query))
        clock.lap("words")
    look, fallback = _by_look(query, parsed, filters, searcher, words, clock)
    if look is None and query.like is not None:
        raise NoModelError()
    look = look or _Look()
    order = _fused(words, look)
    shown, hidden = _page(order, words, look, query)
    with catalog() as cat:
        results = _results(cat, shown, words, look)
    mode = "like" if query.like is not None and not query.text.strip() else ("meaning" if look.hits else "names")
    clock.lap("fuse")
    return Outcome(query, results, mode, 0.0, fallback, parsed, hidden, stages)


class _Clock:
    def __init__(self, stages: dict[str, float]):
        self.stages, self.at = stages, time.perf_counter()

    def lap(self, stage: str) -> None:
        now = time.perf_counter()
        self.stages[stage] = self.stages.get(stage, 0.0) + now - self.at
        self.at = now


def _depth(query: Query) -> int:
    return max(CHANNEL_MIN, CHANNEL_DEPTH * _fetch(query))


@dataclass
class _WordHits:
    """The words channel: photos holding the query's words in names, captions, text or places, those
    holding more of them first; what its exclusions drop; what its quoted phrases require (None: nothing)."""

    ranking: list[int] = field(default_factory=list)
    excluded: set[int] = field(default_factory=set)
    required: set[int] | None = None
    found_words: set[str] = field(default_factory=set)  # the words some photo holds as text
    match: str | None = None  # one FTS expression for all the words: why each photo on the page matched
    said: str = ""

    @classmethod
    def find(cls, cat: Catalog, parsed: ParsedQuery, filters: dict, depth: int) -> "_WordHits":
        """Each word's photos (a set from the full-text tables: fast, however common the word), narrowed by
        the filters listed once; rows are read later, for the photos on the page only."""
        hits = cls()
        for phrase in parsed.phrases:
            found = cat.word_hits(phrase, exact=True)
            hits.required = found if hits.required is None else hits.required & found
        for term in parsed.exclusions:
            if term.like is None:
                hits.excluded |= cat.word_hits(term.text, exact=term.exact)
        wanted = [(w, False) for w in parsed.words] + [(p, True) for p in parsed.phrases]
        if not wanted:
            return hits
        where = _catalog_filters(cat, filters)
        # Filters are listed once (an unfiltered query lists only the deleted photos, which are few).
        allowed = set(cat.matching_ids(**where)) if any(v is not None for v in where.values()) else None
        if hits.required is not None:
            allowed = hits.required if allowed is None else allowed & hits.required
        gone = hits.excluded | (cat.deleted_ids() if allowed is None else set())
        matched: dict[int, int] = {}  # photo -> how many of the words it holds
        for word, exact in wanted:
            found = cat.word_hits(word, exact=exact)
            found = (found if allowed is None else found & allowed) - gone
            if found:
                hits.found_words.add(word)
            for i in found:
                matched[i] = matched.get(i, 0) + 1
        # More of the words first; among equals, the later cataloged first.
        hits.ranking = sorted(matched, key=lambda pid: (-matched[pid], -pid))[:depth]
        hits.match, hits.said = fts_any(wanted), " ".join(w for w, _ in wanted)
        return hits


def _catalog_filters(cat: Catalog, filters: dict) -> dict:
    out = {key: value for key, value in filters.items() if key != "root"}
    out["root_id"] = cat.find_root(filters["root"]).id if filters.get("root") else None
    return out


def _by_look(query: Query, parsed: ParsedQuery, filters: dict, searcher: OpenSearcher, words: "_WordHits",
             clock: _Clock) -> tuple["_Look | None", NoModelError | None]:
    """The look (CLIP) and the captions' meaning; None (and why) when no model is installed.

    Words the library holds as text (a caption's 小白, a sign's 海鲜) may name what is captioned or written
    rather than what is seen, so when a term mixes them with other words the look is asked twice: for the
    whole term and for the term without them (小白 蓝色: also 蓝色). Both rankings take part in the fusion
    (summing the two embeddings instead was measured worse: the sum can point at neither)."""
    terms = parsed.meaning_terms
    if not terms and not parsed.exclusions:
        return _Look(), None
    with searcher() as s:
        if s is None:
            return None, NoModelError()
        try:
            seen = _without_words(terms, words.found_words)
            s.encode_texts([t.text for t in (*terms, *seen, *parsed.exclusions) if t.like is None]
                           + ([parsed.meaning_text] if parsed.meaning_text else []))  # one text-model call
            look = _Look([s.by_meaning(terms, parsed.exclusions, _depth(query), allowed=words.required,
                                       **filters)])
            if seen:
                look.hits.append(s.by_meaning(seen, parsed.exclusions, _depth(query), allowed=words.required,
                                              **filters))
            clock.lap("look")
            if parsed.meaning_text and query.captions_by_meaning and query.like is None:
                look.captions = s.by_captions(parsed.meaning_text, k=_depth(query), **filters)
                clock.lap("captions")
        except NoModelError as exc:
            return None, exc
    if words.required is not None:
        look.captions = [r for r in look.captions if r.id in words.required]
    return look, None


def _without_words(terms: list[Term], found: set[str]) -> list[Term]:
    """The terms with the words found in the text channels taken out, when that changes some term and leaves
    it something; [] otherwise."""
    out, changed = [], False
    for term in terms:
        kept = [w for w in term.text.split() if w not in found] if term.like is None else []
        if term.like is None and kept and len(kept) < len(term.text.split()):
            out.append(dataclasses.replace(term, text=" ".join(kept)))
            changed = True
        else:
            out.append(term)
    return out if changed else []


@dataclass
class _Look:
    hits: list["MeaningHits"] = field(default_factory=list)
    captions: list[Result] = field(default_factory=list)

    @property
    def rankings(self) -> list[list[Result]]:
        return [h.results for h in self.hits]

    @property
    def results(self) -> list[Result]:
        return [r for h in self.hits for r in h.results]

    @property
    def excluded(self) -> set[int]:
        return set().union(*(h.excluded for h in self.hits))

    def matches(self, result: Result) -> bool:
        return any(h.matches(result) for h in self.hits)


def _fused(words: _WordHits, look: _Look) -> list[tuple[int, float]]:
    """Every photo any channel found, once, best first, with its fused score; excluded photos dropped."""
    dropped = words.excluded | look.excluded
    fused = fusion.fuse([words.ranking, [r.id for r in look.captions],
                         *([r.id for r in ranking] for ranking in look.rankings)])
    return sorted(((pid, score) for pid, score in fused.items() if pid not in dropped), key=lambda item: -item[1])


def _page(order: list[tuple[int, float]], words: _WordHits, look: _Look,
          query: Query) -> tuple[list[tuple[int, float, bool]], int]:
    """The page shown, as (photo, fused score, a match?), and how many of what `show_all` would show on it are
    hidden: a photo holding the words, or captioned with their meaning, always shows; one found by its look
    only when it stands out."""
    held = set(words.ranking) | {r.id for r in look.captions}
    by_look = {r.id: r for r in look.results}
    page, hidden = [], 0
    for pid, score in order:
        if len(page) >= _fetch(query):
            break
        match = pid in held or (pid in by_look and look.matches(by_look[pid]))
        if not match:
            hidden += 1
        if match or query.show_all:
            page.append((pid, score, match))
    return page, (0 if query.show_all else min(hidden, max(0, _fetch(query) - len(page))))


def _results(cat: Catalog, page: list[tuple[int, float, bool]], words: _WordHits, look: _Look) -> list[dict]:
    """The page's results, each with every reason any channel had; the words' reasons are read here, for
    these photos only (one query)."""
    found: dict[int, Result] = {}
    for result in [*look.results, *look.captions]:
        if result.id in found:
            merge_reasons(found[result.id], result)
        else:
            found[result.id] = dataclasses.replace(result, matched=list(result.matched))
    ranked = set(words.ranking)
    held = [pid for pid, _, _ in page if pid in ranked]
    if held and words.match:
        for row in cat.search_name(match=words.match, ids=held, limit=None):
            result = Result.from_row(row, None, words.said)
            if row["id"] in found:
                merge_reasons(result, found[row["id"]])
            found[row["id"]] = result
    out = []
    for pid, score, match in page:
        if pid in found:
            found[pid].fused = round(score, 6)
            out.append({**found[pid].to_json(), **({} if match else {"below_cutoff": True})})
    return out


def _known_places(cat: Catalog) -> set[str]:
    """The library's place names, read at most every PLACE_NAMES_TTL seconds per catalog."""
    key = str(cat.path)
    now = time.monotonic()
    cached = _PLACE_NAMES.get(key)
    if cached is None or now - cached[0] > PLACE_NAMES_TTL:
        cached = _PLACE_NAMES[key] = (now, signals.place_names(cat))
    return cached[1]


_PLACE_NAMES: dict[str, tuple[float, set[str]]] = {}


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


def _by_name(query: Query, catalog: OpenCatalog, filters: dict | None = None) -> list[dict]:
    """Caption, filename and folder matches of the name words and the text, newest first."""
    f = filters or query.filters.keywords()
    words = " ".join(w for w in (query.name, query.text.strip()) if w) or None
    with catalog() as cat:
        rows = cat.search_name(words, **_catalog_filters(cat, f), limit=_fetch(query))
    return [Result.from_row(r, None, words).to_json() for r in rows]
