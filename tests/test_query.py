"""The query language: date words (a table with a fixed today), the parser's terms, and bad input (fuzzed)."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from photod.search.dates import find_dates, intersect
from photod.search.query import MAX_CHARS, parse
from tests.test_dates_table import TABLE

TODAY = dt.date(2026, 12, 3)  # a Thursday
D = dt.date

# (expression, expected ranges or a yearly window). Ranges are inclusive first and last days.
DATES = [
    ("2019年", [(D(2019, 1, 1), D(2019, 12, 31))]),
    ("2019", [(D(2019, 1, 1), D(2019, 12, 31))]),
    ("2019三亚", [(D(2019, 1, 1), D(2019, 12, 31))]),
    ("二〇一九年", [(D(2019, 1, 1), D(2019, 12, 31))]),
    ("2019年7月", [(D(2019, 7, 1), D(2019, 7, 31))]),
    ("2019年七月", [(D(2019, 7, 1), D(2019, 7, 31))]),
    ("二〇一九年十二月", [(D(2019, 12, 1), D(2019, 12, 31))]),
    ("2020年2月", [(D(2020, 2, 1), D(2020, 2, 29))]),
    ("2019年2月", [(D(2019, 2, 1), D(2019, 2, 28))]),
    ("2019年7月15日", [(D(2019, 7, 15), D(2019, 7, 15))]),
    ("2019年7月15号", [(D(2019, 7, 15), D(2019, 7, 15))]),
    ("2019年七月十五日", [(D(2019, 7, 15), D(2019, 7, 15))]),
    ("2019年十二月三十一日", [(D(2019, 12, 31), D(2019, 12, 31))]),
    ("2019-07", [(D(2019, 7, 1), D(2019, 7, 31))]),
    ("2019/07", [(D(2019, 7, 1), D(2019, 7, 31))]),
    ("2019.7", [(D(2019, 7, 1), D(2019, 7, 31))]),
    ("2019-07-15", [(D(2019, 7, 15), D(2019, 7, 15))]),
    ("2019/7/15", [(D(2019, 7, 15), D(2019, 7, 15))]),
    ("今年", [(D(2026, 1, 1), D(2026, 12, 31))]),
    ("去年", [(D(2025, 1, 1), D(2025, 12, 31))]),
    ("前年", [(D(2024, 1, 1), D(2024, 12, 31))]),
    ("上个月", [(D(2026, 11, 1), D(2026, 11, 30))]),
    ("上月", [(D(2026, 11, 1), D(2026, 11, 30))]),
    ("这个月", [(D(2026, 12, 1), D(2026, 12, 3))]),
    ("本月", [(D(2026, 12, 1), D(2026, 12, 3))]),
    ("上周", [(D(2026, 11, 23), D(2026, 11, 29))]),
    ("本周", [(D(2026, 11, 30), D(2026, 12, 3))]),
    ("今天", [(D(2026, 12, 3), D(2026, 12, 3))]),
    ("昨天", [(D(2026, 12, 2), D(2026, 12, 2))]),
    ("前天", [(D(2026, 12, 1), D(2026, 12, 1))]),
    ("最近一周", [(D(2026, 11, 27), D(2026, 12, 3))]),
    ("2019年夏天", [(D(2019, 6, 1), D(2019, 8, 31))]),
    ("2019年的夏天", [(D(2019, 6, 1), D(2019, 8, 31))]),
    ("2019年夏季", [(D(2019, 6, 1), D(2019, 8, 31))]),
    ("2019年春天", [(D(2019, 3, 1), D(2019, 5, 31))]),
    ("2019年秋天", [(D(2019, 9, 1), D(2019, 11, 30))]),
    ("2019年冬天", [(D(2019, 12, 1), D(2020, 2, 29))]),
    ("去年夏天", [(D(2025, 6, 1), D(2025, 8, 31))]),
    ("今年冬天", [(D(2026, 12, 1), D(2027, 2, 28))]),
    ("2019年上半年", [(D(2019, 1, 1), D(2019, 6, 30))]),
    ("2019年下半年", [(D(2019, 7, 1), D(2019, 12, 31))]),
    ("90年代", [(D(1990, 1, 1), D(1999, 12, 31))]),
    ("2010年代", [(D(2010, 1, 1), D(2019, 12, 31))]),
    ("2019年春节", [(D(2019, 2, 4), D(2019, 2, 11))]),  # 除夕 2019-02-04 (初一 02-05) to 初七
    ("去年春节", [(D(2025, 1, 28), D(2025, 2, 4))]),
    ("2020年过年", [(D(2020, 1, 24), D(2020, 1, 31))]),
    ("2024年除夕", [(D(2024, 2, 9), D(2024, 2, 9))]),
    ("2019年中秋", [(D(2019, 9, 13), D(2019, 9, 13))]),
    ("2019年中秋节", [(D(2019, 9, 13), D(2019, 9, 13))]),
    ("2019年国庆", [(D(2019, 10, 1), D(2019, 10, 7))]),
    ("2019年国庆节", [(D(2019, 10, 1), D(2019, 10, 7))]),
    ("2019年元旦", [(D(2019, 1, 1), D(2019, 1, 1))]),
    ("2019年圣诞节", [(D(2019, 12, 24), D(2019, 12, 26))]),
    ("夏天", ((6, 1), (8, 31))),
    ("冬天", ((12, 1), (2, 29))),
    ("春季", ((3, 1), (5, 31))),
    ("7月", ((7, 1), (7, 31))),
    ("七月", ((7, 1), (7, 31))),
    ("十二月", ((12, 1), (12, 31))),
    ("7月15日", ((7, 15), (7, 15))),
    ("国庆", ((10, 1), (10, 7))),
    ("元旦", ((1, 1), (1, 1))),
    # English.
    ("July 2019", [(D(2019, 7, 1), D(2019, 7, 31))]),
    ("Jul 2019", [(D(2019, 7, 1), D(2019, 7, 31))]),
    ("july, 2019", [(D(2019, 7, 1), D(2019, 7, 31))]),
    ("July 15, 2019", [(D(2019, 7, 15), D(2019, 7, 15))]),
    ("15 July 2019", [(D(2019, 7, 15), D(2019, 7, 15))]),
    ("May 2019", [(D(2019, 5, 1), D(2019, 5, 31))]),
    ("last year", [(D(2025, 1, 1), D(2025, 12, 31))]),
    ("this year", [(D(2026, 1, 1), D(2026, 12, 31))]),
    ("last month", [(D(2026, 11, 1), D(2026, 11, 30))]),
    ("this month", [(D(2026, 12, 1), D(2026, 12, 3))]),
    ("last week", [(D(2026, 11, 23), D(2026, 11, 29))]),
    ("yesterday", [(D(2026, 12, 2), D(2026, 12, 2))]),
    ("today", [(D(2026, 12, 3), D(2026, 12, 3))]),
    ("summer 2019", [(D(2019, 6, 1), D(2019, 8, 31))]),
    ("summer of 2019", [(D(2019, 6, 1), D(2019, 8, 31))]),
    ("winter 2019", [(D(2019, 12, 1), D(2020, 2, 29))]),
    ("last summer", [(D(2026, 6, 1), D(2026, 8, 31))]),
    ("this summer", [(D(2026, 6, 1), D(2026, 8, 31))]),
    ("last winter", [(D(2025, 12, 1), D(2026, 2, 28))]),
    ("christmas 2019", [(D(2019, 12, 24), D(2019, 12, 26))]),
    ("chinese new year 2019", [(D(2019, 2, 4), D(2019, 2, 11))]),
    ("national day 2019", [(D(2019, 10, 1), D(2019, 10, 7))]),
    ("the 90s", [(D(1990, 1, 1), D(1999, 12, 31))]),
    ("1990s", [(D(1990, 1, 1), D(1999, 12, 31))]),
    ("summer", ((6, 1), (8, 31))),
    ("in July", ((7, 1), (7, 31))),
    ("christmas", ((12, 24), (12, 26))),
    # Two date words narrow each other.
    ("2019 summer", [(D(2019, 6, 1), D(2019, 8, 31))]),
    ("2019年 7月", [(D(2019, 7, 1), D(2019, 7, 31))]),
]


@pytest.mark.parametrize("expression, expected", DATES, ids=[e for e, _ in DATES])
def test_date_words_mean_their_days(expression, expected):
    spans, rest, problems = find_dates(expression, TODAY)
    span = intersect(spans)
    assert not problems and span is not None, (spans, problems)
    assert not rest.strip() or rest.strip() == "三亚"
    if isinstance(expected, tuple):
        assert span.yearly == expected and not span.ranges
    else:
        assert list(span.ranges) == expected


def test_the_table_is_at_least_sixty_expressions():
    assert len(DATES) >= 60


def test_spring_festival_of_any_year_is_each_year_s_lunar_dates():
    span = intersect(find_dates("春节", TODAY)[0])
    by_year = {first.year: (first, last) for first, last in span.ranges}
    assert by_year[2019] == (D(2019, 2, 4), D(2019, 2, 11)) and by_year[2026] == (D(2026, 2, 16), D(2026, 2, 23))
    assert span.describe() == "每年 春节"


@pytest.mark.parametrize("text", ["2019年2月30日", "2019年13月", "2019-02-30", "2019-13"])
def test_a_date_that_does_not_exist_is_said_and_dropped(text):
    spans, rest, problems = find_dates(text, TODAY)
    assert not spans and len(problems) == 1 and text in problems[0] or "13" in problems[0]
    parsed = parse(f"{text} 海边", today=TODAY)
    assert parsed.dates is None and parsed.notes and [t.text for t in parsed.terms] == ["海边"]


@pytest.mark.parametrize("text", ["IMG_2019.jpg", "20190715", "1234", "海边", "version 2.0"])
def test_words_that_only_look_like_dates_stay_words(text):
    assert not find_dates(text, TODAY)[0]


def test_what_is_recognised_is_shown_back():
    parsed = parse("2019年夏天 三亚 海边 -人", today=TODAY, places={"三亚", "sanya"})
    assert parsed.understood() == ["日期 2019-06-01 … 2019-08-31", "地点 三亚", "排除 人"]
    assert parsed.meaning_text == "海边" and parsed.words == ["海边", "三亚"]
    assert [t.text for t in parsed.exclusions] == ["人"]


# ---- the parser -----------------------------------------------------------------------------------------


def _terms(text: str, **kw) -> list[tuple]:
    parsed = parse(text, today=TODAY, **kw)
    return [(t.text, t.weight, t.exact, t.like) for t in parsed.terms]


def test_terms_weights_exact_phrases_and_examples():
    assert _terms("小白 沙发") == [("小白 沙发", 1.0, False, None)]
    assert _terms("cat + 2:dog - grass") == [("cat", 1.0, False, None), ("dog", 2.0, False, None)]
    assert _terms('"三亚湾" 菜单') == [("三亚湾", 1.0, True, None), ("菜单", 1.0, False, None)]
    assert _terms("“三亚湾” 菜单") == _terms('"三亚湾" 菜单')  # Chinese quotes
    assert _terms("like:/photos/2019-07-01.jpg 海边")[0] == (
        "/photos/2019-07-01.jpg",
        1.0,
        False,
        "/photos/2019-07-01.jpg",
    )
    assert parse("海边 －人", today=TODAY).exclusions[0].text == "人"  # a full-width minus
    assert parse("海边 \u2212人", today=TODAY).exclusions[0].text == "人"  # the CLI's minus sign
    assert [t.text for t in parse('海边 -"三亚湾"', today=TODAY).exclusions] == ["三亚湾"]


def test_place_words_found_inside_chinese_and_across_english_words():
    parsed = parse("三亚海边 Hong Kong night", today=TODAY, places={"三亚", "hong kong"})
    assert parsed.places == ("三亚", "Hong Kong") and parsed.meaning_text == "海边 night"
    assert parse("三亚海边", today=TODAY).places == ()  # a place the library has no photo of is a word


@pytest.mark.parametrize(
    "text",
    ["", "   ", "-", "+", "---", "!!!", "。，、", "😀😀", '"', '""', "2:", '-""', "like:", "\x00\x01", "x" * 10_000],
)
def test_nothing_searchable_is_not_an_error(text):
    parsed = parse(text, today=TODAY)
    assert all(t.text for t in parsed.terms)


def test_a_very_long_query_is_cut_and_says_so():
    parsed = parse("海边 " * 5000, today=TODAY)
    assert parsed.notes and str(MAX_CHARS) in parsed.notes[0]
    assert len(parsed.terms) <= 16


@settings(max_examples=400, deadline=None)
@given(
    st.text(
        alphabet=st.sampled_from(list("海边人三亚年月日夏天春节去上个-+:\"“” 2019０１like:/.😀ab*()\\'")), max_size=60
    )
    | st.text(max_size=80)
)
@example("五一十一月")  # numerals running on (五一, then 十一月) once reached the number reader as one
def test_the_parser_never_fails(text):
    parsed = parse(text, today=TODAY, places={"三亚"})
    for term in (*parsed.terms, *parsed.exclusions):
        assert term.text and 0 < term.weight <= 10
    parsed.understood()


# ---- date phrases never become an empty filter in silence -----------------------------------------------

_DATE_PHRASES = [expression for expression, _ in TABLE] + [expression for expression, _ in DATES]
_AROUND = st.text(
    alphabet=st.sampled_from(list("年月日号到至-~—起止前后以来初底末上下中旬周末天个两三十一2019 海边to")), max_size=6
)


def _assert_never_empty_in_silence(text: str, today: dt.date) -> None:
    parsed = parse(text, today=today)
    if parsed.dates is not None:
        assert parsed.dates.yearly or parsed.dates.ranges, (text, parsed.dates)
        assert all(first <= last for first, last in parsed.dates.ranges), (text, parsed.dates)
    spans, _, problems = find_dates(text, today)
    if (spans or problems) and parsed.dates is None:
        assert parsed.notes, (text, spans)


@settings(max_examples=600, deadline=None)
@given(
    st.sampled_from(_DATE_PHRASES),
    st.sampled_from(_DATE_PHRASES + [""]),
    _AROUND,
    _AROUND,
    st.sampled_from(["", " "]),
    st.dates(min_value=dt.date(1990, 1, 1), max_value=dt.date(2060, 12, 31)),
)
def test_no_date_phrase_yields_an_empty_filter_without_a_message(phrase, other, before, after, gap, today):
    """Alone, inside other words, or next to another date phrase: a filter with days, or a note."""
    _assert_never_empty_in_silence(phrase, today)
    _assert_never_empty_in_silence(f"{before}{gap}{phrase}{gap}{other}{after}", today)


@settings(max_examples=400, deadline=None)
@given(
    st.text(
        alphabet=st.sampled_from(list("年月日号到至起止以前后初底末旬上下半周礼拜个这近最农历正腊十一二五八0129 -~")),
        max_size=14,
    )
)
def test_date_characters_in_any_order_never_make_an_empty_filter_in_silence(text):
    _assert_never_empty_in_silence(text, TODAY)
