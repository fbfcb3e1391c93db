"""Watching roots for new, changed, moved and deleted photos.

Each root gets its own watchdog observer: inotify where the kernel sees every change, polling on network
and FUSE filesystems where it does not (see photod.roots.mounts). If inotify runs out of watches or instances,
that root falls back to polling instead of going unwatched.

A file being copied produces a burst of write events. It is reported once, as a 'file' event, when its
(size, mtime) has stayed the same for `settle_seconds`: a settling thread re-checks the pending paths.
Deletions and moves are reported at once. Events are filtered with the root's include/exclude globs
exactly as the reconcile scan filters them (photod.roots.matcher).

`on_event` is called on the watcher's threads, one call at a time; it must be quick (the daemon only
puts the event on a queue).
"""

from __future__ import annotations

import errno
import logging
import os
import stat as stat_mod
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers.api import BaseObserver
from watchdog.observers.inotify import InotifyObserver
from watchdog.observers.polling import PollingObserverVFS

from photod.errors import RootError
from photod.roots.matcher import Matcher
from photod.roots.mounts import choose_watch_mode, read_mounts
from photod.roots.scanner import walk

if TYPE_CHECKING:
    from photod.store.catalog import Root

log = logging.getLogger(__name__)

KINDS = ("file", "deleted", "moved", "dir_moved", "dir_deleted")
INOTIFY_LIMIT_ERRNOS = (errno.ENOSPC, errno.EMFILE)
RAISE_WATCHES = "sudo sysctl fs.inotify.max_user_watches=524288"
STOP_WAIT = 5.0  # seconds remove_root waits for an observer to stop

# Event types that say nothing about content: our own stat calls and the stager's reads produce them.
_IGNORED = frozenset({"opened", "closed_no_write"})
_CHANGED = frozenset({"created", "modified", "closed", "attrib"})


@dataclass(frozen=True)
class WatchEvent:
    """A change under a root. Paths are POSIX-style and relative to the root.

    kind: 'file' (new or changed, settled), 'deleted', 'moved' (rel_path -> dest_rel_path; a source
    unknown to the catalog means a new file at the destination), 'dir_moved', 'dir_deleted'.
    """

    kind: str
    root_id: int
    rel_path: str
    dest_rel_path: str | None = None


@dataclass
class _Pending:
    root_id: int
    abs_path: str
    signature: tuple[int, int] | None
    since: float


@dataclass
class _Watched:
    root: "Root"
    root_str: str
    matcher: Matcher
    mode: str
    observer: BaseObserver


def _default_polling(interval: float, matcher: Matcher) -> BaseObserver:
    """A polling observer that never descends into excluded folders nor stats non-photos.

    On a NAS every stat is a network round trip, and folders such as @eaDir hold more files than the
    photos themselves. lstat: a symlink is never followed, so a link loop cannot make a poll endless.
    """

    def listdir(path: str | None):
        with os.scandir(path) as it:
            entries = list(it)
        for e in entries:
            if e.is_dir(follow_symlinks=False):
                if matcher.dir_ok(e.name):
                    yield e
            elif e.is_file(follow_symlinks=False) and matcher.file_ok(e.name):
                yield e

    return PollingObserverVFS(os.lstat, listdir, polling_interval=interval)


class Watcher:
    """Watches roots and reports WatchEvents to `on_event`.

    `mounts_path` is the mount table `auto` mode reads (default: the system's; tests point it at a file
    saying a temporary folder is on cifs). `inotify_observer` and `polling_observer` build the
    observers; they exist so that tests can make inotify fail the way an exhausted system does.
    `stop_wait` is how long removing a root waits for its observer to stop before leaving it behind.
    """

    def __init__(
        self,
        on_event: Callable[[WatchEvent], None],
        *,
        settle_seconds: float = 2.0,
        mounts_path: str | os.PathLike | None = None,
        inotify_observer: Callable[[], BaseObserver] = InotifyObserver,
        polling_observer: Callable[[float, Matcher], BaseObserver] = _default_polling,
        stop_wait: float = STOP_WAIT,
    ):
        self._on_event = on_event
        self.settle_seconds = settle_seconds
        self._mounts_path = mounts_path
        self._new_inotify = inotify_observer
        self._new_polling = polling_observer
        self._stop_wait = stop_wait
        self._roots: dict[int, _Watched] = {}
        self._pending: dict[tuple[int, str], _Pending] = {}
        self._lock = threading.Lock()  # guards _roots and _pending
        self._emit_lock = threading.Lock()  # one on_event call at a time
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._settler = threading.Thread(target=self._settle_loop, name="photod-settle", daemon=True)
        self._settler.start()

    # ---- roots -------------------------------------------------------------------------------------

    def add_root(self, root: "Root") -> str:
        """Start watching `root`; returns the mode in effect, 'inotify' or 'poll'.

        Raises RootError when the root cannot be watched at all (its folder is gone).
        """
        self.remove_root(root.id)
        mode, reason = choose_watch_mode(root.watch, root.path, read_mounts(self._mounts_path))
        matcher = Matcher(root.include, root.exclude)
        handler = _Handler(self, root.id)
        observer = None
        if mode == "inotify":
            observer = self._start_inotify(root, handler)
            if observer is None:
                mode, reason = "poll", "inotify is out of watches or instances"
        if observer is None:
            observer = self._start(self._new_polling(root.poll_interval, matcher), root, handler)
        with self._lock:
            self._roots[root.id] = _Watched(root, str(root.path), matcher, mode, observer)
        log.info("watching %s with %s: %s", root.path, mode, reason)
        return mode

    def _start_inotify(self, root: "Root", handler: "_Handler") -> BaseObserver | None:
        """An inotify observer for `root`, or None when the kernel's inotify limits are exhausted."""
        observer = None
        try:
            observer = self._new_inotify()
            return self._start(observer, root, handler)
        except OSError as exc:
            if exc.errno not in INOTIFY_LIMIT_ERRNOS:
                raise
            _stop_quietly(observer)
            log.warning(
                "inotify cannot watch %s (%s): polling it every %gs instead. The kernel allows too few "
                "inotify watches (fs.inotify.max_user_watches) or instances (fs.inotify.max_user_instances)"
                "; raise them with `%s` (add fs.inotify.max_user_watches=524288 to /etc/sysctl.d/"
                "90-photod.conf to keep it)",
                root.path,
                exc.strerror or exc,
                root.poll_interval,
                RAISE_WATCHES,
            )
            return None

    @staticmethod
    def _start(observer: BaseObserver, root: "Root", handler: "_Handler") -> BaseObserver:
        try:
            observer.schedule(handler, str(root.path), recursive=True)
            observer.start()
        except OSError as exc:
            _stop_quietly(observer)
            if exc.errno in INOTIFY_LIMIT_ERRNOS:
                raise
            raise RootError(
                f"cannot watch {root.path}: {exc.strerror or exc}", "check that the folder exists and is readable"
            ) from exc
        return observer

    def remove_root(self, root_id: int) -> None:
        """Stop watching a root and forget its unsettled files. Unknown ids are ignored."""
        with self._lock:
            watched = self._roots.pop(root_id, None)
            for key in [k for k in self._pending if k[0] == root_id]:
                del self._pending[key]
        if watched is not None:
            _stop_quietly(watched.observer, self._stop_wait)

    def modes(self) -> dict[int, str]:
        """{root id: 'inotify' | 'poll'} for every watched root."""
        with self._lock:
            return {rid: w.mode for rid, w in self._roots.items()}

    def is_watching(self, root_id: int) -> bool:
        """Whether the root's observer is still running (it stops when the root's folder vanishes)."""
        with self._lock:
            watched = self._roots.get(root_id)
        return (
            watched is not None and watched.observer.is_alive() and all(e.is_alive() for e in watched.observer.emitters)
        )

    def stop(self) -> None:
        """Stop every observer and the settling thread. Unsettled files are dropped: the next
        reconcile scan finds them."""
        self._stopping.set()
        self._wake.set()
        for root_id in list(self.modes()):
            self.remove_root(root_id)
        self._settler.join(timeout=5)

    # ---- events ------------------------------------------------------------------------------------

    def _handle(self, root_id: int, event: FileSystemEvent) -> None:
        if event.event_type in _IGNORED:
            return
        with self._lock:
            watched = self._roots.get(root_id)
        if watched is None:
            return
        src = self._rel(watched, event.src_path)
        if event.event_type == "moved":
            self._moved(watched, event, src, self._rel(watched, event.dest_path))
        elif src is None:
            if event.event_type == "deleted":
                log.warning("the folder of root %s disappeared; its watch stopped", watched.root_str)
        elif event.is_directory:
            self._dir_event(watched, event.event_type, src)
        elif event.event_type in _CHANGED:
            if watched.matcher.path_ok(src):
                self._pend(watched, src)
        elif event.event_type == "deleted" and watched.matcher.path_ok(src):
            self._unpend(root_id, src)
            self._emit(WatchEvent("deleted", root_id, src))

    def _dir_event(self, watched: _Watched, event_type: str, src: str) -> None:
        if not watched.matcher.dir_path_ok(src):
            return
        if event_type == "deleted":
            self._emit(WatchEvent("dir_deleted", watched.root.id, src))
        elif event_type == "created" and watched.mode == "inotify":
            # Files copied into a new folder before inotify had a watch on it send no events.
            self._pend_tree(watched, src)

    def _moved(self, watched: _Watched, event: FileSystemEvent, src: str | None, dst: str | None) -> None:
        if event.is_synthetic:
            return  # a file inside a moved folder: the folder's own event covers it
        root_id = watched.root.id
        ok = watched.matcher.dir_path_ok if event.is_directory else watched.matcher.path_ok
        src_ok = src is not None and ok(src)
        dst_ok = dst is not None and ok(dst)
        if src_ok and dst_ok:
            self._emit(WatchEvent("dir_moved" if event.is_directory else "moved", root_id, src, dst))
            if not event.is_directory and self._unpend(root_id, src):
                self._pend(watched, dst)  # it was still being written under its old name
        elif src_ok:  # moved out of the root, or into an excluded folder or name
            if not event.is_directory:
                self._unpend(root_id, src)
            self._emit(WatchEvent("dir_deleted" if event.is_directory else "deleted", root_id, src))
        elif dst_ok:  # moved in from outside, or renamed from an excluded name (a finished download)
            if event.is_directory:
                self._pend_tree(watched, dst)
            else:
                self._pend(watched, dst)

    @staticmethod
    def _rel(watched: _Watched, path: str | bytes) -> str | None:
        """The root-relative POSIX path of an event path; None for the root itself or outside it."""
        path = os.fsdecode(path)
        base = watched.root_str.rstrip(os.sep)
        if not path.startswith(base + os.sep):
            return None
        rel = path[len(base) + 1 :]
        return rel.replace(os.sep, "/") if os.sep != "/" else rel

    def _emit(self, event: WatchEvent) -> None:
        with self._emit_lock:
            try:
                self._on_event(event)
            except Exception:  # noqa: BLE001 - a failing consumer must not kill the observer thread
                log.exception("handling the watch event %s failed", event)

    # ---- settling ----------------------------------------------------------------------------------

    def _pend(self, watched: _Watched, rel: str) -> None:
        abs_path = os.path.join(watched.root_str, rel)
        with self._lock:
            p = self._pending.get((watched.root.id, rel))
            if p is None:
                self._pending[(watched.root.id, rel)] = _Pending(watched.root.id, abs_path, None, time.monotonic())
            else:
                p.since = time.monotonic()
        self._wake.set()

    def _pend_tree(self, watched: _Watched, rel_dir: str) -> None:
        base = os.path.join(watched.root_str, rel_dir)
        for entry in walk(base, watched.matcher.include, watched.matcher.exclude):
            self._pend(watched, f"{rel_dir}/{entry.rel_path}")

    def _unpend(self, root_id: int, rel: str) -> bool:
        with self._lock:
            return self._pending.pop((root_id, rel), None) is not None

    def _settle_loop(self) -> None:
        tick = min(0.5, max(0.05, self.settle_seconds / 4))
        while not self._stopping.is_set():
            self._wake.wait(tick)
            self._wake.clear()
            for event in self._settled(time.monotonic()):
                if self._stopping.is_set():
                    return
                self._emit(event)

    def _settled(self, now: float) -> list[WatchEvent]:
        """Pending files whose (size, mtime) has not changed for settle_seconds; they leave the queue."""
        with self._lock:
            items = list(self._pending.items())
        ready = []
        for key, p in items:
            try:
                st = os.stat(p.abs_path, follow_symlinks=False)
            except OSError:
                self._drop_if_same(key, p)  # gone (a 'deleted' event says so) or unreadable now
                continue
            if not stat_mod.S_ISREG(st.st_mode):
                self._drop_if_same(key, p)
                continue
            signature = (st.st_size, st.st_mtime_ns)
            with self._lock:
                if self._pending.get(key) is not p:
                    continue  # removed or replaced meanwhile
                if signature != p.signature:
                    p.signature, p.since = signature, now
                elif now - p.since >= self.settle_seconds:
                    del self._pending[key]
                    ready.append(WatchEvent("file", key[0], key[1]))
        return ready

    def _drop_if_same(self, key: tuple[int, str], p: _Pending) -> None:
        with self._lock:
            if self._pending.get(key) is p:
                del self._pending[key]


class _Handler(FileSystemEventHandler):
    def __init__(self, watcher: Watcher, root_id: int):
        super().__init__()
        self._watcher = watcher
        self._root_id = root_id

    def dispatch(self, event: FileSystemEvent) -> None:
        try:
            self._watcher._handle(self._root_id, event)
        except Exception:  # noqa: BLE001 - one odd event must not stop the observer thread
            log.exception("could not handle %s", event)


def _stop_quietly(observer: BaseObserver | None, wait: float = STOP_WAIT) -> None:
    """Stop an observer without ever hanging the caller.

    A polling observer in the middle of a snapshot of a hung NFS share cannot stop until the kernel
    answers; the daemon must not freeze with it, so the stop runs on its own thread and is abandoned
    (it is a daemon thread) if it takes longer than `wait` seconds.
    """
    if observer is None:
        return

    def stop() -> None:
        try:
            observer.stop()
            if observer.is_alive():
                observer.join()
        except Exception:  # noqa: BLE001 - stopping a half-started observer may fail; nothing to undo
            log.debug("stopping an observer failed", exc_info=True)

    stopper = threading.Thread(target=stop, name="photod-watch-stop", daemon=True)
    stopper.start()
    stopper.join(wait)
    if stopper.is_alive():
        log.warning("a watch did not stop within %gs (a hung network share?); it is left behind", wait)
