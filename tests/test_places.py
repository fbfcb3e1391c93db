"""Places named offline from GPS: the right district in China by its border, the right city elsewhere, no
town at sea, and no error on what cameras write when they have no fix."""

from __future__ import annotations

import math

import pytest

from photod.ingest.places import Gazetteer, Place, unavailable

# (what, lat, lon, expected names: each must be one of the place's names). Border cases are marked: a
# point a few km from a border, where the nearest city centre lies on the other side.
KNOWN = [
    ("Sanya, Tianya", 18.30, 109.45, {"三亚市", "天涯区"}, False),
    ("Sanya, Jiyang", 18.28, 109.60, {"三亚市", "吉阳区"}, False),
    ("Haikou", 20.03, 110.33, {"海口市", "海南省"}, False),
    ("Beijing, Dongcheng", 39.915, 116.404, {"北京市", "东城区"}, False),
    ("Shanghai, Huangpu", 31.23, 121.49, {"上海市", "黄浦区"}, False),
    ("Guangzhou, Yuexiu", 23.13, 113.27, {"广州市", "广东省"}, False),
    ("Hangzhou, West Lake", 30.245, 120.14, {"杭州市", "西湖区"}, False),
    ("Chengdu", 30.66, 104.06, {"成都市", "四川省"}, False),
    ("Xi'an", 34.26, 108.94, {"西安市", "陕西省", "Shaanxi"}, False),
    ("Lhasa", 29.65, 91.13, {"拉萨市", "Lhasa", "西藏自治区"}, False),
    ("Harbin", 45.76, 126.63, {"哈尔滨市", "黑龙江省"}, False),
    ("Kunming", 25.04, 102.71, {"昆明市", "云南省"}, False),
    ("Urumqi", 43.82, 87.61, {"乌鲁木齐市", "新疆维吾尔自治区"}, False),
    ("Xiamen, Siming", 24.46, 118.09, {"厦门市", "思明区"}, False),
    ("Hong Kong, Kowloon", 22.32, 114.17, {"香港", "油尖旺区"}, False),
    ("Macao", 22.19, 113.545, {"澳门特别行政区"}, False),
    # borders
    ("Yanjiao (Hebei), not Beijing", 39.95, 116.82, {"三河市", "河北省"}, True),
    ("Tongzhou (Beijing), across from Yanjiao", 39.90, 116.68, {"北京市", "通州区"}, True),
    ("Kunshan (Jiangsu), next to Shanghai", 31.30, 121.00, {"昆山市", "苏州市", "江苏省"}, True),
    ("Qingpu (Shanghai), next to Kunshan", 31.15, 121.12, {"上海市", "青浦区"}, True),
    ("Shenzhen Futian, the Hong Kong border", 22.52, 114.05, {"深圳市", "福田区"}, True),
    ("Hong Kong side of the Shenzhen river", 22.50, 114.10, {"香港"}, True),
    ("Zhuhai Gongbei, next to Macao", 22.225, 113.55, {"珠海市", "香洲区"}, True),
    ("Gulangyu vs Haicang across the strait", 24.49, 118.03, {"厦门市"}, True),
    ("Langfang Guangyang, Beijing to the north", 39.53, 116.70, {"廊坊市", "河北省"}, True),
    ("Dali, not Kunming", 25.60, 100.27, {"大理白族自治州", "云南省"}, True),
    ("Paris", 48.857, 2.352, {"巴黎", "Paris", "法国"}, False),
    ("Versailles, not Paris", 48.80, 2.13, {"Versailles"}, True),
    ("Strasbourg (France), the Rhine", 48.58, 7.75, {"Strasbourg", "法国"}, True),
    ("Kehl (Germany), across the Rhine", 48.57, 7.815, {"Kehl", "德国"}, True),
    ("Tokyo", 35.68, 139.76, {"东京", "Tokyo", "日本"}, False),
    ("Kyoto", 35.01, 135.77, {"Kyoto", "日本"}, False),
    ("New York", 40.75, -73.99, {"New York City", "美国"}, False),
    ("Sydney", -33.87, 151.21, {"悉尼", "Sydney", "澳大利亚"}, False),
    ("Berlin", 52.52, 13.40, {"柏林", "Berlin", "德国"}, False),
]


@pytest.fixture(scope="module")
def gazetteer() -> Gazetteer:
    assert unavailable() is None
    return Gazetteer()


def test_known_places_are_named_right_borders_included(gazetteer, capsys):
    wrong = []
    for what, lat, lon, expected, _border in KNOWN:
        place = gazetteer.locate(lat, lon)
        names = set(place.names()) if place else set()
        if not expected <= names:
            wrong.append((what, sorted(expected - names), place.label() if place else None))
    borders = [k for k in KNOWN if k[4]]
    border_wrong = [w for w in wrong if any(w[0] == k[0] for k in borders)]
    with capsys.disabled():
        print(f"\nplaces: {len(KNOWN) - len(wrong)}/{len(KNOWN)} right, border cases "
              f"{len(borders) - len(border_wrong)}/{len(borders)}")
    assert len(borders) >= 10 and not wrong, wrong


def test_at_sea_no_town_is_invented(gazetteer):
    assert gazetteer.locate(0.0, -150.0) is None  # the middle of the Pacific
    off_sanya = gazetteer.locate(18.17, 109.40)  # a few km off Sanya's coast, in the sea
    assert off_sanya is None or (off_sanya.city is None and off_sanya.district is None)
    assert gazetteer.locate(35.0, -40.0) is None  # the mid-Atlantic


@pytest.mark.parametrize("lat, lon", [(float("nan"), 110.0), (91.0, 0.0), (10.0, 181.0), (0.0, 0.0),
                                      (math.inf, 1.0), ("x", 1.0), (None, None)])
def test_no_position_is_no_place_never_an_error(gazetteer, lat, lon):
    assert gazetteer.locate(lat, lon) is None


def test_names_and_labels_in_both_languages(gazetteer):
    place = gazetteer.locate(18.30, 109.45)
    assert place.country_code == "CN" and place.country == ("中国", "China")
    assert place.province == ("海南省", "Hainan") and place.city == ("三亚市", "Sanya")
    assert place.district == ("天涯区", "Tianya")
    names = place.names()
    for name in ("三亚", "三亚市", "Sanya", "海南", "Hainan", "天涯区", "中国", "China"):
        assert name in names
    assert place.label() == "海南 三亚 天涯区"
    assert place.label("en") == "Tianya, Sanya, Hainan, China"
    beijing = gazetteer.locate(39.915, 116.404)
    assert beijing.label() == "北京 东城区"  # a municipality is its own province and city: said once
    abroad = Place("FR", ("法国", "France"), city=("巴黎", "Paris"))
    assert abroad.label() == "法国 巴黎" and abroad.label("en") == "Paris, France"
