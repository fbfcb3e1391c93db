"""Which filesystem a root lives on, and therefore how photod can watch it.

inotify only reports changes made through this machine's kernel. On a NAS share (NFS, SMB/CIFS) or a FUSE
filesystem backed by a remote store, files written by other machines never produce an event, so such
roots have to be polled. The mount table tells which is which.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from photod.errors import ConfigError

log = logging.getLogger(__name__)

MOUNTINFO = "/proc/self/mountinfo"
PROC_MOUNTS = "/proc/mounts"
INOTIFY_SYSCTL_DIR = "/proc/sys/fs/inotify"

# Filesystems where changes can come from other machines, so inotify misses them.
NETWORK_FS = frozenset(
    {
        "nfs",
        "nfs4",
        "cifs",
        "smb",
        "smb3",
        "smbfs",
        "ncpfs",
        "9p",
        "virtiofs",
        "vboxsf",
        "vmhgfs",
        "davfs",
        "coda",
        "afs",
        "ceph",
        "glusterfs",
        "lustre",
        "gpfs",
        "beegfs",
        "ocfs2",
        "gfs2",
        "orangefs",
        "fuse",
        "fuse.sshfs",
        "sshfs",
        "fuse.rclone",
        "fuse.s3fs",
        "fuse.gcsfuse",
        "fuse.goofys",
        "fuse.davfs2",
        "fuse.gvfsd-fuse",
        "fuse.vmhgfs-fuse",
        "fuse.juicefs",
        "fuse.glusterfs",
        "fuse.cephfs",
    }
)

# FUSE filesystems that drive a local disk: every change passes through this kernel, so inotify works.
LOCAL_FUSE = frozenset(
    {
        "fuseblk",
        "fuse.ntfs-3g",
        "fuse.ntfs",
        "fuse.exfat",
        "fuse.exfat-fuse",
        "fuse.fuse-exfat",
        "fuse.apfs-fuse",
        "fuse.lxcfs",
        "fuse.portal",
        "fuse.fuse-overlayfs",
    }
)

_OCTAL = re.compile(r"\\([0-7]{3})")


@dataclass(frozen=True)
class Mount:
    mount_point: str
    fs_type: str
    source: str


def unescape(field: str) -> str:
    """Undo the kernel's octal escapes (`\\040` for a space, `\\011` tab, `\\012` newline, `\\134` backslash)."""
    return _OCTAL.sub(lambda m: chr(int(m.group(1), 8)), field)


def parse_mounts(text: str) -> list[Mount]:
    """Parse a mount table, in /proc/self/mountinfo format or the older /proc/mounts format.

    mountinfo lines are `ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTS`;
    /proc/mounts lines are `SOURCE MOUNTPOINT FSTYPE OPTS DUMP PASS`. Malformed lines are skipped.
    """
    mounts = []
    for line in text.splitlines():
        fields = line.split()
        if not fields:
            continue
        if "-" in fields[6:]:
            sep = fields.index("-", 6)
            if len(fields) < sep + 3:
                continue
            mounts.append(Mount(unescape(fields[4]), fields[sep + 1], unescape(fields[sep + 2])))
        elif len(fields) >= 3:
            mounts.append(Mount(unescape(fields[1]), fields[2], unescape(fields[0])))
    return mounts


def read_mounts(path: str | os.PathLike[str] | None = None) -> list[Mount]:
    """The mount table at `path` (default /proc/self/mountinfo, then /proc/mounts); [] when unreadable."""
    candidates = [path] if path is not None else [MOUNTINFO, PROC_MOUNTS]
    for candidate in candidates:
        try:
            # surrogateescape: mount points are bytes; a non-UTF-8 one must not make the table unreadable.
            return parse_mounts(Path(candidate).read_text(encoding="utf-8", errors="surrogateescape"))
        except OSError as exc:
            log.debug("cannot read the mount table %s: %s", candidate, exc)
    return []


def mount_for(path: str | os.PathLike[str], mounts: Sequence[Mount]) -> Mount | None:
    """The mount that holds `path`: the longest mount point that is a prefix of its real path.

    When two mounts share a mount point, the later one in the table is on top and wins.
    """
    real = os.path.realpath(path)
    best: Mount | None = None
    for m in mounts:
        mp = m.mount_point.rstrip("/") or "/"
        if mp == "/" or real == mp or real.startswith(mp + "/"):
            if best is None or len(mp) >= len(best.mount_point.rstrip("/") or "/"):
                best = m
    return best


def is_network_fs(fs_type: str) -> bool:
    """True for filesystems whose changes inotify may not see: network shares and non-local FUSE."""
    fs_type = fs_type.lower()
    if fs_type in LOCAL_FUSE:
        return False
    return fs_type in NETWORK_FS or fs_type.startswith("fuse.") or fs_type.startswith("nfs")


def choose_watch_mode(
    configured: str, path: str | os.PathLike[str], mounts: Sequence[Mount] | None = None
) -> tuple[str, str]:
    """("inotify" | "poll", reason): what to watch `path` with.

    An explicit `inotify` or `poll` is honoured; `auto` polls network and FUSE filesystems, where
    inotify sees nothing written by other machines, and uses inotify everywhere else.
    """
    if configured in ("inotify", "poll"):
        return configured, f"watch = {configured!r} in the configuration"
    if configured != "auto":
        raise ConfigError(f"watch mode {configured!r} for {path} is not known", "allowed: auto, inotify, poll")
    table = read_mounts() if mounts is None else mounts
    m = mount_for(path, table)
    if m is None:
        return "inotify", f"the mount table does not say what {path} is on; assuming a local filesystem"
    if is_network_fs(m.fs_type):
        return "poll", (
            f"{path} is on {m.fs_type} ({m.source} at {m.mount_point}); inotify sees no changes "
            "made by other machines there, so it is polled"
        )
    return "inotify", f"{path} is on local {m.fs_type} ({m.source} at {m.mount_point})"


def inotify_limits(proc_dir: str | os.PathLike[str] = INOTIFY_SYSCTL_DIR) -> dict[str, int | None]:
    """The kernel's inotify limits (None where unavailable), for `photod doctor`."""
    limits: dict[str, int | None] = {}
    for name in ("max_user_watches", "max_user_instances", "max_queued_events"):
        try:
            limits[name] = int((Path(proc_dir) / name).read_text().strip())
        except (OSError, ValueError):
            limits[name] = None
    return limits
