"""Calendar points: a year, a month, a day or a part of them (2019年7月下旬), with or without a year, as the
days they mean. Kept as fields, not only as days, so that a range can lend its start's year to its end
(2019年7月-8月: the end is 2019年8月)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from photod.search.dates.span import DateSpan, last_day, months_range, not_a_date
from photod.search.dates.words import MONTH_PARTS, YEAR_PARTS


@dataclass(frozen=True)
class Point:
    year: int | None = None
    month: int | None = None
    day: int | None = None
    part: str | None = None  # a key of YEAR_PARTS (with no month) or of MONTH_PARTS


def point_span(text: str, p: Point) -> DateSpan | None:
    """The days of a point; None for a day alone (15日), which is read only as the end of a range."""
    if p.month is None:
        if p.day is not None:
            return None
        first, last = YEAR_PARTS[p.part] if p.part else (1, 12)
        if p.year is None:
            return DateSpan(text, yearly=((first, 1), (last, last_day(2000, last))))
        return DateSpan(text, (months_range(p.year, first, last),))
    if not 1 <= p.month <= 12:
        raise not_a_date(text, "months are 1 to 12")
    if p.day is not None:
        return _day(text, p.year, p.month, p.day)
    d1, d2 = MONTH_PARTS[p.part] if p.part else (1, 0)
    if p.year is None:
        return DateSpan(text, yearly=((p.month, d1), (p.month, d2 or last_day(2000, p.month))))
    return DateSpan(text, ((dt.date(p.year, p.month, d1), dt.date(p.year, p.month, d2 or last_day(p.year, p.month))),))


def _day(text: str, year: int | None, month: int, day: int) -> DateSpan:
    try:
        when = dt.date(year or 2000, month, day)  # with no year, a leap year: 2月29日 exists in some years
    except ValueError:
        raise not_a_date(text, f"{year or ''}{'-' if year else ''}{month:02d}-{day:02d} does not exist") from None
    if year is None:
        return DateSpan(text, yearly=((month, day), (month, day)))
    return DateSpan(text, ((when, when),))
