"""What the terminal UI reads and writes: searches, photos, captions, feedback, thumbnails and status.

Everything here runs off the UI thread (in Textual thread workers), so it may block on SQLite or the
encoder. One catalog connection is kept for the life of the UI, behind a lock: SQLite in WAL mode shows
each new read the daemon's latest commit, so photos indexed a moment ago appear without a restart, and
`busy_timeout` makes a read wait out a daemon write instead of failing. One stage handle is kept too
(LMDB's locks are per process), and one resident searcher, so typing never reloads a model.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Iterator

from PIL import Image

from photod.config import Config
from photod.errors import PhotodError, StageError
from photod.labels import captions as labels
from photod.search.finder import Outcome, Query, find
from photod.search.results import Result
from photod.service.status import collect_status
from photod.store.catalog import CaptionRow, Catalog, PendingRow, PhotoInfoRow, open_catalog
from photod.store.names import file_path, shell_quoted, shown
from photod.store.stage import Stage

if TYPE_CHECKING:
    from photod.store.signals import PlaceRow, TextRow

log = logging.getLogger(__name__)

THUMB_CACHE = 1024


class PhotoDetail(PhotoInfoRow):
    """A photo as the detail screen shows it: its row, and the files that belong with it (Catalog.links_of)."""

    links: list[dict[str, Any]]


# ---- captions over a selection ----------------------------------------------------------------------


@dataclass(frozen=True)
class CaptionGroup:
    """One caption text as it appears on a set of photos: editing or deleting it acts on all of them."""

    text: str
    caption_ids: tuple[int, ...]
    photo_ids: tuple[int, ...]


def group_captions(rows: Iterable[CaptionRow]) -> list[CaptionGroup]:
    """Caption rows grouped by text, in the order each text first appeared."""
    groups: dict[str, tuple[list[int], list[int]]] = {}
    for row in rows:
        ids, photos = groups.setdefault(row["text"], ([], []))
        ids.append(row["id"])
        if row["photo_id"] not in photos:
            photos.append(row["photo_id"])
    return [CaptionGroup(text, tuple(ids), tuple(photos)) for text, (ids, photos) in groups.items()]


# ---- daemon activity --------------------------------------------------------------------------------


@dataclass
class ActivityMeter:
    """Photos staged and indexed per minute, from the counts of successive status refreshes."""

    _last: tuple[float, int, int] | None = None
    staged_per_min: float | None = None
    indexed_per_min: float | None = None

    def feed(self, photos: dict[str, int], now: float) -> None:
        # Staging moves a photo out of `new`; encoding moves it into `indexed`.
        done_staging = photos["total"] - photos["new"] - photos["failed"] - photos["offline"]
        sample = (now, done_staging, photos["indexed"])
        if self._last is not None and now > self._last[0]:
            minutes = (now - self._last[0]) / 60.0
            self.staged_per_min = max(0.0, (sample[1] - self._last[1]) / minutes)
            self.indexed_per_min = max(0.0, (sample[2] - self._last[2]) / minutes)
        self._last = sample


# ---- the library ------------------------------------------------------------------------------------


class Library:
    """The catalog, stage and searcher behind the UI; every method is safe to call from any thread."""

    def __init__(self, cfg: Config, *, semantic: bool = True):
        self.cfg = cfg
        self.semantic = semantic
        self._lock = threading.RLock()
        self._search_lock = threading.Lock()
        self._cat: Catalog | None = None
        self._stage: Stage | None = None
        self._stage_checked = 0.0
        self._searcher: Any = None
        self._thumbs: OrderedDict[tuple[int, int, int], Image.Image] = OrderedDict()
        self._data_version: int | None = None

    # -- lifetime

    def catalog(self) -> Catalog:
        """The shared catalog connection, opened on first use (callers hold `self._lock`)."""
        if self._cat is None:
            # Roots named in the config show in the filters even before the daemon has run once.
            cat = open_catalog(self.cfg)
            self._data_version = cat.scalar("PRAGMA data_version")
            self._cat = cat
        return self._cat

    def close(self) -> None:
        with self._lock:
            if self._cat is not None:
                self._cat.close()
                self._cat = None
            if self._stage is not None:
                self._stage.close()
                self._stage = None
        with self._search_lock:
            close = getattr(self._searcher, "close", None)
            if close is not None:
                close()
            self._searcher = None

    def changed(self) -> bool:
        """Whether another process (the daemon) committed to the catalog since the last call."""
        with self._lock:
            # PRAGMA data_version moves only on other connections' commits: a cheap "anything new?".
            version = self.catalog().scalar("PRAGMA data_version")
        moved = version != self._data_version
        self._data_version = version
        return moved

    # -- searching

    def search(self, query: Query) -> Outcome:
        """Run a query (see photod.search.finder.find) with the shared catalog and the resident searcher."""
        return find(query, self._locked_catalog, self._locked_searcher)

    @contextmanager
    def _locked_catalog(self) -> Iterator[Catalog]:
        with self._lock:
            yield self.catalog()

    @contextmanager
    def _locked_searcher(self) -> Iterator[Any]:
        with self._search_lock:
            yield self._get_searcher()

    def _get_searcher(self) -> Any:
        """The one resident searcher: it keeps the model and the FAISS index loaded between keystrokes
        and follows the daemon's new vectors and `photod model use` switches by itself."""
        if not self.semantic:
            return None
        if self._searcher is None:
            try:
                from photod.search.searcher import Searcher
            except ImportError:
                log.debug("search by meaning is not available in this build")
                self.semantic = False
                return None
            self._searcher = Searcher.from_config(self.cfg)
        return self._searcher

    # -- photos

    def photo(self, photo_id: int) -> PhotoDetail | None:
        """The catalog row of a photo with its root, or None if it is gone; `links` lists the files that
        belong with it (its RAW, a Live Photo's motion, an original or edited copy)."""
        with self._lock:
            cat = self.catalog()
            row = cat.photo(photo_id)
            if row is None:
                return None
            detail: PhotoDetail = {**row, "links": cat.links_of([photo_id])}
            return detail

    def signals(self, photo_id: int) -> tuple[TextRow | None, PlaceRow | None]:
        """(the text read in a photo, where it was taken): rows of photod.store.signals, None where unknown."""
        from photod.store import signals

        with self._lock:
            cat = self.catalog()
            return signals.text_of(cat, photo_id), signals.place_of(cat, photo_id)

    def result(self, photo_id: int) -> dict | None:
        """A photo as a search result dict (what the grid shows)."""
        row = self.photo(photo_id)
        if row is None:
            return None
        return Result.from_row(row, None).to_json()

    def roots(self) -> list[tuple[str, int]]:
        """(label, id) of every watched root, for the root filter."""
        with self._lock:
            return [(r.label or str(r.path), r.id) for r in self.catalog().active_roots()]

    # -- captions and feedback: written by photod.labels.captions, under the same rules as `photod label`

    def caption_groups(self, photo_ids: Iterable[int]) -> list[CaptionGroup]:
        ids = list(photo_ids)
        if not ids:
            return []
        with self._lock:
            cat = self.catalog()
            rows = [row for pid in ids for row in cat.captions(pid)]
        rows.sort(key=lambda r: r["id"])
        return group_captions(rows)

    def add_caption(self, photo_ids: Iterable[int], text: str) -> list[int]:
        """Add one caption to every photo, in one transaction (all or none)."""
        with self._lock:
            return labels.add_captions(self.catalog(), photo_ids, text)

    def update_captions(self, caption_ids: Iterable[int], text: str) -> None:
        with self._lock:
            labels.edit_captions(self.catalog(), caption_ids, text)

    def remove_captions(self, caption_ids: Iterable[int]) -> None:
        with self._lock:
            labels.remove_captions(self.catalog(), caption_ids)

    def feedback(self, photo_id: int, query: str, relevant: bool) -> int:
        with self._lock:
            return labels.record_feedback(self.catalog(), photo_id, query, relevant)

    # -- status

    def status(self) -> dict[str, Any]:
        """collect_status plus the failed files with their reasons and the work queue."""
        with self._lock:
            cat = self.catalog()
            status = collect_status(cat, self.cfg)
            status["failed"] = cat.failed()
        p = status["photos"]
        status["queue"] = {"to_stage": p["new"], "to_encode": p["staged"]}
        return status

    # -- pictures

    def _open_stage(self) -> Stage | None:
        if self._stage is not None:
            return self._stage
        # A fresh library has no stage until the daemon stages a photo: look again now and then.
        now = time.monotonic()
        if now - self._stage_checked < 5.0 and self._stage_checked:
            return None
        self._stage_checked = now
        try:
            self._stage = Stage(self.cfg.data_dir, readonly=True)
        except StageError as exc:
            log.debug("no stage yet: %s", exc.message)
            return None
        return self._stage

    def thumbnail(self, photo_id: int, box: tuple[int, int] = (96, 96)) -> Image.Image | None:
        """A small RGB picture of a staged photo, fitting in `box` pixels; None if it is not staged."""
        key = (photo_id, *box)
        with self._lock:
            cached = self._thumbs.get(key)
            if cached is not None:
                self._thumbs.move_to_end(key)
                return cached
            stage = self._open_stage()
            jpeg = stage.get_jpeg(photo_id) if stage is not None else None
        if jpeg is None:
            return None
        with Image.open(BytesIO(jpeg)) as img:
            # JPEG draft mode decodes at 1/2..1/8 scale straight from the DCT: a thumbnail costs a
            # fraction of a full decode of the staged picture.
            img.draft("RGB", box)
            thumb = img.convert("RGB")
        thumb.thumbnail(box)
        with self._lock:
            self._thumbs[key] = thumb
            while len(self._thumbs) > THUMB_CACHE:
                self._thumbs.popitem(last=False)
        return thumb

    def preview(self, photo_id: int) -> Image.Image | None:
        """The whole staged picture of a photo (upright, ~384 px), or None if it is not staged."""
        with self._lock:
            stage = self._open_stage()
            return stage.get_image(photo_id) if stage is not None else None


def full_path(row: PendingRow) -> Path:
    """The original file of a catalog row, by its exact bytes when its name is not UTF-8."""
    return file_path(row)


def shown_full_path(row: PendingRow) -> str:
    """The original file's path as a person reads it (a non-UTF-8 name decoded and marked)."""
    return str(Path(row["root_path"]) / shown(row["rel_path"], row.get("rel_bytes")))


def human_size(n: int | None) -> str:
    if n is None:
        return "?"
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


def opener() -> str | None:
    """The command that opens a file with the system's viewer, if there is one."""
    import shutil
    import sys

    name = "open" if sys.platform == "darwin" else "xdg-open"
    return shutil.which(name)


# Players that start a video at a given second, and how they are told to.
_SEEKING_PLAYERS = (("mpv", "--start={:.2f}"), ("vlc", "--start-time={:.2f}"), ("ffplay", "-ss {:.2f}"))


def open_with_system(path: Path, at: float | None = None) -> None:
    """Open a file or folder with the system viewer, detached; a video at `at` seconds with a player that
    can start there (mpv, VLC, ffplay), else from its start. PhotodError when that cannot work."""
    import shutil
    import subprocess

    shown_ = shell_quoted(os.fspath(path))
    if not path.exists():
        raise PhotodError(f"{shown_} is not there", "its drive or share may be offline; plug it in or mount it")
    player = (
        next(((shutil.which(name), flag) for name, flag in _SEEKING_PLAYERS if shutil.which(name)), None)
        if at
        else None
    )
    cmd = player[0] if player else opener()
    if cmd is None:
        raise PhotodError(
            f"no system viewer to open {shown_} (xdg-open is not installed)",
            "copy the path (y) and open it yourself, or install xdg-utils",
        )
    args = [cmd, *player[1].format(at).split(), os.fspath(path)] if player else [cmd, os.fspath(path)]
    try:
        subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )
    except OSError as exc:
        raise PhotodError(f"could not run {cmd} for {shown_}: {exc}") from None
