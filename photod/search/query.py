"""The query language: what a person types into the search box (or after `photod search`), understood.

    2019年夏天 三亚 海边 -人      a date, a place, a look, an exclusion
    "三亚湾" 菜单                 these exact characters (in text in photos, captions, names, places) and a look
    cat + 2:dog - grass          terms combined, one weighted twice
    like:IMG_0042.JPG -人         an example photo as a term (a path or a photo id)

Date words become a date filter (photod.search.dates); words naming a place the library has photos of are
searched among places, names, captions and text, but not by look (a photo does not look like 三亚), so
photos taken there rise to the top of what looks right; `-词` excludes, `"…"` requires those characters,
`N:词` weights a term, `+` starts a new term, `like:` is an example photo. What is left is searched by
meaning and in the text channels. Nothing here can fail: what the parser does not understand is searched as
plain words, and what it drops it says in `notes`.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from dataclasses import dataclass, field
from typing import Collection

from photod.search.dates import DateSpan, date_filter, find_dates

MAX_CHARS = 1000  # a longer query is cut here (CLIP reads 52 tokens; FTS would AND thousands of words)
MAX_TERMS = 16
MAX_WEIGHT = 10.0
PLACE_CHARS = range(2, 9)  # lengths of place names looked for inside a run of Chinese (三亚海边 -> 三亚)

MINUS_SIGN = "\u2212"  # read as `-` (the CLI passes `-人` on with it, so argparse does not take it for an option)

_QUOTES = str.maketrans({**{c: '"' for c in "“”„‟「」『』〝〞＂"}, MINUS_SIGN: "-"})
_QUOTED = re.compile(r'(-?)"([^"]*)"')
_LIKE = re.compile(r"(?<!\S)(-?)like:(\S+)", re.IGNORECASE)
_WEIGHT = re.compile(r"^(\d{1,3}(?:\.\d+)?)[:：](.+)$")
_CJK_RUN = re.compile(r"^[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+$")


@dataclass(frozen=True)
class Term:
    """One thing to look for (or, among exclusions, to keep out)."""

    text: str
    weight: float = 1.0
    exact: bool = False  # "…": these characters, in the text channels only (CLIP cannot read)
    like: str | None = None  # an example photo: a path or a photo id


@dataclass(frozen=True)
class ParsedQuery:
    raw: str
    terms: tuple[Term, ...] = ()
    exclusions: tuple[Term, ...] = ()
    dates: DateSpan | None = None
    places: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default=())  # what was dropped or could not be used, for the person

    @property
    def words(self) -> list[str]:
        """The words the text channels look for: every word of every term (not examples or exact phrases)
        and the places."""
        return [w for t in self.terms if t.like is None and not t.exact for w in t.text.split()] + list(self.places)

    @property
    def phrases(self) -> list[str]:
        return [t.text for t in self.terms if t.exact]

    @property
    def meaning_terms(self) -> list[Term]:
        """The terms searched by meaning (CLIP): words and examples, not exact phrases."""
        return [t for t in self.terms if not t.exact]

    @property
    def meaning_text(self) -> str:
        """The words searched by meaning, as one text (what caption meanings are compared with)."""
        return " ".join(t.text for t in self.meaning_terms if t.like is None)

    def searches_anything(self) -> bool:
        return bool(self.terms or self.places)

    def understood(self) -> list[str]:
        """What the parser made of the query, as shown back: 「日期 2019-06-01 … 2019-08-31」, 「地点 三亚」,
        「排除 人」, 「精确 三亚湾」, 「2× 狗」, 「例图 IMG_0042.JPG」."""
        out = []
        if self.dates:
            out.append(f"日期 {self.dates.describe()}")
        out += [f"地点 {p}" for p in self.places]
        for t in self.terms:
            if t.like is not None:
                out.append(f"例图 {t.like}")
            elif t.exact:
                out.append(f"精确 {t.text}")
            elif t.weight != 1.0:
                out.append(f"{t.weight:g}× {t.text}")
        out += [f"排除 {t.like or t.text}" for t in self.exclusions]
        return out


def parse(text: str, *, today: dt.date, places: Collection[str] = ()) -> ParsedQuery:
    """Understand a query. `places` are the place names (case-folded) the library has photos of."""
    notes: list[str] = []
    text = unicodedata.normalize("NFKC", text or "").translate(_QUOTES)
    text = "".join(" " if unicodedata.category(c) in ("Cc", "Zl", "Zp") else c for c in text)
    if len(text) > MAX_CHARS:
        notes.append(f"the query is {len(text)} characters long; only its first {MAX_CHARS} were searched")
        text = text[:MAX_CHARS]
    terms: list[Term] = []
    exclusions: list[Term] = []
    text = _take_quoted(text, terms, exclusions)
    text = _take_likes(text, terms, exclusions)
    spans, text, problems = find_dates(text, today)
    dates, empty = date_filter(spans)
    notes += problems + empty
    found_places: list[str] = []
    _take_words(text, terms, exclusions, found_places, {p.casefold() for p in places})
    if len(terms) + len(exclusions) > MAX_TERMS:
        notes.append(f"only the first {MAX_TERMS} terms were searched")
        terms = terms[:MAX_TERMS]
        exclusions = exclusions[: max(0, MAX_TERMS - len(terms))]
    return ParsedQuery(text, tuple(terms), tuple(exclusions), dates, tuple(dict.fromkeys(found_places)), tuple(notes))


def _take_quoted(text: str, terms: list[Term], exclusions: list[Term]) -> str:
    """ "…" phrases out of the text; a quote left without its pair is dropped (the words around it stay)."""

    def take(m: re.Match[str]) -> str:
        phrase = " ".join(m.group(2).split())
        if _searchable(phrase):
            (exclusions if m.group(1) else terms).append(Term(phrase, exact=True))
        return " "

    return _QUOTED.sub(take, text).replace('"', " ")


def _take_likes(text: str, terms: list[Term], exclusions: list[Term]) -> str:
    def take(m: re.Match[str]) -> str:
        (exclusions if m.group(1) else terms).append(Term(m.group(2), like=m.group(2)))
        return " "

    return _LIKE.sub(take, text)


def _take_words(
    text: str, terms: list[Term], exclusions: list[Term], found_places: list[str], places: set[str]
) -> None:
    """The rest: words grouped into terms (a new term at `+` or at a weighted word), `-` excluding."""
    group: list[str] = []
    negate_next = False

    def close() -> None:
        if group:
            terms.append(Term(" ".join(group)))
            group.clear()

    for token in _join_place_phrases(text.split(), places):
        if set(token) <= {"+", "-"}:  # an operator on its own: `cat + dog - grass`
            close()
            negate_next = "-" in token
            continue
        if token[0] == "+":
            close()
        negated = negate_next or token.lstrip("+")[0] == "-"
        negate_next = False
        token = token.lstrip("+-")
        weight, token = _weight(token)
        if not _searchable(token):
            continue
        if negated:
            exclusions.append(Term(token, weight))
            continue
        token = _without_places(token, places, found_places)
        if not token:
            continue
        if weight != 1.0:
            close()
            terms.append(Term(token, weight))
        else:
            group.append(token)
    close()


def _weight(token: str) -> tuple[float, str]:
    m = _WEIGHT.match(token)
    if not m:
        return 1.0, token
    weight = float(m.group(1))
    if not 0 < weight <= MAX_WEIGHT:
        return 1.0, m.group(2)
    return weight, m.group(2)


def _searchable(word: str) -> bool:
    """Holds a letter or digit (a word of only punctuation, symbols or emoji finds nothing)."""
    return any(c.isalnum() for c in word)


def _join_place_phrases(tokens: list[str], places: set[str]) -> list[str]:
    """Consecutive words that together name a known place (Hong Kong, New York) become one word."""
    out: list[str] = []
    i = 0
    while i < len(tokens):
        for n in (3, 2):
            if i + n <= len(tokens) and " ".join(tokens[i : i + n]).casefold() in places:
                out.append(" ".join(tokens[i : i + n]))
                i += n
                break
        else:
            out.append(tokens[i])
            i += 1
    return out


def _without_places(token: str, places: set[str], found: list[str]) -> str:
    """The token with the place names in it taken out (into `found`): the whole word (三亚, Sanya), or,
    in a run of Chinese, the longest known names inside it (三亚海边 -> 三亚, leaving 海边)."""
    if token.casefold() in places:
        found.append(token)
        return ""
    if not _CJK_RUN.match(token) or not places:
        return token
    rest, i = "", 0
    while i < len(token):
        for n in sorted(PLACE_CHARS, reverse=True):
            if i + n <= len(token) and token[i : i + n] in places:
                found.append(token[i : i + n])
                rest += " "
                i += n
                break
        else:
            rest += token[i]
            i += 1
    return " ".join(rest.split())
