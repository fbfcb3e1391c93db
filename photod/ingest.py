"""Ingest: catalog rows in state `new` -> staged JPEGs in the stage, metadata in the catalog.

The order of writes is what makes a `kill -9` harmless: the stage entries of a batch are written (and
synced) first, in one LMDB transaction, and only then are the rows marked staged, in one SQLite
transaction. A kill in between leaves stage entries for rows still `new`; they are overwritten when the
rows are retried, or removed by `check_stage_consistency` at the next start. No row ever claims a stage
entry that is not there.

photod never writes inside a root: files are only opened for reading, once each.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from photod.catalog import Catalog
from photod.decode import Decoded, content_hash, decode_photo
from photod.errors import DecodeError
from photod.stage import Stage

log = logging.getLogger(__name__)

# A file that could not be read for a reason that may pass (it vanished, the share hiccuped) is left `new`
# and not offered again for this long; by then the scanner has usually marked it deleted or offline.
RETRY_AFTER_SECONDS = 300.0


@dataclass
class IngestReport:
    """What a batch (or a drain) did."""

    staged: int = 0
    failed: int = 0
    adopted: int = 0
    skipped: int = 0  # unreadable for now (vanished, I/O error): left `new` for a later try

    def __add__(self, other: "IngestReport") -> "IngestReport":
        return IngestReport(self.staged + other.staged, self.failed + other.failed,
                            self.adopted + other.adopted, self.skipped + other.skipped)

    @property
    def done(self) -> int:
        """Rows that left the `new` state."""
        return self.staged + self.failed + self.adopted


@dataclass
class _File:
    row: dict
    path: Path
    data: bytes | None = None
    hash: str | None = None


class Ingester:
    """Stages pending photos in batches. Use it from the thread that owns `catalog`."""

    def __init__(self, catalog: Catalog, stage: Stage, *, size: int = 384, quality: int = 90,
                 draft: bool = True, workers: int = 2):
        self.catalog = catalog
        self.stage = stage
        self.size = size
        self.quality = quality
        self.draft = draft
        self.workers = max(1, workers)
        self._deferred: dict[int, float] = {}  # photo id -> when it may be tried again

    def ingest_batch(self, limit: int = 64) -> IngestReport:
        """Stage up to `limit` pending photos; at most `limit` files' bytes are held in memory at once."""
        report = IngestReport()
        files = self._next_files(limit)
        if not files:
            return report
        with ThreadPoolExecutor(self.workers, thread_name_prefix="photod-decode") as pool:
            # Reading is I/O (often a NAS): done in the pool so that several reads are in flight.
            read = list(pool.map(self._read, files))
            to_decode = []
            for f, error in zip(files, read):
                if error is None:
                    to_decode.append(f)
                elif error == "skip":
                    report.skipped += 1
                else:
                    self._fail(f, error)
                    report.failed += 1
            to_decode = self._adopt_moved(to_decode, report)
            results = list(pool.map(self._decode, to_decode))
        staged = {f.row["id"]: (f, res) for f, res in zip(to_decode, results) if isinstance(res, Decoded)}
        # Stage first (synced), catalog second: see the module docstring.
        self.stage.put_many({pid: res.jpeg for pid, (_f, res) in staged.items()})
        with self.catalog.transaction():
            for pid, (f, res) in staged.items():
                self.catalog.mark_staged(pid, res.meta, f.hash or "")
            for f, res in zip(to_decode, results):
                if isinstance(res, DecodeError):
                    self._fail(f, _reason(res), f.hash)
        report.staged += len(staged)
        report.failed += sum(isinstance(res, DecodeError) for res in results)
        if report.done or report.skipped:
            log.info("ingest: %d staged, %d failed, %d moved, %d skipped",
                     report.staged, report.failed, report.adopted, report.skipped)
        return report

    def drain(self, stop: threading.Event | None = None, limit: int = 64) -> IngestReport:
        """Ingest batches until nothing is pending (or `stop` is set between batches)."""
        total = IngestReport()
        while not (stop is not None and stop.is_set()):
            report = self.ingest_batch(limit)
            total += report
            if not report.done:
                break  # nothing left, or only files deferred for a later try
        return total

    # ---- steps ------------------------------------------------------------------------------------

    def _next_files(self, limit: int) -> list[_File]:
        now = time.monotonic()
        self._deferred = {pid: t for pid, t in self._deferred.items() if t > now}
        rows = self.catalog.pending("new", limit + len(self._deferred))
        rows = [r for r in rows if r["id"] not in self._deferred][:limit]
        return [_File(row=r, path=Path(r["root_path"]) / r["rel_path"]) for r in rows]

    def _read(self, f: _File) -> str | None:
        """Read and hash one file. Returns None when read, "skip" to try later, else a failure reason."""
        try:
            with open(f.path, "rb") as fh:
                f.data = fh.read()
        except (FileNotFoundError, NotADirectoryError):
            log.info("%s vanished before it could be staged; the scanner will account for it", f.path)
            self._defer(f)
            return "skip"
        except PermissionError:
            return f"{f.row['rel_path']}: permission denied: run photod as a user who can read it"
        except IsADirectoryError:
            return f"{f.row['rel_path']}: is a directory, not a photo"
        except MemoryError:
            return f"{f.row['rel_path']}: too large to read into memory"
        except OSError as exc:
            # EIO, ESTALE, ENODEV...: usually a drive or share going away, not a bad photo.
            log.warning("cannot read %s (%s); will try again later", f.path, exc)
            self._defer(f)
            return "skip"
        f.hash = content_hash(f.data)
        return None

    def _adopt_moved(self, files: list[_File], report: IngestReport) -> list[_File]:
        """Files whose content matches a deleted photo are that photo, moved: it keeps id and stage entry."""
        rest = []
        for f in files:
            old_id = self.catalog.deleted_match(f.hash, exclude_id=f.row["id"]) if f.hash else None
            if old_id is None:
                rest.append(f)
                continue
            self.catalog.adopt(old_id, f.row["id"])
            f.data = None
            report.adopted += 1
            log.info("%s is photo %d moved; kept its id, captions and stage entry", f.path, old_id)
        return rest

    def _decode(self, f: _File) -> Decoded | DecodeError:
        try:
            return decode_photo(f.data or b"", f.row["rel_path"], self.size, self.quality, self.draft)
        except DecodeError as exc:
            return exc
        finally:
            f.data = None  # free the file's bytes as soon as its JPEG exists

    def _fail(self, f: _File, reason: str, content_hash_: str | None = None) -> None:
        self.catalog.mark_failed(f.row["id"], reason, content_hash_)
        # The reason already names the file (relative to its root); say which root.
        log.warning("cannot stage a photo in %s: %s", f.row["root_path"], reason)

    def _defer(self, f: _File) -> None:
        self._deferred[f.row["id"]] = time.monotonic() + RETRY_AFTER_SECONDS


def _reason(exc: DecodeError) -> str:
    return exc.message if not exc.hint else f"{exc.message} ({exc.hint})"


def check_stage_consistency(catalog: Catalog, stage: Stage) -> tuple[int, int]:
    """Repair the stage/catalog pairing after a crash; run at daemon start, before ingesting.

    Stage entries no row claims are deleted; rows claiming an entry that is missing go back to `new`.
    Returns (entries removed, rows to be staged again).
    """
    in_stage = stage.keys()
    claimed = catalog.staged_ids()
    orphans = in_stage - claimed
    missing = claimed - in_stage
    removed = stage.delete_many(sorted(orphans)) if orphans else 0
    unstaged = catalog.unstage(sorted(missing)) if missing else 0
    if removed or unstaged:
        log.warning("stage repaired: %d entries without a catalog row removed, %d photos to be staged again",
                    removed, unstaged)
    return removed, unstaged

