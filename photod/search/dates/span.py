"""DateSpan, the days a date expression means, and the calendar arithmetic spans are made with."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

ONE_DAY = dt.timedelta(days=1)
# The first day of an open range (2000年以前): no library holds a photo taken before it.
EARLIEST = dt.date(1900, 1, 1)

Range = tuple[dt.date, dt.date]
MonthDay = tuple[int, int]
Window = tuple[MonthDay, MonthDay]


@dataclass(frozen=True)
class DateSpan:
    """The days a date expression means: absolute ranges, or a window of every year (`yearly`, as
    ((month, day), (month, day)), inclusive, wrapping over New Year when the end comes first)."""

    text: str  # as recognised in the query
    ranges: tuple[Range, ...] = ()  # inclusive first and last day
    yearly: Window | None = None

    def describe(self) -> str:
        """What it means, as shown back to the person: '2019-06-01 … 2019-08-31', '每年 06-01 … 08-31'."""
        if self.yearly:
            (m1, d1), (m2, d2) = self.yearly
            return f"每年 {m1:02d}-{d1:02d} … {m2:02d}-{d2:02d}"
        if len(self.ranges) > 3:
            return f"每年 {self.text}"
        return ", ".join(f"{'' if a == EARLIEST else a.isoformat() + ' '}… {b.isoformat()}" for a, b in self.ranges)

    def sql_ranges(self) -> list[tuple[str, str]]:
        """Absolute ranges as ISO [first day, day after last) strings, as the catalog compares dates."""
        return [(a.isoformat(), (b + ONE_DAY).isoformat()) for a, b in self.ranges]

    def sql_yearly(self) -> tuple[str, str] | None:
        """The yearly window as 'MM-DD' bounds, inclusive."""
        if not self.yearly:
            return None
        (m1, d1), (m2, d2) = self.yearly
        return f"{m1:02d}-{d1:02d}", f"{m2:02d}-{d2:02d}"

    def is_empty(self) -> bool:
        return not self.yearly and not self.ranges


class DateError(ValueError):
    """A date expression that names no real day (2019年2月30日, a range that ends before it starts); the
    message names it."""


def not_a_date(text: str, why: str) -> DateError:
    return DateError(f"「{text}」 is not a date ({why}), so no date filter was applied")


def last_day(year: int, month: int) -> int:
    following = dt.date(year + (month == 12), month % 12 + 1, 1)
    return (following - ONE_DAY).day


def day_in(year: int, month: int, day: int) -> dt.date:
    """The day, or the month's last day where the month is shorter (2月29日 of 2019 is 2019-02-28)."""
    return dt.date(year, month, min(day, last_day(year, month)))


def shift_months(day: dt.date, months: int) -> dt.date:
    """The same day `months` later (earlier when negative), or the month's last day where it is shorter."""
    index = day.year * 12 + day.month - 1 + months
    return day_in(index // 12, index % 12 + 1, day.day)


def months_range(year: int, first: int, last: int) -> Range:
    """Months first to last of a year (last may pass December into the next year: a winter)."""
    end_year, end_month = year + (last - 1) // 12, (last - 1) % 12 + 1
    return dt.date(year, first, 1), dt.date(end_year, end_month, last_day(end_year, end_month))


def window_in(year: int, window: Window) -> Range:
    """A yearly window's days in a year (its end in the next year when it wraps over New Year)."""
    (m1, d1), (m2, d2) = window
    end_year = year + ((m2, d2) < (m1, d1))
    return day_in(year, m1, d1), day_in(end_year, m2, d2)


def within_yearly(first: dt.date, last: dt.date, window: Window) -> list[Range]:
    """The parts of [first, last] that fall in a yearly window."""
    out = []
    for year in range(first.year - 1, last.year + 1):
        start, end = window_in(year, window)
        lo, hi = max(first, start), min(last, end)
        if lo <= hi:
            out.append((lo, hi))
    return out


def occurrence(span: DateSpan, which: str, today: dt.date) -> Range | None:
    """One occurrence of a span that recurs (every year's window, or each year's lunar days): `last`, the
    latest that has ended before today; `this`, the one today is in, else the one that starts this year."""
    if span.yearly:
        candidates = [window_in(y, span.yearly) for y in range(today.year - 2, today.year + 1)]
    else:
        candidates = list(span.ranges)
    if which == "last":
        ended = [r for r in candidates if r[1] < today]
        return max(ended) if ended else None
    current = [r for r in candidates if r[0] <= today <= r[1]] or [r for r in candidates if r[0].year == today.year]
    return current[0] if current else None


def intersect(spans: list[DateSpan]) -> DateSpan | None:
    """Several date words in one query narrow each other (2019年 and 夏天: the summer of 2019); None when
    there are none. Absolute ranges are intersected; a yearly window keeps the absolute days that fall in it;
    yearly windows alone are intersected as windows. The result may be empty (2019年 and 2020年)."""
    if not spans:
        return None
    if len(spans) == 1:
        return spans[0]
    text = " ".join(s.text for s in spans)
    windows = [s.yearly for s in spans if s.yearly]
    absolute = [s for s in spans if not s.yearly]
    if not absolute:
        return DateSpan(text, yearly=_common_window(windows))
    ranges = list(absolute[0].ranges)
    for other in absolute[1:]:
        ranges = [(max(a, c), min(b, d)) for a, b in ranges for c, d in other.ranges if max(a, c) <= min(b, d)]
    for window in windows:
        ranges = [r for a, b in ranges for r in within_yearly(a, b, window)]
    return DateSpan(text, tuple(ranges))


def date_filter(spans: list[DateSpan]) -> tuple[DateSpan | None, list[str]]:
    """The filter the date words of a query make together, and what to tell the person: where they have no
    day in common the filter is dropped, and the note says so (a search that silently finds nothing is worse)."""
    span = intersect(spans)
    if span is None or not span.is_empty():
        return span, []
    words = " ".join(f"「{s.text}」" for s in spans)
    return None, [f"{words} have no day in common, so no date filter was applied"]


def _common_window(windows: list[Window]) -> Window | None:
    """The days of the year every window holds, as one window (None when there are none). Where they share
    two separate stretches (a winter and a window that wraps the other way), the first window typed is kept."""
    jan1 = dt.date(2000, 1, 1)  # a leap year: 02-29 is a day of the year (a wrapping window ends in it)
    days: set[int] | None = None
    for window in windows:
        first, last = window_in(1999 if window[1] < window[0] else 2000, window)
        held = {((first - jan1).days + n) % 366 + 1 for n in range((last - first).days + 1)}
        days = held if days is None else days & held
    if not days:
        return None
    starts = [d for d in sorted(days) if (d - 2) % 366 + 1 not in days]
    if len(starts) != 1 and len(days) < 366:
        return windows[0]
    start = starts[0] if starts else 1
    end = start
    while end % 366 + 1 in days and end % 366 + 1 != start:
        end = end % 366 + 1
    as_md = [jan1 + (d - 1) * ONE_DAY for d in (start, end)]
    return (as_md[0].month, as_md[0].day), (as_md[1].month, as_md[1].day)


def ends_before(text: str) -> DateError:
    return DateError(f"「{text}」 is not a date range (it ends before it starts), so no date filter was applied")


def span_between(text: str, a: DateSpan, b: DateSpan) -> DateSpan | None:
    """A range: from the first day of `a` to the last of `b` (2019到2020年, 7月到9月, 春节到元宵 of each year);
    None where the two cannot make one (a yearly window and absolute days)."""
    if a.yearly and b.yearly:
        window = (a.yearly[0], b.yearly[1])
        if window[1] < window[0] and window[0][0] == window[1][0]:
            raise ends_before(text)  # 8月15日到8月10日; a range over New Year (12月到2月) is every winter
        return DateSpan(text, yearly=window)
    if a.yearly or b.yearly or not (a.ranges and b.ranges):
        return None
    if len(a.ranges) == 1 and len(b.ranges) == 1:
        first, last = a.ranges[0][0], b.ranges[0][1]
        if last < first:
            raise ends_before(text)
        return DateSpan(text, ((first, last),))
    # Both recur (each year's days): each start runs to the first end after it, within a year.
    ranges = []
    for first, _ in a.ranges:
        ends = [end for _, end in b.ranges if first <= end <= first + 366 * ONE_DAY]
        if ends:
            ranges.append((first, min(ends)))
    return DateSpan(text, tuple(ranges)) if ranges else None
