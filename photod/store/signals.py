"""The search channels stored beside a photo's vector: text read in it, where it was taken, and the text
tower's embedding of its captions (tables in migrations/0005_photo_signals.sql).

Only the SQL. What is read and looked up comes from photod.ingest.ocr and photod.ingest.places; this module
stores it with the id of what produced it (OCR engine, place data version, text tower), so a change of any
of them redoes exactly the rows it concerns, and answers which photos still wait for each.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Iterable, Sequence, TypedDict, cast

from photod.store.catalog import Catalog, PendingRow

if TYPE_CHECKING:  # numpy only where embeddings are handled: `photod status` reads this module too
    import numpy as np

# Photos whose stage entry exists and whose pixels are worth reading: the states a search can show.
_READABLE = "p.state IN ('staged', 'indexed') AND p.kind = 'photo'"  # videos' text is not read (yet)


class TextRow(TypedDict):
    photo_id: int
    engine: str
    text: str
    lines_json: str
    error: str | None
    created_at: float


class PlaceRow(TypedDict):
    photo_id: int
    version: str
    gps_lat: float
    gps_lon: float
    country_code: str | None
    label_zh: str | None
    label_en: str | None
    names: str
    created_at: float


@dataclass(frozen=True)
class FoundText:
    """Text read in one photo, as stored: the lines as (text, score, x0, y0, x1, y1); empty when none."""

    photo_id: int
    engine: str
    lines: tuple[tuple[str, float, int, int, int, int], ...] = ()
    error: str | None = None

    @property
    def text(self) -> str:
        return "\n".join(line[0] for line in self.lines)


@dataclass(frozen=True)
class FoundPlace:
    """Where one photo was taken, as stored; no names when its GPS lies in no known area."""

    photo_id: int
    version: str
    gps_lat: float
    gps_lon: float
    country_code: str | None = None
    label_zh: str | None = None
    label_en: str | None = None
    names: tuple[str, ...] = ()


# ---- text in photos -------------------------------------------------------------------------------------


def store_text(catalog: Catalog, found: Iterable[FoundText]) -> None:
    """Store what was read (replacing what another engine read), in the caller's transaction or a new one."""
    now = time.time()
    with catalog.transaction() as conn:
        conn.executemany(
            "INSERT OR REPLACE INTO photo_text (photo_id, engine, text, lines_json, error, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            [(f.photo_id, f.engine, f.text, json.dumps(f.lines, ensure_ascii=False), f.error, now) for f in found],
        )


def filter_text(
    catalog: Catalog, old_engines: Sequence[str], engine: str, keep: Callable[[str, float], bool], limit: int = 500
) -> int:
    """Bring up to `limit` photos read by one of `old_engines` to `engine` by dropping the stored lines `keep`
    refuses (from their text and its search index too), without reading the photos again. Returns how many.
    Looked for outside a transaction: the daemon asks at every idle step, and mostly there is nothing."""
    marks = ",".join("?" * len(old_engines))
    rows = (
        catalog.conn.execute(
            f"SELECT photo_id, lines_json FROM photo_text WHERE engine IN ({marks}) LIMIT ?", (*old_engines, limit)
        ).fetchall()
        if old_engines
        else []
    )
    if not rows:
        return 0
    filtered = [
        FoundText(photo_id, engine, tuple(tuple(line) for line in json.loads(lines_json) if keep(line[0], line[1])))
        for photo_id, lines_json in rows
    ]
    with catalog.transaction() as conn:  # a row read again meanwhile (by another engine) is left as it is
        conn.executemany(
            f"UPDATE photo_text SET engine = ?, text = ?, lines_json = ? WHERE photo_id = ? AND engine IN ({marks})",
            [(f.engine, f.text, json.dumps(f.lines, ensure_ascii=False), f.photo_id, *old_engines) for f in filtered],
        )
    return len(rows)


def text_of(catalog: Catalog, photo_id: int) -> TextRow | None:
    rows = catalog.query("SELECT * FROM photo_text WHERE photo_id = ?", (photo_id,))
    return cast(TextRow, rows[0]) if rows else None


def text_pending(catalog: Catalog, engine: str, limit: int = 16) -> list[PendingRow]:
    """Staged photos on online roots not yet read by `engine` (new to OCR, or read by another engine)."""
    return cast(
        "list[PendingRow]",
        catalog.query(
            "SELECT p.*, r.path AS root_path FROM photos p JOIN roots r ON r.id = p.root_id"
            f" LEFT JOIN photo_text t ON t.photo_id = p.id WHERE {_READABLE} AND r.online = 1"
            " AND (t.engine IS NULL OR t.engine != ?) ORDER BY p.id LIMIT ?",
            (engine, limit),
        ),
    )


def text_progress(catalog: Catalog, engine: str) -> tuple[int, int]:
    """(photos read by `engine`, photos that can be read): the backfill's progress."""
    row = catalog.conn.execute(
        "SELECT count(t.photo_id), count(*) FROM photos p LEFT JOIN photo_text t ON t.photo_id = p.id"
        f" AND t.engine = ? WHERE {_READABLE}",
        (engine,),
    ).fetchone()
    return int(row[0]), int(row[1])


def copy_text(catalog: Catalog, src_id: int, dst_id: int) -> None:
    """A copy of a photo's bytes reads the same: give `dst_id` what was read in `src_id`."""
    catalog.conn.execute(
        "INSERT OR REPLACE INTO photo_text (photo_id, engine, text, lines_json, error, created_at)"
        " SELECT ?, engine, text, lines_json, error, ? FROM photo_text WHERE photo_id = ?",
        (dst_id, time.time(), src_id),
    )


# ---- places ---------------------------------------------------------------------------------------------


def places_pending(catalog: Catalog, version: str, limit: int = 500) -> list[tuple[int, float, float]]:
    """(photo id, lat, lon) of photos with GPS whose place was never looked up, was looked up in other data,
    or for other coordinates."""
    rows = catalog.conn.execute(
        "SELECT p.id, p.gps_lat, p.gps_lon FROM photos p LEFT JOIN photo_places l ON l.photo_id = p.id"
        " WHERE p.gps_lat IS NOT NULL AND p.gps_lon IS NOT NULL AND p.state != 'deleted'"
        " AND (l.photo_id IS NULL OR l.version != ? OR l.gps_lat != p.gps_lat OR l.gps_lon != p.gps_lon)"
        " ORDER BY p.id LIMIT ?",
        (version, limit),
    ).fetchall()
    return [(int(r[0]), float(r[1]), float(r[2])) for r in rows]


def store_places(catalog: Catalog, found: Iterable[FoundPlace]) -> None:
    now = time.time()
    with catalog.transaction() as conn:
        conn.executemany(
            "INSERT OR REPLACE INTO photo_places (photo_id, version, gps_lat, gps_lon, country_code, label_zh,"
            " label_en, names, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    f.photo_id,
                    f.version,
                    f.gps_lat,
                    f.gps_lon,
                    f.country_code,
                    f.label_zh,
                    f.label_en,
                    "\n".join(f.names),
                    now,
                )
                for f in found
            ],
        )


def place_names(catalog: Catalog) -> set[str]:
    """Every place name (Chinese and English, every level, case-folded) the library has photos of: the
    words a query can name a place with."""
    rows = catalog.conn.execute("SELECT DISTINCT names FROM photo_places WHERE names != ''").fetchall()
    return {name.casefold() for (names,) in rows for name in names.split("\n") if name}


def place_of(catalog: Catalog, photo_id: int) -> PlaceRow | None:
    rows = catalog.query("SELECT * FROM photo_places WHERE photo_id = ?", (photo_id,))
    return cast(PlaceRow, rows[0]) if rows else None


def places_progress(catalog: Catalog, version: str) -> tuple[int, int]:
    """(photos with GPS placed with `version`'s data, photos with GPS)."""
    row = catalog.conn.execute(
        "SELECT count(l.photo_id), count(*) FROM photos p LEFT JOIN photo_places l ON l.photo_id = p.id"
        " AND l.version = ? AND l.gps_lat = p.gps_lat AND l.gps_lon = p.gps_lon"
        " WHERE p.gps_lat IS NOT NULL AND p.state != 'deleted'",
        (version,),
    ).fetchone()
    return int(row[0]), int(row[1])


# ---- captions by meaning --------------------------------------------------------------------------------


def captions_without_vectors(catalog: Catalog, model_id: str, limit: int = 64) -> list[tuple[int, str]]:
    """(caption id, text) of captions the text tower `model_id` has not embedded yet."""
    rows = catalog.conn.execute(
        "SELECT c.id, c.text FROM captions c LEFT JOIN caption_vectors v ON v.caption_id = c.id"
        " AND v.model_id = ? WHERE v.caption_id IS NULL ORDER BY c.id LIMIT ?",
        (model_id, limit),
    ).fetchall()
    return [(int(r[0]), str(r[1])) for r in rows]


def store_caption_vectors(catalog: Catalog, model_id: str, caption_ids: Sequence[int], vecs: np.ndarray) -> int:
    """Store caption embeddings; a caption edited or removed meanwhile is skipped (its vector is stale)."""
    import numpy as np

    from photod.store.vectors import encode_blob

    stored = 0
    with catalog.transaction() as conn:
        for cid, vec in zip(caption_ids, np.asarray(vecs, dtype=np.float32)):
            cur = conn.execute(
                "INSERT OR REPLACE INTO caption_vectors (caption_id, model_id, dim, vector)"
                " SELECT id, ?, ?, ? FROM captions WHERE id = ?",
                (model_id, vec.shape[0], encode_blob(vec), cid),
            )
            stored += cur.rowcount
    return stored


def caption_vectors(catalog: Catalog, model_id: str, dim: int) -> tuple[list[int], list[int], list[str], np.ndarray]:
    """Every stored caption embedding of a text tower: (caption ids, photo ids, texts, (n, dim) float32)."""
    from photod.store.vectors import decode_blobs

    rows = catalog.conn.execute(
        "SELECT c.id, c.photo_id, c.text, v.vector FROM caption_vectors v JOIN captions c ON c.id = v.caption_id"
        " WHERE v.model_id = ? AND v.dim = ? ORDER BY c.id",
        (model_id, dim),
    ).fetchall()
    return (
        [int(r[0]) for r in rows],
        [int(r[1]) for r in rows],
        [str(r[2]) for r in rows],
        decode_blobs([r[3] for r in rows], dim),
    )
