"""The words date expressions are made of: numbers, months, holidays, and the traditional spellings of them.

Vocabulary only (no calendar arithmetic): the tables the patterns are built from and the numbers they read.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

# Traditional characters that date words use, to their simplified forms, one for one (so that a position in
# the normalised text is the same position in what the person typed: the words around a date stay as typed).
# The curly apostrophe (valentine’s day) is read as the straight one, for the same reason.
NORMALISE = str.maketrans(
    "號國聖誕個這週禮節後內來萬兒婦師臘曆歷陰陽農從為間點時學兩幾過勞動慶燈龍紀現開頭際舊當屆裡裏’",
    "号国圣诞个这周礼节后内来万儿妇师腊历历阴阳农从为间点时学两几过劳动庆灯龙纪现开头际旧当届里里'",
)

CN_DIGITS = {"〇": 0, "零": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}

EN_NUMBERS = {
    "a": 1,
    "an": 1,
    "one": 1,
    "two": 2,
    "a couple of": 2,
    "three": 3,
    "a few": 3,
    "few": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
}

MONTHS_EN = {
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

SEASONS = {"春": 3, "夏": 6, "秋": 9, "冬": 12, "spring": 3, "summer": 6, "autumn": 9, "fall": 9, "winter": 12}

RELATIVE_YEARS = {
    "今年": 0,
    "去年": -1,
    "前年": -2,
    "大前年": -3,
    "明年": 1,
    "this year": 0,
    "last year": -1,
    "the year before last": -2,
}

# Parts of a year and of a month, as (first, last) months or days; 0 as a last day is the month's last day.
YEAR_PARTS = {
    "初": (1, 2),
    "年初": (1, 2),
    "early": (1, 2),
    "beginning of": (1, 2),
    "start of": (1, 2),
    "年中": (5, 8),
    "中": (5, 8),
    "mid": (5, 8),
    "middle of": (5, 8),
    "底": (11, 12),
    "末": (11, 12),
    "年底": (11, 12),
    "年末": (11, 12),
    "late": (11, 12),
    "end of": (11, 12),
    "上半年": (1, 6),
    "first half of": (1, 6),
    "下半年": (7, 12),
    "second half of": (7, 12),
}
MONTH_PARTS = {
    "初": (1, 10),
    "上旬": (1, 10),
    "early": (1, 10),
    "beginning of": (1, 10),
    "start of": (1, 10),
    "中旬": (11, 20),
    "mid": (11, 20),
    "middle of": (11, 20),
    "下旬": (21, 0),
    "底": (21, 0),
    "末": (21, 0),
    "late": (21, 0),
    "end of": (21, 0),
}
# Parts of a decade, as years into it (first, last).
DECADE_PARTS = {
    "初": (0, 2),
    "初期": (0, 2),
    "前期": (0, 2),
    "early": (0, 2),
    "中期": (3, 6),
    "mid": (3, 6),
    "末": (7, 9),
    "末期": (7, 9),
    "后期": (7, 9),
    "late": (7, 9),
}

# Holidays by their one name, the windows photos of them fall in. Fixed: ((month, day), (month, day)).
FIXED_HOLIDAYS = {
    "元旦": ((1, 1), (1, 1)),
    "寒假": ((1, 15), (2, 29)),
    "情人节": ((2, 14), (2, 14)),
    "妇女节": ((3, 8), (3, 8)),
    "愚人节": ((4, 1), (4, 1)),
    "清明": ((4, 4), (4, 6)),  # the solar term falls on 4 or 5 April; the holiday is about three days
    "劳动节": ((5, 1), (5, 5)),
    "儿童节": ((6, 1), (6, 1)),
    "暑假": ((7, 1), (8, 31)),
    "教师节": ((9, 10), (9, 10)),
    "国庆": ((10, 1), (10, 7)),
    "万圣节": ((10, 31), (10, 31)),
    "平安夜": ((12, 24), (12, 24)),
    "圣诞": ((12, 24), (12, 26)),
    "跨年夜": ((12, 31), (12, 31)),
}
# Lunar (month, day), and the first and last day as days from it: 春节 is 除夕 (the eve) to 初七.
LUNAR_HOLIDAYS = {
    "春节": ((1, 1), -1, 6),
    "除夕": ((1, 1), -1, -1),
    "元宵": ((1, 15), 0, 0),
    "端午": ((5, 5), 0, 0),
    "七夕": ((7, 7), 0, 0),
    "中秋": ((8, 15), 0, 0),
    "重阳": ((9, 9), 0, 0),
    "腊八": ((12, 8), 0, 0),
}
# The n-th weekday (Monday 0) of a month: 母亲节 is May's second Sunday.
WEEKDAY_HOLIDAYS = {"母亲节": (5, 6, 2), "父亲节": (6, 6, 3), "感恩节": (11, 3, 4)}

# Other spellings of the holidays, to their one name. 十一 is 国庆 only where it is clearly the holiday
# (after a year, or as a word of its own); 五一 and 六一 are the holidays' usual names.
HOLIDAY_NAMES_CN = {
    **{name: name for name in (*FIXED_HOLIDAYS, *LUNAR_HOLIDAYS, *WEEKDAY_HOLIDAYS)},
    "过年": "春节",
    "春节假期": "春节",
    "大年三十": "除夕",
    "年三十": "除夕",
    "元宵节": "元宵",
    "情人节": "情人节",
    "三八节": "妇女节",
    "三八妇女节": "妇女节",
    "清明节": "清明",
    "五一": "劳动节",
    "五一劳动节": "劳动节",
    "五一假期": "劳动节",
    "六一儿童节": "儿童节",
    "端午节": "端午",
    "七夕节": "七夕",
    "中秋节": "中秋",
    "重阳节": "重阳",
    "腊八节": "腊八",
    "国庆节": "国庆",
    "国庆假期": "国庆",
    "万圣节前夜": "万圣节",
    "圣诞节": "圣诞",
    "元旦节": "元旦",
}
HOLIDAY_NAMES_EN = {
    "new year's day": "元旦",
    "new years day": "元旦",
    "new year day": "元旦",
    "chinese new year": "春节",
    "lunar new year": "春节",
    "spring festival": "春节",
    "lantern festival": "元宵",
    "valentine's day": "情人节",
    "valentines day": "情人节",
    "valentine's": "情人节",
    "women's day": "妇女节",
    "april fools' day": "愚人节",
    "april fools day": "愚人节",
    "april fool's day": "愚人节",
    "qingming": "清明",
    "tomb-sweeping day": "清明",
    "tomb sweeping day": "清明",
    "may day": "劳动节",
    "mother's day": "母亲节",
    "mothers day": "母亲节",
    "children's day": "儿童节",
    "father's day": "父亲节",
    "fathers day": "父亲节",
    "dragon boat festival": "端午",
    "qixi": "七夕",
    "teachers' day": "教师节",
    "teachers day": "教师节",
    "teacher's day": "教师节",
    "mid-autumn festival": "中秋",
    "mid autumn festival": "中秋",
    "moon festival": "中秋",
    "national day": "国庆",
    "halloween": "万圣节",
    "thanksgiving": "感恩节",
    "christmas eve": "平安夜",
    "christmas": "圣诞",
    "xmas": "圣诞",
    "new year's eve": "跨年夜",
    "new years eve": "跨年夜",
}

LUNAR_MONTH_NAMES = {"正": 1, "冬": 11, "腊": 12}


def number(raw: str) -> int:
    """12, 七, 十二, 二十五, 三十一, 廿五, 初五 (a lunar day), 二〇一九 (digit by digit)."""
    raw = raw.removeprefix("初")
    if raw.isdigit():
        return int(raw)
    raw = raw.replace("廿", "二十")
    if "十" not in raw and all(c in CN_DIGITS for c in raw):
        return int("".join(str(CN_DIGITS[c]) for c in raw))
    tens, _, ones = raw.partition("十")
    if len(tens) > 1 or len(ones) > 1 or any(c not in CN_DIGITS for c in tens + ones):
        raise ValueError(f"{raw!r} is not a number")  # a run of numerals such as 五一十一 (五一 then 十一月)
    return (CN_DIGITS[tens] if tens else 1) * 10 + (CN_DIGITS[ones] if ones else 0)


def alternation(words: Iterable[str]) -> str:
    """A regex alternation of the words, longest first (so that 国庆节 is read before 国庆)."""
    return "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))
