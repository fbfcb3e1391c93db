"""Is a root's drive or share there right now?

An unplugged USB drive or an unmounted share does not look like "no photos": it looks like a missing
folder, an empty mount point, or (when something was written into the bare mount point) a folder on the
parent filesystem. Each of these is *offline*, never a reason to delete anything. A hung NFS server makes
`stat` block forever, so the checks run on a daemon thread and give up after a timeout.

What the catalog does when a root comes or goes is written once too, in `RootKeeper`: the daemon (which
also starts and stops watching it) and `photod scan` both take a root offline, bring it back and scan it
through one.
"""

from __future__ import annotations

import logging
import os
import stat as stat_mod
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable, Sequence

from photod.roots.scanner import ScanReport, reconcile

if TYPE_CHECKING:
    from photod.store.catalog import Catalog, Root

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 10.0

# Checks in flight, by path. A check stuck in the kernel (a hung share) is joined by later checks of the
# same path instead of starting another thread that would only get stuck too.
_inflight: dict[str, tuple[threading.Thread, list]] = {}
_inflight_lock = threading.Lock()


@dataclass(frozen=True)
class Presence:
    online: bool
    device: int | None
    reason: str


def check_root(
    root: "Root",
    known_photos: int,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    stat: Callable[[str], os.stat_result] = os.stat,
    sample: Sequence[str] = (),
) -> Presence:
    """Whether `root` is online, with its st_dev and a human-readable reason.

    Offline when the path is gone, not a folder, unreadable, empty while the catalog knows
    `known_photos` photos in it, on another device than `root.device`, or not answering within
    `timeout` seconds. `sample` may name a few known photos (root-relative): when the device number
    changed but they are there, the same drive came back under a new number (a USB drive plugged into
    another port), and the root is online.
    """
    path = str(root.path)
    with _inflight_lock:
        thread, result = _inflight.get(path) or _start_probe(path, root.device, known_photos, stat, sample)
    thread.join(timeout)
    if not result:
        return Presence(False, None, f"{path} is not answering (no reply in {timeout:g} s; a hung network share?)")
    return result[0]


def _start_probe(
    path: str, device: int | None, known_photos: int, stat: Callable[[str], os.stat_result], sample: Sequence[str]
) -> tuple[threading.Thread, list]:
    """Start a probe thread; the caller holds _inflight_lock."""
    result: list[Presence] = []

    def probe() -> None:
        try:
            result.append(_probe(path, device, known_photos, stat, sample))
        except Exception as exc:  # noqa: BLE001 - any surprise means "cannot tell", which is offline
            result.append(Presence(False, None, f"{path} cannot be checked: {exc}"))
        finally:
            with _inflight_lock:
                _inflight.pop(path, None)

    thread = threading.Thread(target=probe, name=f"photod-presence {path}", daemon=True)
    _inflight[path] = (thread, result)
    thread.start()
    return thread, result


def _probe(
    path: str, device: int | None, known_photos: int, stat: Callable[[str], os.stat_result], sample: Sequence[str]
) -> Presence:
    try:
        st = stat(path)
    except FileNotFoundError:
        return Presence(False, None, f"{path} does not exist; the drive is probably unplugged or the share not mounted")
    except PermissionError:
        return Presence(
            False, None, f"{path} cannot be reached (permission denied); check the permissions of its parent folders"
        )
    except OSError as exc:
        return Presence(False, None, f"{path} cannot be read: {exc.strerror or exc}")
    if not stat_mod.S_ISDIR(st.st_mode):
        return Presence(False, None, f"{path} is not a folder")
    try:
        with os.scandir(path) as it:
            empty = next(it, None) is None
    except PermissionError:
        return Presence(
            False,
            st.st_dev,
            f"{path} cannot be read (permission denied); photod needs read and execute permission on it",
        )
    except OSError as exc:
        return Presence(False, st.st_dev, f"{path} cannot be listed: {exc.strerror or exc}")
    if empty and known_photos > 0:
        return Presence(
            False,
            st.st_dev,
            f"{path} is an empty folder; the drive is probably not mounted (photod knows {known_photos} photos there)",
        )
    if device is not None and st.st_dev != device:
        if _sample_present(path, sample, stat):
            return Presence(
                True,
                st.st_dev,
                f"{path} is back under a new device number ({st.st_dev}, was {device}) with the photos photod knows",
            )
        return Presence(
            False,
            st.st_dev,
            f"{path} is on a different device than before ({st.st_dev}, was "
            f"{device}); the drive is probably not mounted and this is the "
            "folder underneath its mount point",
        )
    return Presence(True, st.st_dev, f"{path} is present")


def _sample_present(path: str, sample: Sequence[str], stat: Callable[[str], os.stat_result]) -> bool:
    if not sample:
        return False
    for rel in sample:
        try:
            stat(str(Path(path) / rel))
        except OSError:
            return False
    return True


class RootKeeper:
    """Keeps the catalog in step with whether each root's drive is there.

    A root going offline keeps every photo, marked offline; coming back, the photos return to the
    state they had (nothing is staged again) and the root is scanned for what changed meanwhile. Each
    change of state is logged once, here, whoever noticed it.
    """

    def __init__(self, catalog: "Catalog", *, threads: int | None = None):
        self.catalog = catalog
        self.threads = threads
        # Photos known per root, refreshed by every check(): a burst of delete events (a folder of 1,000
        # photos removed) reuses it instead of counting a 100k-photo catalog once per event.
        self._known: dict[int, int] = {}

    def check(self, roots: Iterable["Root"]) -> list[tuple["Root", Presence]]:
        """Each root with its presence now, counting the photos the catalog knows in each first."""
        self._known = self.catalog.root_counts()
        return [(root, self.presence(root)) for root in roots]

    def presence(self, root: "Root") -> Presence:
        return check_root(root, self.known_photos(root.id))

    def known_photos(self, root_id: int) -> int:
        """Photos of the root the catalog knows, as of the last check() (counted now if none yet)."""
        if root_id not in self._known:
            self._known = self.catalog.root_counts()
        return self._known.setdefault(root_id, 0)  # a root with none is counted once, not per call

    def take_offline(self, root: "Root", reason: str) -> int:
        """Mark the root's photos offline (never deleted); returns how many were marked."""
        n = self.catalog.set_root_offline(root.id)
        log.warning("root %s is offline (%s): %d photos kept, marked offline", root.path, reason, n)
        return n

    def bring_online(self, root: "Root", device: int | None) -> int:
        """The root is there (on `device`): its offline photos return to their state; returns how many."""
        back = self.catalog.set_root_online(root.id, device)
        if back:
            log.info("root %s is back: %d photos online again, nothing re-staged", root.path, back)
        return back

    def scan(self, root_id: int, on_progress: Callable[[int], None] | None = None) -> ScanReport:
        """Reconcile the root with its folders. Presence is checked again before anything is marked
        deleted: a drive unplugged during the scan must not look like photos removed."""
        root = self.catalog.root(root_id)
        known = self.known_photos(root_id)
        return reconcile(
            self.catalog,
            root,
            present=lambda: check_root(root, known).online,
            on_progress=on_progress,
            threads=self.threads,
        )
