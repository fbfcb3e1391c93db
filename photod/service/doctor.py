"""`photod doctor`: the checks a person would otherwise do by hand when photos do not show up.

It must survive what it diagnoses: native libraries are exercised in a child process (photod.service.probe),
so one that crashes while loading becomes a failed check naming it and the signal, not a dead doctor.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import site
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

from photod.config import Config
from photod.errors import NoModelError
from photod.service.cpu import FEATURES, read_cpu

# Probed in a child (photod.service.probe.PROBES); "walker" is the C folder walker.
DAEMON_PROBES = (
    "numpy",
    "PIL",
    "pillow_heif",
    "rawpy",
    "av",
    "lmdb",
    "faiss",
    "onnxruntime",
    "shapely",
    "watchdog",
    "textual",
    "walker",
)
FINETUNE_DEPS = ("torch", "cn_clip", "onnx")
# What pip calls the package a probe exercises, for the hint
PIP_NAMES = {
    "PIL": "pillow",
    "pillow_heif": "pillow-heif",
    "faiss": "faiss-cpu",
    "walker": "photod",
    "rapidocr": "'photod[ocr]'",
}
# A child's time for all its probes, and for timing the encoder: imports under an emulator take many seconds
PROBE_TIMEOUT = 180.0
RATE_TIMEOUT = 180.0
RATE_SECONDS = 2.0  # how long the encoder is timed, after one warm-up batch
RATE_BATCH = 4


@dataclass(frozen=True)
class Check:
    name: str
    level: str  # ok | warn | fail
    detail: str
    hint: str = ""


def run_checks(cfg: Config, mounts_path: str | None = None, probes: Sequence[str] = DAEMON_PROBES) -> Iterator[Check]:
    """Every check in turn; `probes` are the modules imported in a child (DAEMON_PROBES, or a test's own)."""
    yield _python()
    yield _cpu()
    yield from _dependencies(cfg, probes)
    yield from _data_dir(cfg)
    yield from _inotify()
    yield from _roots(cfg, mounts_path)
    yield from _model(cfg)
    yield from _signals(cfg)


def _python() -> Check:
    ok = sys.version_info >= (3, 11)
    return Check("python", "ok" if ok else "fail", sys.version.split()[0], "photod needs Python 3.11 or newer")


def _cpu() -> Check:
    cpu = read_cpu()
    if cpu.foreign:
        return Check(
            "cpu",
            "warn",
            f"/proc/cpuinfo describes an x86 CPU ({cpu.model}) on this ARM machine: an "
            "emulator (qemu-user) showing the host's",
            "onnxruntime crashes on it: bind-mount an ARM "
            "/proc/cpuinfo over it (scripts/arm64-check.sh in photod's repository does)",
        )
    have = ", ".join(FEATURES[f] for f in cpu.features()) or "only its base vector instructions"
    lacks = ", ".join(FEATURES[f] for f in cpu.lacking())
    return Check(
        "cpu",
        "ok",
        f"{cpu.model}, {cpu.cores} cores; has {have}" + (f"; lacks {lacks}" if lacks else "") + f": {cpu.int8_kind()}",
    )


def _dependencies(cfg: Config, probes: Sequence[str]) -> Iterator[Check]:
    names = list(probes)
    if cfg.signals.ocr and importlib.util.find_spec("rapidocr") is not None:
        names.append("rapidocr")
    for name, result in probe(names).items():
        yield _probe_check(name, result)
    jxl = importlib.util.find_spec("pillow_jxl") is not None
    yield Check(
        "jxl extra",
        "ok" if jxl else "warn",
        "JPEG XL photos are read" if jxl else "not installed: JPEG XL photos fail",
        "pip install 'photod[jxl]' (pillow-jxl-plugin, GPL-3.0)",
    )
    missing = [n for n in FINETUNE_DEPS if importlib.util.find_spec(n) is None]
    yield Check(
        "finetune extra",
        "ok" if not missing else "warn",
        "installed" if not missing else f"missing {', '.join(missing)} (only needed for model import and finetune)",
        "pip install 'photod[finetune]' on the machine that imports or trains models",
    )


def _probe_check(name: str, result: dict) -> Check:
    package = PIP_NAMES.get(name, name)
    label = "folder walker" if name == "walker" else f"import {name}"
    if not result["ok"]:
        return Check(
            label,
            "fail",
            result["detail"],
            result.get("hint") or f"reinstall it: pip install --force-reinstall {package}",
        )
    if name == "walker" and not result["detail"].startswith("C"):
        return Check(
            label,
            "warn",
            "Python: scans of big libraries are several times slower",
            "install a C compiler and the Python headers (Debian/Raspberry Pi OS: sudo apt install gcc "
            "python3-dev), then reinstall photod",
        )
    if name == "walker":
        return Check(label, "ok", f"{result['detail']}: scans read folders in parallel threads")
    return Check(label, "ok", result["detail"])


def probe(names: Sequence[str], timeout: float = PROBE_TIMEOUT) -> dict[str, dict]:
    """{name: {"ok", "detail"[, "hint"]}} for each probe, run in children: a child that crashes or hangs
    fails the probe it was running, and a new child takes the rest."""
    results: dict[str, dict] = {}
    left = list(names)
    while left:
        records, death = _run_child(["-m", "photod.service.probe", *left], timeout)
        started = None
        for record in records:
            if "start" in record:
                started = record["start"]
            elif record.get("name") in left:
                results[record["name"]] = record
        unfinished = [n for n in left if n not in results]
        if unfinished:
            # the one it had started when it died; all of them if it died before starting any (or exited
            # without a word, which would otherwise loop forever)
            culprits = [started] if started in unfinished else unfinished
            why = death or "ended without reporting"
            for name in culprits:
                results[name] = {"ok": False, "detail": f"the probe {why}", "hint": _death_hint(name, why)}
        left = [n for n in left if n not in results]
    return {n: results[n] for n in names}


def _run_child(args: Sequence[str], timeout: float) -> tuple[list[dict], str | None]:
    """The JSON records a child printed, and how it died (None when it exited 0)."""
    env = dict(os.environ)
    package_parent = str(Path(__file__).resolve().parents[2])
    if package_parent not in (*site.getsitepackages(), site.getusersitepackages()):
        # photod run from a checkout: the child imports the same photod (a site dir is on its path anyway)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_parent, os.environ.get("PYTHONPATH")]))
    try:
        done = subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=timeout, env=env)
        out, code, err = done.stdout, done.returncode, done.stderr
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode(errors="replace") if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        code, err = None, ""
    records = []
    for line in out.splitlines():
        try:
            records.append(json.loads(line))
        except ValueError:
            continue  # a library's own print
    if code == 0:
        return records, None
    if code is None:
        return records, f"did not finish in {timeout:.0f} s"
    if code < 0:
        return records, f"crashed with signal {-code} ({_signal_name(-code)})"
    last = err.strip().splitlines()[-1:] or [""]
    return records, f"exited with status {code}: {last[0]}"


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return "unknown signal"


def _death_hint(name: str, death: str) -> str:
    package = PIP_NAMES.get(name, name)
    reinstall = f"reinstall it: pip install --force-reinstall {package}"
    if "SIGILL" in death:
        return f"{package} uses an instruction this CPU lacks: install a build made for this CPU; {reinstall}"
    if "SIGSEGV" in death or "SIGBUS" in death:
        return (
            f"{package}'s native code crashed while loading. Under an emulator (qemu-user), bind-mount an "
            f"ARM /proc/cpuinfo over the host's x86 one; otherwise {reinstall}"
        )
    return reinstall


def _data_dir(cfg: Config) -> Iterator[Check]:
    d = cfg.data_dir
    if not d.exists():
        yield Check("data dir", "warn", f"{d} does not exist yet", "it is created at the first `photod run`")
        return
    mode = d.stat().st_mode & 0o777
    writable = os.access(d, os.W_OK)
    yield Check(
        "data dir",
        "ok" if writable else "fail",
        f"{d} (mode {mode:o})",
        f"make {d} writable by the user that runs photod",
    )
    if mode & 0o077:
        yield Check("data dir privacy", "warn", f"{d} is readable by others (mode {mode:o})", f"chmod 700 {d}")
    free = shutil.disk_usage(d).free
    yield Check(
        "free space",
        "ok" if free > 1 << 30 else "warn",
        f"{free / (1 << 30):.1f} GiB free on {d}",
        "staging needs about 50 KB per photo; free some space",
    )


def _inotify() -> Iterator[Check]:
    from photod.roots.mounts import inotify_limits

    limits = inotify_limits()
    watches = limits.get("max_user_watches")
    if watches is None:
        yield Check("inotify", "warn", "not available here: every root will be polled")
        return
    level = "ok" if watches >= 65536 else "warn"
    yield Check(
        "inotify watches",
        level,
        f"max_user_watches = {watches} (one per watched folder)",
        "raise it: echo fs.inotify.max_user_watches=524288 | sudo tee /etc/sysctl.d/90-photod.conf "
        "&& sudo sysctl --system",
    )


def _roots(cfg: Config, mounts_path: str | None) -> Iterator[Check]:
    """Every root photod watches: the config's and those the catalog holds (`photod roots add`)."""
    from photod.roots.mounts import choose_watch_mode, read_mounts

    mounts = read_mounts(mounts_path) if mounts_path else read_mounts()
    roots = {str(r.path): (r.path, r.watch, "from the config") for r in cfg.roots}
    catalog_roots, problem = _catalog_roots(cfg)
    if problem:
        yield problem
    for path, watch in catalog_roots:
        roots.setdefault(str(path), (path, watch, "added with `photod roots add`"))
    if not roots:
        yield Check(
            "roots",
            "warn",
            "none: the config names none and none were added",
            "add [[roots]] entries to the config or use `photod roots add PATH`",
        )
    for path, watch, source in roots.values():
        yield _root_check(path, watch, mounts, choose_watch_mode, source)


def _catalog_roots(cfg: Config) -> tuple[list[tuple[Path, str]], Check | None]:
    """(path, watch) of the catalog's watched roots, read without creating or migrating anything."""
    from photod.store.catalog import CATALOG_NAME

    db = cfg.data_dir / CATALOG_NAME
    if not db.exists():
        return [], None
    try:
        conn = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True, timeout=5)
        try:
            rows = conn.execute("SELECT path, watch FROM roots WHERE removed_at IS NULL ORDER BY id").fetchall()
        finally:
            conn.close()
    except sqlite3.Error as exc:
        return [], Check(
            "catalog",
            "fail",
            f"cannot read the roots in {db}: {exc}",
            "`photod status` says more; restore the data dir from a backup if it is damaged",
        )
    return [(Path(path), watch) for path, watch in rows], None


def _root_check(path: Path, watch: str, mounts, choose_watch_mode, source: str) -> Check:
    name = f"root {path}"
    if not path.exists():
        return Check(name, "warn", "missing (offline): its photos are kept", "mount the drive or share")
    if not os.access(path, os.R_OK | os.X_OK):
        return Check(name, "fail", "not readable by this user", f"grant read access: chmod -R a+rX {path}")
    mode, reason = choose_watch_mode(watch, path, mounts)
    return Check(name, "ok", f"{mode} ({reason}); {source}")


def _model(cfg: Config) -> Iterator[Check]:
    try:
        from photod.model.registry import active_bundle

        bundle = active_bundle(cfg.data_dir)
    except Exception as exc:  # noqa: BLE001 - report any broken model state
        yield Check("model", "fail", str(exc), "`photod model list`, then `photod model use NAME`")
        return
    if bundle is None:
        yield Check(
            "model", "warn", f"none installed: searching {NoModelError.SEARCHED_WITHOUT} only", NoModelError().hint
        )
        return
    yield Check("model", "ok", f"{bundle.name} ({bundle.arch}, {bundle.precision})")
    yield _encoder_rate(cfg, bundle)


def _encoder_rate(cfg: Config, bundle) -> Check:
    """The image encoder timed on this machine for a few seconds, in a child like the probes."""
    threads, batch = cfg.workers.encode_threads, min(cfg.workers.batch_size, RATE_BATCH)
    records, death = _run_child(
        ["-m", "photod.service.probe", "--rate", str(bundle.path), str(threads), str(batch), str(RATE_SECONDS)],
        RATE_TIMEOUT,
    )
    if death is not None or not records:
        crashed = death is not None and "signal" in death
        return Check(
            "encoder speed",
            "fail",
            f"timing the image encoder {death or 'printed nothing'}",
            _death_hint("onnxruntime", death)
            if crashed
            else f"the bundle {bundle.path} may be damaged: import the model again (`photod model import`)",
        )
    r = records[-1]
    minutes = 10_000 / r["rate"] / 60
    per_10k = f"{minutes / 60:.1f} h" if minutes >= 90 else f"{minutes:.0f} min"
    return Check(
        "encoder speed",
        "ok",
        f"{r['rate']:.1f} images/s ({r['images']} images at batch {r['batch']}, {threads} threads; "
        f"loaded in {r['load_s']:.1f} s): about {per_10k} of encoding per 10,000 photos",
    )


def _signals(cfg: Config) -> Iterator[Check]:
    """Whether text in photos and places can be searched here, and why not."""
    from photod.ingest import ocr, places

    for name, on, module, hint in (
        (
            "text in photos",
            cfg.signals.ocr,
            ocr,
            "pip install 'photod[ocr]' (PP-OCR models ship inside "
            "the package; nothing is downloaded), or set signals.ocr = false",
        ),
        ("places", cfg.signals.places, places, "reinstall photod: the place data ships with it"),
    ):
        if not on:
            yield Check(name, "ok", "off in the config ([signals])")
            continue
        why = module.unavailable()
        yield Check(name, "ok" if why is None else "warn", "on" if why is None else why, hint)
