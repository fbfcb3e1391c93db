"""Date words in a query, in Chinese and English, turned into the days they mean.

`2019年夏天`, `去年春节`, `上个月`, `July 2019`, `last summer`: each becomes a DateSpan, either absolute days
(2019-06-01 … 2019-08-31) or days of every year (夏天 with no year: June to August of any year). Seasons are
meteorological (夏天 = June to August; a year's 冬天 is its December and the next January and February).
春节 is the Spring Festival holiday, 除夕 to 正月初七, from the lunar calendar (lunardate); 国庆 is 1-7 October.

Hand-written rather than a general Chinese time-expression library: the ones on the package index weigh tens
of megabytes with their dictionaries (too much for the Pi), and a photo search needs days, not times.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

from lunardate import LunarDate

# First year a yearless lunar holiday (春节 of any year) is spelled out for (to this year): digital photos.
FIRST_YEAR = 1970

ONE_DAY = dt.timedelta(days=1)

# A window of every year: its first and last (month, day), inclusive.
Yearly = tuple[tuple[int, int], tuple[int, int]]


@dataclass(frozen=True)
class DateSpan:
    """The days a date expression means: absolute ranges, or a window of every year (`yearly`, as
    ((month, day), (month, day)), inclusive, wrapping over New Year when the end comes first)."""

    text: str  # as recognised in the query
    ranges: tuple[tuple[dt.date, dt.date], ...] = ()  # inclusive first and last day
    yearly: Yearly | None = None

    def describe(self) -> str:
        """What it means, as shown back to the person: '2019-06-01 … 2019-08-31', '每年 06-01 … 08-31'."""
        if self.yearly:
            (m1, d1), (m2, d2) = self.yearly
            return f"每年 {m1:02d}-{d1:02d} … {m2:02d}-{d2:02d}"
        if len(self.ranges) > 3:
            return f"每年 {self.text}"
        return ", ".join(f"{a.isoformat()} … {b.isoformat()}" for a, b in self.ranges)

    def sql_ranges(self) -> list[tuple[str, str]]:
        """Absolute ranges as ISO [first day, day after last) strings, as the catalog compares dates."""
        return [(a.isoformat(), (b + ONE_DAY).isoformat()) for a, b in self.ranges]

    def sql_yearly(self) -> tuple[str, str] | None:
        """The yearly window as 'MM-DD' bounds, inclusive."""
        if not self.yearly:
            return None
        (m1, d1), (m2, d2) = self.yearly
        return f"{m1:02d}-{d1:02d}", f"{m2:02d}-{d2:02d}"


class DateError(ValueError):
    """A date expression that names no real day (2019年2月30日); the message names it."""


# ---- the words -----------------------------------------------------------------------------------------

_CN_DIGITS = {
    "〇": 0,
    "零": 0,
    "一": 1,
    "二": 2,
    "两": 2,
    "三": 3,
    "四": 4,
    "五": 5,
    "六": 6,
    "七": 7,
    "八": 8,
    "九": 9,
}
_MONTHS_EN = {
    name: i
    for i, names in enumerate(
        (
            "",
            "january jan",
            "february feb",
            "march mar",
            "april apr",
            "may",
            "june jun",
            "july jul",
            "august aug",
            "september sep sept",
            "october oct",
            "november nov",
            "december dec",
        )
    )
    for name in names.split()
}
_SEASONS = {"春": 3, "夏": 6, "秋": 9, "冬": 12, "spring": 3, "summer": 6, "autumn": 9, "fall": 9, "winter": 12}
_RELATIVE_YEARS = {"今年": 0, "去年": -1, "前年": -2, "明年": 1, "this year": 0, "last year": -1}

_NUM = r"(?:\d{1,4}|[〇零一二两三四五六七八九十]{1,4})"
_YEAR_CN = r"(?:(?P<y>\d{4}|[〇零一二三四五六七八九]{4})年|(?P<ry>今年|去年|前年|明年))"
_HOLIDAY_CN = r"(?P<h>春节|过年|除夕|国庆节?|元旦|中秋节?|元宵节?|圣诞节?|情人节|劳动节|五一)"
_SEASON_CN = r"(?P<s>[春夏秋冬])(?:天|季)"

_PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    (name, re.compile(rx, re.IGNORECASE))
    for name, rx in [
        # Chinese, most specific first.
        ("cn_ymd", rf"{_YEAR_CN}(?P<m>{_NUM})月(?P<d>{_NUM})[日号]"),
        ("cn_ym", rf"{_YEAR_CN}(?P<m>{_NUM})月份?"),
        ("cn_year_season", rf"{_YEAR_CN}的?{_SEASON_CN}"),
        ("cn_year_holiday", rf"{_YEAR_CN}的?{_HOLIDAY_CN}"),
        ("cn_year_half", rf"{_YEAR_CN}(?P<half>上半年|下半年)"),
        ("cn_decade", r"(?P<dec>\d{2}|\d{4})年代"),
        ("cn_year", _YEAR_CN),
        ("cn_md", rf"(?<![\d年])(?P<m>{_NUM})月(?P<d>{_NUM})[日号]"),
        ("cn_month", rf"(?<![\d年〇零一二两三四五六七八九十])(?P<m>{_NUM})月份?"),
        ("cn_season", _SEASON_CN),
        ("cn_holiday", _HOLIDAY_CN),
        ("cn_relative", r"(?P<rel>上个?月|这个?月|本月|上周|上星期|这周|本周|今天|昨天|前天|最近一周|最近一个月)"),
        # ISO and numeric.
        ("iso_ymd", r"(?<!\d)(?P<y>\d{4})[-/.](?P<m>\d{1,2})[-/.](?P<d>\d{1,2})(?!\d)"),
        ("iso_ym", r"(?<!\d)(?P<y>\d{4})[-/.](?P<m>\d{1,2})(?![\d-])"),
        # English.
        ("en_mdy", r"\b(?P<mn>[a-z]{3,9})\.? (?P<d>\d{1,2})(?:st|nd|rd|th)?,? (?P<y>\d{4})\b"),
        ("en_dmy", r"\b(?P<d>\d{1,2})(?:st|nd|rd|th)? (?P<mn>[a-z]{3,9})\.?,? (?P<y>\d{4})\b"),
        ("en_my", r"\b(?P<mn>[a-z]{3,9})\.?,? (?P<y>\d{4})\b"),
        ("en_season_year", r"\b(?P<s>spring|summer|autumn|fall|winter)(?: of)? (?P<y>\d{4})\b"),
        ("en_rel_season", r"\b(?P<which>last|this) (?P<s>spring|summer|autumn|fall|winter)\b"),
        (
            "en_holiday_year",
            r"\b(?P<h>chinese new year|spring festival|national day|christmas|new year'?s? day)"
            r"(?: of)? (?P<y>\d{4})\b",
        ),
        ("en_holiday", r"\b(?P<h>chinese new year|spring festival|national day|christmas|new year'?s? day)\b"),
        ("en_decade", r"\b(?:the )?(?P<dec>\d{2}|\d{4})'?s\b"),
        ("en_relative", r"\b(?P<rel>last year|this year|last month|this month|last week|this week|today|yesterday)\b"),
        ("en_season", r"\b(?P<s>spring|summer|autumn|fall|winter)\b"),
        (
            "en_month",
            r"\b(?:in )?(?P<mn>january|february|march|april|june|july|august|september|october|november"
            r"|december)\b",
        ),
        ("year", r"(?<![0-9A-Za-z_.-])(?P<y>(?:19|20)\d{2})(?![0-9A-Za-z_.-])"),  # 2019三亚 too, not IMG_2019
    ]
]

_EN_HOLIDAYS = {
    "chinese new year": "春节",
    "spring festival": "春节",
    "national day": "国庆",
    "christmas": "圣诞",
    "new year day": "元旦",
    "new years day": "元旦",
    "new year's day": "元旦",
}


def find_dates(text: str, today: dt.date) -> tuple[list[DateSpan], str, list[str]]:
    """The date expressions in `text`, the text with them taken out (each replaced by a space), and
    problems to tell the person (a date that names no real day is dropped from the query, with a note)."""
    spans: list[DateSpan] = []
    problems: list[str] = []
    for name, pattern in _PATTERNS:

        def take(match: re.Match[str], name: str = name) -> str:
            try:
                span = _span(name, match, today)
            except DateError as exc:
                problems.append(str(exc))
                return " "
            if span is None:
                return match.group(0)
            spans.append(span)
            return " "

        text = pattern.sub(take, text)
    return spans, text, problems


def intersect(spans: list[DateSpan]) -> DateSpan | None:
    """Several date words in one query narrow each other (2019年 and 夏天: the summer of 2019); None when
    there are none. Absolute ranges are intersected; a yearly window keeps the absolute days that fall in it."""
    if not spans:
        return None
    if len(spans) == 1:
        return spans[0]
    absolute = [s for s in spans if s.ranges]
    windows = [s.yearly for s in spans if s.yearly]
    text = " ".join(s.text for s in spans)
    if not absolute:
        return DateSpan(text, yearly=windows[0])  # two yearly windows: the first one typed wins
    ranges = list(absolute[0].ranges)
    for other in absolute[1:]:
        ranges = [(max(a, c), min(b, d)) for a, b in ranges for c, d in other.ranges if max(a, c) <= min(b, d)]
    for window in windows:
        ranges = [r for a, b in ranges for r in _within_yearly(a, b, window)]
    return DateSpan(text, tuple(ranges))


# ---- one expression -------------------------------------------------------------------------------------


def _span(name: str, m: re.Match[str], today: dt.date) -> DateSpan | None:
    g = m.groupdict()
    text = m.group(0).strip()
    year = _year(g, today)
    if name in ("cn_ymd", "iso_ymd", "en_mdy", "en_dmy"):
        month = _month(g)
        if month is None:
            return None
        return _day(text, year, month, _number(g["d"]))
    if name in ("cn_ym", "iso_ym", "en_my"):
        month = _month(g)
        if month is None:
            return None
        return _month_span(text, year, month)
    if name == "cn_md":
        month = _number(g["m"])
        day = _number(g["d"])
        _check_day(text, 2000, month, day)  # a leap year: 2月29日 exists in some years
        return DateSpan(text, yearly=((month, day), (month, day)))
    if name in ("cn_month", "en_month"):
        month = _month(g)
        if month is None or not 1 <= month <= 12:
            return None
        return DateSpan(text, yearly=((month, 1), (month, _last_day(2000, month))))
    if name in ("cn_year_season", "en_season_year"):
        return _season(text, _SEASONS[g["s"].lower()], year)
    if name == "en_rel_season":
        first = _SEASONS[g["s"].lower()]
        return _season(text, first, _season_year(first, today, last=g["which"].lower() == "last"))
    if name in ("cn_season", "en_season"):
        return _season(text, _SEASONS[g["s"].lower()], None)
    if name in ("cn_year_holiday", "en_holiday_year", "cn_holiday", "en_holiday"):
        return _holiday(text, _holiday_name(g["h"]), year, today)
    if name == "cn_year_half" and year is not None:
        first = g["half"] == "上半年"
        return DateSpan(
            text, ((dt.date(year, 1 if first else 7, 1), dt.date(year, 6 if first else 12, 30 if first else 31)),)
        )
    if name in ("cn_decade", "en_decade"):
        return _decade(text, g["dec"])
    if name in ("cn_relative", "en_relative"):
        return _relative(text, g["rel"].lower(), today)
    if name in ("cn_year", "year") and year is not None:
        return DateSpan(text, ((dt.date(year, 1, 1), dt.date(year, 12, 31)),))
    raise AssertionError(name)


def _year(g: dict[str, Any], today: dt.date) -> int | None:
    if g.get("y"):
        raw = g["y"]
        return int(raw) if raw.isdigit() else int("".join(str(_CN_DIGITS[c]) for c in raw))
    if g.get("ry"):
        return today.year + _RELATIVE_YEARS[g["ry"]]
    return None


def _month(g: dict[str, Any]) -> int | None:
    if g.get("mn"):
        return _MONTHS_EN.get(g["mn"].lower())
    return _number(g["m"])


def _number(raw: str) -> int:
    """12, 七, 十二, 二十五, 三十一."""
    if raw.isdigit():
        return int(raw)
    if "十" not in raw:
        return int("".join(str(_CN_DIGITS[c]) for c in raw))
    tens, _, ones = raw.partition("十")
    return (_CN_DIGITS[tens] if tens else 1) * 10 + (_CN_DIGITS[ones] if ones else 0)


def _check_day(text: str, year: int, month: int, day: int) -> dt.date:
    try:
        return dt.date(year, month, day)
    except ValueError:
        raise DateError(
            f"「{text}」 is not a date ({year}-{month:02d}-{day:02d} does not exist), so no date filter was applied"
        ) from None


def _day(text: str, year: int | None, month: int, day: int) -> DateSpan:
    if year is None:
        raise DateError(f"「{text}」 has no year")
    when = _check_day(text, year, month, day)
    return DateSpan(text, ((when, when),))


def _month_span(text: str, year: int | None, month: int) -> DateSpan:
    if year is None or not 1 <= month <= 12:
        raise DateError(f"「{text}」 is not a month (months are 1 to 12)")
    return DateSpan(text, ((dt.date(year, month, 1), dt.date(year, month, _last_day(year, month))),))


def _last_day(year: int, month: int) -> int:
    following = dt.date(year + (month == 12), month % 12 + 1, 1)
    return (following - ONE_DAY).day


def _season(text: str, first_month: int, year: int | None) -> DateSpan:
    last_month = (first_month + 1) % 12 + 1
    if year is None:
        return DateSpan(text, yearly=((first_month, 1), (last_month, _last_day(2000, last_month))))
    end_year = year + (last_month < first_month)
    return DateSpan(
        text, ((dt.date(year, first_month, 1), dt.date(end_year, last_month, _last_day(end_year, last_month))),)
    )


def _season_year(first_month: int, today: dt.date, last: bool) -> int:
    """The year of `this` season (the one today is in, else this year's) or of the `last` one (the latest
    that has ended: on 2026-12-03, last summer is 2026's; on 2026-07-15, 2025's)."""
    year = today.year - (first_month == 12 and today.month <= 2)
    if not last:
        return year
    while _season("", first_month, year).ranges[0][1] >= today:
        year -= 1
    return year


def _holiday_name(raw: str) -> str:
    raw = raw.lower()
    if raw in _EN_HOLIDAYS:
        return _EN_HOLIDAYS[raw]
    return {
        "过年": "春节",
        "国庆节": "国庆",
        "中秋节": "中秋",
        "元宵节": "元宵",
        "圣诞节": "圣诞",
        "五一": "劳动节",
    }.get(raw, raw)


_FIXED_HOLIDAYS = {
    "国庆": ((10, 1), (10, 7)),
    "元旦": ((1, 1), (1, 1)),
    "圣诞": ((12, 24), (12, 26)),
    "情人节": ((2, 14), (2, 14)),
    "劳动节": ((5, 1), (5, 5)),
}
# Lunar (month, day), and the first and last day as days from it: 春节 is 除夕 (the eve) to 初七.
_LUNAR_HOLIDAYS = {"春节": ((1, 1), -1, 6), "除夕": ((1, 1), -1, -1), "中秋": ((8, 15), 0, 0), "元宵": ((1, 15), 0, 0)}


def _holiday(text: str, name: str, year: int | None, today: dt.date) -> DateSpan:
    if name in _FIXED_HOLIDAYS:
        window = _FIXED_HOLIDAYS[name]
        if year is None:
            return DateSpan(text, yearly=window)
        (m1, d1), (m2, d2) = window
        return DateSpan(text, ((dt.date(year, m1, d1), dt.date(year, m2, d2)),))
    years = [year] if year is not None else range(FIRST_YEAR, today.year + 1)
    return DateSpan(text, tuple(_lunar(name, y) for y in years))


def _lunar(name: str, year: int) -> tuple[dt.date, dt.date]:
    (month, day), first, last = _LUNAR_HOLIDAYS[name]
    try:
        centre = LunarDate(year, month, day).to_solar_date()
    except ValueError:
        raise DateError(f"「{name}」 of {year} is outside the lunar calendar photod knows (1900-2099)") from None
    return centre + first * ONE_DAY, centre + last * ONE_DAY


def _decade(text: str, raw: str) -> DateSpan | None:
    start = int(raw) if len(raw) == 4 else (1900 + int(raw) if int(raw) >= 30 else 2000 + int(raw))
    if start % 10 or not 1900 <= start <= 2090:
        return None
    return DateSpan(text, ((dt.date(start, 1, 1), dt.date(start + 9, 12, 31)),))


def _relative(text: str, rel: str, today: dt.date) -> DateSpan:
    if rel in _RELATIVE_YEARS:
        year = today.year + _RELATIVE_YEARS[rel]
        return DateSpan(text, ((dt.date(year, 1, 1), dt.date(year, 12, 31)),))
    if rel in ("上月", "上个月", "last month"):
        last = today.replace(day=1) - ONE_DAY
        return DateSpan(text, ((last.replace(day=1), last),))
    if rel in ("这月", "这个月", "本月", "this month"):
        return DateSpan(text, ((today.replace(day=1), today),))
    if rel in ("上周", "上星期", "last week"):
        monday = today - dt.timedelta(days=today.weekday() + 7)
        return DateSpan(text, ((monday, monday + 6 * ONE_DAY),))
    if rel in ("这周", "本周", "this week"):
        return DateSpan(text, ((today - dt.timedelta(days=today.weekday()), today),))
    if rel == "最近一周":
        return DateSpan(text, ((today - 6 * ONE_DAY, today),))
    if rel == "最近一个月":
        return DateSpan(text, ((today - 30 * ONE_DAY, today),))
    back = {"今天": 0, "today": 0, "昨天": 1, "yesterday": 1, "前天": 2}[rel]
    day = today - back * ONE_DAY
    return DateSpan(text, ((day, day),))


def _within_yearly(first: dt.date, last: dt.date, window: Yearly) -> list[tuple[dt.date, dt.date]]:
    """The parts of [first, last] that fall in a yearly window."""
    (m1, d1), (m2, d2) = window
    out = []
    for year in range(first.year - 1, last.year + 1):
        end_year = year + ((m2, d2) < (m1, d1))
        start = dt.date(year, m1, min(d1, _last_day(year, m1)))
        end = dt.date(end_year, m2, min(d2, _last_day(end_year, m2)))
        lo, hi = max(first, start), min(last, end)
        if lo <= hi:
            out.append((lo, hi))
    return out
