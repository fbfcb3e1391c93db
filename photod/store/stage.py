"""The stage: every photo decoded once, as a small upright JPEG, in an LMDB environment.

The layout is Chinese-CLIP's image LMDB, so its tools and photod's finetune read it as they are:
key = str(photo_id).encode(), value = base64.urlsafe_b64encode(jpeg_bytes). Encoding, re-encoding after a
finetune, and encoding on another machine read the stage, never the original drive, which may be unplugged.

One writer (the daemon) and any number of readers (the TUI, `photod search`) may have it open at once:
LMDB gives readers a consistent snapshot without blocking the writer. Within one process, open it once:
LMDB's locks are per process, and a second handle closed early would drop the first one's locks.

Memory: LMDB reads through a shared memory map of data.mdb, and every page a read touches stays mapped, and
counted in the process's resident set, until the map is closed. The indexer reads every staged photo once,
so without care the daemon's RSS grew by the whole stage it had read (about 47 MB per 1000 photos). Each
read therefore hands the map's pages back to the kernel once it has copied its value (see `_drop_pages`).
"""

from __future__ import annotations

import base64
import ctypes
import errno
import logging
import operator
import os
import sys
import threading
from contextlib import contextmanager
from io import BytesIO
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, SupportsIndex, TypeVar, cast

import lmdb
import numpy as np
from PIL import Image

from photod import durable
from photod.errors import StageError

log = logging.getLogger(__name__)

STAGE_DIR = "stage"
# Address space reserved, not disk used: LMDB's file grows only as entries are written. 1 GiB holds
# about 20,000 staged photos; beyond that the map doubles as needed.
DEFAULT_MAP_SIZE = 1 << 30
MAX_READERS = 126

_R = TypeVar("_R")


def encode_value(jpeg: bytes) -> bytes:
    """A stage value as Chinese-CLIP stores it."""
    return base64.urlsafe_b64encode(jpeg)


def decode_value(value: bytes) -> bytes:
    """The JPEG bytes inside a stage value (what cn_clip does with base64.urlsafe_b64decode)."""
    return base64.urlsafe_b64decode(value)


def _key(photo_id: int) -> bytes:
    return str(int(photo_id)).encode()


def _libc_madvise() -> Callable[[int, int, int], int] | None:
    if not sys.platform.startswith("linux"):  # MADV_DONTNEED is only a hint elsewhere (macOS keeps the pages)
        return None
    try:
        fn = ctypes.CDLL(None, use_errno=True).madvise
    except (OSError, AttributeError):
        return None
    fn.argtypes, fn.restype = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int], ctypes.c_int
    return fn


_MADVISE = _libc_madvise()
_MADV_DONTNEED = 4  # Linux, every architecture


def _drop_pages(value: memoryview, shared: "_SharedEnv") -> None:
    """Unmap from this process every page of the stage's map, after a read copied `value` (a buffer into it).

    Why: a page of a file mapping, once read, stays in the process's page tables, so the daemon's RSS grew by
    every staged photo the indexer had read, ~47 MB per 1000 photos, 470 MB at 10,000 (issue #11). py-lmdb
    does not give out the map (Environment.info()'s map_addr is 0 unless MDB_FIXEDMAP), so neither Python's
    mmap.madvise nor posix_fadvise can reach it (POSIX_FADV_DONTNEED leaves pages that are mapped in place),
    but a buffer from a `buffers=True` transaction points into the map, and /proc/self/maps gives the whole
    mapping around it: madvise(MADV_DONTNEED) there drops its pages from our page tables. Nothing is lost:
    LMDB maps the file read-only and shared (no writemap), so a dropped page is only the page cache's copy,
    and reading it again (another thread's read in progress, a branch page) faults it back, unchanged, from
    there or from the disk. The page cache itself is the kernel's, freed under memory pressure and counted
    in no process's RSS. Re-opening the environment every few thousand reads would unmap too, but only while
    no thread of the process has a transaction open, which the indexer's decode workers rarely allow.

    Why the whole map and not the value's own pages: a page fault maps the pages around it too, those already
    in the page cache (the kernel's fault-around, in 64 KiB aligned windows, and whole large folios), so
    reading one photo maps back the tail of the one before, already dropped. Dropping only each value's
    pages, measured in the daemon at 10,000 photos, left ~13 KB a photo mapped (126 MiB), each run of
    pages starting on a 64 KiB boundary and ending where the photo read next begins. One madvise over the
    whole mapping costs about as little (the kernel skips the unmapped page-table ranges).

    The caller holds its read transaction, and so `_MapGuard.shared`: the map cannot move under the address.
    The mapping's bounds are cached with the environment and map size they were found for, and looked up
    again when either changed or the address falls outside them.
    """
    if _MADVISE is None:
        return
    span = shared.map_span(np.frombuffer(value, np.uint8).ctypes.data)
    if span is not None:
        _MADVISE(span[0], span[1] - span[0], _MADV_DONTNEED)  # a failure only leaves the pages mapped


def _mapping_of(address: int) -> tuple[int, int] | None:
    """(start, end) of this process's mapping of a data.mdb that holds `address`, from /proc/self/maps."""
    try:
        with open("/proc/self/maps") as maps:
            for line in maps:
                span, _, rest = line.partition(" ")
                lo_text, _, hi_text = span.partition("-")
                lo, hi = int(lo_text, 16), int(hi_text, 16)
                if lo <= address < hi:
                    return (lo, hi) if rest.rstrip("\n").endswith("data.mdb") else None
    except (OSError, ValueError):
        pass
    return None


class _MapGuard:
    """Shared by every transaction of one environment, exclusive for what moves or closes its map.

    LMDB allows set_mapsize (growing the map, adopting another process's growth) and closing the environment
    only while no transaction of the process is open: both unmap the old map, under any thread still reading
    it. The daemon's ingest thread grows the map while the indexer's decode workers read, so the growth
    waits for them here, and new transactions wait for the growth. A thread never takes it twice.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._active = 0
        self._moving = False
        self._waiting = 0  # exclusive takers waiting: new transactions wait behind them, so they get their turn

    @contextmanager
    def shared(self) -> Iterator[None]:
        with self._cond:
            while self._moving or self._waiting:
                self._cond.wait()
            self._active += 1
        try:
            yield
        finally:
            with self._cond:
                self._active -= 1
                if not self._active:
                    self._cond.notify_all()

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        with self._cond:
            self._waiting += 1
            while self._moving or self._active:
                self._cond.wait()
            self._waiting -= 1
            self._moving = True
        try:
            yield
        finally:
            with self._cond:
                self._moving = False
                self._cond.notify_all()


class _SharedEnv:
    """One LMDB environment per stage per process, shared by every Stage opened on it (the daemon's thread
    and, say, a finetune or a test in the same process). LMDB forbids opening an environment twice in one
    process: closing the second handle would drop the first one's locks."""

    _lock = threading.Lock()
    _open: dict[str, "_SharedEnv"] = {}

    def __init__(self, key: str, env: lmdb.Environment, readonly: bool):
        self.key, self.env, self.readonly, self.refs = key, env, readonly, 0
        self.guard = _MapGuard()
        self._span: tuple[Any, int, int, int] | None = None  # (env, map size, start, end): map_span

    def map_span(self, address: int) -> tuple[int, int] | None:
        """(start, end) of the mapping of this environment's map that holds `address`, or None."""
        size = self.env.info()["map_size"]
        cached = self._span
        if cached is None or cached[0] is not self.env or cached[1] != size or not cached[2] <= address < cached[3]:
            found = _mapping_of(address)
            if found is None:
                return None
            cached = self._span = (self.env, size, *found)  # one tuple: other threads see old or new, whole
        return cached[2], cached[3]

    @staticmethod
    def _env(path: Path, map_size: int, readonly: bool) -> lmdb.Environment:
        return lmdb.open(
            str(path),
            map_size=map_size,
            subdir=True,
            readonly=readonly,
            lock=True,
            max_readers=MAX_READERS,
            readahead=False,
            meminit=False,
            mode=0o600,
            sync=True,
            metasync=True,
        )

    @classmethod
    def acquire(cls, path: Path, map_size: int, readonly: bool) -> "_SharedEnv":
        key = os.path.realpath(path)
        with cls._lock:
            shared = cls._open.get(key)
            if shared is None:
                shared = cls._open[key] = cls(key, cls._env(path, map_size, readonly), readonly)
            elif shared.readonly and not readonly:
                # A writer after read-only handles: reopen writable, which serves both.
                with shared.guard.exclusive():
                    shared.env.close()
                    shared.env, shared.readonly = cls._env(path, max(map_size, DEFAULT_MAP_SIZE), False), False
            shared.refs += 1
            return shared

    def release(self) -> None:
        with self._lock:
            self.refs -= 1
            if self.refs == 0:
                self.env.close()
                self._open.pop(self.key, None)


class Stage:
    """The LMDB of staged JPEGs under `data_dir/stage`."""

    def __init__(self, data_dir: str | os.PathLike[str], map_size: int | None = None, readonly: bool = False):
        self.data_dir = Path(data_dir)
        self.path = self.data_dir / STAGE_DIR
        self.readonly = readonly
        if readonly and not (self.path / "data.mdb").exists():
            raise StageError(
                f"there is no stage at {self.path}", "start the daemon (`photod run`) once to stage your photos"
            )
        try:
            if not readonly:
                self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
                self.path.mkdir(exist_ok=True, mode=0o700)
            self._shared = _SharedEnv.acquire(self.path, map_size or DEFAULT_MAP_SIZE, readonly)
        except (lmdb.Error, OSError) as exc:
            raise self._storage_error(exc, "open") from exc
        self._closed = False

    @property
    def env(self) -> lmdb.Environment:
        return self._shared.env

    # ---- writing ----------------------------------------------------------------------------------

    def put_many(self, items: dict[int, bytes]) -> None:
        """Store JPEG bytes by photo id in ONE transaction; durable (synced) when this returns."""
        if not items:
            return
        values = [(_key(pid), encode_value(jpeg)) for pid, jpeg in items.items()]

        def write() -> None:
            with self.env.begin(write=True) as txn:
                for key, value in values:
                    txn.put(key, value)

        self._write(write, "write", needed=sum(len(v) for _, v in values))

    def delete_many(self, ids: Iterable[int]) -> int:
        """Remove entries by photo id in one transaction; returns how many were there."""
        keys = [_key(pid) for pid in ids]
        if not keys:
            return 0
        removed = 0

        def write() -> None:
            nonlocal removed
            removed = 0
            with self.env.begin(write=True) as txn:
                for key in keys:
                    removed += bool(txn.delete(key))

        self._write(write, "delete from")
        return removed

    def _write(self, txn_body: Callable[[], None], what: str, needed: int = 0) -> None:
        if self.readonly:
            raise StageError(f"the stage at {self.path} was opened read-only", "this is a bug in the caller")
        while True:
            try:
                with self._shared.guard.shared():
                    txn_body()  # the `with` aborts the transaction on any error, so a retry starts clean
                return
            except lmdb.MapFullError:
                self._grow()
            except (lmdb.Error, OSError) as exc:
                raise self._storage_error(exc, what, needed) from exc

    def _grow(self) -> None:
        # Only this process writes; set_mapsize needs every transaction of the process closed, readers in other
        # threads included, which the guard waits for.
        with self._shared.guard.exclusive():
            old = self.env.info()["map_size"]
            new = old * 2
            log.info("stage map full at %d MiB: growing to %d MiB", old >> 20, new >> 20)
            try:
                self.env.set_mapsize(new)
            except lmdb.Error as exc:
                raise self._storage_error(exc, "grow") from exc

    def _storage_error(self, exc: BaseException, what: str, needed: int = 0) -> Exception:
        err = getattr(exc, "errno", None)
        text = str(exc)
        if durable.is_disk_full(exc, self.path, needed):
            return durable.disk_full_error(
                f"the data dir {self.data_dir}",
                f"{what} the stage",
                "free some space there (or move the data dir with PHOTOD_DATA_DIR) and restart photod; "
                "photos already staged are safe",
            )
        if err in (errno.EACCES, errno.EPERM, errno.EROFS) or isinstance(exc, lmdb.ReadonlyError):
            return StageError(
                f"cannot {what} the stage at {self.path}: {text}",
                "run photod as the user who owns the data dir, on a writable filesystem",
            )
        return StageError(
            f"cannot {what} the stage at {self.path}: {text}",
            "if it is damaged, move it aside: photod re-stages every photo from your roots",
        )

    # ---- reading ----------------------------------------------------------------------------------

    def _read(self, body: Callable[[lmdb.Transaction], _R]) -> _R:
        try:
            return self._read_once(body)
        except lmdb.MapResizedError:
            # The daemon grew the map since this reader opened it: adopt the new size and read again.
            with self._shared.guard.exclusive():
                self.env.set_mapsize(0)
            return self._read_once(body)

    def _read_once(self, body: Callable[[lmdb.Transaction], _R]) -> _R:
        with self._shared.guard.shared(), self.env.begin(buffers=True) as txn:
            return body(txn)

    def get_jpeg(self, photo_id: int) -> bytes | None:
        """The staged JPEG bytes of a photo, or None if it is not staged."""

        def read(txn: lmdb.Transaction) -> bytes | None:
            value = txn.get(_key(photo_id))
            if value is None:
                return None
            copied = bytes(value)
            _drop_pages(value, self._shared)  # the indexer reads each photo once: no need to keep it mapped
            return decode_value(copied)

        return self._read(read)

    def get_image(self, photo_id: int) -> Image.Image | None:
        """The staged photo as a loaded RGB image, or None if it is not staged."""
        jpeg = self.get_jpeg(photo_id)
        if jpeg is None:
            return None
        with Image.open(BytesIO(jpeg)) as img:
            return img.convert("RGB")

    def keys(self) -> set[int]:
        """Every staged photo id. Keys that are not photo ids (a dataset's 'num_images') are skipped."""

        def read(txn: lmdb.Transaction) -> set[int]:
            ids = set()
            for key in txn.cursor().iternext(keys=True, values=False):
                text = bytes(key)
                if text.isdigit():
                    ids.add(int(text))
            return ids

        return self._read(read)

    def __contains__(self, photo_id: object) -> bool:
        try:
            # ints, numpy ints (FAISS ids); not '3' or 3.0, whose TypeError says so
            key = _key(operator.index(cast(SupportsIndex, photo_id)))
        except TypeError:
            return False
        return self._read(lambda txn: txn.get(key) is not None)

    def __len__(self) -> int:
        return int(self.env.stat()["entries"])

    # ---- lifetime ---------------------------------------------------------------------------------

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._shared.release()

    def __enter__(self) -> "Stage":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
