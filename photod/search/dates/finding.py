"""Finding the date expressions in a query: each pattern's matches (photod.search.dates.patterns), then two
next to each other joined into a range (2019年7月-8月, from 2019 to 2020), then the words around one that
change it (2000年以后, before 2019, last christmas). A word that would change a date but is not understood
(2019年前后) leaves the date unclaimed, searched as words: never silently a different date."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, replace

from photod.search.dates.patterns import PATTERNS, Reader
from photod.search.dates.points import Point, point_span
from photod.search.dates.span import EARLIEST, ONE_DAY, DateError, DateSpan, occurrence, span_between
from photod.search.dates.words import NORMALISE

_CONNECTOR = re.compile(r"\s*(?:起\s*)?(?:到|至|~|～|〜|—|–|－|-|to|until|till|through|thru|and)\s*", re.I)
_START_ONLY = re.compile(r"\s*起\s*")  # 2019年起2020年止: 起…止
_RANGE_BEFORE = re.compile(r"(?:从|自|由|\bfrom\s+|\bbetween\s+)$", re.I)
_RANGE_AFTER = re.compile(r"\s*(?:为止|止|之间|期间|间)")
_OPEN_BEFORE = re.compile(r"(?P<w>\bsince|\bfrom|\bafter|\bbefore|\buntil|\btill|\bup to|从|自)\s*$", re.I)
_OPEN_AFTER = [
    ("since", re.compile(r"\s*(?:以后|之后|以来|开始|起至今|至今|到现在|到今天|起(?!床|飞|来)|后(?![\u4e00-\u9fff]))")),
    (
        "since",
        re.compile(r"\s+(?:onwards?|and later|or later|and after|(?:to|until|till) (?:now|date|the present))\b", re.I),
    ),
    ("before", re.compile(r"\s*(?:以前|之前|前(?![\u4e00-\u9fff]))")),
    ("before", re.compile(r"\s+(?:and before|or earlier|and earlier)\b", re.I)),
    ("until", re.compile(r"\s*为止")),
]
_OPEN_PREFIX = {"since": "since", "from": "since", "从": "since", "自": "since", "after": "after", "before": "before"}
_UNREAD_AFTER = re.compile(r"前后|左右|上下|初|底|末|中旬|上旬|下旬|以前|以后|之前|之后|以来")
_CN_DAY_AFTER = re.compile(r"[二三]?十[一二三四五六七八九]?(?![\u4e00-\u9fff])|廿")  # 八月十五 (lunar, unsaid)
_WHICH = re.compile(r"\b(?P<w>last|this|next)\s+$", re.I)


@dataclass(frozen=True)
class Found:
    start: int
    end: int
    span: DateSpan | None  # None: an error, or a day alone (15日), which only ends a range
    point: Point | None = None
    error: str | None = None
    final: bool = False  # a range or a modified date: nothing around it changes it further


def find_dates(text: str, today: dt.date) -> tuple[list[DateSpan], str, list[str]]:
    """The date expressions in `text`, the text with them taken out (each replaced by a space), and
    problems to tell the person (a date that names no real day is dropped from the query, with a note)."""
    norm = text.translate(NORMALISE)  # one character for one: positions in `norm` are positions in `text`
    found = _joined(text, norm, _atoms(text, norm, today))
    kept = [f for f in (_modified(text, norm, f, today) for f in found) if f is not None]
    rest, at = [], 0
    for f in kept:
        rest += [text[at : f.start], " "]
        at = f.end
    return [f.span for f in kept if f.span], "".join(rest) + text[at:], [f.error for f in kept if f.error]


def _atoms(text: str, norm: str, today: dt.date) -> list[Found]:
    found = []
    masked = norm
    for pattern, reader in PATTERNS:
        taken = [f for m in pattern.finditer(masked) if (f := _read(text, m, reader, today))]
        for f in taken:
            masked = masked[: f.start] + "\0" * (f.end - f.start) + masked[f.end :]
        found += taken
    return sorted(found, key=lambda f: f.start)


def _read(text: str, m: re.Match[str], reader: Reader, today: dt.date) -> Found | None:
    words = text[m.start() : m.end()].strip()
    try:
        reading = reader(m.groupdict(), words, today)
        point = reading if isinstance(reading, Point) else None
        span = point_span(words, point) if point else reading if isinstance(reading, DateSpan) else None
    except DateError as exc:
        return Found(m.start(), m.end(), None, error=str(exc))
    except ValueError:  # numerals that read as no number (words.number): plain words, not a date
        return None
    if span is None and point is None:
        return None
    return Found(m.start(), m.end(), span, point)


# ---- ranges ---------------------------------------------------------------------------------------------


def _joined(text: str, norm: str, found: list[Found]) -> list[Found]:
    out, i = [], 0
    while i < len(found):
        joined = _join(text, norm, found[i], found[i + 1]) if i + 1 < len(found) else None
        out.append(joined or found[i])
        i += 2 if joined else 1
    return out


def _join(text: str, norm: str, a: Found, b: Found) -> Found | None:
    """Two dates with a connector between them (到, 至, -, ~, to, until; 起…止) as one range."""
    between, after = norm[a.end : b.start], _RANGE_AFTER.match(norm, b.end)
    if not _CONNECTOR.fullmatch(between) and not (_START_ONLY.fullmatch(between) and after and "止" in after[0]):
        return None
    before = _RANGE_BEFORE.search(norm, 0, a.start)
    if re.fullmatch(r"\s+[-－]", between):  # `2019年 -2020年`: an exclusion, not a range
        return None
    if between.strip().lower() == "and" and not (before and "between" in before[0].lower()):
        return None
    start, end = before.start() if before else a.start, after.end() if after else b.end
    words = text[start:end].strip()
    if a.error or b.error:  # one end names no day: the range is dropped whole, with that end's note
        return Found(start, end, None, error=a.error or b.error, final=True)
    try:
        first, last = _completed(words, a, b)
        span = span_between(words, first, last) if first and last else None
    except DateError as exc:
        return Found(start, end, None, error=str(exc), final=True)
    return Found(start, end, span, final=True) if span else None


def _completed(words: str, a: Found, b: Found) -> tuple[DateSpan | None, DateSpan | None]:
    """The two ends, the year (and month) one lacks taken from the other: 2019年7月-8月 ends in 2019年8月,
    July to August 2019 starts in July 2019, 7月1日到15日 ends on 7月15日; 2019年12月到2月 ends in 2020."""
    pa, pb = a.point, b.point
    if pa is None or pb is None:
        return a.span, b.span
    if pb.year is None and pa.year is not None:
        end = replace(pb, year=pa.year, month=pb.month if pb.month is not None else pa.month)
        later = replace(end, year=pa.year + 1)
        return a.span, _not_before(point_span(words, end), a.span, point_span(words, later) if pb.month else None)
    if pa.year is None and pb.year is not None:
        start = point_span(words, replace(pa, year=pb.year))
        if start and b.span and start.ranges and start.ranges[0][0] > b.span.ranges[-1][1]:
            start = point_span(words, replace(pa, year=pb.year - 1))
        return start, b.span
    if pb.month is None and pb.day is not None and pa.month is not None:
        return a.span, point_span(words, replace(pb, month=pa.month))
    return a.span, b.span


def _not_before(end: DateSpan | None, start: DateSpan | None, later: DateSpan | None) -> DateSpan | None:
    """`end`, or `later` where `end` comes before `start` (the year after it)."""
    if end and start and end.ranges and start.ranges and later and end.ranges[-1][1] < start.ranges[0][0]:
        return later
    return end


# ---- the words around one date --------------------------------------------------------------------------


def _modified(text: str, norm: str, f: Found, today: dt.date) -> Found | None:
    """The date as the words around it change it, or None where those words are not understood."""
    if f.error or f.final:
        return f
    if f.span is None:
        return None  # a day alone that ends no range
    opened = _open(norm, f)
    if opened:
        return _opened(text, f, f.span, today, *opened)
    which = _WHICH.search(norm, 0, f.start)
    if which and (f.span.yearly or len(f.span.ranges) > 1):
        return _one_occurrence(text, f, f.span, today, which)
    return None if _unread(norm, f) else f


def _open(norm: str, f: Found) -> tuple[str, int, int] | None:
    """How a word before or after a date opens it (since, after, before, until), and the stretch it covers."""
    prefix = _OPEN_BEFORE.search(norm, 0, f.start)
    how = _OPEN_PREFIX.get(prefix["w"].lower(), "until") if prefix else None
    for kind, pattern in _OPEN_AFTER:
        if suffix := pattern.match(norm, f.end):
            if how not in (None, kind) and not (how == "since" and kind == "since"):
                return None
            return kind, prefix.start() if prefix else f.start, suffix.end()
    return (how, prefix.start() if prefix else f.start, f.end) if how and prefix else None


def _opened(text: str, f: Found, span: DateSpan, today: dt.date, how: str, start: int, end: int) -> Found | None:
    """2000年以后: 2000-01-01 to today; before 2019: up to 2018-12-31; after 2019: from 2020-01-01."""
    if span.yearly or len(span.ranges) != 1:
        return None  # 7月以后, 春节以前: not read, so not claimed
    words = text[start:end].strip()
    first, last = span.ranges[0]
    bounds = {
        "since": (first, today),
        "after": (last + ONE_DAY, today),
        "before": (EARLIEST, first - ONE_DAY),
        "until": (EARLIEST, last),
    }[how]
    if bounds[1] < bounds[0]:
        error = f"「{words}」 holds no day up to today, so no date filter was applied"
        return Found(start, end, None, error=error, final=True)
    return Found(start, end, DateSpan(words, (bounds,)), final=True)


def _one_occurrence(text: str, f: Found, span: DateSpan, today: dt.date, which: re.Match[str]) -> Found | None:
    """last christmas: the latest that has ended before today; this summer: this year's."""
    if which["w"].lower() == "next":
        return None
    words = text[which.start() : f.end].strip()
    day_range = occurrence(span, which["w"].lower(), today)
    if day_range is None:
        return Found(which.start(), f.end, None, error=f"「{words}」 is no day photod can name", final=True)
    return Found(which.start(), f.end, DateSpan(words, (day_range,)), final=True)


def _unread(norm: str, f: Found) -> bool:
    """A word right before or after the date that would change it and is not read (2019年前后, 上周日,
    下周末, 八月十五 without 农历)."""
    after, words = norm[f.end :], norm[f.start : f.end]
    if _UNREAD_AFTER.match(after):
        return True
    if f.point and f.point.month is not None and f.point.day is None and _CN_DAY_AFTER.match(after):
        return True
    if words.endswith(("周", "星期", "礼拜")) and after[:1] in tuple("一二三四五六日天"):
        return True
    return norm[f.start - 1 : f.start] in ("大", "上", "下") and words[:1] in tuple("前昨今上这本去周")
