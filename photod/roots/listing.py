"""Listing a folder tree: every folder's regular files with their sizes and mtimes.

Two implementations of one contract. `photod.roots._fastwalk` (C, built at install when a compiler is present)
reads folders in parallel threads without the GIL; the pure-Python one here is the fallback and the
reference the tests hold the C one to. Both never follow symlinks, report only regular files (a FIFO or
device node is never opened), skip files that vanish mid-listing, and keep going past folders and files
they cannot read, reporting them instead.

A folder comes back as one record with its file names packed into one bytes object (NUL-separated,
sorted bytewise) and its sizes and mtimes as packed int64 columns: for a scan of an unchanged library
that is all Python ever needs to touch, because the scanner hashes a folder's record to tell whether
it changed (photod.roots.foldersigs) and only unpacks the folders that did.
"""

from __future__ import annotations

import os
from array import array
from typing import Callable, NamedTuple

from photod.config import WorkersConfig

try:
    from photod.roots import _fastwalk
except ImportError:  # built without a C compiler: the Python listing below does the same, slower
    _fastwalk = None  # type: ignore[assignment]  # None means "not built": every use checks for it

BACKEND = "C (parallel)" if _fastwalk is not None else "Python"
REPORT_EVERY = 2000  # files between on_listed calls (the C listing has the same constant)


class Folder(NamedTuple):
    """One folder's listing. `names` is NUL-joined and sorted bytewise; `sizes` and `mtimes` are packed
    native int64 in the same order. `error` is set when the folder could not be opened or read to the end
    (what was read before the error is still listed); `file_errors` holds (name, OSError) per file whose
    stat failed."""

    rel: str
    names: bytes
    sizes: bytes
    mtimes: bytes
    error: OSError | None
    file_errors: list[tuple[str, OSError]]

    def file_names(self) -> list[str]:
        """The names, decoded as os.listdir would (undecodable bytes surrogate-escaped)."""
        return os.fsdecode(self.names).split("\0") if self.names else []

    def columns(self) -> tuple[list[int], list[int]]:
        """(sizes, mtimes) as lists of ints."""
        return memoryview(self.sizes).cast("q").tolist(), memoryview(self.mtimes).cast("q").tolist()

    def __len__(self) -> int:  # the number of regular files
        return len(self.sizes) // 8


def list_tree(
    root: str | os.PathLike[str],
    dir_ok: Callable[[str], bool],
    threads: int | None = None,
    on_listed: Callable[[int], None] | None = None,
) -> list[Folder]:
    """Every folder under `root` (itself included, as rel '') whose every folder name on the way passes
    `dir_ok`, in no particular order. `on_listed(n)` hears the count of files listed so far every
    REPORT_EVERY files: on a slow share the listing is most of a scan, and a progress bar needs a pulse."""
    threads = threads or WorkersConfig.scan_threads
    if _fastwalk is not None:
        raw = _fastwalk.scan(os.fspath(root), dir_ok, threads, on_listed)
        return [_from_c(r) for r in raw]
    return list_tree_python(root, dir_ok, on_listed)


def _from_c(r: _fastwalk.RawFolder) -> Folder:
    rel, names, sizes, mtimes, dir_error, file_errors = r
    error = None
    if dir_error is not None:
        error = OSError(dir_error[0], os.strerror(dir_error[0]))
    errors = [(name, OSError(err, os.strerror(err))) for name, err in file_errors]
    return Folder(rel, names, sizes, mtimes, error, errors)


def list_tree_python(
    root: str | os.PathLike[str], dir_ok: Callable[[str], bool], on_listed: Callable[[int], None] | None = None
) -> list[Folder]:
    """The pure-Python listing: same records as the C one, from os.scandir."""
    out: list[Folder] = []
    stack: list[tuple[str, str]] = [(os.fspath(root), "")]
    listed, next_report = 0, REPORT_EVERY
    while stack:
        abs_dir, rel_dir = stack.pop()
        folder, subdirs = _list_folder(abs_dir, rel_dir)
        out.append(folder)
        listed += len(folder)
        if on_listed is not None and listed >= next_report:
            on_listed(listed)
            next_report = listed + REPORT_EVERY
        for name in subdirs:
            if dir_ok(name):
                stack.append((os.path.join(abs_dir, name), f"{rel_dir}/{name}" if rel_dir else name))
    return out


def _list_folder(abs_dir: str, rel_dir: str) -> tuple[Folder, list[str]]:
    files: list[tuple[bytes, int, int]] = []
    subdirs: list[str] = []
    file_errors: list[tuple[str, OSError]] = []
    error = None
    try:
        with os.scandir(abs_dir) as it:
            while True:
                try:
                    entry = next(it, None)
                except OSError as exc:  # an I/O error part-way through the listing
                    error = exc
                    break
                if entry is None:
                    break
                _take(entry, files, subdirs, file_errors)
    except OSError as exc:
        error = exc
    files.sort()
    names = b"\0".join(f[0] for f in files)
    sizes, mtimes = array("q", (f[1] for f in files)), array("q", (f[2] for f in files))
    return Folder(rel_dir, names, sizes.tobytes(), mtimes.tobytes(), error, file_errors), subdirs


def _take(
    entry: os.DirEntry[str],
    files: list[tuple[bytes, int, int]],
    subdirs: list[str],
    file_errors: list[tuple[str, OSError]],
) -> None:
    """Sort one directory entry into a subfolder, a regular file with its stat, or nothing."""
    try:
        if entry.is_dir(follow_symlinks=False):
            subdirs.append(entry.name)
            return
        if not entry.is_file(follow_symlinks=False):
            return  # symlinks, FIFOs, sockets and devices: never followed or opened
        st = entry.stat(follow_symlinks=False)
    except FileNotFoundError:
        return  # removed while we looked: it is simply not there
    except OSError as exc:
        file_errors.append((entry.name, exc))
        return
    files.append((os.fsencode(entry.name), st.st_size, st.st_mtime_ns))
