"""Reading text in photos: photod's reader against RapidOCR's default pipeline, and against the image encoder.

    python benchmarks/bench_ocr.py [--photos 40] [--text-share 0.3] [--threads 2] [--originals 6] [--json FILE]

A mix of real sample photos (../shared/photos), scaled to 12 MP, `--text-share` of them carrying a phrase
rendered at 2-8 % of their height (tests/support/rendered_text.py), is decoded once as the stager decodes it
(an upright copy OCR_SIDE pixels long). On that same copy, in one run, each in a pass over all photos:
  - photod: `TextReader.read` (one small detection, recognition of the regions it finds), one photo at a
    time on `--threads` threads; and as the daemon reads, its decode workers ([workers] decode) each
    reading one photo on [signals] ocr_threads threads, all photos through them, wall time per photo;
  - default: RapidOCR 3.10 as installed, its own defaults (detection at full size, angle classifier,
    recognition), the same model files;
  - encoder: the ViT-B-16 int8 image tower on the same photo's 224-pixel input (batch 1), the step every
    photo pays anyway (skipped, with how to build it, when .bench/models/vit-b-16-int8 is missing); and its
    time per photo at the daemon's batch (16 photos a call: int8 runs them two at a time, one thread each).
Recall is the share of text photos whose phrase's word is found. `--originals N` also runs the default
pipeline on N full 12-MP originals, as a person calling RapidOCR on a camera file would.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, bundle_path, cpu_summary  # noqa: E402

from photod.ingest import ocr  # noqa: E402
from tests.support.rendered_text import PHRASES, as_large_photo, found, render, sample_photos  # noqa: E402

SHARES = (0.02, 0.03, 0.05, 0.08)


def workload(n: int, text_share: float) -> list[tuple[object, object, str | None]]:
    """(12-MP original, stager's OCR copy, the word to find or None) for n photos."""
    from io import BytesIO

    from photod.ingest.decode import decode_photo

    photos = sample_photos()
    items = []
    for i in range(n):
        big = as_large_photo(photos[i % len(photos)])
        word = None
        if int((i + 1) * text_share) > int(i * text_share):  # text_share of the photos, spread evenly
            phrase = PHRASES[i % len(PHRASES)]
            big = render(big, phrase, SHARES[i % len(SHARES)], seed=i)
            word = phrase.word
        buf = BytesIO()
        big.save(buf, "JPEG", quality=90)
        items.append((big, decode_photo(buf.getvalue(), f"{i}.jpg", text_side=ocr.OCR_SIDE).text_image, word))
    return items


def default_pipeline(threads: int):
    from rapidocr import RapidOCR

    models = ocr._model_dir()
    return RapidOCR(
        params={
            "Global.log_level": "error",
            "Det.model_path": str(models / ocr.MODELS["det_fp32"]),
            "Rec.model_path": str(models / ocr.MODELS["rec"]),
            "Cls.model_path": str(models / "ch_ppocr_mobile_v2.0_cls_mobile.onnx"),
            "EngineConfig.onnxruntime.intra_op_num_threads": threads,
        }
    )


def timed(fn, *args) -> tuple[float, object]:
    t0 = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - t0, out


def summary(seconds: list[float]) -> dict[str, float]:
    ms = sorted(s * 1000 for s in seconds)
    return {
        "mean_ms": statistics.fmean(ms),
        "p50_ms": ms[len(ms) // 2],
        "p95_ms": ms[int(len(ms) * 0.95) - 1 if len(ms) > 1 else 0],
    }


def as_the_daemon_reads(copies: list) -> float:
    """Seconds a photo, wall time, reading `copies` the way the daemon does: [workers] decode threads, each
    reading one photo at a time through one shared reader on [signals] ocr_threads threads (the best of
    three passes, as for the encoder)."""
    from concurrent.futures import ThreadPoolExecutor

    from photod.config import SignalsConfig, WorkersConfig

    reader = ocr.TextReader(threads=SignalsConfig().ocr_threads)
    reader.read(copies[0])
    with ThreadPoolExecutor(WorkersConfig().decode) as pool:
        return min(timed(lambda: list(pool.map(reader.read, copies)))[0] for _ in range(3)) / len(copies)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--photos", type=int, default=40)
    ap.add_argument("--text-share", type=float, default=0.3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--originals", type=int, default=6)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    print(f"cpu: {cpu_summary()}; load {os.getloadavg()[0]:.2f}; {args.threads} threads")
    items = workload(args.photos, args.text_share)
    import numpy as np

    reader, default = ocr.TextReader(threads=args.threads), default_pipeline(args.threads)
    encoder = None
    if (bundle_path("ViT-B-16", "int8") / "manifest.json").exists():
        from photod.model.bundle import Bundle
        from photod.model.encoder import ImageEncoder

        encoder = ImageEncoder(Bundle.load(bundle_path("ViT-B-16", "int8")), threads=args.threads)
    else:
        print(
            "encoder comparison skipped: build the bundle with "
            "`python benchmarks/common.py --archs ViT-B-16 --precisions int8`"
        )
    reader.read(items[0][1]), default(np.asarray(items[0][1])[:, :, ::-1])  # load both before timing
    kinds = [word is not None for _b, _c, word in items]
    copies = [copy for _b, copy, _w in items]
    staged = [c.resize((round(c.width * 384 / min(c.size)), 384)) for c in copies]  # what the encoder reads
    # One pass per reader rather than photo by photo: RapidOCR's own sessions keep their threads spinning
    # after a run, which slowed whatever ran right after it by up to a third.
    passes = {
        "photod": lambda c: reader.read(c).text,
        "default": lambda c: "\n".join(default(np.asarray(c)[:, :, ::-1]).txts or ()),
    }
    runs: dict[str, list[float]] = {"photod": [], "default": [], "encoder": []}
    hits = {"photod": 0, "default": 0}
    for name, read in passes.items():
        for copy, (_b, _c, word) in zip(copies, items):
            t, text = timed(read, copy)
            runs[name].append(t)
            hits[name] += bool(word and found(text, word))
    if encoder is not None:
        runs["encoder"] = [timed(encoder.encode, [one])[0] for one in staged]
    n_text = sum(kinds)
    report = {"cpu": cpu_summary(), "photos": len(items), "with_text": n_text, "threads": args.threads}
    report["photod_daemon_ms"] = as_the_daemon_reads(copies) * 1000
    if encoder is not None:
        per_photo = min(timed(encoder.encode, staged[:16])[0] for _ in range(3)) / len(staged[:16])
        report["encoder_batched_ms"] = per_photo * 1000
    for name in ("photod", "default", "encoder"):
        if not runs[name]:
            continue
        report[name] = {
            "all": summary(runs[name]),
            "text": summary([t for t, k in zip(runs[name], kinds) if k]),
            "no_text": summary([t for t, k in zip(runs[name], kinds) if not k]),
        }
        if name in hits:
            report[name]["recall"] = hits[name] / max(n_text, 1)
    report["speedup"] = report["default"]["all"]["mean_ms"] / report["photod"]["all"]["mean_ms"]
    if runs["encoder"]:
        report["photod_over_encoder"] = report["photod"]["all"]["mean_ms"] / report["encoder"]["all"]["mean_ms"]
    if args.originals:
        t = [timed(default, np.asarray(big)[:, :, ::-1])[0] for big, _c, _w in items[: args.originals]]
        report["default_on_12mp_originals"] = summary(t)
    for name in ("photod", "default", "encoder"):
        if name in report:
            r = report[name]
            recall = f", recall {r['recall']:.2f}" if "recall" in r else ""
            print(
                f"{name:>8}: mean {r['all']['mean_ms']:.0f} ms/photo (p50 {r['all']['p50_ms']:.0f}, "
                f"p95 {r['all']['p95_ms']:.0f}); with text {r['text']['mean_ms']:.0f}, without "
                f"{r['no_text']['mean_ms']:.0f}{recall}"
            )
    print(
        f"photod is {report['speedup']:.1f}x faster than the default pipeline on the same copies"
        + (
            f"; {report['photod_over_encoder']:.2f}x the encoder's time per photo"
            if "photod_over_encoder" in report
            else ""
        )
    )
    print(f"photod as the daemon reads (workers in parallel): {report['photod_daemon_ms']:.0f} ms/photo")
    if "encoder_batched_ms" in report:
        one, daemon = (report["photod"]["all"]["mean_ms"], report["photod_daemon_ms"])
        print(
            f"encoder at the daemon's batch: {report['encoder_batched_ms']:.0f} ms/photo; photod's reader is "
            f"{one / report['encoder_batched_ms']:.2f}x that one photo at a time, "
            f"{daemon / report['encoder_batched_ms']:.2f}x as the daemon reads"
        )
    if "default_on_12mp_originals" in report:
        print(
            f"default pipeline on {args.originals} 12-MP originals: mean "
            f"{report['default_on_12mp_originals']['mean_ms']:.0f} ms/photo"
        )
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    raise SystemExit(main())
