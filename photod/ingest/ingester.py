"""Ingest: catalog rows in state `new` -> staged JPEGs in the stage, metadata in the catalog.

The order of writes is what makes a `kill -9` harmless: the stage entries of a batch are written (and
synced) first, in one LMDB transaction, and only then are the rows marked staged, in one SQLite
transaction. A kill in between leaves stage entries for rows still `new`; they are overwritten when the
rows are retried, or removed by `check_stage_consistency` at the next start. No row ever claims a stage
entry that is not there.

photod never writes inside a root: files are only opened for reading, once each.
"""

from __future__ import annotations

import dataclasses
import enum
import errno
import hashlib
import logging
import os
import stat
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from photod.config import StageConfig, VideoConfig, WorkersConfig
from photod.deadline import Running, run_with_deadline
from photod.errors import DecodeError
from photod.ingest import groups
from photod.ingest.decode import Decoded, content_hash, decode_photo
from photod.ingest.raw import decode_raw
from photod.ingest.sniff import VIDEO_EXTENSIONS, extension, sniff
from photod.ingest.video import DecodedVideo, decode_video
from photod.store import signals
from photod.store.catalog import Catalog, PhotoMeta
from photod.store.names import file_path
from photod.store.signals import FoundText
from photod.store.stage import Stage

if TYPE_CHECKING:
    from photod.ingest.ocr import TextReader

log = logging.getLogger(__name__)

# A file that could not be read for a reason that may pass (it vanished, the share hiccuped) is left `new`
# and not offered again for this long; by then the scanner has usually marked it deleted or offline.
RETRY_AFTER_SECONDS = 300.0
# A read that has not finished after this long means the drive or share is not answering (a sleeping NAS,
# a hung NFS mount); its root is then skipped for HUNG_RETRY seconds. Generous: a 50 MB TIFF over slow
# Wi-Fi takes seconds, not a minute. (The Ingester's `read_deadline`.)
READ_DEADLINE = 60.0
HUNG_RETRY = RETRY_AFTER_SECONDS
HEAD_BYTES = 4096  # what a file's kind is sniffed from (photod.ingest.sniff)
HASH_CHUNK = 1 << 20  # a video is hashed as it is read, never held whole in memory
# A video larger than this is recognised (moved, copied) by its size and three samples of it instead of every
# byte: hashing 4 GB over a NAS would take minutes, past READ_DEADLINE, and look like a share that hangs.
# Stored hashes depend on both: the Ingester's `video_full_hash` and `video_sample` are for tests.
VIDEO_FULL_HASH = 64 << 20
VIDEO_SAMPLE = 4 << 20
VIDEO_GRACE = 15.0  # seconds past the video deadline before a decode that has not returned is abandoned


@dataclass
class IngestReport:
    """What a batch (or a drain) did."""

    staged: int = 0
    failed: int = 0
    adopted: int = 0
    skipped: int = 0  # unreadable for now (vanished, I/O error): left `new` for a later try
    reused: int = 0  # copies of a photo already staged: its JPEG and vectors copied, nothing decoded
    frames: int = 0  # moments of videos staged besides each video's first

    def __add__(self, other: "IngestReport") -> "IngestReport":
        return IngestReport(
            self.staged + other.staged,
            self.failed + other.failed,
            self.adopted + other.adopted,
            self.skipped + other.skipped,
            self.reused + other.reused,
            self.frames + other.frames,
        )

    @property
    def done(self) -> int:
        """Rows that left the `new` state."""
        return self.staged + self.failed + self.adopted + self.reused


class _Outcome(enum.Enum):
    READ = "read"  # its bytes (a still's), hash and kind are on its _File
    LATER = "later"  # unreadable for now (vanished, an I/O error, its share not answering): tried again later
    FAILED = "failed"  # it cannot be staged as it is: the reason is the photo's error


@dataclass(frozen=True)
class _Read:
    """What reading one file came to."""

    outcome: _Outcome
    reason: str = ""  # why it FAILED


_READ = _Read(_Outcome.READ)
_LATER = _Read(_Outcome.LATER)


def _failed(reason: str) -> _Read:
    return _Read(_Outcome.FAILED, reason)


@dataclass
class _File:
    row: dict
    path: Path
    data: bytes | None = None  # None for a video, which FFmpeg reads from its path
    hash: str | None = None
    kind: str = "image"  # sniffed from the content: image, raw or video
    text: FoundText | None = None  # what was read in it, when text is read


class Ingester:
    """Stages pending photos in batches. Use it from the thread that owns `catalog`."""

    def __init__(
        self,
        catalog: Catalog,
        stage: Stage,
        settings: StageConfig = StageConfig(),
        *,
        workers: int = WorkersConfig.decode,
        reader: TextReader | None = None,
        video: VideoConfig = VideoConfig(),
        read_deadline: float = READ_DEADLINE,
        video_grace: float = VIDEO_GRACE,
        video_full_hash: int = VIDEO_FULL_HASH,
        video_sample: int = VIDEO_SAMPLE,
    ):
        self.catalog = catalog
        self.stage = stage
        self.settings = settings
        self.video = video
        self.workers = max(1, workers)
        # Text is read from a larger copy made in the same decode as the stage's, so that after staging
        # nothing needs the drive; photos staged before (or read by another engine) are read again by
        # `read_text`, which photod.service.signals calls when there is nothing else to do.
        self.reader = reader
        self.read_deadline = read_deadline
        self.video_grace = video_grace
        self.video_full_hash = video_full_hash
        self.video_sample = video_sample
        self._deferred: dict[int, float] = {}  # photo id -> when it may be tried again
        self._hung: dict[int, float] = {}  # root id -> when its files may be read again

    def ingest_batch(self, limit: int = 64) -> IngestReport:
        """Stage up to `limit` pending photos; at most `limit` files' bytes are held in memory at once."""
        report = IngestReport()
        files = self._next_files(limit)
        if not files:
            return report
        to_decode = self._readable(files, self._read_all(files), report)
        to_decode = self._adopt_moved(to_decode, report)
        to_decode = self._reuse_copies(to_decode, report)
        with ThreadPoolExecutor(self.workers, thread_name_prefix="photod-decode") as pool:
            results = list(pool.map(self._decode, to_decode))
        self._store(to_decode, results, report)
        if report.done or report.skipped:
            log.info(
                "ingest: %d staged, %d failed, %d moved, %d copies reused, %d skipped",
                report.staged,
                report.failed,
                report.adopted,
                report.reused,
                report.skipped,
            )
        return report

    def close(self) -> None:
        """Release the text reader's models."""
        if self.reader is not None:
            self.reader.close()

    @property
    def deferred(self) -> int:
        """How many photos are left for a later try (a caller picking rows for `read_text` asks for as many
        more)."""
        return len(self._deferred)

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
        self._hung = {root: t for root, t in self._hung.items() if t > now}
        rows = self.catalog.pending("new", limit + len(self._deferred))
        rows = [r for r in rows if r["id"] not in self._deferred and r["root_id"] not in self._hung][:limit]
        return [_File(row=r, path=file_path(r)) for r in self._few_videos(rows)]

    def _few_videos(self, rows: list) -> list:
        """At most one video per decode worker in a batch (the rest wait for the next): a video may take up to
        its deadline, and a batch must end well within the service's watchdog (photod.service.systemd)."""
        out, videos = [], 0
        for r in rows:
            if extension(r["filename"]) in VIDEO_EXTENSIONS:
                if videos >= self.workers:
                    continue
                videos += 1
            out.append(r)
        return out

    def _read_all(self, files: list[_File]) -> list[_Read]:
        """Read `files`, `workers` at a time, each against `read_deadline` (photod.deadline).

        A NAS that goes to sleep or a share that hangs can block a read for minutes or forever. So a read past
        its deadline is abandoned (its thread finishes or hangs on its own), the file is tried again later, and
        its root is left alone for HUNG_RETRY seconds: the other roots' photos go on being staged meanwhile.
        """
        results: dict[int, _Read] = {}
        waiting, running = list(files), list[tuple[_File, Running[_Read]]]()
        while waiting or running:
            while waiting and len(running) < self.workers:
                f = waiting.pop(0)
                if f.row["root_id"] in self._hung:
                    results[id(f)] = _LATER
                    continue
                running.append((f, run_with_deadline(partial(self._read, f), self.read_deadline, "photod-read")))
            if running:  # empty when the files left were all on a root found hung meanwhile
                f, reading = running.pop(0)
                read = reading.result(default=None)
                results[id(f)] = read if read is not None else self._not_answering(f)
        # Deferred here, on the caller's thread, never by a reader thread that may return at any time.
        for f in files:
            if results[id(f)].outcome is _Outcome.LATER:
                self._defer(f)
        return [results[id(f)] for f in files]

    def _not_answering(self, f: _File) -> _Read:
        """A read abandoned at its deadline: its root is left alone for a while."""
        self._hung[f.row["root_id"]] = time.monotonic() + HUNG_RETRY
        log.warning(
            "reading %s took more than %.0f s: its drive or share is not answering; photod "
            "goes on with other roots and tries this one again in %.0f s",
            f.path,
            self.read_deadline,
            HUNG_RETRY,
        )
        return _LATER

    def _read(self, f: _File) -> _Read:
        """Read and hash one file (on a reader thread: it touches nothing but `f`)."""
        name = f.row["rel_path"]
        try:
            f.data, f.hash, f.kind = _read_regular(
                f.path, name, full_hash=self.video_full_hash, sample=self.video_sample
            )
        except _NotRegular as exc:
            return _failed(f"{name}: {exc.strerror}, not a photo file; photod reads only regular files")
        except (FileNotFoundError, NotADirectoryError):
            log.info("%s vanished before it could be staged; the scanner will account for it", f.path)
            return _LATER
        except PermissionError:
            return _failed(f"{name}: permission denied: run photod as a user who can read it")
        except IsADirectoryError:
            return _failed(f"{name}: is a directory, not a photo")
        except MemoryError:
            return _failed(f"{name}: too large to read into memory")
        except OSError as exc:
            # EIO, ESTALE, ENODEV...: usually a drive or share going away, not a bad photo.
            log.warning("cannot read %s (%s); will try again later", f.path, exc)
            return _LATER
        if f.kind == "video" and not self.video.enabled:
            return _failed(f"{name}: a video, and videos are off ([video] enabled = false in the config)")
        return _READ

    def _readable(self, files: list[_File], read: list[_Read], report: IngestReport) -> list[_File]:
        """The files that were read; the others are counted, and those that cannot be staged marked failed."""
        out = []
        for f, result in zip(files, read):
            if result.outcome is _Outcome.READ:
                out.append(f)
            elif result.outcome is _Outcome.LATER:
                report.skipped += 1
            else:
                self._fail(f, result.reason)
                report.failed += 1
        return out

    def _store(
        self, decoded: list[_File], results: list[Decoded | DecodedVideo | DecodeError], report: IngestReport
    ) -> None:
        """Stage what was decoded and mark it staged (a video with its moments), or failed."""
        staged = {f.row["id"]: (f, res) for f, res in zip(decoded, results) if isinstance(res, (Decoded, DecodedVideo))}
        entries = {
            pid: res.jpeg if isinstance(res, Decoded) else res.moments[0].staged.jpeg
            for pid, (_f, res) in staged.items()
        }
        frames = self._frame_rows(staged, entries)
        # Stage first (synced), catalog second: see the module docstring.
        self.stage.put_many(entries)
        with self.catalog.transaction():
            for pid, (f, res) in staged.items():
                self.catalog.mark_staged(pid, res.meta, f.hash or "")
                if isinstance(res, DecodedVideo):
                    self.catalog.mark_frames_staged(frames[pid], _frame_meta(res))
            signals.store_text(self.catalog, [f.text for f, _res in staged.values() if f.text is not None])
            for f, failure in zip(decoded, results):
                if isinstance(failure, DecodeError):
                    self._fail(f, _reason(failure), f.hash)
        report.staged += len(staged)
        report.frames += sum(len(ids) for ids in frames.values())
        groups.relink(self.catalog, [(f.row["root_id"], f.row["folder"]) for f, _res in staged.values()])
        report.failed += sum(isinstance(res, DecodeError) for res in results)

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

    def _reuse_copies(self, files: list[_File], report: IngestReport) -> list[_File]:
        """Files whose exact content is already staged for another photo get copies of that photo's stage
        entry, metadata and vectors instead of being decoded and encoded again.

        The rule: same bytes, same pixels, so the same JPEG and the same vectors. This covers a drive
        mounted again at a different path (its photos at the old path stay `offline`, nothing is deleted,
        nothing re-encoded) and backups (the same photo on two drives): each file keeps a row of its own,
        so unplugging either drive never hides the other copy, and when the old path comes back its rows
        return as they were. Captions stay with the photo they were written for. A deleted photo with the
        same content is a move instead (`_adopt_moved`, which runs first).
        """
        rest: list[_File] = []
        copies: dict[int, tuple[_File, int, bytes]] = {}
        for f in files:
            if f.kind == "video":  # a copy needs its own frames, not just the first: decoded afresh
                rest.append(f)
                continue
            src = self.catalog.staged_match(f.hash, exclude_id=f.row["id"]) if f.hash else None
            jpeg = self.stage.get_jpeg(src) if src is not None else None
            if src is None or jpeg is None:
                rest.append(f)
                continue
            copies[f.row["id"]] = (f, src, jpeg)
        if not copies:
            return rest
        # Stage first (synced), catalog second, as for decoded photos: a kill in between leaves entries
        # for rows still `new`, which are retried.
        self.stage.put_many({pid: jpeg for pid, (_f, _src, jpeg) in copies.items()})
        with self.catalog.transaction():
            for pid, (f, src, _jpeg) in copies.items():
                if self.catalog.copy_staged(src, pid):
                    signals.copy_text(self.catalog, src, pid)  # same bytes, same text
                    f.data = None
                    report.reused += 1
                else:
                    rest.append(f)  # the original left the stage meanwhile: decode this one after all
        if report.reused:
            log.info(
                "%d files are copies of photos already staged (a drive at a new path, a backup): "
                "their stage entries and vectors were copied, nothing decoded",
                report.reused,
            )
        return rest

    def _decode(self, f: _File) -> Decoded | DecodedVideo | DecodeError:
        """Decode one file for the stage, as what its content is, reading its text on the way when a reader
        is set (stills only)."""
        if f.kind == "video":
            return self._decode_video(f)
        text_side = None
        if self.reader is not None:
            from photod.ingest.ocr import OCR_SIDE

            text_side = OCR_SIDE
        name, size, quality = f.row["rel_path"], self.settings.size, self.settings.quality
        try:
            if f.kind == "raw":
                decoded = decode_raw(f.data or b"", name, size, quality, text_side)
            else:
                decoded = decode_photo(f.data or b"", name, size, quality, self.settings.jpeg_draft, text_side)
        except DecodeError as exc:
            return exc
        finally:
            f.data = None  # free the file's bytes as soon as its JPEG exists
        if decoded.text_image is not None:
            f.text = self._read_text(f, decoded)
            # The large copy is the biggest thing a decode holds: a batch must not keep them all.
            decoded = dataclasses.replace(decoded, text_image=None)
        return decoded

    def _decode_video(self, f: _File) -> DecodedVideo | DecodeError:
        """Sample a video's moments on a thread of its own, against the deadline (photod.deadline): the decode
        stops looking by itself when the deadline passes, and one that hangs inside FFmpeg (a stream that makes
        it spin, a share that stops answering) is abandoned `video_grace` seconds later."""

        def decode() -> DecodedVideo | DecodeError:
            try:
                return decode_video(
                    os.fspath(f.path), f.row["rel_path"], self.video, self.settings.size, self.settings.quality
                )
            except DecodeError as exc:
                return exc
            except Exception as exc:  # noqa: BLE001 - a decoder bug is this video's failure, not the daemon's
                log.debug("decoding %s failed", f.path, exc_info=True)
                return DecodeError(f"{f.row['rel_path']}: cannot decode the video ({type(exc).__name__}: {exc})")

        seconds = self.video.deadline_seconds + self.video_grace
        decoded = run_with_deadline(decode, seconds, "photod-video").result(default=None)
        if decoded is None:
            return DecodeError(
                f"{f.row['rel_path']}: decoding the video took more than "
                f"{self.video.deadline_seconds:.0f} s and was abandoned",
                "raise [video] deadline_seconds for very long or very large videos",
            )
        return decoded

    def _frame_rows(self, staged: dict, entries: dict[int, bytes]) -> dict[int, list[int]]:
        """Rows (still `new`) for the moments of each video staged besides its first, their JPEGs added to
        `entries`: {video id: frame ids}. They become `staged` with the video, in one transaction; a kill
        before that leaves rows the video's next staging replaces."""
        frames: dict[int, list[int]] = {}
        for pid, (_f, res) in staged.items():
            if isinstance(res, DecodedVideo):
                ids = self.catalog.add_frames(pid, [m.time for m in res.moments[1:]])
                entries.update(zip(ids, (m.staged.jpeg for m in res.moments[1:])))
                frames[pid] = ids
        return frames

    def _read_text(self, f: _File, decoded: Decoded) -> FoundText:
        """The text in a decoded photo. A failure costs this photo its text (recorded, so it is not tried
        again with the same engine), never its staging."""
        from photod.errors import OcrError
        from photod.ingest.ocr import ENGINE_ID

        assert self.reader is not None and decoded.text_image is not None
        try:
            found = self.reader.read(decoded.text_image)
        except OcrError as exc:
            log.warning("cannot read text in %s: %s", f.path, exc.message)
            return FoundText(f.row["id"], ENGINE_ID, error=exc.message)
        lines = tuple((line.text, round(float(line.score), 3), *line.box) for line in found.lines)
        return FoundText(f.row["id"], found.engine, lines)

    # ---- text in photos staged before text was read -----------------------------------------------------

    def read_text(self, rows: list, limit: int) -> list[FoundText]:
        """The text of up to `limit` of `rows` (staged photos), read again from their files with the reader
        (which must be set); rows whose file or root waits for a later try are passed over. A file unreadable
        for good gets a reading that says so, so it is not read again at every step; a file that changed
        since it was staged gets none (photod.service.signals stores what this returns)."""
        from photod.ingest.ocr import ENGINE_ID

        now = time.monotonic()
        rows = [r for r in rows if self._deferred.get(r["id"], 0) <= now and r["root_id"] not in self._hung][:limit]
        files = [_File(row=r, path=file_path(r)) for r in rows]
        read = self._read_all(files)
        found = [
            FoundText(f.row["id"], ENGINE_ID, error=r.reason)
            for f, r in zip(files, read)
            if r.outcome is _Outcome.FAILED
        ]
        ready = [f for f, r in zip(files, read) if r.outcome is _Outcome.READ and self._unchanged(f)]
        with ThreadPoolExecutor(self.workers, thread_name_prefix="photod-text") as pool:
            results = list(pool.map(self._decode, ready))
        return found + [
            f.text
            or FoundText(f.row["id"], ENGINE_ID, error=_reason(res) if isinstance(res, DecodeError) else "not read")
            for f, res in zip(ready, results)
        ]

    def _unchanged(self, f: _File) -> bool:
        """Whether a file read again is still the photo that was staged; a changed one is the scanner's to
        notice (it goes back to `new` and is staged, and read, afresh)."""
        if f.hash == f.row["content_hash"]:
            return True
        f.data = None
        self._defer(f)
        return False

    def _fail(self, f: _File, reason: str, content_hash_: str | None = None) -> None:
        self.catalog.mark_failed(f.row["id"], reason, content_hash_, kind="video" if f.kind == "video" else None)
        # The reason already names the file (relative to its root); say which root.
        log.warning("cannot stage a photo in %s: %s", f.row["root_path"], reason)

    def _defer(self, f: _File) -> None:
        self._deferred[f.row["id"]] = time.monotonic() + RETRY_AFTER_SECONDS


class _NotRegular(OSError):
    """The path is a FIFO, a device or a socket now (it was a regular file when it was catalogued)."""


def _read_regular(
    path: Path, name: str, *, full_hash: int = VIDEO_FULL_HASH, sample: int = VIDEO_SAMPLE
) -> tuple[bytes | None, str, str]:
    """(bytes, content hash, kind) of a regular file; a video's bytes are hashed as they are read and not
    kept (None): FFmpeg reads it from its path, seeking. Opened non-blocking and checked with fstat before
    reading: a path that became a FIFO would block the read forever, and a character device such as
    /dev/zero would never end."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | getattr(os, "O_CLOEXEC", 0))
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            kind = (
                "a FIFO (named pipe)"
                if stat.S_ISFIFO(mode)
                else "a device"
                if stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
                else "a socket"
                if stat.S_ISSOCK(mode)
                else "a directory"
                if stat.S_ISDIR(mode)
                else "not a regular file"
            )
            raise _NotRegular(errno.EINVAL, f"is {kind}")
        with os.fdopen(fd, "rb", closefd=True) as fh:
            fd = -1
            head = fh.read(HEAD_BYTES)
            kind = sniff(head, name)
            if kind != "video":
                data = head + fh.read()
                return data, content_hash(data), kind
            return None, _video_hash(fh, head, os.fstat(fh.fileno()).st_size, full_hash, sample), kind
    finally:
        if fd >= 0:
            os.close(fd)


def _video_hash(fh, head: bytes, size: int, full_hash: int, sample: int) -> str:
    """A video's content hash: blake2b of every byte up to `full_hash` bytes, else of its size and its first,
    middle and last `sample` bytes (prefixed, so it never equals a whole-file hash)."""
    h = hashlib.blake2b(head, digest_size=32)
    if size <= full_hash:
        while chunk := fh.read(HASH_CHUNK):
            h.update(chunk)
        return h.hexdigest()
    h.update(size.to_bytes(8, "little"))
    for start in (len(head), size // 2, size - sample):
        fh.seek(start)
        h.update(fh.read(sample))
    return "sampled:" + h.hexdigest()


def _frame_meta(video: DecodedVideo) -> PhotoMeta:
    first = video.moments[0].staged.meta
    return PhotoMeta(width=first.width, height=first.height, format="video frame", taken_at=video.meta.taken_at)


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
        log.warning(
            "stage repaired: %d entries without a catalog row removed, %d photos to be staged again", removed, unstaged
        )
    return removed, unstaged
