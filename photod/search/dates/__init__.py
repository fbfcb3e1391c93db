"""Date words in a query, in Chinese and English, turned into the days they mean.

Each expression becomes a DateSpan: absolute days, or a window of every year. An expression with no year
means every year (夏天: June to August of any year; 春节: each year's Spring Festival), as a photo search of
"summer" wants; `last`/`this` pick one (last christmas: the latest that has ended before today). Traditional
characters are read as simplified (號, 國慶, 聖誕節, 這週, 禮拜). Two date words narrow each other (2019年 夏天);
where they share no day, or an expression names none (2019年2月30日, 2020到2019年), the query's notes say so
and no date filter is applied.

    2019年, 2019, 二〇一九年, 19年7月, 98年    the year (two digits: this century up to this year, else the last)
    2019年7月, 2019-07, July 2019             the month
    2019年7月15日, 2019/7/15, July 15, 2019   the day
    7月, 七月, in July, 7月15日, Aug 8, July 4th  that month or day of every year
    2019年初 / 年初, early 2019               January and February
    2019年中, mid 2019                         May to August
    2019年底, 年末, end of 2019, late 2019     November and December
    上半年, 下半年 (alone: of every year)      January to June, July to December
    7月上旬 / 初, early March                   days 1-10; 中旬, mid March: 11-20; 下旬 / 底 / 末, late March: 21-end
    夏天, 2019年夏天, summer 2019, last summer  meteorological: 春 Mar-May, 夏 Jun-Aug, 秋 Sep-Nov, 冬 Dec-Feb
                                              (a year's winter is its December and the next January-February)
    暑假, 寒假                                  July-August; January 15 to the end of February
    90年代, 八十年代, 上世纪九十年代, the 90s    the decade; 初 / early: its first 3 years, 中期 / mid: 4th-7th,
                                              末 / late: its last 3
    今天, 昨天, 前天, 大前天, yesterday          that day
    上周, 上个星期, 上礼拜, last week            last week, Monday to Sunday; 上上周 the week before
    本周, 这周, 这礼拜, this week               this week's Monday to today
    上个月, last month; 本月, this month        last calendar month; this month to today
    周末 / weekend                              the latest weekend begun; 上周末 / last weekend, 这周末 / this weekend
    两年前, 三个月前, 2 weeks ago, 3 days ago    that calendar year, month, week or day
    近三个月, 最近半年, 最近一周, last 3 months,  that long, ending today (最近一周: the 7 days to today)
      the past year
    前两天, 前三个月                            that long before today, without today
    几 (最近几天, 前几天)                        read as three
    2019到2020年, 2019年7月-8月, 7月1日到15日,   from the start of the first to the end of the last; the end takes
      from 2019 to 2020, 2019-2020, July to     the start's year (and month); with 至, 到, 起…止, -, —, ~,
      August 2019, between 2019 and 2020          to, until, through
    2000年以后 / 以来 / 起, since 2000, 2019年至今  from its first day to today
    after 2019                                  from the day after it to today
    2000年以前, before 2000                     up to the day before it
    春节, 过年 (除夕 to 初七), 国庆 / 十一 (1-7 October), 五一 / 劳动节 (1-5 May), 元旦, 清明 (4-6 April),
      端午, 中秋, 元宵, 除夕, 七夕, 重阳, 腊八 (the lunar day), 妇女节, 儿童节, 教师节, 情人节, 万圣节 /
      Halloween (31 October), 平安夜, 圣诞 / Christmas (24-26 December), 母亲节, 父亲节, 感恩节, with a year
      (2019年中秋, christmas 2019, 去年十一) or without (every year's); 十一 only after a year or as a
      word of its own (十一去三亚, not 十一岁 or 十一月)
    农历八月十五, 正月初一, 腊月, 八月初五       the lunar day or month (of the year given, else every year's)

Hand-written rather than a general Chinese time-expression library: the ones on the package index weigh tens
of megabytes with their dictionaries (too much for the Pi), and a photo search needs days, not times.
"""

from photod.search.dates.finding import find_dates
from photod.search.dates.holidays import FIRST_YEAR
from photod.search.dates.span import DateError, DateSpan, date_filter, intersect

__all__ = ["FIRST_YEAR", "DateError", "DateSpan", "date_filter", "find_dates", "intersect"]
