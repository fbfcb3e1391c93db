"""`photod doctor`: the checks a person would otherwise do by hand when photos do not show up."""

from __future__ import annotations

import importlib
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from photod.config import Config

DAEMON_DEPS = ("numpy", "PIL", "pillow_heif", "rawpy", "av", "lmdb", "faiss", "onnxruntime", "watchdog", "textual")
FINETUNE_DEPS = ("torch", "cn_clip", "onnx")


@dataclass(frozen=True)
class Check:
    name: str
    level: str  # ok | warn | fail
    detail: str
    hint: str = ""


def run_checks(cfg: Config, mounts_path: str | None = None) -> Iterator[Check]:
    yield _python()
    yield from _dependencies()
    yield _walker()
    yield from _data_dir(cfg)
    yield from _inotify()
    yield from _roots(cfg, mounts_path)
    yield _model(cfg)
    yield from _signals(cfg)


def _python() -> Check:
    ok = sys.version_info >= (3, 11)
    return Check("python", "ok" if ok else "fail", sys.version.split()[0], "photod needs Python 3.11 or newer")


def _dependencies() -> Iterator[Check]:
    for name in DAEMON_DEPS:
        try:
            mod = importlib.import_module(name)
            yield Check(f"import {name}", "ok", getattr(mod, "__version__", "present"))
        except Exception as exc:  # noqa: BLE001 - a broken install can raise anything at import
            yield Check(f"import {name}", "fail", str(exc), "reinstall photod: pip install --force-reinstall photod")
    jxl = importlib.util.find_spec("pillow_jxl") is not None
    yield Check("jxl extra", "ok" if jxl else "warn", "JPEG XL photos are read" if jxl else
                "not installed: JPEG XL photos fail", "pip install 'photod[jxl]' (pillow-jxl-plugin, GPL-3.0)")
    missing = [n for n in FINETUNE_DEPS if importlib.util.find_spec(n) is None]
    yield Check("finetune extra", "ok" if not missing else "warn",
                "installed" if not missing else f"missing {', '.join(missing)} (only needed for model import "
                "and finetune)", "pip install 'photod[finetune]' on the machine that imports or trains models")


def _walker() -> Check:
    from photod.roots.listing import BACKEND

    if BACKEND.startswith("C"):
        return Check("folder walker", "ok", f"{BACKEND}: scans read folders in parallel threads")
    return Check("folder walker", "warn", "Python: scans of big libraries are several times slower",
                 "install a C compiler and the Python headers (Debian/Raspberry Pi OS: sudo apt install gcc "
                 "python3-dev), then reinstall photod")


def _data_dir(cfg: Config) -> Iterator[Check]:
    d = cfg.data_dir
    if not d.exists():
        yield Check("data dir", "warn", f"{d} does not exist yet", "it is created at the first `photod run`")
        return
    mode = d.stat().st_mode & 0o777
    writable = os.access(d, os.W_OK)
    yield Check("data dir", "ok" if writable else "fail", f"{d} (mode {mode:o})",
                f"make {d} writable by the user that runs photod")
    if mode & 0o077:
        yield Check("data dir privacy", "warn", f"{d} is readable by others (mode {mode:o})", f"chmod 700 {d}")
    free = shutil.disk_usage(d).free
    yield Check("free space", "ok" if free > 1 << 30 else "warn", f"{free / (1 << 30):.1f} GiB free on {d}",
                "staging needs about 50 KB per photo; free some space")


def _inotify() -> Iterator[Check]:
    from photod.roots.mounts import inotify_limits

    limits = inotify_limits()
    watches = limits.get("max_user_watches")
    if watches is None:
        yield Check("inotify", "warn", "not available here: every root will be polled")
        return
    level = "ok" if watches >= 65536 else "warn"
    yield Check("inotify watches", level, f"max_user_watches = {watches} (one per watched folder)",
                "raise it: echo fs.inotify.max_user_watches=524288 | sudo tee /etc/sysctl.d/90-photod.conf "
                "&& sudo sysctl --system")


def _roots(cfg: Config, mounts_path: str | None) -> Iterator[Check]:
    from photod.roots.mounts import choose_watch_mode, read_mounts

    mounts = read_mounts(mounts_path) if mounts_path else read_mounts()
    if not cfg.roots:
        yield Check("roots", "warn", "no roots in the config", "add [[roots]] entries or use `photod roots add`")
    for root in cfg.roots:
        yield _root_check(root.path, root.watch, mounts, choose_watch_mode)


def _root_check(path: Path, watch: str, mounts, choose_watch_mode) -> Check:
    name = f"root {path}"
    if not path.exists():
        return Check(name, "warn", "missing (offline): its photos are kept", "mount the drive or share")
    if not os.access(path, os.R_OK | os.X_OK):
        return Check(name, "fail", "not readable by this user", f"grant read access: chmod -R a+rX {path}")
    mode, reason = choose_watch_mode(watch, path, mounts)
    return Check(name, "ok", f"{mode} ({reason})")


def _model(cfg: Config) -> Check:
    try:
        from photod.model.registry import active_bundle

        bundle = active_bundle(cfg.data_dir)
    except Exception as exc:  # noqa: BLE001 - report any broken model state
        return Check("model", "fail", str(exc), "`photod model list`, then `photod model use NAME`")
    if bundle is None:
        return Check("model", "warn", "none installed: filename search only",
                     "`photod model pull ViT-B-16`, or `photod model import FILE.pt --arch ViT-B-16`")
    return Check("model", "ok", f"{bundle.name} ({bundle.arch}, {bundle.precision})")


def _signals(cfg: Config) -> Iterator[Check]:
    """Whether text in photos and places can be searched here, and why not."""
    from photod.ingest import ocr, places

    for name, on, module, hint in (
            ("text in photos", cfg.signals.ocr, ocr, "pip install 'photod[ocr]' (PP-OCR models ship inside "
             "the package; nothing is downloaded), or set signals.ocr = false"),
            ("places", cfg.signals.places, places, "reinstall photod: the place data ships with it")):
        if not on:
            yield Check(name, "ok", "off in the config ([signals])")
            continue
        why = module.unavailable()
        yield Check(name, "ok" if why is None else "warn", "on" if why is None else why, hint)
