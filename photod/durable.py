"""Writes that survive a crash: every file and folder photod replaces goes through here.

The promise (README, "Durability") is that a `kill -9` or a power cut loses nothing. A file is replaced by
writing a temp file beside it, fsyncing it, renaming it over the old one and fsyncing the folder, so a reader
sees the old content or the new, never a mix; a folder (a model bundle, a fine-tuning dataset) is built under
a hidden name beside its final place, fsynced file by file, and renamed in.

One rule for errors, from what that promise needs:
- Any failure before the rename leaves the old file as it was and removes the temp file.
- A failed fsync is an error, of the file or of the folder alike. The rename is on disk only once the folder
  is, so a folder fsync that fails with EIO or ENOSPC means the new content may vanish at the next power cut:
  the caller must hear of it, as it would of a failed write, and not go on believing the write is safe.
- The exception: a filesystem that cannot fsync a folder at all (some FUSE and CIFS mounts answer EINVAL or
  ENOTSUP). Nothing more can be done there and the rename is still atomic, so that one answer is ignored.
- Only an advisory file that is rewritten every few seconds (the daemon's heartbeat) is written with
  `sync=False`: atomic, but not fsynced, since losing it to a power cut loses nothing, and an fsync every
  few seconds would keep an idle disk awake.

A write that fails because the disk is full raises DiskFullError naming the file; callers with more to say
(what is safe, what to free) catch it, or test their own errors with `is_disk_full`.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import sys
import tempfile
import threading
from pathlib import Path
from typing import BinaryIO, Iterator, Sequence

from photod.errors import DiskFullError

# A folder fsync answered with one of these means the filesystem cannot do it, not that it failed.
_FSYNC_UNSUPPORTED = frozenset({errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP})
_LOW_SPACE = 1 << 20  # less free than this (plus what was being written) counts as a full disk


# ---- files ---------------------------------------------------------------------------------------------


def write_text(path: str | os.PathLike[str], text: str, *, sync: bool = True) -> None:
    """Replace `path` with `text` (UTF-8): a crash leaves the old content or the new."""
    write_bytes(path, text.encode("utf-8"), sync=sync)


def write_bytes(path: str | os.PathLike[str], data: bytes, *, sync: bool = True) -> None:
    """Replace `path` with `data`: a crash leaves the old content or the new."""
    with open_atomic(path, sync=sync) as f:
        f.write(data)


@contextlib.contextmanager
def open_atomic(path: str | os.PathLike[str], *, sync: bool = True) -> Iterator[BinaryIO]:
    """A binary file to write the new content of `path` to (e.g. with `torch.save(obj, f)`); it replaces
    `path` when the block ends without an error, and is discarded when it raises."""
    with staged_file(path, sync=sync) as tmp:
        with open(tmp, "wb") as f:
            yield f


@contextlib.contextmanager
def staged_file(path: str | os.PathLike[str], *, sync: bool = True) -> Iterator[Path]:
    """A temp path beside `path` for writers that want a file name (FAISS, tarfile); the file written
    there replaces `path` when the block ends without an error."""
    with staged_files([path], sync=sync) as (tmp,):
        yield tmp


@contextlib.contextmanager
def staged_files(paths: Sequence[str | os.PathLike[str]], *, sync: bool = True) -> Iterator[list[Path]]:
    """Temp paths beside several files, renamed over them in the given order when the block ends.

    A failure before the first rename removes every temp file and leaves every old file. A crash between
    two renames leaves the first files new and the later ones old, their complete new content in temp
    files that are kept (see `dead_temps`): order the files so a reader can finish the job from there.
    """
    finals = [Path(p) for p in paths]
    temps = [temp_path(p) for p in finals]
    renamed = 0
    try:
        yield temps
        if sync:
            for tmp in temps:
                fsync_file(tmp)
        for tmp, final in zip(temps, finals):
            os.replace(tmp, final)
            renamed += 1
        if sync:
            for folder in dict.fromkeys(final.parent for final in finals):
                fsync_dir(folder)
    except BaseException as exc:
        if not renamed:
            for tmp in temps:
                with contextlib.suppress(OSError):
                    tmp.unlink()
        if isinstance(exc, Exception) and not isinstance(exc, DiskFullError) and is_disk_full(exc, finals[0].parent):
            raise disk_full_error(
                finals[0].parent,
                f"write {', '.join(map(str, finals))}",
                "free some space there; the previous content is intact",
            ) from exc
        raise


def temp_path(path: str | os.PathLike[str]) -> Path:
    """The temp file a write of `path` by this thread uses: hidden, in the same folder (a rename across
    filesystems is not atomic), named after the writer's pid so `dead_temps` can tell what to clear."""
    path = Path(path)
    return path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")


def dead_temps(folder: str | os.PathLike[str], name: str) -> list[Path]:
    """Temp files of `name` left in `folder` by processes that no longer run (never those of a live one)."""
    found = []
    for tmp in Path(folder).glob(f".{name}.*.tmp"):
        try:
            os.kill(int(tmp.name.split(".")[-3]), 0)
            continue  # that process is alive: it may be writing right now
        except (ValueError, IndexError, ProcessLookupError):
            found.append(tmp)
        except PermissionError:
            continue
    return found


def finish(tmp: Path, path: Path) -> None:
    """Complete a write that a crash cut short between its renames: move its temp file, complete and fsynced
    before the first rename, over `path`."""
    os.replace(tmp, path)
    fsync_dir(path.parent)


def remove_dead_temps(folder: str | os.PathLike[str], name: str) -> None:
    """Clear the temp files of `name` that killed writers left behind."""
    if not Path(folder).is_dir():
        return
    for tmp in dead_temps(folder, name):
        with contextlib.suppress(OSError):
            tmp.unlink()


# ---- folders -------------------------------------------------------------------------------------------


@contextlib.contextmanager
def staged_dir(path: str | os.PathLike[str]) -> Iterator[Path]:
    """A hidden temp folder beside `path` to build its new content in; when the block ends without an
    error, everything in it is fsynced and it replaces `path` (see `replace_dir`). On an error it is removed
    and `path` is left as it was."""
    path = Path(path)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        yield tmp
        replace_dir(tmp, path)
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(exc, Exception) and not isinstance(exc, DiskFullError) and is_disk_full(exc, path.parent):
            raise disk_full_error(
                path.parent, f"write {path}", "free some space there; the previous content is intact"
            ) from exc
        raise


def replace_dir(staged: Path, path: Path) -> None:
    """Put the complete folder `staged` (in the same parent) in place of `path`, then delete the old one.

    A rename cannot replace a folder that is not empty, so an existing `path` is first renamed aside: a
    crash between the two renames leaves `path` absent and both versions complete under hidden names, never
    a mix of the two under its name.
    """
    sync_tree(staged)
    old = None
    if path.exists():
        old = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.old")
        os.replace(path, old)
    os.replace(staged, path)
    fsync_dir(path.parent)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def remove_dir(path: Path) -> None:
    """Delete a folder: its name goes at once (a rename), the slow delete of the hidden copy follows and may
    be interrupted without leaving a half-deleted folder under that name."""
    doomed = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.removing")
    os.replace(path, doomed)
    fsync_dir(path.parent)
    shutil.rmtree(doomed, ignore_errors=True)


def sync_tree(folder: Path) -> None:
    """fsync every file and folder under `folder`, deepest first, then `folder` itself."""
    for parent, dirs, files in os.walk(folder, topdown=False):
        for name in files:
            fsync_file(Path(parent, name))
        for name in dirs:
            fsync_dir(Path(parent, name))
    fsync_dir(folder)


# ---- fsync ---------------------------------------------------------------------------------------------


def fsync_file(path: str | os.PathLike[str]) -> None:
    """Flush a written file's data to disk (any descriptor of the file will do)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(folder: str | os.PathLike[str]) -> None:
    """Flush a folder's entries, making the renames and deletes in it durable. Raises on a failure, except
    where the filesystem cannot fsync a folder at all (see the module's docstring)."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno not in _FSYNC_UNSUPPORTED:
            raise
    finally:
        os.close(fd)


# ---- full disks ----------------------------------------------------------------------------------------


def is_disk_full(exc: BaseException, folder: str | os.PathLike[str] | None = None, needed: int = 0) -> bool:
    """Whether a failed write was the disk filling up.

    The errno says so for plain OS errors (ENOSPC, or EDQUOT for a quota), SQLite says "database or disk is
    full", an LMDB DiskError says so by its type. FAISS reports a failed write as a RuntimeError with no
    errno, and LMDB a short write as EIO ("Input/output error"): for those, when `folder` is given, the
    filesystem is asked whether it has room left for the `needed` bytes that were being written.
    """
    if isinstance(exc, DiskFullError):
        return True
    code = getattr(exc, "errno", None)
    text = str(exc)
    if code in (errno.ENOSPC, errno.EDQUOT) or "No space left" in text or "database or disk is full" in text:
        return True
    lmdb = sys.modules.get("lmdb")  # an LMDB error can only come from an imported lmdb
    if lmdb is not None and isinstance(exc, lmdb.DiskError):
        return True
    vague = (
        isinstance(exc, OSError)
        and code in (None, errno.EIO)
        or type(exc) is RuntimeError
        or lmdb is not None
        and isinstance(exc, lmdb.Error)
    )
    if folder is None or not vague:
        return False
    try:
        st = os.statvfs(folder)
    except OSError:
        return False
    return st.f_bavail * st.f_frsize < needed + _LOW_SPACE


def disk_full_error(where: str | os.PathLike[str], doing: str, hint: str) -> DiskFullError:
    """The error for a full disk: which disk (`where`: a folder, or words such as "the data dir X"), what
    could not be done, and what to do."""
    return DiskFullError(f"the disk holding {where} is full: could not {doing}", hint)
