"""Places named offline from GPS: the right district in China by its border, the right country and city
elsewhere, no town at sea, and no error on what cameras write when they have no fix."""

from __future__ import annotations

import math
import threading
from typing import NamedTuple

import pytest

from photod.errors import PlaceError
from photod.ingest import places
from photod.ingest.places import Gazetteer, Place, short_name, unavailable


class Known(NamedTuple):
    what: str
    lat: float
    lon: float
    country: str
    province: str | None  # the Chinese names the place must have at each level; None: not checked
    city: str | None  # abroad: the town's English name
    district: str | None
    border: bool = False  # within a few km of a border, where the nearest centre lies across it


KNOWN = [
    Known("Tiananmen Square", 39.9055, 116.3976, "CN", "北京市", "北京市", "东城区"),
    Known("Century Park, Pudong", 31.2155, 121.5445, "CN", "上海市", "上海市", "浦东新区"),
    Known("West Lake, Hangzhou", 30.2500, 120.1400, "CN", "浙江省", "杭州市", "西湖区"),
    Known("Yuexiu Park, Guangzhou", 23.1390, 113.2630, "CN", "广东省", "广州市", "越秀区"),
    Known("Wuhou Shrine, Chengdu", 30.6460, 104.0480, "CN", "四川省", "成都市", "武侯区"),
    Known("Bell Tower, Xi'an", 34.2610, 108.9426, "CN", "陕西省", "西安市", None),
    Known("Potala Palace, Lhasa", 29.6578, 91.1169, "CN", "西藏自治区", "拉萨市", "城关区"),
    Known("Central Street, Harbin", 45.7735, 126.6167, "CN", "黑龙江省", "哈尔滨市", "道里区"),
    Known("Green Lake, Kunming", 25.0469, 102.7036, "CN", "云南省", "昆明市", "五华区"),
    Known("Jiefangbei, Chongqing", 29.5573, 106.5770, "CN", "重庆市", "重庆市", "渝中区"),
    Known("Window of the World, Shenzhen", 22.5364, 113.9730, "CN", "广东省", "深圳市", "南山区"),
    Known("Humble Administrator's Garden, Suzhou", 31.3263, 120.6292, "CN", "江苏省", "苏州市", "姑苏区"),
    Known("Yangshuo", 24.7783, 110.4966, "CN", "广西壮族自治区", "桂林市", "阳朔县"),
    Known("Mogao Caves, Dunhuang", 40.0427, 94.8087, "CN", "甘肃省", "酒泉市", "敦煌市"),
    Known("Dali old town", 25.6943, 100.1634, "CN", "云南省", "大理白族自治州", "大理市"),
    Known("Urumqi", 43.8256, 87.6168, "CN", "新疆维吾尔自治区", "乌鲁木齐市", None),
    Known("Hohhot", 40.8423, 111.7490, "CN", "内蒙古自治区", "呼和浩特市", None),
    Known("Qionghai, a county-level city under Hainan itself", 19.2460, 110.4640, "CN", "海南省", "琼海市", None),
    Known("Taipei 101", 25.0339, 121.5645, "TW", None, "台北市", None),
    Known("Tsim Sha Tsui, Hong Kong", 22.2976, 114.1722, "HK", None, "香港特别行政区", "油尖旺区"),
    Known("Ruins of St Paul's, Macao", 22.1975, 113.5409, "MO", None, "澳门特别行政区", None),
    # borders in China
    Known(
        "Yanjiao: Hebei, though Beijing's Tongzhou is nearer",
        39.9550,
        116.8150,
        "CN",
        "河北省",
        "廊坊市",
        "三河市",
        True,
    ),
    Known(
        "Songzhuang, Tongzhou: west of the Chaobai, across from Yanjiao",
        39.9560,
        116.7350,
        "CN",
        "北京市",
        "北京市",
        "通州区",
        True,
    ),
    Known(
        "Dachang, in the Hebei enclave between Beijing and Tianjin",
        39.8860,
        116.9890,
        "CN",
        "河北省",
        "廊坊市",
        "大厂回族自治县",
        True,
    ),
    Known("Xianghe, in the same enclave", 39.7630, 117.0060, "CN", "河北省", "廊坊市", "香河县", True),
    Known("Wuqing, Tianjin, between Beijing and Tianjin", 39.3840, 117.0440, "CN", "天津市", "天津市", "武清区", True),
    Known("Zhuozhou, Hebei, next to Beijing's Fangshan", 39.4850, 115.9740, "CN", "河北省", "保定市", "涿州市", True),
    Known(
        "Huaqiao, Kunshan, across the line from Shanghai's Anting",
        31.3050,
        121.0950,
        "CN",
        "江苏省",
        "苏州市",
        "昆山市",
        True,
    ),
    Known("Anting, Jiading, Shanghai", 31.2950, 121.1600, "CN", "上海市", "上海市", "嘉定区", True),
    Known("Zhujiajiao, Qingpu, Shanghai", 31.1080, 121.0540, "CN", "上海市", "上海市", "青浦区", True),
    Known("Zhouzhuang, Kunshan, on the Shanghai line", 31.1166, 120.8466, "CN", "江苏省", "苏州市", "昆山市", True),
    Known("Jiashan, Zhejiang, next to Shanghai", 30.8300, 120.9200, "CN", "浙江省", "嘉兴市", "嘉善县", True),
    Known("Futian, 1 km north of the Shenzhen River", 22.5230, 114.0550, "CN", "广东省", "深圳市", "福田区", True),
    Known("Dongmen, Luohu, 2 km from Hong Kong", 22.5450, 114.1180, "CN", "广东省", "深圳市", "罗湖区", True),
    Known("Sheung Shui, Hong Kong, 3 km south of Luohu", 22.5016, 114.1280, "HK", None, "香港特别行政区", "北区", True),
    Known(
        "Gongbei, Zhuhai, 1 km from the Macao border gate", 22.2240, 113.5500, "CN", "广东省", "珠海市", "香洲区", True
    ),
    Known("Taipa, Macao", 22.1560, 113.5580, "MO", None, "澳门特别行政区", None, True),
    Known(
        "Hengqin, Zhuhai, across the channel from Taipa", 22.1230, 113.5100, "CN", "广东省", "珠海市", "香洲区", True
    ),
    Known("Gulangyu, Siming, a small island off Xiamen", 24.4478, 118.0667, "CN", "福建省", "厦门市", "思明区", True),
    Known("Haicang, across the strait from Gulangyu", 24.4850, 118.0330, "CN", "福建省", "厦门市", "海沧区", True),
    Known("Sanya Phoenix airport: Tianya", 18.3029, 109.4122, "CN", "海南省", "三亚市", "天涯区", True),
    Known("Dadonghai, Sanya: Jiyang", 18.2300, 109.5150, "CN", "海南省", "三亚市", "吉阳区", True),
    Known("Yalong Bay, Sanya: Jiyang", 18.2400, 109.6250, "CN", "海南省", "三亚市", "吉阳区", True),
    Known("Yacheng, Sanya: Yazhou", 18.3500, 109.1700, "CN", "海南省", "三亚市", "崖州区", True),
    Known("Qiandeng Lake, Foshan, next to Guangzhou", 23.0450, 113.1470, "CN", "广东省", "佛山市", "南海区", True),
    # abroad
    Known("Eiffel Tower", 48.8584, 2.2945, "FR", None, "Paris", None),
    Known("Shibuya crossing", 35.6595, 139.7005, "JP", None, "Tokyo", None),
    Known("Kiyomizu-dera, Kyoto", 34.9949, 135.7850, "JP", None, "Kyoto", None),
    Known("Times Square", 40.7580, -73.9855, "US", None, "New York City", None),
    Known("Sydney Opera House", -33.8568, 151.2153, "AU", None, "Sydney", None),
    Known("Big Ben", 51.5007, -0.1246, "GB", None, "London", None),
    Known("Gyeongbokgung, Seoul", 37.5796, 126.9770, "KR", None, "Seoul", None),
    Known("Grand Palace, Bangkok", 13.7500, 100.4913, "TH", None, "Bangkok", None),
    Known("Brandenburg Gate", 52.5163, 13.3777, "DE", None, "Berlin", None),
    Known("Red Square", 55.7539, 37.6208, "RU", None, "Moscow", None),
    Known("Colosseum", 41.8902, 12.4922, "IT", None, "Rome", None),
    Known("Hollywood: a quarter of Los Angeles", 34.1016, -118.3267, "US", None, "Los Angeles", None),
    Known("Yokohama, not Tokyo 27 km away", 35.4660, 139.6220, "JP", None, "Yokohama", None),
    Known("Versailles, not Paris", 48.8049, 2.1204, "FR", None, "Versailles", None),
    Known("Honolulu", 21.3069, -157.8583, "US", None, "Honolulu", None),
    Known("Auckland", -36.8485, 174.7633, "NZ", None, "Auckland", None),
    # borders abroad
    Known(
        "University of Windsor: Canada, though bigger Detroit is as near",
        42.3043,
        -83.0660,
        "CA",
        None,
        "Windsor",
        None,
        True,
    ),
    Known("Detroit, across the river", 42.3314, -83.0458, "US", None, "Detroit", None, True),
    Known("Strasbourg, on the Rhine", 48.5818, 7.7510, "FR", None, "Strasbourg", None, True),
    Known("Kehl, across the Rhine from Strasbourg", 48.5700, 7.8150, "DE", None, "Kehl", None, True),
    Known("Niagara Falls, the Canadian side", 43.0799, -79.0780, "CA", None, "Niagara Falls", None, True),
    Known("Annemasse, France, next to Geneva", 46.1934, 6.2342, "FR", None, "Annemasse", None, True),
    Known("Geneva", 46.2044, 6.1432, "CH", None, "Geneva", None, True),
    Known("Woodlands, Singapore, across the strait from Johor Bahru", 1.4360, 103.7860, "SG", None, None, None, True),
    Known("Johor Bahru, Malaysia", 1.4700, 103.7600, "MY", None, "Johor Bahru", None, True),
    Known("Monaco", 43.7384, 7.4246, "MC", None, None, None, True),
]


def _wrong(place: Place | None, row: Known) -> list[str]:
    """What `place` gets wrong of `row`, empty when it is right."""
    if place is None:
        return ["no place"]
    wrong = [] if place.country_code == row.country else [f"country {place.country_code}"]
    for level, want in (("province", row.province), ("city", row.city), ("district", row.district)):
        got = getattr(place, level)
        if want is not None and (got is None or want not in got):
            wrong.append(f"{level} {got}")
    return wrong


@pytest.fixture(scope="module")
def gazetteer() -> Gazetteer:
    assert unavailable() is None
    return Gazetteer()


def test_known_places_are_named_right_borders_included(gazetteer, capsys):
    wrong = {row.what: _wrong(gazetteer.locate(row.lat, row.lon), row) for row in KNOWN}
    wrong = {what: why for what, why in wrong.items() if why}
    borders = [row for row in KNOWN if row.border]
    border_wrong = [row for row in borders if row.what in wrong]
    with capsys.disabled():
        print(
            f"\nplaces: {len(KNOWN) - len(wrong)}/{len(KNOWN)} right; border cases "
            f"{len(borders) - len(border_wrong)}/{len(borders)}"
        )
    assert len(KNOWN) >= 30 and len(borders) >= 10
    assert not wrong, wrong


def test_nearest_city_centre_would_get_the_border_cases_wrong(gazetteer):
    """The border table is a test of borders: for these points the nearest town of 5,000 or more (what a
    lookup without polygons would say) lies in another country or province."""
    yanjiao = gazetteer.locate(39.9550, 116.8150)
    assert yanjiao.province == ("河北省", "Hebei") and yanjiao.city[0] != "北京市"
    windsor = next(r for r in KNOWN if r.city == "Windsor")
    near, km = gazetteer._towns_near("US", windsor.lat, windsor.lon)
    assert len(near) and km.min() < 5  # Detroit is right there, across the river
    assert gazetteer.locate(windsor.lat, windsor.lon).country_code == "CA"


def test_at_sea_no_town_is_invented(gazetteer):
    assert gazetteer.locate(0.0, -150.0) is None  # the middle of the Pacific
    assert gazetteer.locate(35.0, -40.0) is None  # the mid-Atlantic
    assert gazetteer.locate(15.0, 125.0) is None  # the Philippine Sea, 100 km off Catanduanes
    off_sanya = gazetteer.locate(18.17, 109.52)  # 5 km off Dadonghai: Hainan's waters, no district
    assert off_sanya is not None and off_sanya.country_code == "CN"
    assert off_sanya.province == ("海南省", "Hainan") and off_sanya.city is None and off_sanya.district is None
    off_nice = gazetteer.locate(43.60, 7.27)  # 10 km off Nice: France's waters, no town
    assert off_nice == Place("FR", ("法国", "France"))


def test_a_beach_the_coastline_misses_is_still_on_land(gazetteer):
    # 1 km out from Sanya Bay's beach: within COAST_KM, named as the district on the shore
    place = gazetteer.locate(18.2450, 109.4700)
    assert place is not None and place.city == ("三亚市", "Sanya")


@pytest.mark.parametrize(
    "lat, lon",
    [
        (float("nan"), 110.0),
        (30.0, float("nan")),
        (91.0, 0.0),
        (-90.5, 0.0),
        (10.0, 181.0),
        (0.0, 0.0),
        (math.inf, 1.0),
        ("x", 1.0),
        (None, None),
    ],
)
def test_no_position_is_no_place_never_an_error(gazetteer, lat, lon):
    assert gazetteer.locate(lat, lon) is None


def test_names_and_labels_in_both_languages(gazetteer):
    place = gazetteer.locate(18.3029, 109.4122)
    assert place.country_code == "CN" and place.country == ("中国", "China")
    assert place.province == ("海南省", "Hainan") and place.city == ("三亚市", "Sanya")
    assert place.district == ("天涯区", "Tianya")
    names = place.names()
    for name in ("三亚", "三亚市", "Sanya", "海南", "海南省", "Hainan", "天涯区", "中国", "China"):
        assert name in names
    assert names.index("中国") < names.index("海南省") < names.index("三亚市") < names.index("天涯区")
    assert place.label() == "海南 三亚 天涯区"
    assert place.label("en") == "Tianya, Sanya, Hainan, China"
    beijing = gazetteer.locate(39.9055, 116.3976)
    assert beijing.label() == "北京 东城区" and beijing.label("en") == "Dongcheng, Beijing, China"
    assert gazetteer.locate(22.2976, 114.1722).label() == "香港 油尖旺区"
    assert gazetteer.locate(22.1975, 113.5409).label() == "澳门"
    dali = gazetteer.locate(25.6943, 100.1634)
    assert "大理" in dali.names() and dali.label().startswith("云南 大理")
    abroad = Place("FR", ("法国", "France"), city=("巴黎", "Paris"))
    assert abroad.label() == "法国 巴黎" and abroad.label("en") == "Paris, France"


def test_english_names_are_as_people_write_them(gazetteer):
    assert gazetteer.locate(34.2610, 108.9426).city == ("西安市", "Xi'an")
    assert gazetteer.locate(34.2610, 108.9426).province == ("陕西省", "Shaanxi")
    assert gazetteer.locate(29.6578, 91.1169).city == ("拉萨市", "Lhasa")
    assert gazetteer.locate(31.1128, 121.3815).district == ("闵行区", "Minhang")  # not Minxing
    assert gazetteer.locate(22.5016, 114.1280).district == ("北区", "North")


def test_chinese_names_abroad_are_simplified_with_the_others_searchable(gazetteer):
    tokyo = gazetteer.locate(35.6812, 139.7671)
    assert tokyo.city == ("东京", "Tokyo") and tokyo.country == ("日本", "Japan")
    new_york = gazetteer.locate(40.7580, -73.9855)
    assert new_york.city[0] == "纽约" and "纽约" in new_york.names()  # GeoNames has only 紐約
    assert "Times Square" in new_york.names()  # the quarter, as the district
    san_francisco = gazetteer.locate(37.7793, -122.4193)
    assert san_francisco.city[0] == "旧金山" and "三藩市" in san_francisco.names()
    assert gazetteer.locate(37.5796, 126.9770).country == ("韩国", "South Korea")


def test_short_names():
    assert [
        short_name(n)
        for n in (
            "三亚市",
            "海南省",
            "香港特别行政区",
            "大理白族自治州",
            "广西壮族自治区",
            "内蒙古自治区",
            "彭水苗族土家族自治县",
            "浦东新区",
            "城区",
            "神农架林区",
        )
    ] == ["三亚", "海南", "香港", "大理", "广西", "内蒙古", "彭水", "浦东", "城区", "神农架"]


def test_loads_once_on_first_use_from_several_threads(monkeypatch):
    gazetteer, calls = Gazetteer(), []
    real = Gazetteer._read
    monkeypatch.setattr(Gazetteer, "_read", lambda self: calls.append(1) or real(self))
    assert not calls  # nothing is read until a lookup asks
    results: list[Place | None] = []
    threads = [threading.Thread(target=lambda: results.append(gazetteer.locate(22.2976, 114.1722))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert calls == [1] and len(results) == 4 and all(r == results[0] for r in results)


def test_damaged_data_is_a_place_error(monkeypatch, tmp_path):
    (tmp_path / "placedata").mkdir()
    (tmp_path / "placedata" / places.DATA_FILE).write_bytes(b"PK\x03\x04 not a zip at all")
    monkeypatch.setattr(places.resources, "files", lambda package: tmp_path)
    with pytest.raises(PlaceError, match="cannot be read"):
        Gazetteer().locate(18.3, 109.5)
    assert Gazetteer().locate(float("nan"), 0) is None  # no position: nothing is loaded, nothing fails


def test_unavailable_says_what_is_missing(monkeypatch, tmp_path):
    monkeypatch.setattr(places.resources, "files", lambda package: tmp_path)
    assert "places.npz is missing" in unavailable()
