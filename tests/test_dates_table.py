"""Date words, as a person types them, against the days they must mean (today fixed: Thursday 2026-12-03).

Each row: expression -> expected. Expected is a list of absolute ranges (inclusive), a yearly window
((month, day), (month, day)), EVERY_YEAR(year, first, last) for a holiday that recurs on different days each
year (one year's days shown), NOT_A_DATE (left as words, no note), or NOTE (no filter, and a note says why).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pytest

from photod.search.query import parse

TODAY = dt.date(2026, 12, 3)  # a Thursday
D = dt.date


@dataclass(frozen=True)
class EVERY_YEAR:  # noqa: N801 - read as a table word
    year: int
    first: dt.date
    last: dt.date


NOT_A_DATE = "not a date"
NOTE = "no filter, with a note"

TABLE = [
    # Ranges (they used to become empty filters).
    ("2019到2020年", [(D(2019, 1, 1), D(2020, 12, 31))]),
    ("2019年到2020年", [(D(2019, 1, 1), D(2020, 12, 31))]),
    ("2019至2020", [(D(2019, 1, 1), D(2020, 12, 31))]),
    ("2019-2020", [(D(2019, 1, 1), D(2020, 12, 31))]),
    ("2019 - 2020", [(D(2019, 1, 1), D(2020, 12, 31))]),
    ("2019—2020", [(D(2019, 1, 1), D(2020, 12, 31))]),
    ("2019~2020", [(D(2019, 1, 1), D(2020, 12, 31))]),
    ("2019年起2020年止", [(D(2019, 1, 1), D(2020, 12, 31))]),
    ("从2019年到2020年", [(D(2019, 1, 1), D(2020, 12, 31))]),
    ("from 2019 to 2020", [(D(2019, 1, 1), D(2020, 12, 31))]),
    ("2019 until 2020", [(D(2019, 1, 1), D(2020, 12, 31))]),
    ("between 2019 and 2020", [(D(2019, 1, 1), D(2020, 12, 31))]),
    ("2019年7月-8月", [(D(2019, 7, 1), D(2019, 8, 31))]),
    ("2019年7月到8月", [(D(2019, 7, 1), D(2019, 8, 31))]),
    ("2019年7-8月", [(D(2019, 7, 1), D(2019, 8, 31))]),
    ("2019年7月至8月期间", [(D(2019, 7, 1), D(2019, 8, 31))]),
    ("2019年7月到2020年3月", [(D(2019, 7, 1), D(2020, 3, 31))]),
    ("2019年12月到2月", [(D(2019, 12, 1), D(2020, 2, 29))]),
    ("2019年7月1日至8月3日", [(D(2019, 7, 1), D(2019, 8, 3))]),
    ("2019年7月1日到15日", [(D(2019, 7, 1), D(2019, 7, 15))]),
    ("2019年7月1-15日", [(D(2019, 7, 1), D(2019, 7, 15))]),
    ("2019-07-01~2019-08-01", [(D(2019, 7, 1), D(2019, 8, 1))]),
    ("2019.7-2019.9", [(D(2019, 7, 1), D(2019, 9, 30))]),
    ("July 2019 - March 2020", [(D(2019, 7, 1), D(2020, 3, 31))]),
    ("July to August 2019", [(D(2019, 7, 1), D(2019, 8, 31))]),
    ("去年夏天到今年春天", [(D(2025, 6, 1), D(2026, 5, 31))]),
    ("2019年春节到元宵", [(D(2019, 2, 4), D(2019, 2, 19))]),
    ("7月到9月", ((7, 1), (9, 30))),
    ("12月到2月", ((12, 1), (2, 29))),
    ("7月1日到15日", ((7, 1), (7, 15))),
    # Ranges and days that hold no day say so.
    ("2020到2019年", NOTE),
    ("2019年8月到7月", [(D(2019, 8, 1), D(2020, 7, 31))]),  # the end is the first July after the start
    ("8月15日到8月10日", NOTE),
    ("2019年7月3号到1号", NOTE),
    ("2019年2月30日到3月", NOTE),
    ("2019年 2020年", NOTE),
    ("2019年7月 冬天", NOTE),
    ("2019年8月 2019年7月", NOTE),
    ("2019年8月到2019年7月", NOTE),
    ("2030年以后", NOTE),
    ("2019年2月29日", NOTE),
    ("1月32日", NOTE),
    ("0月", NOTE),
    ("sep 31", NOTE),
    # Modifiers read, not dropped.
    ("大前天", [(D(2026, 11, 30), D(2026, 11, 30))]),
    ("2019年初", [(D(2019, 1, 1), D(2019, 2, 28))]),
    ("2019年底", [(D(2019, 11, 1), D(2019, 12, 31))]),
    ("2019年末", [(D(2019, 11, 1), D(2019, 12, 31))]),
    ("2019年中 海边", [(D(2019, 5, 1), D(2019, 8, 31))]),
    ("去年十一", [(D(2025, 10, 1), D(2025, 10, 7))]),
    ("2019年十一", [(D(2019, 10, 1), D(2019, 10, 7))]),
    ("2000年以后", [(D(2000, 1, 1), TODAY)]),
    ("2000年之后", [(D(2000, 1, 1), TODAY)]),
    ("2019年以来", [(D(2019, 1, 1), TODAY)]),
    ("2019年至今", [(D(2019, 1, 1), TODAY)]),
    ("从2019年起", [(D(2019, 1, 1), TODAY)]),
    ("2019年7月15日以后", [(D(2019, 7, 15), TODAY)]),
    ("since 2019", [(D(2019, 1, 1), TODAY)]),
    ("2019 onwards", [(D(2019, 1, 1), TODAY)]),
    ("after 2019", [(D(2020, 1, 1), TODAY)]),
    ("2000年以前", [(D(1900, 1, 1), D(1999, 12, 31))]),
    ("before 2019", [(D(1900, 1, 1), D(2018, 12, 31))]),
    ("last christmas", [(D(2025, 12, 24), D(2025, 12, 26))]),
    ("this christmas", [(D(2026, 12, 24), D(2026, 12, 26))]),
    ("last halloween", [(D(2026, 10, 31), D(2026, 10, 31))]),
    ("last july", [(D(2026, 7, 1), D(2026, 7, 31))]),
    ("last spring festival", [(D(2026, 2, 16), D(2026, 2, 23))]),
    ("2019年前后", NOT_A_DATE),
    ("2019年左右", NOT_A_DATE),
    ("八月十五", NOT_A_DATE),  # lunar or August 15? not said: not claimed
    ("next christmas", NOT_A_DATE),
    ("下周末", NOT_A_DATE),
    ("上周日", NOT_A_DATE),
    ("7月以后", NOT_A_DATE),
    # Relative counts.
    ("两年前", [(D(2024, 1, 1), D(2024, 12, 31))]),
    ("10年前", [(D(2016, 1, 1), D(2016, 12, 31))]),
    ("三个月前", [(D(2026, 9, 1), D(2026, 9, 30))]),
    ("半年前", [(D(2026, 6, 1), D(2026, 6, 30))]),
    ("两周前", [(D(2026, 11, 16), D(2026, 11, 22))]),
    ("三天前", [(D(2026, 11, 30), D(2026, 11, 30))]),
    ("前两天", [(D(2026, 12, 1), D(2026, 12, 2))]),
    ("前几天", [(D(2026, 11, 30), D(2026, 12, 2))]),
    ("近三个月", [(D(2026, 9, 4), TODAY)]),
    ("最近三个月", [(D(2026, 9, 4), TODAY)]),
    ("最近半年", [(D(2026, 6, 4), TODAY)]),
    ("过去一年", [(D(2025, 12, 4), TODAY)]),
    ("最近3天", [(D(2026, 12, 1), TODAY)]),
    ("最近一个月", [(D(2026, 11, 4), TODAY)]),
    ("2 years ago", [(D(2024, 1, 1), D(2024, 12, 31))]),
    ("a year ago", [(D(2025, 1, 1), D(2025, 12, 31))]),
    ("3 days ago", [(D(2026, 11, 30), D(2026, 11, 30))]),
    ("two weeks ago", [(D(2026, 11, 16), D(2026, 11, 22))]),
    ("last 3 months", [(D(2026, 9, 4), TODAY)]),
    ("the last two weeks", [(D(2026, 11, 20), TODAY)]),
    ("past 10 days", [(D(2026, 11, 24), TODAY)]),
    ("the past year", [(D(2025, 12, 4), TODAY)]),
    ("the past week", [(D(2026, 11, 27), TODAY)]),
    # Parts of a year or a month.
    ("年初", ((1, 1), (2, 29))),
    ("年底", ((11, 1), (12, 31))),
    ("上半年", ((1, 1), (6, 30))),
    ("下半年", ((7, 1), (12, 31))),
    ("今年年底", [(D(2026, 11, 1), D(2026, 12, 31))]),
    ("去年上半年", [(D(2025, 1, 1), D(2025, 6, 30))]),
    ("7月上旬", ((7, 1), (7, 10))),
    ("7月中旬", ((7, 11), (7, 20))),
    ("7月下旬", ((7, 21), (7, 31))),
    ("7月初", ((7, 1), (7, 10))),
    ("7月底", ((7, 21), (7, 31))),
    ("2019年2月下旬", [(D(2019, 2, 21), D(2019, 2, 28))]),
    ("2019年7月底", [(D(2019, 7, 21), D(2019, 7, 31))]),
    ("上个月底", [(D(2026, 11, 21), D(2026, 11, 30))]),
    ("暑假", ((7, 1), (8, 31))),
    ("寒假", ((1, 15), (2, 29))),
    ("2019年暑假", [(D(2019, 7, 1), D(2019, 8, 31))]),
    ("去年寒假", [(D(2025, 1, 15), D(2025, 2, 28))]),
    ("early March", ((3, 1), (3, 10))),
    ("mid March", ((3, 11), (3, 20))),
    ("end of March", ((3, 21), (3, 31))),
    ("early March 2019", [(D(2019, 3, 1), D(2019, 3, 10))]),
    ("end of 2019", [(D(2019, 11, 1), D(2019, 12, 31))]),
    ("early 2019", [(D(2019, 1, 1), D(2019, 2, 28))]),
    ("mid-2019", [(D(2019, 5, 1), D(2019, 8, 31))]),
    ("end of last year", [(D(2025, 11, 1), D(2025, 12, 31))]),
    # Two-digit years.
    ("19年7月", [(D(2019, 7, 1), D(2019, 7, 31))]),
    ("19年夏天", [(D(2019, 6, 1), D(2019, 8, 31))]),
    ("98年", [(D(1998, 1, 1), D(1998, 12, 31))]),
    ("98年 海边", [(D(1998, 1, 1), D(1998, 12, 31))]),
    ("05年春节", [(D(2005, 2, 8), D(2005, 2, 15))]),
    ("结婚20年", NOT_A_DATE),
    # Weeks and weekends.
    ("上个星期", [(D(2026, 11, 23), D(2026, 11, 29))]),
    ("上星期", [(D(2026, 11, 23), D(2026, 11, 29))]),
    ("上礼拜", [(D(2026, 11, 23), D(2026, 11, 29))]),
    ("上上周", [(D(2026, 11, 16), D(2026, 11, 22))]),
    ("这礼拜", [(D(2026, 11, 30), TODAY)]),
    ("这个星期", [(D(2026, 11, 30), TODAY)]),
    ("this week", [(D(2026, 11, 30), TODAY)]),
    ("周末", [(D(2026, 11, 28), D(2026, 11, 29))]),
    ("上周末", [(D(2026, 11, 28), D(2026, 11, 29))]),
    ("这周末", [(D(2026, 12, 5), D(2026, 12, 6))]),
    ("last weekend", [(D(2026, 11, 28), D(2026, 11, 29))]),
    ("this weekend", [(D(2026, 12, 5), D(2026, 12, 6))]),
    ("上上个月", [(D(2026, 10, 1), D(2026, 10, 31))]),
    ("the day before yesterday", [(D(2026, 12, 1), D(2026, 12, 1))]),
    ("the year before last", [(D(2024, 1, 1), D(2024, 12, 31))]),
    # Decades in words.
    ("八十年代", [(D(1980, 1, 1), D(1989, 12, 31))]),
    ("九十年代", [(D(1990, 1, 1), D(1999, 12, 31))]),
    ("上世纪九十年代", [(D(1990, 1, 1), D(1999, 12, 31))]),
    ("上世纪80年代", [(D(1980, 1, 1), D(1989, 12, 31))]),
    ("80年代末", [(D(1987, 1, 1), D(1989, 12, 31))]),
    ("九十年代初", [(D(1990, 1, 1), D(1992, 12, 31))]),
    ("the late 80s", [(D(1987, 1, 1), D(1989, 12, 31))]),
    # Holidays, with and without a year.
    ("清明", ((4, 4), (4, 6))),
    ("2019年清明", [(D(2019, 4, 4), D(2019, 4, 6))]),
    ("端午", EVERY_YEAR(2019, D(2019, 6, 7), D(2019, 6, 7))),
    ("2019年端午节", [(D(2019, 6, 7), D(2019, 6, 7))]),
    ("中秋", EVERY_YEAR(2019, D(2019, 9, 13), D(2019, 9, 13))),
    ("2020年中秋", [(D(2020, 10, 1), D(2020, 10, 1))]),
    ("元宵", EVERY_YEAR(2019, D(2019, 2, 19), D(2019, 2, 19))),
    ("2019年元宵节", [(D(2019, 2, 19), D(2019, 2, 19))]),
    ("除夕", EVERY_YEAR(2024, D(2024, 2, 9), D(2024, 2, 9))),
    ("大年三十", EVERY_YEAR(2024, D(2024, 2, 9), D(2024, 2, 9))),
    ("七夕", EVERY_YEAR(2019, D(2019, 8, 7), D(2019, 8, 7))),
    ("2019年七夕", [(D(2019, 8, 7), D(2019, 8, 7))]),
    ("五一", ((5, 1), (5, 5))),
    ("2019年五一", [(D(2019, 5, 1), D(2019, 5, 5))]),
    ("十一", ((10, 1), (10, 7))),
    ("十一去三亚", ((10, 1), (10, 7))),
    ("十一假期", ((10, 1), (10, 7))),
    ("十一岁", NOT_A_DATE),
    ("第十一", NOT_A_DATE),
    ("十一月", ((11, 1), (11, 30))),
    ("妇女节", ((3, 8), (3, 8))),
    ("儿童节", ((6, 1), (6, 1))),
    ("六一儿童节", ((6, 1), (6, 1))),
    ("教师节", ((9, 10), (9, 10))),
    ("2019年教师节", [(D(2019, 9, 10), D(2019, 9, 10))]),
    ("圣诞", ((12, 24), (12, 26))),
    ("去年圣诞", [(D(2025, 12, 24), D(2025, 12, 26))]),
    ("Christmas", ((12, 24), (12, 26))),
    ("christmas eve", ((12, 24), (12, 24))),
    ("情人节", ((2, 14), (2, 14))),
    ("2019年情人节", [(D(2019, 2, 14), D(2019, 2, 14))]),
    ("valentine's day", ((2, 14), (2, 14))),
    ("万圣节", ((10, 31), (10, 31))),
    ("Halloween", ((10, 31), (10, 31))),
    ("halloween 2019", [(D(2019, 10, 31), D(2019, 10, 31))]),
    ("母亲节", EVERY_YEAR(2019, D(2019, 5, 12), D(2019, 5, 12))),
    ("thanksgiving 2019", [(D(2019, 11, 28), D(2019, 11, 28))]),
    ("mid-autumn festival 2019", [(D(2019, 9, 13), D(2019, 9, 13))]),
    # Lunar dates.
    ("农历八月十五", EVERY_YEAR(2019, D(2019, 9, 13), D(2019, 9, 13))),
    ("2019年农历八月十五", [(D(2019, 9, 13), D(2019, 9, 13))]),
    ("正月初一", EVERY_YEAR(2019, D(2019, 2, 5), D(2019, 2, 5))),
    ("2019年正月初一", [(D(2019, 2, 5), D(2019, 2, 5))]),
    ("五月初五", EVERY_YEAR(2019, D(2019, 6, 7), D(2019, 6, 7))),
    ("腊月", EVERY_YEAR(2019, D(2019, 12, 26), D(2020, 1, 24))),  # lunar 2019's, in our 2019-2020
    ("2019年腊月", [(D(2019, 12, 26), D(2020, 1, 24))]),
    ("腊月二十三", EVERY_YEAR(2020, D(2020, 1, 17), D(2020, 1, 17))),
    # English month and day without a year.
    ("Aug 8", ((8, 8), (8, 8))),
    ("July 4th", ((7, 4), (7, 4))),
    ("4th of July", ((7, 4), (7, 4))),
    ("december 25", ((12, 25), (12, 25))),
    ("iphone 12", NOT_A_DATE),
    ("top 10", NOT_A_DATE),
    ("3 days", NOT_A_DATE),
    # Traditional characters.
    ("2015年3月3號", [(D(2015, 3, 3), D(2015, 3, 3))]),
    ("國慶", ((10, 1), (10, 7))),
    ("2019年國慶節", [(D(2019, 10, 1), D(2019, 10, 7))]),
    ("聖誕節", ((12, 24), (12, 26))),
    ("上個月", [(D(2026, 11, 1), D(2026, 11, 30))]),
    ("這週", [(D(2026, 11, 30), TODAY)]),
    ("這禮拜", [(D(2026, 11, 30), TODAY)]),
    ("上個禮拜", [(D(2026, 11, 23), D(2026, 11, 29))]),
    ("2000年以後", [(D(2000, 1, 1), TODAY)]),
    ("萬聖節", ((10, 31), (10, 31))),
    ("兩年前", [(D(2024, 1, 1), D(2024, 12, 31))]),
    ("農曆八月十五", EVERY_YEAR(2019, D(2019, 9, 13), D(2019, 9, 13))),
    # Words that keep what they were: no date in them.
    ("2019年中国", [(D(2019, 1, 1), D(2019, 12, 31))]),  # 2019年 and the word 中国
    ("2019年后海", [(D(2019, 1, 1), D(2019, 12, 31))]),  # 后海 is a place, not "after"
    ("IMG_2019-2020.jpg", NOT_A_DATE),
    ("附近三天", NOT_A_DATE),
]


def _check(expression: str, expected: object) -> None:
    parsed = parse(expression, today=TODAY)
    span = parsed.dates
    if expected == NOT_A_DATE:
        assert span is None and not parsed.notes, (span, parsed.notes)
        assert parsed.terms, "the words stay searchable"
    elif expected == NOTE:
        assert span is None and parsed.notes, (span, parsed.notes)
    elif isinstance(expected, EVERY_YEAR):
        assert span is not None and not span.yearly and len(span.ranges) > 40, span
        assert (expected.first, expected.last) in [r for r in span.ranges if r[0].year == expected.year]
    elif isinstance(expected, tuple):
        assert span is not None and span.yearly == expected and not span.ranges, span
    else:
        assert span is not None and list(span.ranges) == expected, span
        assert not parsed.notes


@pytest.mark.parametrize("expression, expected", TABLE, ids=[e for e, _ in TABLE])
def test_date_words_mean_their_days(expression: str, expected: object) -> None:
    _check(expression, expected)


def test_the_table_holds_at_least_150_expressions() -> None:
    assert len(TABLE) >= 150 and len({e for e, _ in TABLE}) == len(TABLE)


def test_a_date_taken_out_leaves_the_words_around_it() -> None:
    parsed = parse("2019年7月-8月三亚海边", today=TODAY)
    assert parsed.meaning_text == "三亚海边" and parsed.dates is not None
    assert parsed.understood() == ["日期 2019-07-01 … 2019-08-31"]
    assert parse("2000年以前", today=TODAY).understood() == ["日期 … 1999-12-31"]
    assert parse("國家公園 2019年", today=TODAY).meaning_text == "國家公園"  # the words as typed
