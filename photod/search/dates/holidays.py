"""Holidays and lunar dates as days: fixed holidays, the lunar festivals (lunardate), and the n-th weekday
ones (母亲节). A holiday with no year is every year's: a window of every year where its days are fixed, else
each year's days from FIRST_YEAR to this year."""

from __future__ import annotations

import datetime as dt

from lunardate import LunarDate

from photod.search.dates.span import ONE_DAY, DateError, DateSpan, Range, window_in
from photod.search.dates.words import FIXED_HOLIDAYS, LUNAR_HOLIDAYS, WEEKDAY_HOLIDAYS

# First year a yearless lunar holiday (春节 of any year) is spelled out for (to this year): digital photos.
FIRST_YEAR = 1970


def holiday(text: str, name: str, year: int | None, today: dt.date) -> DateSpan:
    """The days of a holiday (its one name, a key of the words' tables) in a year, or of every year."""
    if name in FIXED_HOLIDAYS:
        window = FIXED_HOLIDAYS[name]
        if year is None:
            return DateSpan(text, yearly=window)
        return DateSpan(text, (window_in(year, window),))
    if year is not None:
        return DateSpan(text, (_dated(text, name, year),))
    return DateSpan(text, tuple(_dated(text, name, y) for y in range(FIRST_YEAR, today.year + 1)))


def _dated(text: str, name: str, year: int) -> Range:
    if name in WEEKDAY_HOLIDAYS:
        month, weekday, n = WEEKDAY_HOLIDAYS[name]
        first = dt.date(year, month, 1)
        day = first + ((weekday - first.weekday()) % 7 + 7 * (n - 1)) * ONE_DAY
        return day, day
    (month, day_of_month), first_offset, last_offset = LUNAR_HOLIDAYS[name]
    centre = lunar_day(text, year, month, day_of_month)
    return centre + first_offset * ONE_DAY, centre + last_offset * ONE_DAY


def lunar_day(text: str, year: int, month: int, day: int) -> dt.date:
    """A day of the lunar calendar (its year, month and day; leap months aside) as a day of ours."""
    try:
        solar: dt.date = LunarDate(year, month, day).to_solar_date()
    except ValueError:
        raise DateError(
            f"「{text}」 is not a date (lunar {year}-{month:02d}-{day:02d} does not exist, or is outside the "
            "lunar calendar photod knows, 1900-2099), so no date filter was applied"
        ) from None
    return solar


def lunar_span(text: str, year: int | None, month: int, day: int | None, today: dt.date) -> DateSpan:
    """A lunar day or a whole lunar month (腊月), of a lunar year or of every year (skipping the years in
    which that day does not exist: 腊月三十 in a year whose 腊月 has 29 days)."""
    if not 1 <= month <= 12 or (day is not None and not 1 <= day <= 30):
        raise DateError(
            f"「{text}」 is not a date (lunar months are 1 to 12, days 1 to 30), so no date filter was applied"
        )
    if year is not None:
        return DateSpan(text, (_lunar_range(text, year, month, day),))
    ranges = []
    for y in range(FIRST_YEAR, today.year + 1):
        try:
            ranges.append(_lunar_range(text, y, month, day))
        except DateError:
            continue
    if not ranges:
        raise DateError(f"「{text}」 is not a date (no lunar year has that day), so no date filter was applied")
    return DateSpan(text, tuple(ranges))


def _lunar_range(text: str, year: int, month: int, day: int | None) -> Range:
    if day is not None:
        when = lunar_day(text, year, month, day)
        return when, when
    first = lunar_day(text, year, month, 1)
    try:
        return first, lunar_day(text, year, month, 30)
    except DateError:
        return first, lunar_day(text, year, month, 29)
