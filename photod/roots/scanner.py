"""The reconcile scan: walk a root fast, compare it with the catalog, and bring the catalog up to date.

The walk lists every folder with its regular files' sizes and mtimes (photod.roots.listing: parallel C threads,
or os.scandir where the C walker was not built). Symlinks are never followed (a link back up the tree
would loop forever, and a link to a file elsewhere would catalog the same photo twice), and only regular
files are reported: a FIFO or device node is never opened. A folder whose listing matches the signature
stored when the catalog last agreed with it is passed over (photod.roots.foldersigs); the others are compared
file by file.

Deletion is the dangerous part. A file missing from the walk is marked deleted only when the walk read
every folder that could hold it and the root is still present after the walk: a drive unplugged mid-scan,
or a folder that could not be read, must never turn into deleted photos.
"""

from __future__ import annotations

import functools
import itertools
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator, NamedTuple, Sequence

from photod.roots import foldersigs
from photod.roots.listing import Folder, list_tree
from photod.roots.matcher import Matcher
from photod.store.names import is_utf8
from photod.store.names import key as name_key

if TYPE_CHECKING:
    from photod.store.catalog import Catalog, Root

log = logging.getLogger(__name__)

WRITE_BATCH = 1000  # catalog writes per transaction: large enough to be fast, short enough not to
# keep readers (the TUI, `photod search`) waiting on the write lock
PROGRESS_EVERY = 2000  # files between progress callbacks
MAX_ERROR_LINES = 5  # unreadable folders named one by one in the log before a summary line


class FileEntry(NamedTuple):
    """A regular file found by the walk. `rel_path` is POSIX-style, relative to the root."""

    rel_path: str
    size: int
    mtime_ns: int


# ---- the walk --------------------------------------------------------------------------------------


def _names_ok(folder: str, names_: list[str]) -> bool:
    """Whether a folder's path and every one of its file names are valid UTF-8."""
    return is_utf8(folder) and all(map(is_utf8, names_))


class Walk:
    """The photo files under a root, a folder at a time, remembering what it could not read.

    The listing itself (photod.roots.listing) runs once, on first use. After it, `failed` holds the
    root-relative paths of folders (and the odd file) that raised an error: their contents are unknown,
    so nothing under them may be called deleted. `bad_names` holds paths whose names are not valid UTF-8
    (fs form, surrogate-escaped): cataloged like the others, under the key photod.store.names gives them.
    """

    def __init__(self, root_path: Path | str, matcher: Matcher, threads: int | None = None):
        self.root_path = os.fspath(root_path)
        self.matcher = matcher
        self.threads = threads
        self.failed: list[str] = []
        self.bad_names: list[str] = []
        self._bad_set: set[str] = set()
        self.finished = False
        self._folders: list[Folder] | None = None

    def __iter__(self) -> Iterator[FileEntry]:
        return itertools.chain.from_iterable(self.batches())

    def batches(self) -> Iterator[list[FileEntry]]:
        """The photo files, a folder's worth at a time (cheaper per file for a caller that loops)."""
        for folder in self.folders():
            batch = self.entries(folder)
            if batch:
                yield batch

    @property
    def complete(self) -> bool:
        """True once the walk has ended having read every folder."""
        return self.finished and not self.failed

    def folders(self, on_listed: Callable[[int], None] | None = None) -> list[Folder]:
        """Every folder's raw listing (all regular files, before the include/exclude globs). `on_listed`
        hears the count of files listed so far while the listing runs."""
        if self._folders is None:
            self._folders = list_tree(self.root_path, self.matcher.dir_ok, self.threads, on_listed)
            for folder in self._folders:
                self._note_errors(folder)
            self.finished = True
            if len(self.failed) > MAX_ERROR_LINES:
                log.warning(
                    "%d folders or files under %s could not be read in all (the first %d are named "
                    "above); nothing under them was deleted",
                    len(self.failed),
                    self.root_path,
                    MAX_ERROR_LINES,
                )
        return self._folders

    def entries(self, folder: Folder) -> list[FileEntry]:
        """The photo files of one folder's listing: those whose names pass the globs."""
        names = folder.file_names()
        if not names:
            return []
        sizes, mtimes = folder.columns()
        prefix = folder.rel + "/" if folder.rel else ""
        match = self.matcher._file_match
        make = functools.partial(tuple.__new__, FileEntry)  # C all the way, unlike FileEntry(...)
        out = [make((prefix + n, s, m)) for n, s, m in zip(names, sizes, mtimes) if match(n) is not None]
        if out and not _names_ok(folder.rel, names):
            for entry in out:
                if not is_utf8(entry.rel_path):  # the file's name or a folder's on the way
                    self._bad_name(entry.rel_path)
        return out

    def has_bad_names(self, folder: Folder) -> bool:
        """Whether this folder's path or any of its files' names is not valid UTF-8."""
        return not _names_ok(folder.rel, folder.file_names())

    def _note_errors(self, folder: Folder) -> None:
        prefix = folder.rel + "/" if folder.rel else ""
        if folder.error is not None:
            self._fail(folder.rel, folder.error)
        for name, exc in folder.file_errors:
            if self.matcher._file_match(name) is not None:
                self._fail(prefix + name, exc)

    def _fail(self, rel: str, exc: OSError) -> None:
        self.failed.append(rel)
        if len(self.failed) <= MAX_ERROR_LINES:
            log.warning(
                "cannot read %s: %s; the scan skips it and deletes nothing under it",
                os.path.join(self.root_path, rel),
                exc.strerror or exc,
            )

    def _bad_name(self, rel: str) -> None:
        if rel in self._bad_set:
            return
        if not self.bad_names:
            log.info(
                "%s has file names that are not valid UTF-8 (first: %r); they are shown decoded as "
                "GB18030, Big5, Shift_JIS or EUC-KR where one reads them",
                self.root_path,
                rel.encode("utf-8", "surrogateescape"),
            )
        self.bad_names.append(rel)
        self._bad_set.add(rel)


def walk(root_path: Path | str, include: Sequence[str], exclude: Sequence[str], threads: int | None = None) -> Walk:
    """Every regular photo file under `root_path` as FileEntry, in no particular order.

    Returns a `Walk` (iterable); after iterating, its `failed` and `complete` tell whether any folder
    could not be read. Errors are logged, never raised: one unreadable folder must not stop a scan.
    """
    return Walk(root_path, Matcher(include, exclude), threads)


# ---- reconcile -------------------------------------------------------------------------------------


@dataclass
class ScanReport:
    """What one reconcile pass found and did."""

    seen: int = 0
    new: int = 0
    changed: int = 0
    deleted: int = 0
    unchanged: int = 0
    errors: int = 0
    complete: bool = False
    seconds: float = 0.0
    kept_missing: int = 0  # missing files not marked deleted (unread folder, root gone)
    root_present: bool = True
    failed_paths: list[str] = field(default_factory=list)
    folders: int = 0  # folders listed
    compared: int = 0  # folders compared file by file (the rest were unchanged)


def _under_failed(rel_path: str, failed: set[str]) -> bool:
    """Whether rel_path is, or lies under, a path the walk could not read."""
    if "" in failed or rel_path in failed:
        return True
    parts = rel_path.split("/")
    return any("/".join(parts[:i]) in failed for i in range(1, len(parts)))


def reconcile(
    catalog: "Catalog",
    root: "Root",
    *,
    present: Callable[[], bool],
    on_progress: Callable[[int], None] | None = None,
    threads: int | None = None,
    write_batch: int = WRITE_BATCH,
) -> ScanReport:
    """One reconcile pass of `root`: new and changed files upserted, missing files marked deleted.

    Folders whose listing hashes to the signature stored by an earlier pass are unchanged and passed
    over (photod.roots.foldersigs); only the others are compared file by file with their catalog rows.
    `on_progress(n)` hears the files listed so far while the listing runs, then the photos seen; its last
    call is the number of photo files seen.
    `present()` is asked after the walk; if the root is no longer present, nothing is written at all
    (the walk may have seen a half-unmounted drive). Missing files under a folder that could not be
    read are kept. Deletions are written before new files, so that a move within the scan leaves a
    deleted row whose content hash the stager can match to the new path. New and changed files are
    written `write_batch` to a transaction.
    """
    t0 = time.monotonic()
    report = ScanReport()
    walker = walk(root.path, root.include, root.exclude, threads)
    plan = _plan(catalog, root, walker, report, on_progress)
    remaining, upserts, listed = _compare(catalog, root.id, walker, plan, report, on_progress)

    failed = set(walker.failed)
    report.failed_paths = sorted(failed)
    report.errors = len(failed)
    report.root_present = _still_present(present, root)
    report.complete = walker.complete and report.root_present
    if not report.root_present:
        report.kept_missing = len(remaining)
        log.warning("%s disappeared during the scan: nothing was changed in the catalog", root.path)
        report.seconds = time.monotonic() - t0
        return report

    gone = [k[3] for rel, k in remaining.items() if not (failed and _under_failed(rel, failed))]
    report.kept_missing = len(remaining) - len(gone)
    if gone:
        report.deleted = catalog.mark_deleted(gone)
    _write_upserts(catalog, root.id, upserts, write_batch)
    foldersigs.remember(catalog, root.id, listed, plan.vanished)
    catalog.update_root(root.id, last_scan_at=time.time())
    report.seconds = time.monotonic() - t0
    return report


@dataclass
class _Plan:
    """Which folders a pass compares file by file: those listed whose signature changed (with it) and
    those the catalog knows that the listing no longer has."""

    changed: list[tuple[Folder, bytes | None]]
    vanished: list[str]


def _plan(
    catalog: "Catalog", root: "Root", walker: Walk, report: ScanReport, on_progress: Callable[[int], None] | None
) -> _Plan:
    folders = walker.folders(on_progress)
    known = foldersigs.load(catalog, root.id)
    # Offline rows are revived by a comparison (the upsert brings them back), so while a root still has
    # any, no signature is trusted. Normally set_root_online has revived them all before the scan.
    trusted = not catalog.has_offline(root.id)
    key = foldersigs.matcher_key(walker.matcher.include, walker.matcher.exclude)
    sign = foldersigs.signature
    changed: list[tuple[Folder, bytes | None]] = []
    for folder in folders:
        k = known.pop(name_key(folder.rel), None)
        if folder.error is not None or folder.file_errors:
            changed.append((folder, None))  # never vouched for: part of it could not be read
            continue
        sig = sign(key, folder)
        if trusted and k is not None and k.signature == sig:
            report.seen += k.photos
            report.unchanged += k.photos
        elif k is not None or folder.names:
            changed.append((folder, sig))
    report.folders = len(folders)
    report.compared = len(changed) + len(known)
    return _Plan(changed, list(known))


def _compare(
    catalog: "Catalog",
    root_id: int,
    walker: Walk,
    plan: _Plan,
    report: ScanReport,
    on_progress: Callable[[int], None] | None,
) -> tuple[dict[str, tuple], list[FileEntry], dict]:
    """Compare the planned folders with their catalog rows. Returns (known files not seen, files to
    upsert, {folder: (signature, photo files)} for foldersigs.remember)."""
    folders = [name_key(f.rel) for f, _ in plan.changed] + plan.vanished
    known = foldersigs.rows_in(catalog, root_id, folders)
    pop = known.pop
    upserts: list[FileEntry] = []
    listed: dict[str, tuple[bytes, list[tuple[str, int, int]]]] = {}
    bad = walker._bad_set
    next_progress = PROGRESS_EVERY
    for folder, sig in plan.changed:
        batch = walker.entries(folder)
        if sig is not None and not (bad and walker.has_bad_names(folder)):
            cut = len(folder.rel) + 1 if folder.rel else 0
            listed[folder.rel] = (sig, [(e[0][cut:], e[1], e[2]) for e in batch])
        report.seen += len(batch)
        for entry in batch:
            # A name that is not UTF-8 has an escaped key in the catalog; the entry keeps its fs form,
            # which the upsert stores exactly.
            k = pop(name_key(entry[0]) if bad and entry[0] in bad else entry[0], None)
            if k is None:
                report.new += 1
                upserts.append(entry)
            elif k[1] != entry[1] or k[2] != entry[2]:
                report.changed += 1
                upserts.append(entry)
            else:
                report.unchanged += 1
                if k[4] == "offline":
                    upserts.append(entry)  # the upsert brings it back to the state it had
        if on_progress is not None and report.seen >= next_progress:
            on_progress(report.seen)
            next_progress = report.seen + PROGRESS_EVERY
    if on_progress is not None:
        on_progress(report.seen)
    return known, upserts, listed


def _still_present(present: Callable[[], bool], root: "Root") -> bool:
    try:
        return bool(present())
    except Exception:  # noqa: BLE001 - a failing check must err on the side of deleting nothing
        log.exception("could not tell whether %s is still present; treating it as gone", root.path)
        return False


def _write_upserts(catalog: "Catalog", root_id: int, upserts: list[FileEntry], batch: int) -> None:
    for start in range(0, len(upserts), batch):
        with catalog.transaction():
            for entry in upserts[start : start + batch]:
                catalog.upsert_file(root_id, entry.rel_path, entry.size, entry.mtime_ns)
