"""The FAISS index of one model's image vectors: a checkpointed cache of the catalog's `vectors` table.

The catalog is the truth; this file only saves the work of rebuilding. So:
- it is saved atomically (temp file, fsync, rename, fsync of the folder) on an interval, never per batch;
- a JSON sidecar names the model, the kind, the count, checksums of the ids and of the file, and the
  catalog checkpoint (highest vector rowid and time) it had caught up to;
- `load` reads the file if it checks out, then catches up from the catalog: adds vectors the index lacks,
  re-adds vectors rewritten since the checkpoint, removes ids the catalog no longer has. Whatever a crash
  left behind, after `load` the index holds exactly the catalog's vectors, each once. A file that does not
  check out is logged and rebuilt from the catalog.

Kinds: `exact` (inner product over every vector, stored as float16 like the catalog: cosine, since vectors
are L2-normalised), `hnsw` and `ivf` (approximate, for large libraries); `auto` picks exact up to
`approximate_above` vectors and HNSW beyond.

Deleting from HNSW: FAISS cannot remove points from an HNSW graph. A removed id becomes a tombstone: its slot
in the id map is set to -1 and searches pass a selector that skips negative ids, so the graph keeps its
links (the dead node still helps navigation) and results never contain it. Deleting photos is rare, so this
is cheap; when tombstones pass a quarter of the slots the graph is rebuilt from the live vectors, which
keeps memory and search time bounded. A rewritten vector (the file changed) is a tombstone plus a new slot.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import math
import os
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator

import faiss
import numpy as np

from photod import durable
from photod.config import INDEX_KINDS, IndexConfig
from photod.errors import DiskFullError, VectorIndexError
from photod.store import vectors
from photod.store.catalog import Catalog

log = logging.getLogger(__name__)

INDEX_DIR = "index"
FORMAT = 1
IVF_MIN_VECTORS = 10_000  # below this, k-means has too little to learn from: exact is as fast anyway
TOMBSTONE_REBUILD = 0.25  # fraction of dead HNSW slots that triggers a rebuild
SMALL_SUBSET = 20_000  # allowed-id sets up to this size are searched exactly, vector by vector
# (photo ids, vectors) of a stretch of the library, as photod.store.vectors reads them.
_Chunk = tuple[np.ndarray, np.ndarray]

_LIVE: faiss.IDSelector | None = None  # selector for "id >= 0", made once (see _live_selector)


def index_paths(data_dir: str | os.PathLike[str], model_id: str) -> tuple[Path, Path]:
    """(index file, sidecar) of a model in a data dir."""
    folder = Path(data_dir) / INDEX_DIR
    return folder / f"{model_id}.faiss", folder / f"{model_id}.json"


def remove_index(data_dir: str | os.PathLike[str], model_id: str) -> None:
    """Delete a model's index files, once the vectors they cache are gone from the catalog."""
    path, sidecar = index_paths(data_dir, model_id)
    for file in (path, sidecar, path.with_suffix(".lock")):
        file.unlink(missing_ok=True)


def resolve_kind(kind: str, count: int, approximate_above: int) -> str:
    """The concrete kind for a configured kind and a library size."""
    if kind not in INDEX_KINDS:
        raise VectorIndexError(f"unknown index kind {kind!r}", f"use one of {', '.join(INDEX_KINDS)} in [index] kind")
    if kind == "auto":
        # Above the threshold, IVF: at 1M vectors it builds in minutes where HNSW takes over half an hour on
        # two cores, meets p99 <= 10 ms at recall 1.0 on clustered data (benchmarks/bench_query.py), and
        # deletes without tombstones. Too few vectors to train its lists: HNSW.
        if count <= approximate_above:
            return "exact"
        return "ivf" if count >= IVF_MIN_VECTORS else "hnsw"
    if kind == "ivf" and count < IVF_MIN_VECTORS:
        return "exact"
    return kind


@dataclass
class IndexMeta:
    """The sidecar: what the index file holds and how far it had caught up with the catalog."""

    format: int
    model_id: str
    kind: str
    dim: int
    count: int
    tombstones: int
    ids_checksum: str
    file_checksum: str
    sync_rowid: int
    sync_time: float
    saved_at: float


class VectorIndex:
    """The vectors of one model (ids = photo ids), searchable by inner product. Thread-safe.

    `settings.kind` is the configured kind ('auto'|'exact'|'hnsw'|'ivf'); the index resolves it against the
    size of the library when it is loaded or built.
    """

    def __init__(
        self,
        data_dir: str | os.PathLike[str],
        model_id: str,
        settings: IndexConfig = IndexConfig(),
        *,
        hnsw_m: int = 32,
        ef_construction: int = 128,
        ef_search: int = 128,
        nprobe: int | None = None,
    ):
        if settings.kind not in INDEX_KINDS:
            raise VectorIndexError(
                f"unknown index kind {settings.kind!r}", f"use one of {', '.join(INDEX_KINDS)} in [index] kind"
            )
        self.data_dir = Path(data_dir)
        self.model_id = model_id
        self.path, self.meta_path = index_paths(data_dir, model_id)
        self.config_kind = settings.kind
        self.approximate_above = settings.approximate_above
        self.hnsw_m = hnsw_m
        self.ef_construction = ef_construction
        self.ef_search = ef_search
        self.nprobe = nprobe
        self.kind = "exact"
        self.dim: int | None = None
        # An IndexIDMap2 (exact, hnsw) or an IndexIVFFlat, None until vectors are added or loaded. Typed Any:
        # faiss's stubs cannot say which subclass it is, and lack much of what is used here (id_map, nlist).
        self._index: Any = None
        self._present = np.zeros(0, dtype=bool)  # bitmap by photo id: photo ids are dense SQLite rowids
        self._count = 0
        self._tombstones = 0
        self._sync_rowid = 0
        self._sync_time = 0.0
        self._dirty = False
        self.rebuilt = False  # set by load() when the file was missing or unusable
        self._lock = threading.RLock()
        self._save_lock = threading.Lock()

    # ---- opening -----------------------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        data_dir: str | os.PathLike[str],
        model_id: str,
        catalog: Catalog,
        settings: IndexConfig = IndexConfig(),
        **kw: Any,
    ) -> "VectorIndex":
        """An index loaded from its file (if sound) and caught up with the catalog."""
        index = cls(data_dir, model_id, settings, **kw)
        index.load(catalog)
        return index

    def load(self, catalog: Catalog) -> None:
        """Read the saved index if it checks out, else rebuild it; then catch up with the catalog."""
        count = vectors.count_vectors(catalog, self.model_id)
        wanted = resolve_kind(self.config_kind, count, self.approximate_above)
        loaded = self._read(warn=False)
        if loaded is None and self.path.exists():
            # Perhaps another process (the daemon) was between its two renames: read again once it is done.
            try:
                with _file_lock(self.path.with_suffix(".lock")):
                    loaded = self._read()
            except OSError:  # a read-only data dir: no lock to take
                loaded = self._read()
        for name in (self.path.name, self.meta_path.name):
            durable.remove_dead_temps(self.path.parent, name)
        if loaded is not None and self._kind_outgrown(loaded[1].kind, wanted, count):
            log.info("index %s is %s but %s suits %d vectors: rebuilding", self.path, loaded[1].kind, wanted, count)
            loaded = None
        self.rebuilt = loaded is None
        if loaded is None:
            self._build(catalog, wanted)
            return
        index, meta = loaded
        with self._lock:
            self._install(index, meta.kind, meta.dim)
            self._sync_rowid, self._sync_time = meta.sync_rowid, meta.sync_time
            self._dirty = False
        added, removed = self.catch_up(catalog)
        if added or removed:
            log.info("index %s caught up with the catalog: %d added, %d removed", self.path.name, added, removed)
        if self.kind == "hnsw" and self._tombstones > TOMBSTONE_REBUILD * max(1, self._slots()):
            self._compact()

    def _kind_outgrown(self, have: str, wanted: str, count: int) -> bool:
        if have == wanted:
            return False
        if self.config_kind != "auto":
            return True
        # Under 'auto', switch only well past the threshold, so a library hovering around it is not
        # rebuilt at every start.
        if have == "exact":
            return count > 1.25 * self.approximate_above
        return count < 0.75 * self.approximate_above

    def _read(self, warn: bool = True) -> tuple[faiss.Index, IndexMeta] | None:
        """The saved index and its sidecar, or None (logged) when either is missing or does not check out."""
        if not self.path.exists() and not self.meta_path.exists():
            return None
        try:
            checksum = _file_checksum(self.path)
            meta = self._matching_meta(checksum)
            problem = self._check_meta(meta)
            if problem is None:
                index = faiss.read_index(str(self.path))
                problem = self._check_index(index, meta)
            if problem is None:
                return index, meta
        except (OSError, ValueError, TypeError, KeyError, RuntimeError) as exc:
            problem = f"{type(exc).__name__}: {exc}"
        if warn:
            log.warning("index %s is unusable (%s): rebuilding it from the catalog", self.path, problem)
        return None

    def _matching_meta(self, checksum: str) -> IndexMeta:
        """The sidecar describing the index file as it is on disk.

        A save writes both files completely, then renames the index, then the sidecar. A process killed
        between the two renames leaves the new index beside the old sidecar, with the new sidecar complete
        in its temp file: that temp file is then the right sidecar, and is moved into place (roll forward).
        """
        meta = IndexMeta(**json.loads(self.meta_path.read_text(encoding="utf-8")))
        if meta.file_checksum == checksum:
            return meta
        for tmp in durable.dead_temps(self.path.parent, self.meta_path.name):
            try:
                candidate = IndexMeta(**json.loads(tmp.read_text(encoding="utf-8")))
            except (OSError, ValueError, TypeError):
                continue
            if candidate.file_checksum == checksum and candidate.model_id == self.model_id:
                durable.finish(tmp, self.meta_path)
                log.info("index %s: completed a save interrupted between its two renames", self.path.name)
                return candidate
        raise ValueError(f"file checksum {checksum} is not the sidecar's {meta.file_checksum}")

    def _check_meta(self, meta: IndexMeta) -> str | None:
        if meta.format != FORMAT:
            return f"format {meta.format}, expected {FORMAT}"
        if meta.model_id != self.model_id:
            return f"it belongs to model {meta.model_id}"
        if meta.kind not in ("exact", "hnsw", "ivf"):
            return f"unknown kind {meta.kind!r}"
        return None

    def _check_index(self, index: faiss.Index, meta: IndexMeta) -> str | None:
        if index.d != meta.dim:
            return f"dimension {index.d}, sidecar says {meta.dim}"
        ids = _stored_ids(index, meta.kind)
        live = ids[ids >= 0]
        if live.size != meta.count or index.ntotal - live.size != meta.tombstones:
            return (
                f"{live.size} ids and {index.ntotal - live.size} tombstones,"
                f" sidecar says {meta.count}/{meta.tombstones}"
            )
        if np.unique(live).size != live.size:
            return "an id is in it twice"
        if _ids_checksum(live) != meta.ids_checksum:
            return "ids checksum differs"
        return None

    def _install(self, index: faiss.Index, kind: str, dim: int) -> None:
        ids = _stored_ids(index, kind)
        live = ids[ids >= 0]
        self._index, self.kind, self.dim = index, kind, dim
        self._present = np.zeros(int(live.max()) + 1 if live.size else 0, dtype=bool)
        self._present[live] = True
        self._count = int(live.size)
        self._tombstones = int(ids.size - live.size)

    # ---- catching up with the catalog --------------------------------------------------------------

    def catch_up(self, catalog: Catalog) -> tuple[int, int]:
        """Make the index hold exactly the catalog's vectors of this model. Returns (added, removed)."""
        # The checkpoint is taken before reading, so a row committed meanwhile is re-read next time.
        rowid, started = vectors.max_rowid(catalog), time.time()
        cat_ids, _ = vectors.vector_rows(catalog, self.model_id)
        with self._lock:
            held = self.ids()
            since_rowid, since_time = self._sync_rowid, self._sync_time
        extra = np.setdiff1d(held, cat_ids, assume_unique=True)
        missing = np.setdiff1d(cat_ids, held, assume_unique=True)
        rewritten = vectors.changed_since(catalog, self.model_id, since_rowid, since_time)
        rewritten = np.intersect1d(rewritten, np.intersect1d(held, cat_ids, assume_unique=True))
        removed = self.remove(extra)
        added = 0
        todo = np.union1d(missing, rewritten)
        for start in range(0, todo.size, 20_000):
            ids, vecs = vectors.load_vectors(catalog, self.model_id, todo[start : start + 20_000])
            self.add(ids, vecs)
            added += ids.size
        self.checkpoint(rowid, started)
        return added, removed

    def refresh(self, catalog: Catalog) -> int:
        """Cheap catch-up for a reader while a writer adds: only vector rows written since the checkpoint."""
        rowid, started = vectors.max_rowid(catalog), time.time()
        with self._lock:
            since = self._sync_rowid
        if rowid == since:
            return 0
        ids, vecs = vectors.load_vectors(catalog, self.model_id, min_rowid=since)
        self.add(ids, vecs)
        self.checkpoint(rowid, started)
        return int(ids.size)

    def checkpoint(self, rowid: int, at: float) -> None:
        """Record that every vector row up to `rowid`, written before `at`, is in the index."""
        with self._lock:
            if rowid > self._sync_rowid or at > self._sync_time:
                self._sync_rowid = max(self._sync_rowid, int(rowid))
                self._sync_time = max(self._sync_time, float(at))
                self._dirty = True

    # ---- building ----------------------------------------------------------------------------------

    def _build(self, catalog: Catalog, kind: str) -> None:
        rowid, started = vectors.max_rowid(catalog), time.time()
        t0 = time.monotonic()
        chunks = vectors.iter_vectors(catalog, self.model_id)
        first = next(chunks, None)
        with self._lock:
            self._index, self.dim, self.kind = None, None, kind
            self._present = np.zeros(0, dtype=bool)
            self._count = self._tombstones = 0
            self._sync_rowid, self._sync_time = 0, 0.0
        if first is not None:
            if kind == "ivf":
                total = vectors.count_vectors(catalog, self.model_id)
                self._create(
                    "ivf", first[1].shape[1], train=_training_sample(catalog, self.model_id), nlist=_ivf_lists(total)
                )
            for ids, vecs in _chain(first, chunks):
                self.add(ids, vecs)
        self.checkpoint(rowid, started)
        self._dirty = True
        log.info(
            "index %s built: %s, %d vectors in %.1f s", self.path.name, self.kind, len(self), time.monotonic() - t0
        )

    def _create(self, kind: str, dim: int, train: np.ndarray | None = None, nlist: int | None = None) -> None:
        index: faiss.Index
        if kind == "exact":
            # float16 codes, not float32: the catalog stores float16, so nothing is lost (scores equal a
            # brute force over the stored vectors), memory halves (a Pi holds twice the library), and the
            # scan, bound by memory bandwidth, is faster (100k x 512: p50 35 ms against 53 ms, one thread).
            index = faiss.IndexIDMap2(
                faiss.IndexScalarQuantizer(dim, faiss.ScalarQuantizer.QT_fp16, faiss.METRIC_INNER_PRODUCT)
            )
        elif kind == "hnsw":
            hnsw = faiss.IndexHNSWFlat(dim, self.hnsw_m, faiss.METRIC_INNER_PRODUCT)
            hnsw.hnsw.efConstruction = self.ef_construction
            hnsw.hnsw.efSearch = self.ef_search
            index = faiss.IndexIDMap2(hnsw)
        elif kind == "ivf":
            if train is None or len(train) < 2:
                raise VectorIndexError("an IVF index needs vectors to train on", "use kind = 'exact' or 'hnsw'")
            nlist = min(nlist or _ivf_lists(len(train)), max(1, len(train) // 39))
            quantizer = faiss.IndexFlatIP(dim)
            ivf = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
            ivf.train(train)
            # The quantizer must outlive this frame: the IVF holds a raw pointer to it.
            ivf.own_fields = True
            quantizer.this.disown()  # type: ignore[attr-defined]  # SWIG's handle, absent from faiss's stubs
            # A hash-table direct map lets us remove ids and fetch a vector by id.
            ivf.set_direct_map_type(faiss.DirectMap.Hashtable)  # type: ignore[attr-defined]  # not in the stubs
            index = ivf
        else:
            raise VectorIndexError(f"unknown index kind {kind!r}")
        self._index, self.kind, self.dim = index, kind, dim

    def _compact(self) -> None:
        """Rebuild an HNSW graph from its live vectors, dropping the tombstones."""
        with self._lock:
            ids = self.ids()
            vecs = self._vectors_of(ids)
            log.info("index %s: rebuilding the HNSW graph without %d removed vectors", self.path.name, self._tombstones)
            assert self.dim is not None  # set with the index whose vectors are compacted
            self._create(self.kind, self.dim)
            self._present[:] = False
            self._count = self._tombstones = 0
            self._add_new(ids, vecs)
            self._dirty = True

    # ---- changing ----------------------------------------------------------------------------------

    def add(self, ids: Iterable[int], vecs: np.ndarray) -> None:
        """Add vectors; an id already held is replaced (its photo was encoded again)."""
        ids = np.asarray(list(ids) if not isinstance(ids, np.ndarray) else ids, dtype=np.int64)
        vecs = np.ascontiguousarray(vecs, dtype=np.float32)
        if ids.size == 0:
            return
        if vecs.ndim != 2 or vecs.shape[0] != ids.size:
            raise ValueError(f"{ids.size} ids but vectors of shape {vecs.shape}")
        if np.unique(ids).size != ids.size:
            raise ValueError("the same photo id is given twice in one add")
        if ids.min() < 0:
            raise ValueError("photo ids are positive")
        with self._lock:
            if self._index is None:
                self._create("exact" if self.kind == "ivf" else self.kind, vecs.shape[1])
            if vecs.shape[1] != self.dim:
                raise VectorIndexError(
                    f"vectors of size {vecs.shape[1]} given to the {self.dim}-d index {self.path}",
                    "the model changed: its vectors belong in another index",
                )
            self.remove(ids[self._has(ids)])
            self._add_new(ids, vecs)

    def _add_new(self, ids: np.ndarray, vecs: np.ndarray) -> None:
        if ids.size == 0:
            return
        self._index.add_with_ids(vecs, ids)
        top = int(ids.max()) + 1
        if top > self._present.size:
            grown = np.zeros(max(top, self._present.size * 2), dtype=bool)
            grown[: self._present.size] = self._present
            self._present = grown
        self._present[ids] = True
        self._count += ids.size
        self._dirty = True

    def remove(self, ids: Iterable[int]) -> int:
        """Remove ids (those not held are ignored). Returns how many were removed."""
        ids = np.asarray(list(ids) if not isinstance(ids, np.ndarray) else ids, dtype=np.int64)
        with self._lock:
            ids = np.unique(ids[self._has(ids)]) if ids.size else ids
            if ids.size == 0:
                return 0
            if self.kind == "hnsw":
                id_map = faiss.vector_to_array(self._index.id_map)
                id_map[np.isin(id_map, ids)] = -1
                faiss.copy_array_to_vector(id_map, self._index.id_map)
                self._index.construct_rev_map()
                self._tombstones += ids.size
            else:
                self._index.remove_ids(ids)
            self._present[ids] = False
            self._count -= ids.size
            self._dirty = True
            if self.kind == "hnsw" and self._tombstones > TOMBSTONE_REBUILD * max(1, self._slots()):
                self._compact()
            return int(ids.size)

    # ---- reading -----------------------------------------------------------------------------------

    def search(
        self, queries: np.ndarray, k: int, allowed_ids: Iterable[int] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k by cosine similarity for each query: (scores float32 (n, k'), ids int64 (n, k')), best first.

        k' = min(k, candidates); a row with fewer hits than k' is padded with id -1 and score -inf.
        `allowed_ids` restricts the search to those photos.
        """
        q = np.ascontiguousarray(np.atleast_2d(np.asarray(queries, dtype=np.float32)))
        q = q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)
        with self._lock:
            if self._index is None or self._count == 0 or k <= 0:
                return _empty(len(q))
            if q.shape[1] != self.dim:
                raise VectorIndexError(
                    f"a {q.shape[1]}-d query for the {self.dim}-d index {self.path}",
                    "the query was encoded by another model than the one that indexed the photos",
                )
            if allowed_ids is not None:
                allowed = _sorted_unique(allowed_ids)
                allowed = allowed[self._has(allowed)]
                if allowed.size == 0:
                    return _empty(len(q))
                if self.kind != "exact" and allowed.size <= SMALL_SUBSET:
                    return _top_k(q, allowed, self._vectors_of(allowed), k)
                sel = faiss.IDSelectorBatch(allowed)
                scores, ids = self._index.search(q, min(k, allowed.size), params=self._params(sel, k))
            else:
                scores, ids = self._index.search(q, min(k, self._count), params=self._params(None, k))
        return _clean(scores, ids)

    def _params(self, sel: faiss.IDSelector | None, k: int) -> faiss.SearchParameters | None:
        if self.kind == "hnsw":
            # Tombstones have id -1: a selector keeps them out of the results without over-fetching.
            sel = sel if sel is not None else (_live_selector() if self._tombstones else None)
        selects = {"sel": sel} if sel is not None else {}
        if self.kind == "hnsw":
            return _search_parameters("HNSW", efSearch=max(self.ef_search, 2 * k), **selects)
        if self.kind == "ivf":
            return _search_parameters("IVF", nprobe=self.nprobe or _ivf_probes(self._index.nlist), **selects)
        return _search_parameters("", **selects) if selects else None

    def vector(self, photo_id: int) -> np.ndarray | None:
        """The stored vector of a photo, or None if the index does not hold it."""
        with self._lock:
            if not self._has(np.array([photo_id]))[0]:
                return None
            vec: np.ndarray = self._vectors_of(np.array([photo_id], dtype=np.int64))[0]
            return vec

    def vectors(self, photo_ids: Iterable[int]) -> tuple[np.ndarray, np.ndarray]:
        """(ids, vectors) of those of the photos the index holds, in the order asked."""
        ids = np.asarray(list(photo_ids), dtype=np.int64)
        with self._lock:
            ids = ids[self._has(ids)]
            return ids, self._vectors_of(ids)

    def sample(self, n: int, seed: int = 0) -> np.ndarray:
        """Up to n held vectors picked at random (the same ones for the same index and seed): what a query's
        scores over the library look like, without scoring the whole library."""
        with self._lock:
            ids = np.flatnonzero(self._present).astype(np.int64)
            if ids.size > n:
                ids = np.sort(np.random.default_rng(seed).choice(ids, n, replace=False))
            return self._vectors_of(ids)

    def _vectors_of(self, ids: np.ndarray) -> np.ndarray:
        if ids.size == 0:
            return np.zeros((0, self.dim or 0), dtype=np.float32)
        if self.kind == "ivf":
            return np.vstack([self._index.reconstruct(int(i)) for i in ids]).astype(np.float32)
        vecs: np.ndarray = self._index.reconstruct_batch(np.ascontiguousarray(ids, dtype=np.int64))
        return vecs

    def _has(self, ids: np.ndarray) -> np.ndarray:
        inside = (ids >= 0) & (ids < self._present.size)
        out = np.zeros(ids.shape, dtype=bool)
        out[inside] = self._present[ids[inside]]
        return out

    def ids(self) -> np.ndarray:
        """Every photo id held, sorted."""
        with self._lock:
            return np.flatnonzero(self._present).astype(np.int64)

    def __len__(self) -> int:
        return self._count

    def __contains__(self, photo_id: int) -> bool:
        with self._lock:
            return bool(self._has(np.array([photo_id], dtype=np.int64))[0])

    def _slots(self) -> int:
        return 0 if self._index is None else int(self._index.ntotal)

    @property
    def sync_rowid(self) -> int:
        return self._sync_rowid

    # ---- saving ------------------------------------------------------------------------------------

    def save(self, force: bool = False) -> bool:
        """Write the index and its sidecar atomically. Returns False when there was nothing to save."""
        with self._save_lock:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            with _file_lock(self.path.with_suffix(".lock")):
                return self._save_locked(force)

    def _save_locked(self, force: bool) -> bool:
        try:
            # The index is renamed first, then its sidecar: a crash between the two leaves the new sidecar
            # complete in its temp file, which `_matching_meta` then moves into place.
            with contextlib.ExitStack() as saving:  # the files are staged only when there is something to save
                with self._lock:
                    if self._index is None or self.dim is None or (not self._dirty and not force):
                        return False
                    tmp, meta_tmp = saving.enter_context(durable.staged_files([self.path, self.meta_path]))
                    # Written while holding the lock: the index must not change under write_index. Searches
                    # in this process wait; the daemon's adds are the only writer, and it is the one saving.
                    faiss.write_index(self._index, str(tmp))
                    meta = IndexMeta(
                        format=FORMAT,
                        model_id=self.model_id,
                        kind=self.kind,
                        dim=int(self.dim),
                        count=self._count,
                        tombstones=self._tombstones,
                        ids_checksum=_ids_checksum(self.ids()),
                        file_checksum="",
                        sync_rowid=self._sync_rowid,
                        sync_time=self._sync_time,
                        saved_at=time.time(),
                    )
                    self._dirty = False
                meta.file_checksum = _file_checksum(tmp)
                meta_tmp.write_text(json.dumps(asdict(meta), indent=1), encoding="utf-8")
        except DiskFullError as exc:
            self._dirty = True
            raise durable.disk_full_error(
                f"the data dir {self.data_dir}",
                f"save the index {self.path}",
                "free some space there; the previous index file is intact and the catalog holds every "
                "vector, nothing is lost",
            ) from exc
        except (OSError, RuntimeError) as exc:  # faiss.write_index reports a failed write as RuntimeError
            self._dirty = True
            raise VectorIndexError(
                f"cannot save the index {self.path}: {exc}",
                "free disk space; the catalog still holds every vector, nothing is lost",
            ) from exc
        log.debug("index %s saved: %d vectors", self.path.name, meta.count)
        return True


# ---- helpers -----------------------------------------------------------------------------------------


def _stored_ids(index: Any, kind: str) -> np.ndarray:
    """Every id slot of a FAISS index (-1 for an HNSW tombstone)."""
    if kind == "ivf":
        ivf = faiss.extract_index_ivf(index)
        lists = ivf.invlists
        assert lists is not None  # an IVF index always has its inverted lists
        parts = [
            faiss.rev_swig_ptr(lists.get_ids(i), lists.list_size(i)).copy()
            for i in range(ivf.nlist)
            if lists.list_size(i)
        ]
        return np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, dtype=np.int64)
    return faiss.vector_to_array(index.id_map).astype(np.int64)


def _search_parameters(kind: str, **fields: Any) -> faiss.SearchParameters:
    """faiss.SearchParameters{kind}(**fields): looked up by name, as faiss's stubs lack SearchParametersHNSW and
    the keyword arguments of faiss's wrapper (which also keeps `sel` alive as long as the parameters)."""
    made: faiss.SearchParameters = getattr(faiss, f"SearchParameters{kind}")(**fields)
    return made


def _live_selector() -> faiss.IDSelector:
    global _LIVE
    if _LIVE is None:
        _LIVE = faiss.IDSelectorRange(0, np.iinfo(np.int64).max)
    return _LIVE


def _ivf_lists(n: int) -> int:
    # 4 sqrt(n) lists (FAISS's rule of thumb), each trained with at least 39 points (its minimum).
    return int(min(max(8, 4 * math.sqrt(n)), max(8, n // 39), 65536))


def _ivf_probes(nlist: int) -> int:
    # An eighth of the lists keeps recall@10 above 0.95 on clustered test data; past 64 probes the cost grows
    # with no recall to gain (1M vectors, 4000 lists: nprobe 64 gives p99 5 ms at recall 1.0, 500 gives 27 ms).
    return max(8, min(nlist // 8, 64))


def _training_sample(catalog: Catalog, model_id: str, per_list: int = 64) -> np.ndarray:
    total = vectors.count_vectors(catalog, model_id)
    want = min(total, _ivf_lists(total) * per_list)
    ids = vectors.indexed_ids(catalog, model_id)
    rng = np.random.default_rng(0)
    pick = np.sort(rng.choice(ids, size=want, replace=False)) if want < ids.size else ids
    _, vecs = vectors.load_vectors(catalog, model_id, pick)
    return vecs


def _top_k(q: np.ndarray, ids: np.ndarray, vecs: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    scores = q @ vecs.T
    kk = min(k, ids.size)
    part = np.argpartition(-scores, kk - 1, axis=1)[:, :kk]
    order = np.take_along_axis(scores, part, axis=1).argsort(axis=1, kind="stable")[:, ::-1]
    top = np.take_along_axis(part, order, axis=1)
    return np.take_along_axis(scores, top, axis=1).astype(np.float32), ids[top]


def _sorted_unique(ids: Iterable[int]) -> np.ndarray:
    """Ids as a sorted int64 array without repeats; one already so (a listed filter) is taken as it is:
    np.unique took 3 ms over 10,000 ids."""
    arr = np.asarray(ids if isinstance(ids, np.ndarray) else list(ids), dtype=np.int64)
    if arr.ndim != 1:
        arr = arr.ravel()
    if arr.size > 1 and not bool((arr[1:] > arr[:-1]).all()):
        arr = np.unique(arr)
    return arr


def _clean(scores: np.ndarray, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    scores = scores.astype(np.float32)
    scores[ids < 0] = -np.inf
    return scores, ids.astype(np.int64)


def _empty(n: int) -> tuple[np.ndarray, np.ndarray]:
    return np.zeros((n, 0), dtype=np.float32), np.zeros((n, 0), dtype=np.int64)


def _chain(first: _Chunk, rest: Iterator[_Chunk]) -> Iterator[_Chunk]:
    yield first
    yield from rest


def _ids_checksum(ids: np.ndarray) -> str:
    return hashlib.blake2b(np.sort(ids).astype("<i8").tobytes(), digest_size=16).hexdigest()


def _file_checksum(path: Path) -> str:
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """One saver at a time across processes (the daemon and a search that had to rebuild)."""
    with open(path, "a+b") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)
