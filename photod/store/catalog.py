"""The SQLite catalog: every root, every photo file, its state, its metadata and its captions.

One `Catalog` per thread (SQLite connections are not shared). WAL mode lets the TUI and `photod search`
read while the daemon writes; `busy_timeout` makes a reader wait for a writer instead of failing with
"database is locked". Every change the daemon makes goes through `transaction()`, so a `kill -9` leaves
either the old or the new state, never half of one.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Iterable, Iterator, Literal, TypedDict, cast, get_args

from photod.config import Config, RootConfig
from photod.errors import CatalogError, RootError
from photod.store import names, schema
from photod.store.textsearch import search_text

State = Literal["new", "staged", "indexed", "failed", "offline", "deleted"]
STATES: tuple[State, ...] = get_args(State)
CATALOG_NAME = "catalog.db"


# ---- the rows the catalog returns (photod/store/migrations/*.sql say what each column holds) -----------------------


class PhotoRow(TypedDict):
    """A row of `photos`."""

    id: int
    root_id: int
    rel_path: str
    filename: str
    folder: str
    size: int
    mtime_ns: int
    content_hash: str | None
    width: int | None
    height: int | None
    format: str | None
    taken_at: str | None
    camera_make: str | None
    camera_model: str | None
    lens: str | None
    orientation: int | None
    gps_lat: float | None
    gps_lon: float | None
    state: State
    prev_state: State | None
    error: str | None
    staged_at: float | None
    indexed_at: float | None
    deleted_at: float | None
    created_at: float
    updated_at: float
    rel_bytes: bytes | None  # the path's exact bytes when it is not UTF-8 (photod.store.names)
    kind: str  # photo, video or frame
    parent_id: int | None  # a frame's video
    frame_time: float | None  # a frame's time in its video, seconds
    duration: float | None  # a video's length, seconds


class PendingRow(PhotoRow):
    """A photo waiting for the next step, with the path of its root, where the file is."""

    root_path: str


class PhotoInfoRow(PendingRow):
    """A photo as search and the TUI show it: which root it is on, and whether that drive is there now."""

    root_label: str
    root_online: int


class NameMatchRow(PhotoInfoRow):
    """A search result by words: `taken_or_mtime` (EXIF taken-at, else the file's mtime) is what it is
    sorted and filtered by, `place_label` where it was taken and `photo_text` the text read in it (None when
    unknown). `name_match` (1 or 0),
    `caption_match` (the first caption that matched), `text_match` (the text read in the photo, when its
    words matched) and `place_match` (the place, when its names matched) say why it was found, all None
    when no text was searched."""

    taken_or_mtime: str
    place_label: str | None
    photo_text: str | None
    name_match: int | None
    caption_match: str | None
    text_match: str | None
    place_match: str | None


class FailedRow(TypedDict):
    id: int
    root_path: str
    rel_path: str
    rel_bytes: bytes | None
    error: str | None
    updated_at: float


class CaptionRow(TypedDict):
    id: int
    photo_id: int
    text: str
    source: str  # user, import, folder, feedback
    created_at: float


@dataclass(frozen=True)
class Root:
    id: int
    path: Path
    label: str
    source: str
    watch: str
    poll_interval: float
    include: tuple[str, ...]
    exclude: tuple[str, ...]
    online: bool
    device: int | None
    fs_type: str | None
    watch_mode: str | None
    last_scan_at: float | None
    removed: bool = False

    @classmethod
    def from_row(cls, row: dict) -> "Root":
        return cls(
            id=row["id"],
            path=Path(row["path"]),
            label=row["label"],
            source=row["source"],
            watch=row["watch"],
            poll_interval=row["poll_interval"],
            include=tuple(json.loads(row["include_json"])),
            exclude=tuple(json.loads(row["exclude_json"])),
            online=bool(row["online"]),
            device=row["device"],
            fs_type=row["fs_type"],
            watch_mode=row["watch_mode"],
            last_scan_at=row["last_scan_at"],
            removed=row["removed_at"] is not None,
        )


@dataclass(frozen=True)
class PhotoMeta:
    """What staging learns about a photo from its pixels and EXIF."""

    width: int | None = None
    height: int | None = None
    format: str | None = None
    taken_at: str | None = None
    camera_make: str | None = None
    camera_model: str | None = None
    lens: str | None = None
    orientation: int | None = None
    gps_lat: float | None = None
    gps_lon: float | None = None
    kind: str = "photo"  # what the content is, sniffed: photo or video
    duration: float | None = None  # a video's length, seconds


def prepare_data_dir(data_dir: Path) -> None:
    """Create the data dir private to its owner: it holds thumbnails of every photo."""
    data_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(data_dir, 0o700)


def open_catalog(cfg: Config, *, owner: bool = False) -> "Catalog":
    """The catalog of a configuration's data dir, created if new, with the config file's roots in it.

    Only an `owner` (`photod scan`; the daemon syncs its roots itself) also retires config roots the file
    no longer names. A command that only reads (status, search, the TUI) adds roots but never removes any:
    run with another --config by mistake, it must not turn the daemon's photos into deleted ones.
    """
    prepare_data_dir(cfg.data_dir)
    cat = Catalog.in_data_dir(cfg.data_dir)
    cat.sync_config_roots(cfg.roots, retire=owner)
    return cat


def split_rel(rel_path: str) -> tuple[str, str]:
    """(folder, filename) of a POSIX relative path."""
    p = PurePosixPath(rel_path)
    folder = str(p.parent)
    return ("" if folder == "." else folder), p.name


class Catalog:
    def __init__(self, db_path: str | os.PathLike, migrate: bool = True):
        self.path = Path(db_path)
        new_file = not self.path.exists()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            # isolation_level=None: we issue BEGIN/COMMIT ourselves, so Python never opens a hidden
            # transaction that a reader would see as a held lock.
            conn = sqlite3.connect(self.path, isolation_level=None, timeout=30, check_same_thread=False)
        except (sqlite3.Error, OSError) as exc:
            raise CatalogError(
                f"cannot open the catalog {self.path}: {exc}", "check that the data dir exists and is writable"
            ) from exc
        if new_file:
            os.chmod(self.path, 0o600)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA busy_timeout = 30000")
        _use_wal(conn, self.path)
        conn.execute("PRAGMA synchronous = NORMAL")  # WAL + NORMAL: durable at checkpoint, never corrupt
        conn.execute("PRAGMA foreign_keys = ON")
        # The caption search triggers (0004_caption_search.sql) space CJK text apart as the names index does.
        conn.create_function("photod_search_text", 1, search_text, deterministic=True)
        self.conn = conn
        if migrate:
            self.migrate()

    @classmethod
    def in_data_dir(cls, data_dir: str | os.PathLike, migrate: bool = True) -> "Catalog":
        return cls(Path(data_dir) / CATALOG_NAME, migrate=migrate)

    def migrate(self) -> list[str]:
        return schema.migrate(self.conn)

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> "Catalog":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE ... COMMIT; nested use joins the outer transaction."""
        if self.conn.in_transaction:
            yield self.conn
            return
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        try:
            self.conn.execute("COMMIT")
        except sqlite3.Error:
            # A COMMIT that fails (SQLITE_FULL: the disk is full) leaves the transaction open; without this
            # rollback every later transaction() would silently join it and nothing would ever commit.
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
            raise

    def query(self, sql: str, params: Iterable | dict = ()) -> list[dict[str, Any]]:
        return [dict(r) for r in self.conn.execute(sql, params)]

    def tuples(self, sql: str, params: Iterable | dict = ()) -> sqlite3.Cursor:
        """The rows as plain tuples: listing many ids (a date filter's, a common word's) through sqlite3.Row
        objects cost a third of the listing (15,000 ids: 9.3 ms against 6.0 ms)."""
        cursor = self.conn.cursor()
        cursor.row_factory = None
        return cursor.execute(sql, params)

    def ids(self, sql: str, params: Iterable | dict = ()) -> list[int]:
        """The first column of a query's rows (ids), in no particular order, read as one group_concat string
        rather than row by row: a date filter's 10,000 ids in 10-11 ms against 13-16 ms through sqlite3.Row
        objects, a common word's 15,000 in 6-7 ms against 10 ms (load average 8)."""
        text = self.tuples(f"WITH q(v) AS ({sql}) SELECT group_concat(v) FROM q", params).fetchone()[0]
        return list(map(int, text.split(","))) if text else []

    def scalar(self, sql: str, params: Iterable | dict = ()) -> Any:
        row = self.conn.execute(sql, params).fetchone()
        return None if row is None else row[0]

    # ---- roots -------------------------------------------------------------------------------------

    def roots(self) -> list[Root]:
        return [Root.from_row(r) for r in self.query("SELECT * FROM roots ORDER BY id")]

    def root(self, root_id: int) -> Root:
        rows = self.query("SELECT * FROM roots WHERE id = ?", (root_id,))
        if not rows:
            raise RootError(f"no root with id {root_id}", "see `photod roots list`")
        return Root.from_row(rows[0])

    def find_root(self, path_or_label: str | os.PathLike) -> Root:
        """A root by path, label or id, as a person names it on the command line."""
        text = str(path_or_label)
        full = os.path.abspath(os.path.expanduser(text))
        rows = self.query(
            "SELECT * FROM roots WHERE path = ? OR path = ? OR label = ? OR CAST(id AS TEXT) = ?",
            (text, full, text, text),
        )
        if not rows:
            raise RootError(f"no root named {text!r}", "see `photod roots list` for the roots photod knows")
        return Root.from_row(rows[0])

    def add_root(self, rc: RootConfig, source: str = "cli") -> Root:
        """Insert a root, or update its settings if the path is already known."""
        values = {
            "path": str(rc.path),
            "label": rc.label,
            "source": source,
            "watch": rc.watch,
            "poll_interval": rc.poll_interval,
            "include_json": json.dumps(list(rc.include)),
            "exclude_json": json.dumps(list(rc.exclude)),
        }
        with self.transaction():
            existing = self.scalar("SELECT id FROM roots WHERE path = ?", (values["path"],))
            if existing is None:
                cur = self.conn.execute(
                    "INSERT INTO roots (path, label, source, watch, poll_interval, include_json, exclude_json,"
                    " added_at) VALUES (:path, :label, :source, :watch, :poll_interval, :include_json,"
                    " :exclude_json, :added_at)",
                    {**values, "added_at": time.time()},
                )
                existing = cur.lastrowid
            else:
                self.conn.execute(
                    "UPDATE roots SET removed_at = NULL, label = :label, source = :source, watch = :watch,"
                    " poll_interval = :poll_interval, include_json = :include_json,"
                    " exclude_json = :exclude_json WHERE id = :id",
                    {**values, "id": existing},
                )
        return self.root(existing)

    def sync_config_roots(self, roots: Iterable[RootConfig], retire: bool = True) -> list[Root]:
        """Make the catalog's config-sourced roots match the config file; CLI-added roots are kept. With
        `retire` false, roots the file no longer names are left for the daemon to retire."""
        roots = list(roots)
        wanted = {str(rc.path) for rc in roots}
        for rc in roots:
            self.add_root(rc, source="config")
        for root in self.active_roots() if retire else ():
            if root.source == "config" and str(root.path) not in wanted:
                self.remove_root(root.id)
        return self.roots()

    def remove_root(self, root_id: int) -> int:
        """Stop watching a root. Its photos become deleted, with captions and vectors kept for the grace
        period, so re-adding the root (or the same files under another root) brings them back unchanged."""
        with self.transaction():
            n = self._mark_deleted("root_id = ? AND state != 'deleted'", (root_id,))
            self.conn.execute(
                "UPDATE roots SET removed_at = ?, online = 0, watch_mode = NULL WHERE id = ?", (time.time(), root_id)
            )
        return n

    def update_root(self, root_id: int, **fields: Any) -> None:
        allowed = {"online", "device", "fs_type", "watch_mode", "last_scan_at", "label"}
        bad = set(fields) - allowed
        if bad:
            raise ValueError(f"cannot update root fields {bad}")
        sets = ", ".join(f"{k} = :{k}" for k in fields)
        with self.transaction():
            self.conn.execute(f"UPDATE roots SET {sets} WHERE id = :id", {**fields, "id": root_id})

    def active_roots(self) -> list[Root]:
        """Roots that are watched: every root not removed."""
        return [Root.from_row(r) for r in self.query("SELECT * FROM roots WHERE removed_at IS NULL ORDER BY id")]

    # ---- offline and online ------------------------------------------------------------------------

    def set_root_offline(self, root_id: int) -> int:
        """The drive is gone: every photo stays, marked offline, remembering the state to return to."""
        now = time.time()
        with self.transaction():
            self.conn.execute("UPDATE roots SET online = 0 WHERE id = ?", (root_id,))
            cur = self.conn.execute(
                "UPDATE photos SET prev_state = state, state = 'offline', updated_at = ?"
                " WHERE root_id = ? AND state NOT IN ('offline', 'deleted')",
                (now, root_id),
            )
        return cur.rowcount

    def has_offline(self, root_id: int) -> bool:
        """Whether any photo of the root is still marked offline."""
        # `+root_id` keeps SQLite off the (root_id, ...) indexes, which would walk every photo of the root;
        # the state index finds the (usually zero) offline rows directly.
        return bool(
            self.scalar("SELECT EXISTS (SELECT 1 FROM photos WHERE state = 'offline' AND +root_id = ?)", (root_id,))
        )

    def set_root_online(self, root_id: int, device: int | None = None) -> int:
        """The drive is back: photos return to the state they had, with nothing re-staged."""
        now = time.time()
        with self.transaction():
            self.conn.execute(
                "UPDATE roots SET online = 1, device = COALESCE(?, device) WHERE id = ?", (device, root_id)
            )
            cur = self.conn.execute(
                "UPDATE photos SET state = COALESCE(prev_state, 'new'), prev_state = NULL, updated_at = ?"
                " WHERE root_id = ? AND state = 'offline'",
                (now, root_id),
            )
        return cur.rowcount

    # ---- files as the scanner and watcher see them -------------------------------------------------

    def file_id(self, root_id: int, rel_path: str) -> int | None:
        """The row of a file, by its path in fs form (as listings and watcher events give it)."""
        return self.scalar("SELECT id FROM photos WHERE root_id = ? AND rel_path = ?", (root_id, names.key(rel_path)))

    def upsert_file(self, root_id: int, rel_path: str, size: int, mtime_ns: int) -> tuple[int, bool]:
        """Record a file seen on disk. Returns (photo id, needs_ingest).

        A new path gets a `new` row. A known path whose size or mtime changed goes back to `new` (its old
        vectors are dropped: they describe pixels that are gone). An unchanged path is left alone.
        `rel_path` is in fs form: a name that is not UTF-8 is stored as photod.store.names says.
        """
        now = time.time()
        rel_path, raw = names.storable(rel_path)
        folder, filename = split_rel(rel_path)
        with self.transaction():
            row = self.conn.execute(
                "SELECT id, size, mtime_ns, state FROM photos WHERE root_id = ? AND rel_path = ?", (root_id, rel_path)
            ).fetchone()
            if row is None:
                cur = self.conn.execute(
                    "INSERT INTO photos (root_id, rel_path, rel_bytes, filename, folder, size, mtime_ns, state,"
                    " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, 'new', ?, ?)",
                    (root_id, rel_path, raw, filename, folder, size, mtime_ns, now, now),
                )
                photo_id = cur.lastrowid
                self._index_text(photo_id, rel_path, raw)
                return photo_id, True
            photo_id, old_size, old_mtime, state = row
            if (old_size, old_mtime) == (size, mtime_ns):
                if state in ("deleted", "offline"):
                    # The same file back at the same path (a root re-added, a drive back): nothing to redo.
                    self.conn.execute(
                        "UPDATE photos SET state = COALESCE(prev_state, 'new'), prev_state = NULL,"
                        " deleted_at = NULL, updated_at = ? WHERE id = ?",
                        (now, photo_id),
                    )
                    state = self.scalar("SELECT state FROM photos WHERE id = ?", (photo_id,))
                return photo_id, state == "new"
            self.conn.execute(
                "UPDATE photos SET size = ?, mtime_ns = ?, state = 'new', prev_state = NULL, error = NULL,"
                " content_hash = NULL, staged_at = NULL, indexed_at = NULL, deleted_at = NULL,"
                " updated_at = ? WHERE id = ?",
                (size, mtime_ns, now, photo_id),
            )
            # New pixels: the vectors and the text read in the old ones are gone with them, and so are a
            # video's frames (their stage entries are orphans, removed by the next consistency check).
            self.conn.execute("DELETE FROM vectors WHERE photo_id = ?", (photo_id,))
            self.conn.execute("DELETE FROM photo_text WHERE photo_id = ?", (photo_id,))
            self.drop_frames(photo_id)
            return photo_id, True

    def mark_deleted(self, photo_ids: Iterable[int]) -> int:
        """Files gone from a root that is present. Rows, captions and vectors stay for the grace period."""
        ids = list(photo_ids)
        n = 0
        with self.transaction():
            for chunk in _chunks(ids, 500):
                marks = ",".join("?" * len(chunk))
                n += self._mark_deleted(f"id IN ({marks}) AND state != 'deleted'", chunk)
        return n

    def _mark_deleted(self, where: str, params: Iterable) -> int:
        cur = self.conn.execute(
            "UPDATE photos SET prev_state = CASE WHEN state = 'offline' THEN prev_state ELSE state END,"
            f" state = 'deleted', deleted_at = ?, updated_at = ? WHERE {where}",
            (time.time(), time.time(), *params),
        )
        return cur.rowcount

    def deleted_match(self, content_hash: str, exclude_id: int | None = None) -> int | None:
        """A deleted photo with this content: the other half of a move or rename."""
        return self.scalar(
            "SELECT id FROM photos WHERE content_hash = ? AND state = 'deleted' AND id != ?"
            " ORDER BY deleted_at DESC LIMIT 1",
            (content_hash, exclude_id or -1),
        )

    def staged_match(self, content_hash: str, exclude_id: int | None = None) -> int | None:
        """A photo that is not deleted and holds a stage entry of exactly this content: the same file at
        another place (a drive mounted at a new path, a backup copy). See Ingester._reuse_copies."""
        return self.scalar(
            "SELECT id FROM photos WHERE content_hash = ? AND staged_at IS NOT NULL AND state != 'deleted'"
            " AND id != ? ORDER BY id LIMIT 1",
            (content_hash, exclude_id or -1),
        )

    def copy_staged(self, src_id: int, dst_id: int) -> bool:
        """Give the row `dst_id` what `src_id` learned from the same bytes: its metadata, a claim on a stage
        entry (the caller has already written dst's copy of src's JPEG) and copies of its vectors.

        dst becomes `indexed` when src is (or will be, once back online) indexed, else `staged`. Returns
        False, changing nothing, when src no longer claims a stage entry."""
        fields = list(PhotoMeta.__dataclass_fields__)
        now = time.time()
        with self.transaction():
            src = self.conn.execute(
                f"SELECT {', '.join(fields)}, content_hash, state, prev_state FROM photos"
                " WHERE id = ? AND staged_at IS NOT NULL",
                (src_id,),
            ).fetchone()
            if src is None:
                return False
            effective = src["prev_state"] if src["state"] in ("offline", "deleted") else src["state"]
            state = "indexed" if effective == "indexed" else "staged"
            sets = ", ".join(f"{k} = ?" for k in fields)
            self.conn.execute(
                f"UPDATE photos SET {sets}, content_hash = ?, state = ?, error = NULL, staged_at = ?,"
                " indexed_at = ?, updated_at = ? WHERE id = ?",
                (
                    *[src[k] for k in fields],
                    src["content_hash"],
                    state,
                    now,
                    now if state == "indexed" else None,
                    now,
                    dst_id,
                ),
            )
            self.conn.execute(
                "INSERT OR REPLACE INTO vectors (photo_id, model_id, dim, vector, created_at)"
                " SELECT ?, model_id, dim, vector, ? FROM vectors WHERE photo_id = ?",
                (dst_id, now, src_id),
            )
        return True

    def adopt(self, old_id: int, new_id: int) -> None:
        """A moved file: the old photo (id, captions, vectors, stage entry) takes the new row's path, and
        the new row, which has nothing yet, disappears."""
        with self.transaction():
            new = self.conn.execute(
                "SELECT root_id, rel_path, rel_bytes, size, mtime_ns FROM photos WHERE id = ?", (new_id,)
            ).fetchone()
            if new is None:
                raise CatalogError(f"photo {new_id} vanished while being matched to {old_id}")
            self._drop_row(new_id)
            self.move_photo(
                old_id, new["root_id"], names.fs_rel(new["rel_path"], new["rel_bytes"]), new["size"], new["mtime_ns"]
            )

    def move_photo(
        self, photo_id: int, root_id: int, rel_path: str, size: int | None = None, mtime_ns: int | None = None
    ) -> None:
        """Give a photo a new path (fs form); its id, captions, vectors and stage entry are untouched."""
        rel_path, raw = names.storable(rel_path)
        folder, filename = split_rel(rel_path)
        with self.transaction():
            clash = self.scalar("SELECT id FROM photos WHERE root_id = ? AND rel_path = ?", (root_id, rel_path))
            if clash is not None and clash != photo_id:
                self._drop_row(clash)  # a stale row for the destination path (replaced file)
            self.conn.execute(
                "UPDATE photos SET root_id = ?, rel_path = ?, rel_bytes = ?, folder = ?, filename = ?,"
                " size = COALESCE(?, size), mtime_ns = COALESCE(?, mtime_ns),"
                " state = CASE WHEN state IN ('deleted', 'offline') THEN COALESCE(prev_state, 'new')"
                "  ELSE state END,"
                " prev_state = CASE WHEN state IN ('deleted', 'offline') THEN NULL ELSE prev_state END,"
                " deleted_at = NULL, updated_at = ? WHERE id = ?",
                (root_id, rel_path, raw, folder, filename, size, mtime_ns, time.time(), photo_id),
            )
            self._index_text(photo_id, rel_path, raw)

    def ids_under(self, root_id: int, folder: str) -> list[int]:
        """The photos, not deleted, anywhere under a root-relative folder."""
        return [
            r[0]
            for r in self.conn.execute(
                "SELECT id FROM photos WHERE root_id = ? AND rel_path >= ? AND rel_path < ? AND state != 'deleted'",
                (root_id, *_subtree(names.key(folder))),
            )
        ]

    def move_folder(self, root_id: int, old_prefix: str, new_prefix: str) -> int:
        """A folder renamed inside a root (both prefixes in fs form): every photo under it keeps its id; only
        paths change."""
        old_prefix, new_prefix = old_prefix.rstrip("/"), new_prefix.rstrip("/")
        rows = self.query(
            "SELECT id, rel_path, rel_bytes FROM photos WHERE root_id = ? AND rel_path >= ? AND rel_path < ?",
            (root_id, *_subtree(names.key(old_prefix))),
        )
        with self.transaction():
            for r in rows:
                old = names.fs_rel(r["rel_path"], r["rel_bytes"])
                self.move_photo(r["id"], root_id, new_prefix + old[len(old_prefix) :])
        return len(rows)

    def _drop_row(self, photo_id: int) -> None:
        # Only ever used on rows that own nothing: no captions, vectors or stage entry are lost here.
        self.conn.execute("DELETE FROM photos_fts WHERE rowid = ?", (photo_id,))
        self.conn.execute("DELETE FROM vectors WHERE photo_id = ?", (photo_id,))
        self.conn.execute("DELETE FROM photo_links WHERE photo_id = ? OR other_id = ?", (photo_id, photo_id))
        self.conn.execute("DELETE FROM photos WHERE id = ?", (photo_id,))

    def _index_text(self, photo_id: int, rel_path: str, rel_bytes: bytes | None = None) -> None:
        self.conn.execute("DELETE FROM photos_fts WHERE rowid = ?", (photo_id,))
        self.conn.execute(
            "INSERT INTO photos_fts (rowid, search_text) VALUES (?, ?)",
            (photo_id, search_text(names.searchable(rel_path, rel_bytes))),
        )

    # ---- staging results ---------------------------------------------------------------------------

    def pending(self, state: State = "new", limit: int = 64, root_id: int | None = None) -> list[PendingRow]:
        """Photos waiting for the next step, in online roots, oldest first."""
        sql = (
            "SELECT p.*, r.path AS root_path FROM photos p JOIN roots r ON r.id = p.root_id"
            " WHERE p.state = ? AND r.online = 1 AND (p.kind != 'frame' OR p.state != 'new')"
        )
        params: list[Any] = [state]
        if root_id is not None:
            sql += " AND p.root_id = ?"
            params.append(root_id)
        return cast("list[PendingRow]", self.query(sql + " ORDER BY p.id LIMIT ?", (*params, limit)))

    def mark_staged(self, photo_id: int, meta: PhotoMeta, content_hash: str) -> None:
        now = time.time()
        fields = {k: getattr(meta, k) for k in PhotoMeta.__dataclass_fields__}
        sets = ", ".join(f"{k} = :{k}" for k in fields)
        with self.transaction():
            self.conn.execute(
                f"UPDATE photos SET {sets}, content_hash = :hash, state = 'staged', error = NULL,"
                " staged_at = :now, updated_at = :now WHERE id = :id",
                {**fields, "hash": content_hash, "now": now, "id": photo_id},
            )

    def mark_failed(self, photo_id: int, error: str, content_hash: str | None = None, kind: str | None = None) -> None:
        """A file that cannot be staged; `kind` when its content says what it is (a video that failed is
        still counted as a video)."""
        with self.transaction():
            self.conn.execute(
                "UPDATE photos SET state = 'failed', error = ?, content_hash = COALESCE(?, content_hash),"
                " kind = COALESCE(?, kind), staged_at = NULL, updated_at = ? WHERE id = ?",
                (error, content_hash, kind, time.time(), photo_id),
            )

    # ---- video frames ----------------------------------------------------------------------------

    def add_frames(self, video_id: int, times: list[float]) -> list[int]:
        """New rows (state `new`, no stage entry yet) for a video's sampled frames, replacing any it had;
        their ids key the frames' stage entries, which the caller writes before `mark_frames_staged`."""
        now = time.time()
        with self.transaction():
            self.drop_frames(video_id)
            root_id = self.scalar("SELECT root_id FROM photos WHERE id = ?", (video_id,))
            ids = []
            for t in times:
                ms = round(t * 1000)
                cur = self.conn.execute(
                    "INSERT INTO photos (root_id, rel_path, filename, folder, size, mtime_ns, kind, parent_id,"
                    " frame_time, state, created_at, updated_at) VALUES (?, ?, ?, ?, 0, 0, 'frame', ?, ?, 'new',"
                    " ?, ?)",
                    (root_id, f"/frames/{video_id}/{ms}", str(ms), f"/frames/{video_id}", video_id, t, now, now),
                )
                ids.append(cur.lastrowid)
        return ids

    def mark_frames_staged(self, frame_ids: Iterable[int], meta: PhotoMeta) -> None:
        """Frames whose stage entries are written: they are encoded like photos from now on."""
        now = time.time()
        with self.transaction():
            for fid in frame_ids:
                self.conn.execute(
                    "UPDATE photos SET state = 'staged', width = ?, height = ?, format = ?, taken_at = ?,"
                    " staged_at = ?, updated_at = ? WHERE id = ? AND kind = 'frame'",
                    (meta.width, meta.height, meta.format, meta.taken_at, now, now, fid),
                )

    def frame_ids(self, video_id: int) -> list[int]:
        return [
            r[0]
            for r in self.conn.execute(
                "SELECT id FROM photos WHERE parent_id = ? AND kind = 'frame' ORDER BY frame_time", (video_id,)
            )
        ]

    def drop_frames(self, video_id: int) -> int:
        """Forget a video's frames (its content changed). Their stage entries become orphans, which
        photod.ingest.ingester.check_stage_consistency removes."""
        with self.transaction():
            ids = self.frame_ids(video_id)
            for fid in ids:
                self.conn.execute("DELETE FROM photo_text WHERE photo_id = ?", (fid,))
                self._drop_row(fid)
        return len(ids)

    # ---- files that belong together (photod.ingest.groups) ----------------------------------------

    def replace_links(self, photo_ids: list[int], links: Iterable[tuple[int, int, str]]) -> None:
        """The links touching `photo_ids` become exactly `links` ((shown id, attached id, kind))."""
        with self.transaction():
            for chunk in _chunks(photo_ids, 400):
                marks = ",".join("?" * len(chunk))
                self.conn.execute(
                    f"DELETE FROM photo_links WHERE photo_id IN ({marks}) OR other_id IN ({marks})", (*chunk, *chunk)
                )
            self.conn.executemany(
                "INSERT OR IGNORE INTO photo_links (photo_id, other_id, kind) VALUES (?, ?, ?)", list(links)
            )

    def links_of(self, photo_ids: Iterable[int]) -> list[dict[str, Any]]:
        """Every link touching these photos, with both files' paths: photo_id/other_id, kind, and for each
        side its rel_path, rel_bytes and state (shown_* and other_*)."""
        ids = list(photo_ids)
        if not ids:
            return []
        marks = ",".join("?" * len(ids))
        return self.query(
            "SELECT l.photo_id, l.other_id, l.kind, a.rel_path AS shown_rel_path, a.rel_bytes AS shown_rel_bytes,"
            " a.state AS shown_state, b.rel_path AS other_rel_path, b.rel_bytes AS other_rel_bytes,"
            " b.state AS other_state FROM photo_links l JOIN photos a ON a.id = l.photo_id"
            f" JOIN photos b ON b.id = l.other_id WHERE l.photo_id IN ({marks}) OR l.other_id IN ({marks})"
            " ORDER BY l.kind, l.photo_id, l.other_id",
            (*ids, *ids),
        )

    def staged_ids(self) -> set[int]:
        """Photos whose row claims a stage entry (staged or indexed, including while offline/deleted)."""
        return {r[0] for r in self.conn.execute("SELECT id FROM photos WHERE staged_at IS NOT NULL")}

    def unstage(self, photo_ids: Iterable[int]) -> int:
        """Rows that claim a stage entry that is not there go back to `new` to be staged again."""
        n = 0
        with self.transaction():
            for pid in photo_ids:
                cur = self.conn.execute(
                    "UPDATE photos SET staged_at = NULL,"
                    " state = CASE WHEN state IN ('staged', 'indexed') THEN 'new' ELSE state END,"
                    " prev_state = CASE WHEN prev_state IN ('staged', 'indexed') THEN 'new' ELSE prev_state END"
                    " WHERE id = ?",
                    (pid,),
                )
                n += cur.rowcount
        return n

    def purgeable(self, deleted_before: float) -> list[int]:
        """Deleted photos whose grace period is over."""
        return [
            r[0]
            for r in self.conn.execute(
                "SELECT id FROM photos WHERE state = 'deleted' AND deleted_at < ?", (deleted_before,)
            )
        ]

    def purge(self, photo_ids: Iterable[int]) -> int:
        """Forget deleted photos for good. The caller removes their stage entries first."""
        n = 0
        with self.transaction():
            for pid in photo_ids:
                self.conn.execute("DELETE FROM captions WHERE photo_id = ?", (pid,))
                self.conn.execute("DELETE FROM feedback WHERE photo_id = ?", (pid,))
                self.drop_frames(pid)  # a video's (purged with it: they follow it to deleted)
                self._drop_row(pid)
                n += 1
        return n

    # ---- reading -----------------------------------------------------------------------------------

    def photo(self, photo_id: int) -> PhotoInfoRow | None:
        rows = self.query(
            "SELECT p.*, r.path AS root_path, r.label AS root_label, r.online AS root_online"
            " FROM photos p JOIN roots r ON r.id = p.root_id WHERE p.id = ?",
            (photo_id,),
        )
        return cast(PhotoInfoRow, rows[0]) if rows else None

    def counts(self) -> dict[str, int]:
        """Files by state (a video's frames are not files, so not counted), with `total` (not deleted),
        `photos` and `videos` (not deleted)."""
        counts: dict[str, int] = {s: 0 for s in STATES}
        counts["photos"] = counts["videos"] = 0
        for state, kind, n in self.conn.execute(
            "SELECT state, kind, count(*) FROM photos WHERE kind != 'frame' GROUP BY state, kind"
        ):
            counts[state] += n
            if state != "deleted":
                counts["videos" if kind == "video" else "photos"] += n
        counts["total"] = sum(counts[s] for s in STATES if s != "deleted")
        return counts

    def root_counts(self) -> dict[int, int]:
        return {
            r[0]: r[1]
            for r in self.conn.execute(
                "SELECT root_id, count(*) FROM photos WHERE state != 'deleted' AND kind != 'frame' GROUP BY root_id"
            )
        }

    def failed(self) -> list[FailedRow]:
        return cast(
            "list[FailedRow]",
            self.query(
                "SELECT p.id, r.path AS root_path, p.rel_path, p.rel_bytes, p.error, p.updated_at FROM photos p"
                " JOIN roots r ON r.id = p.root_id WHERE p.state = 'failed' ORDER BY r.path, p.rel_path"
            ),
        )

    # ---- captions ----------------------------------------------------------------------------------

    # Only the SQL. What a caption may be (tidied, never empty, never twice on a photo) is decided in
    # photod.labels.captions, which every caption a person gives goes through.

    def add_caption(self, photo_id: int, text: str, source: str = "user") -> int:
        with self.transaction():
            cur = self.conn.execute(
                "INSERT INTO captions (photo_id, text, source, created_at) VALUES (?,?,?,?)",
                (photo_id, text, source, time.time()),
            )
        return cur.lastrowid

    def captions(self, photo_id: int | None = None) -> list[CaptionRow]:
        if photo_id is None:
            return cast("list[CaptionRow]", self.query("SELECT * FROM captions ORDER BY id"))
        return cast(
            "list[CaptionRow]", self.query("SELECT * FROM captions WHERE photo_id = ? ORDER BY id", (photo_id,))
        )

    def update_caption(self, caption_id: int, text: str) -> None:
        with self.transaction():
            self.conn.execute("UPDATE captions SET text = ? WHERE id = ?", (text, caption_id))

    def remove_caption(self, caption_id: int) -> None:
        with self.transaction():
            self.conn.execute("DELETE FROM captions WHERE id = ?", (caption_id,))


def _use_wal(conn: sqlite3.Connection, path: Path, patience: float = 30.0) -> None:
    """Switch to WAL once; later opens find it set. SQLite can answer BUSY here without waiting for the busy
    handler (another process is creating or recovering the file), so retry for a while before giving up."""
    deadline = time.monotonic() + patience
    while True:
        try:
            if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            busy = "locked" in str(exc) or "busy" in str(exc)
            if not busy or time.monotonic() > deadline:
                hint = (
                    "another program holds it locked; try again" if busy else "check the disk that holds the data dir"
                )
                raise CatalogError(f"cannot open the catalog {path}: {exc}", hint) from exc
            time.sleep(0.05)
        except sqlite3.DatabaseError as exc:
            raise CatalogError(
                f"{path} is not a photod catalog (or is damaged): {exc}",
                "move it aside; `photod scan` rebuilds a catalog from your roots",
            ) from exc


def _chunks(items: list, n: int) -> Iterator[list]:
    for i in range(0, len(items), n):
        yield items[i : i + n]


def _subtree(folder: str) -> tuple[str, str]:
    """[low, high) bounds of the rel_paths under a folder. Unlike LIKE, exact about case (Photos/ and
    photos/ are two folders on Linux) and able to use the (root_id, rel_path) index: '0' follows '/'."""
    folder = folder.strip("/")
    return folder + "/", folder + "0"
