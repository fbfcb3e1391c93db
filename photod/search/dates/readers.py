"""What each kind of date expression means: a reader per pattern (photod.search.dates.patterns), from the
pattern's named groups to a Point (a calendar date, which a range can complete) or a DateSpan."""

from __future__ import annotations

import datetime as dt

from photod.search.dates.holidays import holiday, lunar_span
from photod.search.dates.points import Point, point_span
from photod.search.dates.span import ONE_DAY, DateSpan, ends_before, months_range, shift_months, span_between
from photod.search.dates.words import (
    CN_DIGITS,
    DECADE_PARTS,
    EN_NUMBERS,
    HOLIDAY_NAMES_CN,
    HOLIDAY_NAMES_EN,
    LUNAR_MONTH_NAMES,
    MONTHS_EN,
    RELATIVE_YEARS,
    SEASONS,
    number,
)

Groups = dict[str, str | None]
Reading = DateSpan | Point | None

# The relative words of one unit: (unit, how many back); 0 is the current one, up to today.
RELATIVE = {
    **{w: ("day", n) for w, n in (("今天", 0), ("today", 0), ("昨天", 1), ("yesterday", 1), ("前天", 2))},
    **{w: ("day", n) for w, n in (("the day before yesterday", 2), ("day before yesterday", 2), ("大前天", 3))},
    **{w: ("month", 1) for w in ("上月", "上个月", "last month")},
    **{w: ("month", 2) for w in ("上上月", "上上个月")},
    **{w: ("month", 0) for w in ("这月", "这个月", "本月", "this month")},
    **{w: ("week", 1) for w in ("上周", "上星期", "上个星期", "上礼拜", "上个礼拜", "last week")},
    **{w: ("week", 2) for w in ("上上周", "上上星期", "上上个星期", "上上礼拜", "上上个礼拜")},
    **{w: ("week", 0) for w in ("这周", "本周", "这星期", "这个星期", "本星期", "这礼拜", "这个礼拜", "this week")},
}
UNITS = {
    "年": "year",
    "个月": "month",
    "月": "month",
    **{w: "week" for w in ("周", "星期", "个星期", "礼拜", "个礼拜")},
    "天": "day",
    "日": "day",
}


def year_of(g: Groups, today: dt.date) -> int | None:
    """A year as written: 2019, 二〇一九, 19 (two digits: this century up to this year, else the last), 去年."""
    if raw := g.get("y"):
        return int(raw) if raw.isdigit() else int("".join(str(CN_DIGITS[c]) for c in raw))
    if raw := g.get("yy"):
        return 2000 + int(raw) if int(raw) <= today.year % 100 else 1900 + int(raw)
    if raw := g.get("ry"):
        return today.year + RELATIVE_YEARS[raw.lower()]
    return None


def month_of(g: Groups) -> int | None:
    if raw := g.get("mn"):
        return MONTHS_EN.get(raw.lower())
    raw = g.get("m")
    return number(raw) if raw else None


def read_point(g: Groups, today: dt.date) -> Point | None:
    """Year, month, day and part, whichever the pattern has; None for an English word that is no month."""
    month = month_of(g)
    if (g.get("mn") or g.get("m")) and month is None:
        return None
    part = g.get("part")
    day = g.get("d")
    return Point(year_of(g, today), month, number(day) if day else None, part.lower() if part else None)


def read_calendar(g: Groups, text: str, today: dt.date) -> Reading:
    return read_point(g, today)


def read_relative_month_part(g: Groups, text: str, today: dt.date) -> Reading:
    month = shift_months(today.replace(day=1), -RELATIVE[str(g["rel"])][1])
    return Point(month.year, month.month, None, g["part"])


def read_month_range(g: Groups, text: str, today: dt.date) -> Reading:
    """7-8月, 2019年7至9月: the months from the first to the last."""
    year, first, last = year_of(g, today), number(str(g["m"])), number(str(g["m2"]))
    if not (1 <= first <= 12 and 1 <= last <= 12):
        return None
    if year is None:
        return DateSpan(text, yearly=((first, 1), (last, months_range(2000, last, last)[1].day)))
    return DateSpan(text, (months_range(year, first, last + 12 * (last < first)),))


def read_day_range(g: Groups, text: str, today: dt.date) -> Reading:
    """7月1-15日: the days from the first to the last, of the month."""
    year, month, first, last = year_of(g, today), number(str(g["m"])), number(str(g["d"])), number(str(g["d2"]))
    if last < first:
        raise ends_before(text)
    a, b = point_span(text, Point(year, month, first)), point_span(text, Point(year, month, last))
    return span_between(text, a, b) if a and b else None


def read_season(g: Groups, text: str, today: dt.date) -> Reading:
    """Meteorological seasons: 夏天 is June to August; a year's 冬天 is its December and the next January
    and February."""
    first = SEASONS[str(g["s"]).lower()]
    year = year_of(g, today)
    if year is None:
        last = (first + 1) % 12 + 1
        return DateSpan(text, yearly=((first, 1), (last, months_range(2000, last, last)[1].day)))
    return DateSpan(text, (months_range(year, first, first + 2),))


def read_holiday(g: Groups, text: str, today: dt.date) -> Reading:
    raw = str(g["h"]).lower()
    name = "国庆" if raw == "十一" else HOLIDAY_NAMES_CN.get(raw) or HOLIDAY_NAMES_EN[raw]
    return holiday(text, name, year_of(g, today), today)


def read_year_holiday(g: Groups, text: str, today: dt.date) -> Reading:
    """2019年国庆, 去年十一 (十一 after a year is the National Day week)."""
    return read_holiday({**g, "h": g.get("h") or g.get("eleven")}, text, today)


def read_years(g: Groups, text: str, today: dt.date) -> Reading:
    """2019-2020: the years from the first to the last."""
    first, last = int(str(g["y"])), int(str(g["y2"]))
    if last < first:
        raise ends_before(text)
    return DateSpan(text, ((dt.date(first, 1, 1), dt.date(last, 12, 31)),))


def read_lunar(g: Groups, text: str, today: dt.date) -> Reading:
    """农历八月十五, 正月初一, 腊月: of the year written (a lunar year), else of every year."""
    raw_month, raw_day = str(g["lm"]), g.get("ld")
    month = LUNAR_MONTH_NAMES.get(raw_month) or number(raw_month)
    day = number(raw_day.rstrip("日号")) if raw_day else None
    return lunar_span(text, year_of(g, today), month, day, today)


def read_decade(g: Groups, text: str, today: dt.date) -> Reading:
    """90年代, 八十年代, 上世纪九十年代, 2010年代, the 90s, the late 80s; 初/early, 中期/mid, 末/late."""
    raw, century = str(g["dec"]), g.get("cent") or ""
    if len(raw) == 4:
        start = int(raw)
    else:
        tens = int(raw) if raw.isdigit() else number(raw)
        if century:
            start = (2000 if century in ("本世纪", "二十一世纪", "21世纪") else 1900) + tens
        else:
            start = 1900 + tens if tens >= 30 else 2000 + tens
    if start % 10 or not 1900 <= start <= 2090:
        return None
    first, last = DECADE_PARTS[str(g["part"]).lower()] if g.get("part") else (0, 9)
    return DateSpan(text, ((dt.date(start + first, 1, 1), dt.date(start + last, 12, 31)),))


def read_relative(g: Groups, text: str, today: dt.date) -> Reading:
    """今天, 上个月, 上周, 这礼拜, last week: a day, a calendar month or a week (Monday to Sunday); the
    current month or week up to today."""
    rel = str(g["rel"]).lower()
    if rel in RELATIVE_YEARS:
        year = today.year + RELATIVE_YEARS[rel]
        return DateSpan(text, ((dt.date(year, 1, 1), dt.date(year, 12, 31)),))
    unit, back = RELATIVE[rel]
    first, last = _unit_ago(unit, back, today)
    return DateSpan(text, ((first, min(last, today)),))


def _unit_ago(unit: str, back: int, today: dt.date) -> tuple[dt.date, dt.date]:
    """The whole calendar unit (day, Monday-to-Sunday week, month, year) `back` units before today's."""
    if unit == "day":
        day = today - back * ONE_DAY
        return day, day
    if unit == "week":
        monday = today - (today.weekday() + 7 * back) * ONE_DAY
        return monday, monday + 6 * ONE_DAY
    if unit == "month":
        first = shift_months(today.replace(day=1), -back)
        return first, shift_months(first, 1) - ONE_DAY
    return dt.date(today.year - back, 1, 1), dt.date(today.year - back, 12, 31)


def read_weekend(g: Groups, text: str, today: dt.date) -> Reading:
    """上周末 / last weekend: last week's Saturday and Sunday; 这周末 / this weekend: this week's; 周末 alone:
    the latest weekend that has begun (today, on a Saturday or Sunday)."""
    word = str(g["w"]).lower()
    monday = today - today.weekday() * ONE_DAY
    if word.startswith(("上", "last")) or (word in ("周末", "weekend", "the weekend") and today.weekday() < 5):
        monday -= 7 * ONE_DAY
    saturday = monday + 5 * ONE_DAY
    return DateSpan(text, ((saturday, saturday + ONE_DAY),))


def count_of(raw: str) -> float:
    """两, 3, 十二, 半 (a half), 几 / a few (three), an, a couple of."""
    raw = raw.lower()
    if raw == "半":
        return 0.5
    if raw == "几":
        return 3
    return EN_NUMBERS[raw] if raw in EN_NUMBERS else number(raw)


def _amount(g: Groups) -> tuple[str, int] | None:
    """How far back, as (unit, count) in months or days (半年 is six months, 半个月 fifteen days); None where
    it is no whole count (半天, 0天)."""
    unit_raw = str(g.get("unit") or g.get("unit1")).lower().rstrip("s")
    unit = UNITS.get(unit_raw, unit_raw)
    raw = g.get("n")
    n = count_of(raw) if raw else 1.0
    months = {"year": 12 * n, "month": n}.get(unit)
    if months is not None and months == int(months) and months > 0:
        return ("month", int(months)) if unit == "month" or months % 12 else ("year", int(months) // 12)
    days = {"month": 30 * n, "week": 7 * n, "day": n}[unit]
    return ("day", int(days)) if days == int(days) and days > 0 else None


def read_ago(g: Groups, text: str, today: dt.date) -> Reading:
    """两年前, 三个月前, 2 weeks ago: the calendar year, month, week (Monday to Sunday) or day that far back."""
    unit_raw = str(g["unit"]).lower().rstrip("s")
    unit = UNITS.get(unit_raw, unit_raw)
    n = count_of(str(g["n"]))
    if n == 0.5 and unit == "year":
        unit, n = "month", 6
    if n != int(n) or not 0 < n <= 100:
        return None
    return DateSpan(text, (_unit_ago(unit, int(n), today),))


def read_rolling(g: Groups, text: str, today: dt.date) -> Reading:
    """近三个月, 最近半年, 过去一周, last 3 months, the past year: that long, up to and with today; 前两天 /
    前三个月: that long before today, without it."""
    amount = _amount(g)
    if amount is None:
        return None
    unit, n = amount
    if unit == "year":
        unit, n = "month", 12 * n
    start = shift_months(today, -n) if unit == "month" else today - n * ONE_DAY
    if g.get("how") == "前":
        return DateSpan(text, ((start, today - ONE_DAY),))
    return DateSpan(text, ((start + ONE_DAY, today),))
