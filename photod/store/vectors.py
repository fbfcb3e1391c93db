"""Image embeddings in the catalog: the durable truth that the FAISS index only caches.

A vector is stored as float16 (half the size, and CLIP embeddings lose nothing that matters to ranking) in
the same transaction that marks its photo `indexed`, so a crash leaves either both or neither. Every vector
records the model id (the bundle's image-model content id) that made it: vectors of two models never mix,
and a model switch only changes which vectors count as "indexed".
"""

from __future__ import annotations

import logging
import sqlite3
import time
from typing import Iterable, Iterator, Sequence

import numpy as np

from photod.errors import CatalogError
from photod.store.catalog import Catalog

log = logging.getLogger(__name__)

_CHUNK = 500  # SQLite's bound-parameter limit is 999 on old builds: stay well under it


def encode_blob(vec: np.ndarray) -> bytes:
    """One vector as the float16 bytes stored in the catalog."""
    return np.ascontiguousarray(vec, dtype=np.float16).tobytes()


def decode_blobs(blobs: Sequence[bytes], dim: int) -> np.ndarray:
    """Stored float16 blobs as one float32 (n, dim) array."""
    if not blobs:
        return np.zeros((0, dim), dtype=np.float32)
    flat = np.frombuffer(b"".join(blobs), dtype=np.float16)
    if flat.size != len(blobs) * dim:
        raise CatalogError(
            f"stored vectors do not all have {dim} dimensions", "run `photod reindex` to encode the library again"
        )
    return flat.reshape(len(blobs), dim).astype(np.float32)


def store_vectors(catalog: Catalog, model_id: str, ids: Sequence[int], vecs: np.ndarray) -> list[int]:
    """Store vectors and mark their photos indexed, in one transaction. Returns the ids actually stored.

    A photo whose stage entry was dropped meanwhile (its file changed or it was purged while the batch was
    in the model) is skipped: its vector describes pixels that are gone. An offline or deleted photo keeps
    its state and remembers `indexed` as the state to return to.
    """
    ids = [int(i) for i in ids]
    vecs = np.asarray(vecs, dtype=np.float32)
    if vecs.ndim != 2 or vecs.shape[0] != len(ids):
        raise ValueError(f"expected {len(ids)} vectors, got an array of shape {vecs.shape}")
    if not ids:
        return []
    dim = vecs.shape[1]
    now = time.time()
    stored: list[int] = []
    with catalog.transaction() as conn:
        for start in range(0, len(ids), _CHUNK):
            chunk = ids[start : start + _CHUNK]
            marks = ",".join("?" * len(chunk))
            alive = {
                r[0]
                for r in conn.execute(f"SELECT id FROM photos WHERE id IN ({marks}) AND staged_at IS NOT NULL", chunk)
            }
            rows = [
                (pid, model_id, dim, encode_blob(vecs[start + j]), now) for j, pid in enumerate(chunk) if pid in alive
            ]
            conn.executemany(
                "INSERT OR REPLACE INTO vectors (photo_id, model_id, dim, vector, created_at) VALUES (?, ?, ?, ?, ?)",
                rows,
            )
            kept = [r[0] for r in rows]
            if kept:
                _mark_indexed(conn, kept, now)
            stored += kept
    skipped = len(ids) - len(stored)
    if skipped:
        log.info("%d vectors not stored: their photos changed or left the stage while being encoded", skipped)
    return stored


def _mark_indexed(conn: sqlite3.Connection, ids: list[int], now: float) -> None:
    marks = ",".join("?" * len(ids))
    conn.execute(
        "UPDATE photos SET"
        " state = CASE WHEN state = 'staged' THEN 'indexed' ELSE state END,"
        " prev_state = CASE WHEN state IN ('offline', 'deleted') AND prev_state = 'staged'"
        "  THEN 'indexed' ELSE prev_state END,"
        f" indexed_at = ?, updated_at = ? WHERE id IN ({marks})",
        (now, now, *ids),
    )


def load_vectors(
    catalog: Catalog, model_id: str, ids: Iterable[int] | None = None, min_rowid: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(photo ids int64, vectors float32) of one model, photos not deleted, ordered by photo id.

    `ids` restricts to those photos; `min_rowid` to vector rows written after that catalog rowid.
    """
    where = ["v.model_id = ?", "p.state != 'deleted'"]
    params: list[str | int] = [model_id]
    if min_rowid is not None:
        where.append("v.rowid > ?")
        params.append(int(min_rowid))
    base = (
        "SELECT v.photo_id, v.dim, v.vector FROM vectors v JOIN photos p ON p.id = v.photo_id"
        f" WHERE {' AND '.join(where)}"
    )
    if ids is None:
        rows = catalog.conn.execute(base + " ORDER BY v.photo_id", params).fetchall()
    else:
        wanted = sorted({int(i) for i in ids})
        rows = []
        for start in range(0, len(wanted), _CHUNK):
            chunk = wanted[start : start + _CHUNK]
            rows += catalog.conn.execute(
                base + f" AND v.photo_id IN ({','.join('?' * len(chunk))}) ORDER BY v.photo_id", (*params, *chunk)
            ).fetchall()
    return _to_arrays(rows)


def iter_vectors(catalog: Catalog, model_id: str, chunk: int = 20_000) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """`load_vectors` for the whole library, a chunk at a time, so building an index for a million photos
    never holds all of them twice (float16 blobs and float32 copies) in memory."""
    after = 0
    while True:
        rows = catalog.conn.execute(
            "SELECT v.photo_id, v.dim, v.vector FROM vectors v JOIN photos p ON p.id = v.photo_id"
            " WHERE v.model_id = ? AND p.state != 'deleted' AND v.photo_id > ? ORDER BY v.photo_id LIMIT ?",
            (model_id, after, int(chunk)),
        ).fetchall()
        if not rows:
            return
        after = rows[-1][0]
        yield _to_arrays(rows)


def _to_arrays(rows: list[tuple[int, int, bytes]]) -> tuple[np.ndarray, np.ndarray]:
    if not rows:
        return np.zeros(0, dtype=np.int64), np.zeros((0, 0), dtype=np.float32)
    dims = {r[1] for r in rows}
    if len(dims) != 1:
        raise CatalogError(
            f"vectors of one model have different sizes {sorted(dims)}",
            "run `photod reindex` to encode the library again",
        )
    ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
    return ids, decode_blobs([r[2] for r in rows], dims.pop())


def vector_rows(catalog: Catalog, model_id: str) -> tuple[np.ndarray, np.ndarray]:
    """(photo ids, catalog rowids) of one model's vectors for photos not deleted: what an index must hold."""
    rows = catalog.conn.execute(
        "SELECT v.photo_id, v.rowid FROM vectors v JOIN photos p ON p.id = v.photo_id"
        " WHERE v.model_id = ? AND p.state != 'deleted' ORDER BY v.photo_id",
        (model_id,),
    ).fetchall()
    arr = np.array(rows, dtype=np.int64).reshape(-1, 2)
    return arr[:, 0].copy(), arr[:, 1].copy()


def changed_since(catalog: Catalog, model_id: str, rowid: int, created_after: float) -> np.ndarray:
    """Photo ids whose vector row was written after a checkpoint, by rowid or by time.

    Either test alone can miss a row: SQLite reuses the highest rowid once that row is deleted, and a clock
    can step back. Together they catch every rewrite that matters; a few extra ids only cost a re-add.
    """
    rows = catalog.conn.execute(
        "SELECT photo_id FROM vectors WHERE model_id = ? AND (rowid > ? OR created_at > ?)",
        (model_id, int(rowid), float(created_after)),
    ).fetchall()
    return np.array([r[0] for r in rows], dtype=np.int64)


def max_rowid(catalog: Catalog, model_id: str | None = None) -> int:
    """The highest vector rowid (of one model, or of all): a cheap high-water mark for catching up."""
    if model_id is None:
        return int(catalog.scalar("SELECT COALESCE(MAX(rowid), 0) FROM vectors"))
    return int(catalog.scalar("SELECT COALESCE(MAX(rowid), 0) FROM vectors WHERE model_id = ?", (model_id,)))


def indexed_ids(catalog: Catalog, model_id: str) -> np.ndarray:
    """Ids of the photos (not deleted) that have a vector of this model, sorted."""
    rows = catalog.conn.execute(
        "SELECT v.photo_id FROM vectors v JOIN photos p ON p.id = v.photo_id"
        " WHERE v.model_id = ? AND p.state != 'deleted' ORDER BY v.photo_id",
        (model_id,),
    ).fetchall()
    return np.array([r[0] for r in rows], dtype=np.int64)


def count_vectors(catalog: Catalog, model_id: str) -> int:
    """How many photos (not deleted) have a vector of this model."""
    return int(
        catalog.scalar(
            "SELECT count(*) FROM vectors v JOIN photos p ON p.id = v.photo_id"
            " WHERE v.model_id = ? AND p.state != 'deleted'",
            (model_id,),
        )
    )


def pending_encode(catalog: Catalog, model_id: str, limit: int = 256, after_id: int = 0) -> list[int]:
    """Photos to encode with this model, by id: staged (offline ones too: the stage makes encoding
    possible without the drive), not deleted, and with no vector of this model yet."""
    rows = catalog.conn.execute(
        "SELECT p.id FROM photos p WHERE p.staged_at IS NOT NULL AND p.state != 'deleted' AND p.id > ?"
        " AND NOT EXISTS (SELECT 1 FROM vectors v WHERE v.photo_id = p.id AND v.model_id = ?)"
        " ORDER BY p.id LIMIT ?",
        (int(after_id), model_id, int(limit)),
    ).fetchall()
    return [r[0] for r in rows]


def count_pending(catalog: Catalog, model_id: str) -> int:
    """How many photos `pending_encode` would return without a limit."""
    return int(
        catalog.scalar(
            "SELECT count(*) FROM photos p WHERE p.staged_at IS NOT NULL AND p.state != 'deleted'"
            " AND NOT EXISTS (SELECT 1 FROM vectors v WHERE v.photo_id = p.id AND v.model_id = ?)",
            (model_id,),
        )
    )


def reset_for_model(catalog: Catalog, model_id: str) -> tuple[int, int]:
    """Make `indexed` mean "has a vector of this model" after a model switch.

    Returns (photos now indexed, photos back to staged). States of offline and deleted photos are kept;
    the state they return to is corrected the same way.
    """
    has = "EXISTS (SELECT 1 FROM vectors v WHERE v.photo_id = photos.id AND v.model_id = :m)"
    now = time.time()
    with catalog.transaction() as conn:
        up = conn.execute(
            f"UPDATE photos SET state = 'indexed', indexed_at = COALESCE(indexed_at, :now), updated_at = :now"
            f" WHERE state = 'staged' AND {has}",
            {"m": model_id, "now": now},
        ).rowcount
        down = conn.execute(
            f"UPDATE photos SET state = 'staged', indexed_at = NULL, updated_at = :now"
            f" WHERE state = 'indexed' AND NOT {has}",
            {"m": model_id, "now": now},
        ).rowcount
        conn.execute(
            f"UPDATE photos SET prev_state = 'indexed' WHERE state IN ('offline', 'deleted')"
            f" AND prev_state = 'staged' AND {has}",
            {"m": model_id},
        )
        conn.execute(
            f"UPDATE photos SET prev_state = 'staged' WHERE state IN ('offline', 'deleted')"
            f" AND prev_state = 'indexed' AND NOT {has}",
            {"m": model_id},
        )
    if up or down:
        log.info("model %s: %d photos indexed, %d back to staged", model_id, up, down)
    return up, down


def drop_model(catalog: Catalog, model_id: str) -> int:
    """Delete every vector of a model (once `photod model remove` took its last bundle: see
    photod.service.models.remove_model)."""
    with catalog.transaction() as conn:
        return conn.execute("DELETE FROM vectors WHERE model_id = ?", (model_id,)).rowcount
