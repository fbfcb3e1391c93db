"""The daemon: keeps the catalog, the stage and the index in step with the roots.

One thread owns the catalog connection and does all the writing; the watcher's threads only put events on
a queue. The loop alternates between three kinds of work, so a burst of new files never starves the checks
that notice a drive being unplugged:
  - events from the watcher (files settled, deleted, moved),
  - periodic checks: root presence (offline/online), reconcile scans, purging expired deletions,
  - batches of work: staging new photos (reading their text on the way), then encoding staged ones when a
    model is active, then, at low priority, the other search channels (photod.service.signals).
A stop request (SIGTERM/SIGINT) is honoured between batches: the batch in hand is finished and committed.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

from photod import durable
from photod.config import Config
from photod.errors import DiskFullError, RootError
from photod.ingest.ingester import check_stage_consistency
from photod.roots.presence import RootKeeper
from photod.roots.watcher import Watcher, WatchEvent
from photod.service import lock as daemonlock
from photod.service.heap import keep_heap_small
from photod.service.heartbeat import Heartbeat
from photod.service.models import ModelWorker
from photod.service.parts import open_ingester
from photod.service.signals import SignalWorker
from photod.service.systemd import Notifier
from photod.store.catalog import Catalog, Root, prepare_data_dir
from photod.store.stage import Stage

log = logging.getLogger(__name__)

PRESENCE_INTERVAL = 5.0  # seconds between root presence checks: how fast an unplugged drive is noticed
PURGE_INTERVAL = 3600.0
DISK_FULL_RETRY = 10.0  # seconds between attempts while the data dir's disk is full
READER_IDLE = 60.0  # seconds without a photo to read text in before the OCR models are let go


def _summary(c: dict[str, int]) -> str:
    return (
        f"{c['total']} photos: {c['indexed']} indexed, {c['staged']} staged, {c['new']} to stage, "
        f"{c['failed']} failed, {c['offline']} offline"
    )


def _stopped_with(parts: contextlib.ExitStack, name: str, stop: Callable[[], None]) -> None:
    """Have `parts` call `stop` when the daemon ends; an error there is logged, and the other parts still stop."""

    def stop_logged() -> None:
        try:
            stop()
        except Exception:  # noqa: BLE001 - shutting down: log and stop the rest
            log.exception("error while closing the %s", name)

    parts.callback(stop_logged)


@dataclass
class _Timers:
    presence: float = 0.0
    rescan: dict[int, float] = field(default_factory=dict)
    purge: float = 0.0
    status: float = 0.0
    watchdog: float = 0.0


class Daemon:
    def __init__(
        self,
        cfg: Config,
        *,
        notifier: Notifier | None = None,
        mounts_path: str | None = None,
        stop_event: threading.Event | None = None,
    ):
        self.cfg = cfg
        self.notifier = notifier or Notifier()
        self.mounts_path = mounts_path
        self.stop_event = stop_event or threading.Event()
        self.events: queue.Queue[WatchEvent] = queue.Queue()
        self.timers = _Timers()
        self.online: dict[int, bool] = {}
        self.summary = "watching"  # what `photod status` shows the daemon doing (see photod.service.heartbeat)
        # What each kind of watcher event (photod.roots.watcher.WatchEvent) does to the catalog.
        self._handlers: dict[str, Callable[[Root, WatchEvent], None]] = {
            "file": self._on_file,
            "deleted": self._on_deleted,
            "dir_deleted": self._on_dir_deleted,
            "moved": self._on_moved,
            "dir_moved": self._on_dir_moved,
        }

    def stop(self) -> None:
        self.stop_event.set()

    # ---- life cycle --------------------------------------------------------------------------------

    def run(self) -> int:
        keep_heap_small()  # before the first photo is decoded: see photod.service.heap
        prepare_data_dir(self.cfg.data_dir)
        with daemonlock.held(self.cfg.data_dir):  # before anything is written: a refused daemon changes nothing
            return self._run_locked()

    def _run_locked(self) -> int:
        with contextlib.ExitStack() as parts:
            parts.callback(log.info, "photod stopped")
            self._build(parts)
            try:
                self._start()
                self._serve()
            finally:
                # Said before the parts stop, which can take seconds (a watch on a hung network share): systemd
                # and `photod status` (through the heartbeat) learn at once that the daemon is going.
                self.notifier.stopping()
                self.heartbeat.close()
        return 0

    def _build(self, parts: contextlib.ExitStack) -> None:
        """Build the daemon's parts, each put on `parts` as soon as it is built: whatever was built is stopped,
        in reverse, however the daemon ends, a later part failing to build included."""
        cfg = self.cfg
        self.heartbeat = Heartbeat(cfg.data_dir)
        _stopped_with(parts, "heartbeat", self.heartbeat.close)
        self.heartbeat.beat("starting")
        self.catalog = Catalog.in_data_dir(cfg.data_dir)
        _stopped_with(parts, "catalog", self.catalog.close)
        self.stage = Stage(cfg.data_dir)
        _stopped_with(parts, "stage", self.stage.close)
        self.ingester = open_ingester(cfg, self.catalog, self.stage)
        _stopped_with(parts, "ingester", self.ingester.close)
        self.models = ModelWorker(cfg, self.catalog, self.stage)
        _stopped_with(parts, "models", self.models.close)
        self.signals = SignalWorker(cfg, self.catalog, self.ingester, self.models.model)
        self.roots = RootKeeper(self.catalog, threads=cfg.workers.scan_threads)
        watcher_kwargs = {"settle_seconds": cfg.daemon.settle_seconds}
        if self.mounts_path:
            watcher_kwargs["mounts_path"] = self.mounts_path
        self.watcher = Watcher(self.events.put, **watcher_kwargs)
        _stopped_with(parts, "watcher", self.watcher.stop)

    def _serve(self) -> None:
        while not self.stop_event.is_set():
            try:
                self._tick()
            except (DiskFullError, sqlite3.OperationalError) as exc:
                if not durable.is_disk_full(exc):
                    raise
                self._wait_for_space(exc)

    def _start(self) -> None:
        self.catalog.sync_config_roots(self.cfg.roots)
        orphans, missing = check_stage_consistency(self.catalog, self.stage)
        if orphans or missing:
            log.info("stage repaired: %d orphan entries removed, %d photos to stage again", orphans, missing)
        if not self.catalog.active_roots():
            log.warning("no roots to watch: add one with `photod roots add PATH` or in the config file")
        self._check_presence()
        self.models.refresh()
        counts = self.catalog.counts()
        self.notifier.ready(f"{counts['total']} photos, {counts['new']} to stage")
        self.summary = _summary(counts)
        self.heartbeat.beat(self.summary)
        log.info(
            "photod running: %d roots, %d photos (data dir %s)",
            len(self.catalog.active_roots()),
            counts["total"],
            self.cfg.data_dir,
        )

    def _wait_for_space(self, exc: Exception) -> None:
        """A full disk is not a reason to die (systemd would only restart us into the same wall): every
        write is atomic, so nothing is lost; say so clearly, wait, and try the same work again."""
        if isinstance(exc, DiskFullError):
            text = str(exc).replace("\n", " ")
        else:
            text = (
                f"the disk holding the data dir {self.cfg.data_dir} is full: the catalog cannot be written"
                f" ({exc}); free some space there, nothing already written is lost"
            )
        log.error("%s; trying again in %g s", text, DISK_FULL_RETRY)
        self.stop_event.wait(DISK_FULL_RETRY)

    # ---- the loop ----------------------------------------------------------------------------------

    def _tick(self) -> None:
        handled = self._drain_events()
        self._periodic()
        worked = self.ingester.ingest_batch(self.cfg.workers.batch_size * 4).done
        if not worked and not self.stop_event.is_set():
            worked = self.models.step(self.stop_event)
        if not worked and not self.stop_event.is_set():
            worked = self.signals.step()  # places, captions' meaning, text in photos staged before
        if self.ingester.reader is not None:
            self.ingester.reader.release_if_idle(READER_IDLE)
        if not (handled or worked):
            self._wait_for_event(1.0)

    def _wait_for_event(self, timeout: float) -> None:
        try:
            event = self.events.get(timeout=timeout)
        except queue.Empty:
            return
        self._handle(event)

    def _drain_events(self, limit: int = 1000) -> int:
        n = 0
        while n < limit:
            try:
                event = self.events.get_nowait()
            except queue.Empty:
                break
            self._handle(event)
            n += 1
        return n

    def _periodic(self) -> None:
        now = time.monotonic()
        if now - self.timers.presence >= PRESENCE_INTERVAL:
            self.timers.presence = now
            self._check_presence()
            self.models.refresh()
        if self.cfg.daemon.rescan_hours > 0:
            for root_id, due in list(self.timers.rescan.items()):
                if now >= due and self.online.get(root_id):
                    self._rescan(root_id)
        if now - self.timers.purge >= PURGE_INTERVAL:
            self.timers.purge = now
            self._purge_expired()
        if self.notifier.watchdog_interval and now - self.timers.watchdog >= self.notifier.watchdog_interval:
            self.timers.watchdog = now
            self.notifier.watchdog()
        if now - self.timers.status >= 30:
            self.timers.status = now
            self.summary = _summary(self.catalog.counts())
            self.notifier.status(self.summary)
        self.heartbeat.beat(self.summary, force=False)

    # ---- roots coming and going --------------------------------------------------------------------

    def _check_presence(self) -> None:
        roots = self.catalog.active_roots()
        for root, presence in self.roots.check(roots):
            was = self.online.get(root.id)
            if presence.online and was is not True:
                self._root_online(root, presence.device)
            elif not presence.online and was is not False:
                self._root_offline(root, presence.reason)
        for root_id in set(self.online) - {r.id for r in roots}:  # removed with `photod roots remove`
            self.watcher.remove_root(root_id)
            self.online.pop(root_id)
            self.timers.rescan.pop(root_id, None)

    # The catalog's side of a root coming or going is RootKeeper's, shared with `photod scan`; the
    # daemon adds what only it has: the watcher, the rescan timer and the heartbeat.

    def _root_online(self, root: Root, device: int | None) -> None:
        try:
            mode = self.watcher.add_root(self.catalog.root(root.id))
        except RootError as exc:  # gone again between the presence check and now
            self._root_offline(root, exc.message)
            return
        if not self.roots.bring_online(root, device):
            log.info("watching %s (%s)", root.path, mode)
        self.catalog.update_root(root.id, watch_mode=mode)
        self.online[root.id] = True
        self._rescan(root.id)

    def _root_offline(self, root: Root, reason: str) -> None:
        self.watcher.remove_root(root.id)
        self.roots.take_offline(root, reason)
        self.catalog.update_root(root.id, watch_mode=None)
        self.online[root.id] = False
        self.timers.rescan.pop(root.id, None)

    def _rescan(self, root_id: int) -> None:
        root = self.catalog.root(root_id)
        self.heartbeat.beat(f"scanning {root.path}")
        report = self.roots.scan(root_id)
        self.heartbeat.beat(self.summary)
        self.timers.rescan[root_id] = time.monotonic() + self.cfg.daemon.rescan_hours * 3600
        log.info(
            "scanned %s: %d files in %d folders (%d changed or new), %d new files, %d changed, %d deleted in %.1fs%s",
            root.path,
            report.seen,
            report.folders,
            report.compared,
            report.new,
            report.changed,
            report.deleted,
            report.seconds,
            "" if report.complete else " (incomplete: some folders could not be read)",
        )

    def _purge_expired(self) -> None:
        cutoff = time.time() - self.cfg.daemon.deleted_grace_days * 86400
        ids = self.catalog.purgeable(cutoff)
        if not ids:
            return
        # Stage entries first: a crash in between leaves deleted rows that claim nothing, never the reverse.
        self.stage.delete_many(ids)
        self.models.forget(ids)
        self.catalog.purge(ids)
        log.info("purged %d photos deleted more than %g days ago", len(ids), self.cfg.daemon.deleted_grace_days)

    # ---- watcher events ----------------------------------------------------------------------------

    def _handle(self, event: WatchEvent) -> None:
        if not self.online.get(event.root_id):
            return  # a root going away floods delete events: presence decides, not the events
        try:
            root = self.catalog.root(event.root_id)
            self._handlers[event.kind](root, event)
        except (DiskFullError, sqlite3.OperationalError) as exc:
            if not durable.is_disk_full(exc):
                log.exception("could not handle %s of %s", event.kind, event.rel_path)
                return
            # The event must not be lost with the write that failed: keep it for when space is back.
            self.events.put(event)
            raise
        except Exception:  # noqa: BLE001 - one bad event must not stop the daemon
            log.exception("could not handle %s of %s", event.kind, event.rel_path)

    def _on_file(self, root: Root, event: WatchEvent) -> None:
        try:
            st = os.stat(root.path / event.rel_path)
        except OSError:
            return  # gone again before it settled; a later event or scan will tell
        self.catalog.upsert_file(root.id, event.rel_path, st.st_size, st.st_mtime_ns)

    def _gone_for_real(self, root: Root, rel_path: str) -> bool:
        """A delete event counts only if the root is still present and the path really is gone."""
        if os.path.lexists(root.path / rel_path):
            return False
        presence = self.roots.presence(root)
        if not presence.online:
            self._root_offline(root, presence.reason)
            return False
        return True

    def _on_deleted(self, root: Root, event: WatchEvent) -> None:
        photo_id = self.catalog.file_id(root.id, event.rel_path)
        if photo_id is not None and self._gone_for_real(root, event.rel_path):
            self.catalog.mark_deleted([photo_id])

    def _on_dir_deleted(self, root: Root, event: WatchEvent) -> None:
        if not self._gone_for_real(root, event.rel_path):
            return
        self.catalog.mark_deleted(self.catalog.ids_under(root.id, event.rel_path))

    def _on_moved(self, root: Root, event: WatchEvent) -> None:
        photo_id = self.catalog.file_id(root.id, event.rel_path)
        if photo_id is None or event.dest_rel_path is None:
            if event.dest_rel_path:
                self._on_file(root, WatchEvent("file", root.id, event.dest_rel_path))
            return
        try:
            st = os.stat(root.path / event.dest_rel_path)
        except OSError:
            return
        self.catalog.move_photo(photo_id, root.id, event.dest_rel_path, st.st_size, st.st_mtime_ns)

    def _on_dir_moved(self, root: Root, event: WatchEvent) -> None:
        if event.dest_rel_path is None:
            self._on_dir_deleted(root, event)
            return
        n = self.catalog.move_folder(root.id, event.rel_path, event.dest_rel_path)
        log.info("folder %s renamed to %s: %d photos kept their ids", event.rel_path, event.dest_rel_path, n)
