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
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Iterator

from photod.config import Config
from photod.errors import NoModelError
from photod.search import fusion
from photod.search.channels import (
    Look,
    WordHits,
    caption_channel,
    look_channel,
    look_texts,
    second_look,
)
from photod.search.query import ParsedQuery, Term, parse
from photod.search.results import Result, merge_reasons
from photod.store import signals, wordsearch
from photod.store.catalog import Catalog, open_catalog

if TYPE_CHECKING:
    from photod.search.searcher import Hit, Searcher

# Over-fetch when results are filtered after the query (online only), so a page still fills.
ONLINE_OVERFETCH = 4
# Each channel ranks this many times k (at least CHANNEL_MIN): fusion needs the photos each channel ranks a
# little lower, since one that is second in two channels may beat one that is first in only one.
CHANNEL_DEPTH = 3
CHANNEL_MIN = 50
PLACE_NAMES_TTL = 30.0  # seconds a process trusts the library's place names it read (one query over places)

_DATE = re.compile(r"^\d{4}(-\d{2}(-\d{2})?)?$")

OpenCatalog = Callable[[], AbstractContextManager[Catalog]]
OpenSearcher = Callable[[], AbstractContextManager["Searcher | None"]]


@dataclass(frozen=True)
class Filters:
    """What narrows a search, as the person gave it (the CLI's options, the TUI's filter bar). Dates are ISO
    prefixes (YYYY, YYYY-MM or YYYY-MM-DD; see parse_date). The catalog takes them as one
    photod.store.wordsearch.Filters, made once per query by `resolved`."""

    after: str | None = None
    before: str | None = None
    root: str | None = None  # a root's path, label or id, as text (the TUI gives its id)
    folder: str | None = None
    camera: str | None = None
    place: str | None = None  # a place name's words: 三亚, 海南, Sanya
    online_only: bool = False

    def active(self) -> bool:
        return any((self.after, self.before, self.root, self.folder, self.camera, self.place, self.online_only))

    def resolved(self, cat: Catalog, parsed: ParsedQuery | None = None) -> wordsearch.Filters:
        """The filters as every channel applies them: the root named found in the catalog (RootError when it
        names none), with the dates a parsed query names. Online only is applied to the page (_finish)."""
        dates = parsed.dates if parsed else None
        return wordsearch.Filters(
            after=self.after,
            before=self.before,
            root_id=cat.find_root(self.root).id if self.root else None,
            camera=self.camera,
            folder=self.folder,
            place=self.place,
            dates=tuple(dates.sql_ranges()) if dates and not dates.yearly else None,
            yearly=dates.sql_yearly() if dates else None,
        )


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
    fallback: NoModelError | None = None  # why a search by meaning was done by words, places and names alone
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
            notes.append(
                f"No model installed, so this searches {self.fallback.SEARCHED_WITHOUT}. "
                "To search by meaning, " + self.fallback.hint
            )
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
    outcome.results = outcome.results[: outcome.query.k]
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
    _embed_ahead(parsed, query, searcher)
    with catalog() as cat:
        filters = query.filters.resolved(cat, parsed)
        words = WordHits.find(cat, parsed, filters, _depth(query)) if parsed.searches_anything() else None
        clock.lap("words")
    if words is None and not parsed.exclusions:  # only dates (or nothing searchable): newest first
        results = _by_name(dataclasses.replace(query, text=""), catalog, filters)
        return Outcome(query, results, "recent", 0.0, parsed=parsed, stages=stages)
    words = words or WordHits()
    look, fallback = _by_look(query, parsed, filters, searcher, words, clock)
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


def _embed_ahead(parsed: ParsedQuery, query: Query, searcher: OpenSearcher) -> None:
    """Start the text model on the look's texts (channels.look_texts), so that it embeds them while the
    words channel reads the full-text tables: the searcher is lent only for the moment it takes to start.
    Whatever goes wrong here (no model, a broken one) is left for the look itself to meet and report."""
    texts = look_texts(parsed) if not query.names_only else []
    if not texts:
        return
    try:
        with searcher() as s:
            if s is not None:
                s.embed_ahead(texts)
    except Exception:  # noqa: BLE001 - the look raises it again where it is handled
        pass


def _depth(query: Query) -> int:
    return max(CHANNEL_MIN, CHANNEL_DEPTH * _fetch(query))


def _by_look(
    query: Query,
    parsed: ParsedQuery,
    filters: wordsearch.Filters,
    searcher: OpenSearcher,
    words: WordHits,
    clock: _Clock,
) -> tuple[Look, NoModelError | None]:
    """The look and the captions' meaning, with the searcher lent for them; an empty Look (and why) when no
    model is installed. An example photo with no model is a NoModelError."""
    with searcher() as s:
        if s is None:
            fallback: NoModelError | None = NoModelError()
        else:
            try:
                with s.one_model():
                    look = look_channel(s, parsed, filters, words, _depth(query))
                    clock.lap("look")
                    # Captions by meaning between the two looks: the text model embeds the second's text
                    # meanwhile.
                    if parsed.meaning_text and query.captions_by_meaning and query.like is None:
                        look.captions = caption_channel(s, parsed, filters, words, _depth(query))
                        clock.lap("captions")
                    second_look(s, parsed, filters, words, _depth(query), look)
                    clock.lap("look")
                return look, None
            except NoModelError as exc:
                fallback = exc
    if query.like is not None:
        raise fallback
    return Look(), fallback


def _fused(words: WordHits, look: Look) -> list[tuple[int, float]]:
    """Every photo any channel found, once, best first, with its fused score; excluded photos dropped."""
    dropped = words.excluded | look.excluded
    fused = fusion.fuse(
        [words.ranking, [r.id for r in look.captions], *([r.id for r in ranking] for ranking in look.rankings)]
    )
    return sorted(((pid, score) for pid, score in fused.items() if pid not in dropped), key=lambda item: -item[1])


def _page(
    order: list[tuple[int, float]], words: WordHits, look: Look, query: Query
) -> tuple[list[tuple[int, float, bool]], int]:
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


def _results(cat: Catalog, page: list[tuple[int, float, bool]], words: WordHits, look: Look) -> list[dict]:
    """The page's results, each with every reason any channel had; the rows of the photos found by their
    look and the words' reasons are read here, for these photos only (one query each)."""
    found: dict[int, Result] = {}
    by_look: dict[int, Hit] = {}
    for hit in look.results:  # a photo both looks found shows the first one's similarity
        by_look.setdefault(hit.id, hit)
    looked = [pid for pid, _, _ in page if pid in by_look]
    if looked:
        for row in wordsearch.search_name(cat, ids=looked, limit=None):
            found[row["id"]] = by_look[row["id"]].result(row)
    for result in look.captions:
        if result.id in found:
            merge_reasons(found[result.id], result)
        else:
            found[result.id] = dataclasses.replace(result, matched=list(result.matched))
    ranked = set(words.ranking)
    held = [pid for pid, _, _ in page if pid in ranked]
    if held and words.match:
        for row in wordsearch.search_name(cat, match=words.match, ids=held, limit=None):
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
    opened: list[Searcher] = []

    @contextmanager
    def searcher() -> Iterator[Searcher]:  # one searcher for the query, opened when first asked for
        if not opened:
            opened.append(_open_searcher(cfg))
        yield opened[0]

    try:
        return find(query, lambda: open_catalog(cfg), searcher)
    finally:
        for s in opened:
            s.close()


def _open_searcher(cfg: Config) -> "Searcher":
    from photod.search.searcher import Searcher

    return Searcher.from_config(cfg)


def _fetch(query: Query) -> int:
    return query.k * (ONLINE_OVERFETCH if query.filters.online_only else 1)


def _by_name(query: Query, catalog: OpenCatalog, filters: wordsearch.Filters | None = None) -> list[dict]:
    """Caption, filename and folder matches of the name words and the text, newest first."""
    words = " ".join(w for w in (query.name, query.text.strip()) if w) or None
    with catalog() as cat:
        where = query.filters.resolved(cat) if filters is None else filters
        rows = wordsearch.search_name(cat, words, filters=where, limit=_fetch(query))
    return [Result.from_row(r, None, words).to_json() for r in rows]
