"""How far the int8 vectors of the same photos differ between CPUs.

A library indexed on a PC or GPU box and searched on a Raspberry Pi compares vectors made by different int8
kernels: VNNI or AVX2 on x86, dot-product (Cortex-A76) or plain NEON (Cortex-A72) on ARM. The photos are
preprocessed once, here, into one array, so every machine encodes the very same pixels; each photo is
encoded alone (batch 1), so the comparison measures the CPU, not the batch it shared.

    python benchmarks/bench_int8_cpus.py prepare --bundle B --photos DIR --out pixels.npy [--count 24]
    python benchmarks/bench_int8_cpus.py encode --bundle B --pixels pixels.npy --out x86.npy
    python benchmarks/bench_int8_cpus.py compare --bundle B x86.npy cortex-a72.npy cortex-a76.npy

`encode` needs only the daemon's dependencies (it runs inside scripts/arm64-check.sh's arm64 root filesystem:
`scripts/arm64-check.sh int8 BUNDLE` does all three steps). `compare` prints cosine min/mean of every file
against the first, and the int8 bounds the bundle met against fp32 at import (its manifest's).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def int8_bounds(bundle_dir: Path) -> tuple[float, float]:
    """(min, mean) cosine against fp32 below which import refuses an int8 bundle, as its manifest records
    them (photod/finetune/export.py's BOUNDS; export.py needs torch, which `encode` must run without)."""
    manifest = json.loads((bundle_dir / "manifest.json").read_text(encoding="utf-8"))
    bounds = manifest["verification"]["bounds"]["int8"]
    return float(bounds["min"]), float(bounds["mean"])


def prepare(bundle_dir: Path, photos: Path, out: Path, count: int) -> None:
    from PIL import Image

    from photod.model.bundle import Bundle
    from photod.model.preprocess import preprocess_batch

    bundle = Bundle.load(bundle_dir)
    images = []
    for path in sorted(p for p in photos.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg")):
        try:
            with Image.open(path) as img:
                img.draft("RGB", (512, 512))
                images.append(img.convert("RGB"))
        except OSError:
            continue  # the samples hold a few broken files on purpose
        if len(images) == count:
            break
    pixels = preprocess_batch(images, bundle.image_size, tuple(bundle.mean), tuple(bundle.std))
    np.save(out, pixels)
    print(f"{len(images)} photos from {photos} -> {out} {pixels.shape}")


def encode(bundle_dir: Path, pixels_path: Path, out: Path, threads: int) -> None:
    from benchmarks.common import cpu_summary
    from photod.model.bundle import Bundle
    from photod.model.encoder import ImageEncoder

    bundle = Bundle.load(bundle_dir)
    encoder = ImageEncoder(bundle, threads=threads)
    pixels = np.load(pixels_path)
    vectors, t0 = [], time.perf_counter()
    for i in range(len(pixels)):
        vectors.append(encoder.encode_array(pixels[i : i + 1]))
        print(f"  {i + 1}/{len(pixels)} in {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
    vectors = np.concatenate(vectors)
    np.save(out, vectors)
    Path(f"{out}.json").write_text(json.dumps({"cpu": cpu_summary(), "bundle": bundle.name}) + "\n")
    print(f"{bundle.name} on {cpu_summary()}: {len(vectors)} vectors -> {out}")


def compare(bundle_dir: Path, paths: list[Path]) -> int:
    from benchmarks.common import cpu_summary

    low, mean = int8_bounds(bundle_dir)

    def cpu_of(path: Path) -> str:
        meta = Path(f"{path}.json")
        return json.loads(meta.read_text())["cpu"] if meta.exists() else "?"

    print(f"compared on {cpu_summary()}")
    print(f"reference: {paths[0].name} ({cpu_of(paths[0])})")
    print(
        f"| vectors | against | photos | bit-identical | min cosine | mean cosine | within int8 bounds (min {low}, "
        f"mean {mean}) |"
    )
    print("| --- | --- | ---: | ---: | ---: | ---: | --- |")
    worst = 1.0
    for i, path in enumerate(paths[1:], 1):
        for other in paths[:i]:
            a, b = np.load(other), np.load(path)
            cos = (a * b).sum(axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
            within = cos.min() >= low and cos.mean() >= mean
            worst = min(worst, float(cos.min()))
            same = int((a == b).all(axis=1).sum())
            print(
                f"| {path.name} ({cpu_of(path)}) | {other.name} | {len(cos)} | {same} | {cos.min():.6f} | "
                f"{cos.mean():.6f} | {'yes' if within else 'NO'} |"
            )
    return 0 if worst >= low else 1


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("prepare")
    s.add_argument("--bundle", type=Path, required=True)
    s.add_argument("--photos", type=Path, required=True)
    s.add_argument("--out", type=Path, required=True)
    s.add_argument("--count", type=int, default=24)
    s = sub.add_parser("encode")
    s.add_argument("--bundle", type=Path, required=True)
    s.add_argument("--pixels", type=Path, required=True)
    s.add_argument("--out", type=Path, required=True)
    s.add_argument("--threads", type=int, default=2)
    s = sub.add_parser("compare")
    s.add_argument("--bundle", type=Path, required=True)
    s.add_argument("vectors", type=Path, nargs="+")
    args = p.parse_args(argv)
    if args.cmd == "prepare":
        prepare(args.bundle, args.photos, args.out, args.count)
    elif args.cmd == "encode":
        encode(args.bundle, args.pixels, args.out, args.threads)
    else:
        return compare(args.bundle, args.vectors)
    return 0


if __name__ == "__main__":
    sys.exit(main())
