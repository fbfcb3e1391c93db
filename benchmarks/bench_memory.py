"""Peak memory of the daemon ingesting a library: staging, reading text in photos, encoding with ViT-B-16 int8.

    python benchmarks/bench_memory.py [--photos 2000] [--side 4000] [--text-share 0.3] [--modes ocr,no-ocr]
                                      [--bundle .bench/models/vit-b-16-int8] [--json FILE]

A library of 12-MP JPEGs (4000x3000; 30 % of them carry rendered Chinese/English text) is written under
.bench/memlib once. Every file has its own bytes (a JPEG comment with its number), so none is taken for a
copy of another and each is decoded, read and encoded. For each mode a real `photod run` is started on a
fresh data dir with the bundle installed, and its resident set (VmRSS, and the kernel's VmHWM peak) is
sampled from /proc every half second until every photo is indexed and, with OCR, read; then it is stopped
with SIGTERM. The 4 GB Raspberry Pi's budget for the daemon is 600 MB. Memory is set by the batch in hand,
not by the library's size, so the RSS at each tenth of the run is printed too: a flat line means a bigger
library peaks no higher.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from io import BytesIO
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import BENCH, REPO, bundle_path, cpu_summary, picture  # noqa: E402
from PIL import Image  # noqa: E402

BASES = 40  # distinct pictures; every file is one of them with its own comment


def base_jpegs(side: int, text_share: float) -> list[bytes]:
    """BASES large JPEGs, the first `text_share` of them with a phrase rendered on."""
    from tests.support.rendered_text import PHRASES, render

    out = []
    for i in range(BASES):
        img = picture(i, 256).resize((side, side * 3 // 4), Image.Resampling.BICUBIC)
        if i < round(BASES * text_share):
            img = render(img, PHRASES[i % len(PHRASES)], 0.04, seed=i)
        buf = BytesIO()
        img.save(buf, "JPEG", quality=88)
        out.append(buf.getvalue())
    return out


def with_comment(jpeg: bytes, n: int) -> bytes:
    """The same picture, other bytes: a COM segment right after SOI."""
    text = f"photod bench {n}".encode()
    return jpeg[:2] + b"\xff\xfe" + (len(text) + 2).to_bytes(2, "big") + text + jpeg[2:]


def library(n: int, side: int, text_share: float) -> Path:
    lib = BENCH / f"memlib-{n}-{side}-{text_share:g}"
    if len(list(lib.glob("*/*.jpg"))) == n:
        return lib
    bases = base_jpegs(side, text_share)
    for i in range(n):
        path = lib / f"folder{i // 500:03d}" / f"img_{i:06d}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(with_comment(bases[i % BASES], i))
    return lib


def rss_kib(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) of a process in KiB."""
    fields = status_kib(pid)
    return fields.get("VmRSS", 0), fields.get("VmHWM", 0)


def status_kib(pid: int) -> dict[str, int]:
    """The memory lines of /proc/PID/status in KiB. RssFile is file pages mapped in (the stage's LMDB file,
    the model files), which the kernel takes back under pressure; RssAnon is the process's own memory."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile"):
            fields[key] = int(value.split()[0])
    return fields


def done(db: Path, n: int, ocr: bool) -> tuple[int, int]:
    """(photos indexed, photos read) so far; readers must not block the daemon, so a locked read is a miss."""
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as conn:
            indexed = conn.execute("SELECT count(*) FROM photos WHERE state = 'indexed'").fetchone()[0]
            read = conn.execute("SELECT count(*) FROM photo_text").fetchone()[0] if ocr else n
            return int(indexed), int(read)
    except sqlite3.Error:
        return 0, 0


def run_daemon(lib: Path, bundle: Path, n: int, ocr: bool, timeout: float) -> dict:
    from photod.model import registry

    with tempfile.TemporaryDirectory(prefix="photod-mem-") as tmp:
        data = Path(tmp) / "data"
        data.mkdir(mode=0o700)
        registry.install_bundle(bundle, data, "vit-b-16-int8")
        registry.use_bundle(data, "vit-b-16-int8")
        config = Path(tmp) / "config.toml"
        config.write_text(
            f'[daemon]\ndata_dir = "{data}"\n[signals]\nocr = {str(ocr).lower()}\n[[roots]]\npath = "{lib}"\n'
        )
        log = open(Path(tmp) / "daemon.log", "w")
        proc = subprocess.Popen(
            [sys.executable, "-m", "photod", "--config", str(config), "run"],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=REPO,
        )
        started, samples, peak, anon_peak, file_peak = time.monotonic(), [], 0, 0, 0
        try:
            while time.monotonic() - started < timeout and proc.poll() is None:
                time.sleep(0.5)
                fields = status_kib(proc.pid)
                rss, hwm = fields.get("VmRSS", 0), fields.get("VmHWM", 0)
                peak = max(peak, hwm)
                anon_peak = max(anon_peak, fields.get("RssAnon", 0))
                file_peak = max(file_peak, fields.get("RssFile", 0))
                indexed, read = done(data / "catalog.db", n, ocr)
                samples.append((time.monotonic() - started, rss, indexed))
                if indexed >= n and read >= n:
                    break
        finally:
            wall = time.monotonic() - started
            if proc.poll() is None:
                peak = max(peak, rss_kib(proc.pid)[1])
                proc.send_signal(signal.SIGTERM)
                proc.wait(60)
            log.close()
        indexed, read = done(data / "catalog.db", n, ocr)
    tenths = [
        max((s[1] for s in samples if s[2] <= n * (t + 1) / 10 and s[2] > n * t / 10), default=0) for t in range(10)
    ]
    return {
        "ocr": ocr,
        "peak_rss_mib": peak / 1024,
        "peak_anon_mib": anon_peak / 1024,
        "peak_file_mib": file_peak / 1024,
        "seconds": wall,
        "indexed": indexed,
        "read": read,
        "photos_per_s": indexed / wall if wall else 0.0,
        "rss_mib_by_tenth": [r / 1024 for r in tenths],
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--photos", type=int, default=2000)
    ap.add_argument("--side", type=int, default=4000, help="longer side of each photo (4000: 12 MP)")
    ap.add_argument("--text-share", type=float, default=0.3)
    ap.add_argument("--modes", default="ocr,no-ocr")
    ap.add_argument("--bundle", type=Path, default=bundle_path("ViT-B-16", "int8"))
    ap.add_argument("--timeout", type=float, default=7200)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    if not (args.bundle / "manifest.json").exists():
        print(
            f"no bundle at {args.bundle}: build it with `python benchmarks/common.py --archs ViT-B-16 "
            "--precisions int8`",
            file=sys.stderr,
        )
        return 2
    print(f"cpu: {cpu_summary()}; load {os.getloadavg()[0]:.2f}")
    lib = library(args.photos, args.side, args.text_share)
    report = {"cpu": cpu_summary(), "photos": args.photos, "side": args.side, "runs": []}
    for mode in args.modes.split(","):
        r = run_daemon(lib, args.bundle, args.photos, mode == "ocr", args.timeout)
        report["runs"].append(r)
        print(
            f"{mode:>7}: peak RSS {r['peak_rss_mib']:.0f} MiB (own memory {r['peak_anon_mib']:.0f}, "
            f"mapped files {r['peak_file_mib']:.0f}), {r['indexed']} indexed, {r['read']} read, "
            f"{r['seconds']:.0f} s ({r['photos_per_s']:.2f} photos/s); RSS by tenth of the run (MiB): "
            + " ".join(f"{x:.0f}" for x in r["rss_mib_by_tenth"])
        )
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
