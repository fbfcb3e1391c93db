"""The channels a query is searched in, each giving its own ranking for photod.search.fusion to fuse:

- the words: photos whose names, captions, text in the photo or place hold the query's words (the full-text
  tables, photod.store.textsearch), more of the words first;
- the look: photos whose image embedding matches the query's (CLIP, through photod.search.searcher), with
  the query's own cutoff;
- captions by meaning: photos whose captions mean what the words say.

Exclusions and exact phrases act here too: a word channel's exclusion drops photos that hold the word, the
look's drops photos that stand out for it; a quoted phrase narrows every channel to the photos holding it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from photod.search.query import ParsedQuery, Term
from photod.search.results import Result
from photod.store import wordsearch
from photod.store.catalog import Catalog
from photod.store.textsearch import fts_any
from photod.store.wordsearch import Filters

if TYPE_CHECKING:
    from photod.search.searcher import Hit, MeaningHits, Searcher


@dataclass
class WordHits:
    """The words channel: photos holding the query's words in names, captions, text or places, those
    holding more of them first; what its exclusions drop; what its quoted phrases require (None: nothing)."""

    ranking: list[int] = field(default_factory=list)
    excluded: set[int] = field(default_factory=set)
    required: set[int] | None = None
    allowed: set[int] | None = None  # the photos the filters and phrases leave (None: all), for every channel
    found_words: set[str] = field(default_factory=set)  # the words some photo holds as text
    match: str | None = None  # one FTS expression for all the words: why each photo on the page matched
    said: str = ""

    @classmethod
    def find(cls, cat: Catalog, parsed: ParsedQuery, filters: Filters, depth: int) -> "WordHits":
        """Each word's photos (a set from the full-text tables: fast, however common the word), narrowed by
        the filters listed once; rows are read later, for the photos on the page only."""
        hits = cls()
        held = {phrase: wordsearch.word_hits(cat, phrase, exact=True) for phrase in parsed.phrases}  # each read once
        for found in held.values():
            hits.required = found if hits.required is None else hits.required & found
        for term in parsed.exclusions:
            if term.like is None:
                hits.excluded |= wordsearch.word_hits(cat, term.text, exact=term.exact)
        # The filters are listed once, here, for every channel (an unfiltered query lists only the rows words
        # never show, which are few).
        allowed = set(wordsearch.matching_ids(cat, filters=filters)) if filters.active() else None
        unsearchable = wordsearch.unsearchable_ids(cat) if allowed is None else set()
        if hits.required is not None:
            allowed = hits.required - unsearchable if allowed is None else allowed & hits.required
        hits.allowed = allowed
        wanted = [(w, False) for w in parsed.words] + [(p, True) for p in parsed.phrases]
        if not wanted:
            return hits
        gone = hits.excluded | (unsearchable if allowed is None else set())
        matched: dict[int, int] = {}  # photo -> how many of the words it holds
        for word, exact in wanted:
            found = held[word] if exact else wordsearch.word_hits(cat, word)
            found = (found if allowed is None else found & allowed) - gone
            if found:
                hits.found_words.add(word)
            for i in found:
                matched[i] = matched.get(i, 0) + 1
        # More of the words first; among equals, the later cataloged first.
        hits.ranking = sorted(matched, key=lambda pid: (-matched[pid], -pid))[:depth]
        hits.match, hits.said = fts_any(wanted), " ".join(w for w, _ in wanted)
        return hits


def look_texts(parsed: ParsedQuery) -> list[str]:
    """The texts the look embeds whatever the words channel finds: the terms, the exclusions and the words
    as one text (captions by meaning); photod.search.finder starts embedding them as soon as the query is
    parsed (Searcher.embed_ahead), while the words channel runs."""
    terms = parsed.meaning_terms
    if not terms:
        return []
    return [t.text for t in (*terms, *parsed.exclusions) if t.like is None] + (
        [parsed.meaning_text] if parsed.meaning_text else []
    )


def look_channel(s: Searcher, parsed: ParsedQuery, filters: Filters, words: WordHits, depth: int) -> Look:
    """The look (CLIP): photos whose look matches the terms, with the query's cutoff.

    Words the library holds as text (a caption's 小白, a sign's 海鲜) may name what is captioned or written
    rather than what is seen, so when a term mixes them with other words the look is asked twice: for the
    whole term and for the term without them (小白 蓝色: also 蓝色). Both rankings take part in the fusion
    (summing the two embeddings instead was measured worse: the sum can point at neither). The second is
    asked by second_look, once the caller has done what else it can while the text model embeds the term
    without the held words (captions by meaning: photod.search.finder)."""
    terms = parsed.meaning_terms
    if not terms:
        return Look()
    s.embed_ahead(look_texts(parsed))  # one text-model call, usually begun when the query was parsed
    look = Look(seen=_without_words(terms, words.found_words))
    if look.seen:
        s.embed_ahead([t.text for t in look.seen if t.like is None])  # while the first look runs
    look.hits.append(s.by_meaning(terms, parsed.exclusions, depth, allowed=words.allowed, filters=filters))
    return look


def second_look(s: Searcher, parsed: ParsedQuery, filters: Filters, words: WordHits, depth: int, look: Look) -> None:
    """The look for the terms without the words held as text, when look_channel found it worth asking."""
    if look.seen:
        look.hits.append(s.by_meaning(look.seen, parsed.exclusions, depth, allowed=words.allowed, filters=filters))


def caption_channel(s: Searcher, parsed: ParsedQuery, filters: Filters, words: WordHits, depth: int) -> list[Result]:
    """Photos whose captions mean what the query's words say (photod.search.captionmeaning)."""
    found = s.by_captions(parsed.meaning_text, k=depth, filters=filters)
    return found if words.required is None else [r for r in found if r.id in words.required]


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
class Look:
    """The look's rankings (one, or two: see look_channel) and the captions found by meaning."""

    hits: list[MeaningHits] = field(default_factory=list)
    captions: list[Result] = field(default_factory=list)
    seen: list[Term] = field(default_factory=list)  # the terms without the words held as text (second_look)

    @property
    def rankings(self) -> list[list[Hit]]:
        return [h.results for h in self.hits]

    @property
    def results(self) -> list[Hit]:
        return [r for h in self.hits for r in h.results]

    @property
    def excluded(self) -> set[int]:
        return set().union(*(h.excluded for h in self.hits))

    def matches(self, result: Hit) -> bool:
        return any(h.matches(result) for h in self.hits)
