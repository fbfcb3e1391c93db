"""Folder signatures: how a reconcile scan passes over folders that have not changed.

A signature is a hash of one folder's listing (every regular file's name, size and mtime, plus the
root's include/exclude globs). After a scan has brought a folder's catalog rows into agreement with its
listing, the signature is stored in `scan_folders` together with the number of photos it vouches for.
The next scan hashes the folder's listing again (in bulk, never unpacking it) and compares only the
folders whose hash differs, reading just their rows from the catalog.

Why this is safe:
- A signature is written only after re-reading the folder's rows inside the same write transaction and
  finding them equal to the listing, so it never vouches for a catalog it has not seen.
- Triggers on `photos` (photod/store/migrations/0003_scan_folders.sql) forget a folder's signature on any change to
  its files, sizes, mtimes or deleted state, whoever makes the change. Going offline and back is not
  such a change: the rows come back as they were, and no signature is trusted while a root has offline
  photos, so a drive plugged back in costs no more than an unchanged scan.
- A file edited in place changes its size or mtime, so its folder's hash changes: unlike skipping folders
  by their own mtime, nothing is trusted that an edit can leave unchanged.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from typing import TYPE_CHECKING, Iterable, Iterator, Sequence

from photod.roots.matcher import SIDECARS

if TYPE_CHECKING:
    from photod.roots.listing import Folder
    from photod.store.catalog import Catalog

CHUNK = 500  # folders per IN (...) query


class Known:
    """A folder's stored signature and the photos it vouches for."""

    __slots__ = ("signature", "photos")

    def __init__(self, signature: bytes | None, photos: int):
        self.signature = signature
        self.photos = photos


def matcher_key(include: Sequence[str], exclude: Sequence[str]) -> bytes:
    """Mixed into every signature: changing a root's globs (or the files no globs include) changes which
    files a listing holds."""
    globs = "\0".join(include) + "\1" + "\0".join(exclude) + "\2" + "\0".join(SIDECARS)
    return globs.encode("utf-8", "surrogateescape")


def signature(key: bytes, folder: "Folder") -> bytes:
    h = hashlib.blake2b(key, digest_size=16)
    h.update(len(folder.names).to_bytes(8, "little"))
    h.update(folder.names)
    h.update(folder.sizes)
    h.update(folder.mtimes)
    return h.digest()


def load(catalog: "Catalog", root_id: int) -> dict[str, Known]:
    """{folder: Known} for every folder of the root the catalog knows (those with photos, at least)."""
    cur = catalog.conn.cursor()
    cur.row_factory = None
    rows = cur.execute("SELECT folder, signature, photos FROM scan_folders WHERE root_id = ?", (root_id,))
    return {folder: Known(sig, photos) for folder, sig, photos in rows}


def _live_rows(catalog: "Catalog", root_id: int, folders: Sequence[str], columns: str) -> Iterator[tuple]:
    """`columns` of the photos, not deleted, in these folders of a root, as plain tuples, CHUNK folders
    per query."""
    cur = catalog.conn.cursor()
    cur.row_factory = None
    for start in range(0, len(folders), CHUNK):
        chunk = folders[start : start + CHUNK]
        marks = ",".join("?" * len(chunk))
        yield from cur.execute(
            f"SELECT {columns} FROM photos WHERE root_id = ? AND folder IN ({marks}) AND state != 'deleted'",
            (root_id, *chunk),
        )


def rows_in(catalog: "Catalog", root_id: int, folders: Sequence[str]) -> dict[str, tuple]:
    """{rel_path: (rel_path, size, mtime_ns, photo id, state)} for the live photos of these folders."""
    rows = _live_rows(catalog, root_id, folders, "rel_path, size, mtime_ns, id, state")
    return {row[0]: row for row in rows}


def remember(
    catalog: "Catalog",
    root_id: int,
    listed: dict[str, tuple[bytes, list[tuple[str, int, int]]]],
    vanished: Iterable[str],
) -> int:
    """Store signatures for the folders whose catalog rows now equal their listing; forget folders gone
    from disk that no longer hold any photo. `listed` maps folder -> (signature, [(filename, size,
    mtime_ns), ...] of the photo files the listing holds). Returns the signatures stored."""
    stored = 0
    names, vanished = list(listed), list(vanished)
    if not names and not vanished:
        return 0  # an unchanged tree: no write transaction at all
    with catalog.transaction():
        actual: dict[str, list[tuple]] = defaultdict(list)
        for folder, *row in _live_rows(catalog, root_id, names, "folder, filename, size, mtime_ns, state"):
            actual[folder].append(tuple(row))
        for folder in names:
            sig, expected = listed[folder]
            rows = actual.get(folder, [])
            if any(r[3] == "offline" for r in rows) or sorted(r[:3] for r in rows) != sorted(expected):
                continue  # changed since the scan compared it: left for the next scan
            catalog.conn.execute(
                "INSERT OR REPLACE INTO scan_folders (root_id, folder, signature, photos) VALUES (?, ?, ?, ?)",
                (root_id, folder, sig, len(expected)),
            )
            stored += 1
        for folder in vanished:
            catalog.conn.execute(
                "DELETE FROM scan_folders WHERE root_id = ? AND folder = ? AND NOT EXISTS (SELECT 1 FROM photos"
                " WHERE root_id = ? AND folder = ? AND state != 'deleted')",
                (root_id, folder, root_id, folder),
            )
    return stored
