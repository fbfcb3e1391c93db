"""The date expressions photod reads, as patterns, most specific first, each with its reader.

Patterns are tried in this order over the whole query; what one takes, the later ones no longer see. They
match the query after photod.search.dates.words.NORMALISE (traditional characters read as simplified).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable

from photod.search.dates import readers as r
from photod.search.dates.words import HOLIDAY_NAMES_CN, HOLIDAY_NAMES_EN, alternation

Reader = Callable[[r.Groups, str, dt.date], r.Reading]

_NUM = r"(?:\d{1,4}|[〇零一二两三四五六七八九十廿]{1,4})"
_CN_NUM = r"[一二三四五六七八九十]{1,3}"
_COUNT_CN = r"(?:\d{1,3}|[一二两三四五六七八九十]{1,3}|半|几)"
_COUNT_EN = r"(?:\d{1,3}|a couple of|a few|an?|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve)"
_UNIT_CN = r"(?:年|个月|个?星期|个?礼拜|周|天)"
_UNIT_EN = r"(?:years?|months?|weeks?|days?)"
# A year: 2019年, 二〇一九年, 19年 (two digits), 去年.
_Y = r"(?:(?P<y>\d{4}|[〇零一二三四五六七八九]{4})年|(?<![\d.])(?P<yy>\d{2})年|(?P<ry>大前年|前年|去年|今年|明年))"
# A two-digit year alone (98年) only as a word of its own: 结婚20年 is no year.
_Y_ALONE = (
    r"(?:(?P<y>\d{4}|[〇零一二三四五六七八九]{4})年|(?<![\w.])(?P<yy>\d{2})年(?![\d多半以之前后来内级代间度])"
    r"|(?P<ry>大前年|前年|去年|今年|明年))"
)
_MONTH_PART = r"(?P<part>上旬|中旬|下旬|初(?![一二三四五六七八九十])|底|末)"
_YEAR_PART = r"(?P<part>年初|年底|年末|上半年|下半年|初(?![一二三四五六七八九十])|底|末|中(?![\u4e00-\u9fff]))"
_LUNAR_DAY = r"初[一二三四五六七八九十]|廿[一二三四五六七八九]|[二三]十[一二三四五六七八九]?|十[一二三四五六七八九]?"
_HOLIDAY_CN = rf"(?P<h>{alternation(HOLIDAY_NAMES_CN)})"
_HOLIDAY_EN = rf"(?P<h>{alternation(HOLIDAY_NAMES_EN)})"
# 十一 is 国庆 where it is clearly the holiday: after a year, or a word of its own (十一去三亚, not 十一岁).
_ELEVEN_AFTER = r"(?:小长假|长假|假期|黄金周)?(?=期间|出游|旅游|旅行|回家|去|在|的|[^\w]|$)"
_WEEK_REL = (
    "大前天|前天|昨天|今天|上上个?月|上个?月|这个?月|本月|上上周|上上个?星期|上上个?礼拜|上周|上个?星期|上个?礼拜"
    "|这周|本周|这个?星期|这个?礼拜|本星期"
)
_MONTHS_EN = r"january|february|march|april|june|july|august|september|october|november|december"
_EN_PART = r"(?P<part>early|mid|late|end of|beginning of|start of|middle of|first half of|second half of)"

PATTERNS: list[tuple[re.Pattern[str], Reader]] = [
    (re.compile(rx, re.IGNORECASE), reader)
    for rx, reader in [
        # Lunar dates: 农历八月十五, 正月初一, 腊月, 八月初五.
        (rf"(?:{_Y})?(?:农历|阴历)(?P<lm>正|冬|腊|{_NUM})月(?P<ld>{_LUNAR_DAY}|\d{{1,2}}[日号]?)?", r.read_lunar),
        (rf"(?:{_Y})?(?P<lm>正|冬|腊)月(?P<ld>{_LUNAR_DAY})?", r.read_lunar),
        (rf"(?:{_Y})?(?P<lm>{_CN_NUM})月(?P<ld>初[一二三四五六七八九十]|廿[一二三四五六七八九])", r.read_lunar),
        # Chinese calendar dates, ranges inside one expression first (7月1-15日, 2019年7-8月).
        (rf"(?:{_Y})?(?P<m>{_NUM})月(?P<d>{_NUM})\s*[-~～到至]\s*(?P<d2>{_NUM})[日号]", r.read_day_range),
        (rf"(?:{_Y})?(?<![\d月])(?P<m>{_NUM})\s*[-~～到至]\s*(?P<m2>{_NUM})月", r.read_month_range),
        (rf"{_Y}(?P<m>{_NUM})月(?P<d>{_NUM})[日号]", r.read_calendar),
        (rf"{_Y}(?P<m>{_NUM})月份?{_MONTH_PART}?", r.read_calendar),
        (rf"{_Y}的?(?P<s>[春夏秋冬])(?:天|季)", r.read_season),
        (rf"{_Y}的?(?:{_HOLIDAY_CN}|(?P<eleven>十一){_ELEVEN_AFTER})", r.read_year_holiday),
        (rf"{_Y}{_YEAR_PART}", r.read_calendar),
        (
            r"(?P<cent>上个?世纪|二十世纪|20世纪|本世纪|二十一世纪|21世纪)?(?P<dec>\d{4}|\d{2}|[一二三四五六七八九]?十)年代"
            r"(?P<part>初期|前期|中期|末期|后期|初|末)?",
            r.read_decade,
        ),
        (r"(?P<part>年初|年底|年末|上半年|下半年)", r.read_calendar),
        (rf"(?<![\d.])(?P<n>\d{{1,2}}|[一二两三四五六七八九十]{{1,3}}|半)(?P<unit>{_UNIT_CN})(?:以)?前", r.read_ago),
        (
            rf"(?<!附)(?P<how>最近|近|过去|前)的?(?P<n>{_COUNT_CN})(?P<unit>{_UNIT_CN}|日)(?:内|以来|里|来)?",
            r.read_rolling,
        ),
        (_Y_ALONE, r.read_calendar),
        (rf"(?<![\d年])(?P<m>{_NUM})月(?P<d>{_NUM})[日号]", r.read_calendar),
        (rf"(?<![\d年〇零一二两三四五六七八九十])(?P<m>{_NUM})月份?{_MONTH_PART}?", r.read_calendar),
        (r"(?P<s>[春夏秋冬])(?:天|季)", r.read_season),
        (_HOLIDAY_CN, r.read_holiday),
        (rf"(?<![\d〇零一二两三四五六七八九十百千第周初廿])(?P<h>十一){_ELEVEN_AFTER}", r.read_holiday),
        (r"(?P<w>上个?周末|这个?周末|本周末|周末)", r.read_weekend),
        (r"(?P<rel>上上个?月|上个?月|这个?月|本月)" + _MONTH_PART, r.read_relative_month_part),
        (rf"(?P<rel>{_WEEK_REL})", r.read_relative),
        # ISO and numeric.
        (
            r"(?<![0-9A-Za-z_.-])(?P<y>(?:19|20)\d{2})\s*[-—–~～]\s*(?P<y2>(?:19|20)\d{2})年?(?![0-9A-Za-z_.-])",
            r.read_years,
        ),
        (r"(?<!\d)(?P<y>\d{4})[-/.](?P<m>\d{1,2})[-/.](?P<d>\d{1,2})(?!\d)", r.read_calendar),
        (r"(?<!\d)(?P<y>\d{4})[-/.](?P<m>\d{1,2})(?!\d|-\d{1,2}(?!\d))", r.read_calendar),  # not 2019-07-1x
        # English.
        (r"\b(?P<mn>[a-z]{3,9})\.? (?P<d>\d{1,2})(?:st|nd|rd|th)?,? (?P<y>\d{4})\b", r.read_calendar),
        (r"\b(?P<d>\d{1,2})(?:st|nd|rd|th)? (?:of )?(?P<mn>[a-z]{3,9})\.?,? (?P<y>\d{4})\b", r.read_calendar),
        (rf"\b(?:the )?{_EN_PART}[- ](?:(?P<mn>may|{_MONTHS_EN})(?:,? (?P<y>\d{{4}}))?)\b", r.read_calendar),
        (rf"\b(?:the )?{_EN_PART}[- ](?:(?P<y>\d{{4}})|(?P<ry>last year|this year))\b", r.read_calendar),
        (r"\b(?P<mn>[a-z]{3,9})\.?,? (?P<y>\d{4})\b", r.read_calendar),
        (r"\b(?P<s>spring|summer|autumn|fall|winter)(?: of)? (?P<y>\d{4})\b", r.read_season),
        (rf"\b{_HOLIDAY_EN}(?: of)? (?P<y>\d{{4}})\b", r.read_holiday),
        (r"\b(?:the )?(?:(?P<part>early|mid|late)[- ])?(?P<dec>\d{2}|\d{4})'?s\b", r.read_decade),
        (rf"\b(?P<n>{_COUNT_EN}) (?P<unit>{_UNIT_EN}) ago\b", r.read_ago),
        (
            rf"\b(?:in )?(?:the )?(?:(?:last|past) (?P<n>{_COUNT_EN}) (?P<unit>{_UNIT_EN})"
            r"|past (?P<unit1>year|month|week))\b",
            r.read_rolling,
        ),
        (r"\b(?P<w>last weekend|this weekend|(?:the )?weekend)\b", r.read_weekend),
        (
            r"\b(?P<rel>the year before last|last year|this year|last month|this month|last week|this week"
            r"|(?:the )?day before yesterday|today|yesterday)\b",
            r.read_relative,
        ),
        (r"\b(?P<mn>[a-z]{3,9})\.? (?P<d>\d{1,2})(?:st|nd|rd|th)?\b(?![:.]?\d)", r.read_calendar),
        (r"\b(?P<d>\d{1,2})(?:st|nd|rd|th)? (?:of )?(?P<mn>[a-z]{3,9})\b", r.read_calendar),
        (rf"\b{_HOLIDAY_EN}\b", r.read_holiday),
        (r"\b(?P<s>spring|summer|autumn|fall|winter)\b", r.read_season),
        (rf"\b(?:in )?(?P<mn>{_MONTHS_EN})\b", r.read_calendar),
        (r"(?<![0-9A-Za-z_.-])(?P<y>(?:19|20)\d{2})(?![0-9A-Za-z_.-])", r.read_calendar),  # 2019三亚, not IMG_2019
        # A day alone (15日) is only the end of a range (7月1日到15日); finding drops it otherwise.
        (rf"(?<![\d月〇零一二两三四五六七八九十])(?P<d>{_NUM})[日号]", r.read_calendar),
    ]
]
