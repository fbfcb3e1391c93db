"""Staging throughput on the exif-samples photos, with and without Pillow's JPEG draft mode.

    python benchmarks/bench_stage.py [--samples DIR] [--repeat 3] [--workers 1] [--size 384] [--json FILE]

Every photo under the samples folder that photod can decode is staged (decode, EXIF, upright, RGB,
downscale, JPEG encode, and one LMDB write per pass) with draft on and with draft off. The files are read
into memory once beforehand, so the figures compare decoding, not disk reads. Each mode is repeated and
the best pass kept. Draft mode only changes JPEG decoding, so the JPEG-only figures are given too: HEIC
decoding, unaffected by it, dominates the time of the whole set.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from photod.config import StageConfig
from photod.errors import DecodeError
from photod.ingest.decode import decode_photo
from photod.store.stage import Stage

REPO = Path(__file__).resolve().parent.parent
DEFAULT_SAMPLES = REPO.parent / "shared" / "photos" / "exif-samples"


def load_photos(samples: Path, size: int) -> dict[str, bytes]:
    """Bytes of every file photod can decode, by path relative to `samples`."""
    photos = {}
    for path in sorted(p for p in samples.rglob("*") if p.is_file() and not p.name.startswith("README")):
        data = path.read_bytes()
        try:
            decode_photo(data, path.name, size=size)
        except DecodeError:
            continue
        photos[path.relative_to(samples).as_posix()] = data
    return photos


def stage_once(photos: dict[str, bytes], stage: Stage, size: int, draft: bool, workers: int) -> float:
    """Seconds to stage every photo once (decode in `workers` threads, one LMDB transaction)."""
    names = list(photos)
    t0 = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        decoded = list(pool.map(lambda n: decode_photo(photos[n], n, size=size, draft=draft), names))
    stage.put_many({i: d.jpeg for i, d in enumerate(decoded)})
    return time.perf_counter() - t0


def measure(photos: dict[str, bytes], size: int, repeat: int, workers: int) -> dict[str, float]:
    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="photod-bench-") as tmp, Stage(tmp) as stage:
        for draft in (True, False):
            best = min(stage_once(photos, stage, size, draft, workers) for _ in range(repeat))
            out["draft" if draft else "no_draft"] = len(photos) / best
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--samples", type=Path, default=DEFAULT_SAMPLES)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--size", type=int, default=StageConfig.size)
    ap.add_argument("--json", type=Path, help="write the figures here as well as to stdout")
    args = ap.parse_args(argv)
    if not args.samples.is_dir():
        print(f"sample photos not found at {args.samples}", file=sys.stderr)
        return 2

    photos = load_photos(args.samples, args.size)
    jpegs = {n: d for n, d in photos.items() if d[:3] == b"\xff\xd8\xff"}
    all_rates = measure(photos, args.size, args.repeat, args.workers)
    jpeg_rates = measure(jpegs, args.size, args.repeat, args.workers)
    figures = {
        "photos": len(photos),
        "megabytes": round(sum(map(len, photos.values())) / 1e6, 1),
        "jpeg_photos": len(jpegs),
        "size": args.size,
        "workers": args.workers,
        "repeat": args.repeat,
        "all": {k: round(v, 1) for k, v in all_rates.items()},
        "jpeg_only": {k: round(v, 1) for k, v in jpeg_rates.items()},
        "ratio_draft_vs_no_draft": round(all_rates["draft"] / all_rates["no_draft"], 2),
        "ratio_draft_vs_no_draft_jpeg_only": round(jpeg_rates["draft"] / jpeg_rates["no_draft"], 2),
    }
    print(
        f"{len(photos)} photos ({figures['megabytes']} MB), {len(jpegs)} of them JPEG; "
        f"stage size {args.size}, {args.workers} worker(s), best of {args.repeat}",
        file=sys.stderr,
    )
    for label, rates in (("all photos", all_rates), ("JPEG only ", jpeg_rates)):
        print(
            f"{label}: draft {rates['draft']:.1f} photos/s, no draft {rates['no_draft']:.1f} photos/s, "
            f"ratio {rates['draft'] / rates['no_draft']:.2f}x",
            file=sys.stderr,
        )
    text = json.dumps(figures, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
