"""Encoder throughput of a model bundle: the image tower alone at several batch sizes, the text tower's
single-query latency, and ingest end to end (stage JPEG -> decode -> model -> stored vector -> index).

    python benchmarks/bench_encode.py BUNDLE_DIR [--batch-sizes 1,8,32] [--images 64] [--threads 2]
                                      [--ingest 256] [--json]

`measure()` is the reusable part: another script (e.g. one comparing photod's int8/fp32 ONNX with cn_clip's
PyTorch on the same images) calls it per bundle. Images are synthetic 384-pixel pictures, the size the
stage keeps; random weights run exactly as fast as real ones. The issue's targets on a 2-core CPU: int8
ViT-B-16 at least 3.5x PyTorch fp32; ingest at least 0.75x of the encoder running alone.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from photod.bundle import Bundle  # noqa: E402
from photod.encoder import ImageEncoder, TextEncoder  # noqa: E402

STAGE_SIZE = 384


def sample_images(n: int, size: int = STAGE_SIZE) -> list:
    from tests.onnxkit import picture

    return [picture(i, size) for i in range(n)]


def measure(bundle_dir: str | Path, batch_sizes: list[int] = (1, 8, 32), n_images: int = 64, threads: int = 2,
            images: list | None = None) -> dict:
    """Images per second of the bundle's image tower at each batch size (preprocessing excluded, as the
    indexer decodes ahead of the model), and the text tower's p50 latency for one query."""
    bundle = Bundle.load(bundle_dir)
    images = images if images is not None else sample_images(n_images)
    enc = ImageEncoder(bundle, threads=threads)
    pixels = enc.preprocess(images)
    t0 = time.perf_counter()
    enc.preprocess(images)
    preprocess_s = time.perf_counter() - t0
    out = {"bundle": str(bundle_dir), "arch": bundle.arch, "precision": bundle.precision,
           "providers": enc.providers, "threads": threads, "images": len(images),
           "preprocess_images_per_s": round(len(images) / preprocess_s, 1), "image": {}}
    for bs in batch_sizes:
        enc.encode_array(pixels[:bs])  # warm up: first runs allocate
        t0 = time.perf_counter()
        for start in range(0, len(pixels), bs):
            enc.encode_array(pixels[start:start + bs])
        elapsed = time.perf_counter() - t0
        out["image"][bs] = {"images_per_s": round(len(pixels) / elapsed, 2),
                            "ms_per_batch": round(1000 * elapsed / -(-len(pixels) // bs), 2)}
    text = TextEncoder(bundle, threads=threads)
    text.encode(["预热"])
    times = []
    for i in range(30):
        t0 = time.perf_counter()
        text.encode([f"海边的日落 {i}"])
        times.append(time.perf_counter() - t0)
    out["text_query_p50_ms"] = round(1000 * float(np.median(times)), 2)
    return out


def measure_ingest(bundle_dir: str | Path, n_images: int = 256, batch_size: int = 16, threads: int = 2,
                   decode_workers: int = 2) -> dict:
    """Photos per second from staged JPEGs to stored vectors and index, against the encoder alone on the
    same photos at the same batch size."""
    from photod.catalog import Catalog
    from photod.index import VectorIndex
    from photod.indexer import Indexer
    from photod.stage import Stage
    from tests.onnxkit import add_photos, jpeg_bytes

    bundle = Bundle.load(bundle_dir)
    images = sample_images(n_images)
    with tempfile.TemporaryDirectory(prefix="photod-bench-") as tmp:
        data_dir = Path(tmp) / "data"
        with Catalog.in_data_dir(data_dir) as cat, Stage(data_dir) as stage:
            ids = add_photos(cat, Path(tmp) / "root", n_images)
            stage.put_many({pid: jpeg_bytes(img) for pid, img in zip(ids, images)})
            index = VectorIndex(data_dir, bundle.image_id, kind="exact")
            indexer = Indexer(cat, stage, bundle, index, batch_size=batch_size, threads=threads,
                              decode_workers=decode_workers)
            pixels = indexer.encoder.preprocess([stage.get_image(i) for i in ids])
            indexer.encoder.encode_array(pixels[:batch_size])
            t0 = time.perf_counter()
            for start in range(0, n_images, batch_size):
                indexer.encoder.encode_array(pixels[start:start + batch_size])
            alone = n_images / (time.perf_counter() - t0)
            t0 = time.perf_counter()
            done = indexer.run_once()
            ingest = done / (time.perf_counter() - t0)
    return {"images": n_images, "batch_size": batch_size, "encoder_alone_per_s": round(alone, 2),
            "ingest_per_s": round(ingest, 2), "ratio": round(ingest / alone, 3),
            "model_wait_s": round(indexer.stats["wait_seconds"], 2)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("bundle", type=Path)
    ap.add_argument("--batch-sizes", default="1,8,32")
    ap.add_argument("--images", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--ingest", type=int, default=256, help="photos for the ingest run (0 to skip)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    report = measure(args.bundle, [int(b) for b in args.batch_sizes.split(",")], args.images, args.threads)
    for bs, row in report["image"].items():
        print(f"{report['arch']} {report['precision']} batch {bs:>3}: {row['images_per_s']:8.2f} images/s")
    print(f"text query p50 {report['text_query_p50_ms']} ms;"
          f" preprocessing {report['preprocess_images_per_s']} images/s")
    if args.ingest:
        report["ingest"] = measure_ingest(args.bundle, args.ingest, threads=args.threads)
        r = report["ingest"]
        print(f"ingest {r['ingest_per_s']} photos/s vs encoder alone {r['encoder_alone_per_s']}/s: {r['ratio']}x")
    if args.json:
        print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
