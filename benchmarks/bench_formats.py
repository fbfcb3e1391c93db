"""What RAW files and videos cost to stage, each against its baseline in the same run.

    python benchmarks/bench_formats.py [--repeat 5] [--bundle .bench/models/vit-b-16-int8] [--json FILE]

1. RAW: staging from the embedded preview (what photod does when the preview is at least the stage size)
   against a full LibRaw `postprocess()` of the same file, then the same downscale and JPEG encode. The RAWs
   are the samples' (../shared/photos: canon_eos_6d.dng, a linear DNG), each decoded `repeat` times.
2. Video, per minute of video: the moments photod samples, the seconds to sample them (decode, compare,
   stage) and, with --bundle, to encode them with that model, for the sample videos and a generated
   2-minute 1280x720 H.264 clip that changes scene every 10 s.
3. earth.mov ingested as a video (sniff, hash, FFmpeg, moments) against ingesting its sampled moments saved
   as JPEG files: the overhead of reading a video over reading its frames, as a ratio.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from io import BytesIO
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import photod.config  # noqa: E402
from benchmarks.common import cpu_summary  # noqa: E402
from photod.config import StageConfig, VideoConfig  # noqa: E402
from photod.ingest.decode import from_image  # noqa: E402
from photod.ingest.ingester import Ingester  # noqa: E402
from photod.ingest.raw import decode_raw  # noqa: E402
from photod.ingest.video import decode_video  # noqa: E402
from photod.roots.scanner import reconcile  # noqa: E402
from photod.store.catalog import Catalog  # noqa: E402
from photod.store.stage import Stage  # noqa: E402

SAMPLES = REPO.parent / "shared" / "photos"
PRISM = SAMPLES / "photoprism-samples"


def best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def bench_raw(repeat: int) -> dict:
    import rawpy
    from PIL import Image

    files = sorted(
        p
        for p in SAMPLES.rglob("*")
        if p.suffix.lower() in (".dng", ".cr2", ".cr3", ".nef", ".arw", ".raf", ".orf", ".rw2")
    )
    out = {}
    for path in files:
        data = path.read_bytes()
        size = StageConfig.size

        def preview(data=data, name=path.name, size=size):
            decode_raw(data, name, size, StageConfig.quality)

        def full(data=data, name=path.name, size=size):
            with rawpy.imread(BytesIO(data)) as raw:
                rgb = raw.postprocess()
            from_image(Image.fromarray(rgb), name, size, StageConfig.quality)

        fast, slow = best(preview, repeat), best(full, repeat)
        out[path.name] = {
            "preview_ms": round(fast * 1000, 1),
            "postprocess_ms": round(slow * 1000, 1),
            "ratio": round(slow / fast, 1),
        }
        print(
            f"RAW {path.name}: preview {fast * 1000:.1f} ms, full postprocess() {slow * 1000:.1f} ms: "
            f"{slow / fast:.1f}x faster from the preview",
            flush=True,
        )
    return out


def generated_clip(folder: Path) -> Path:
    from tests.support.mediakit import write_video

    scenes = [(((i * 67) % 200 + 30, (i * 131) % 200 + 30, (i * 29) % 200 + 30), 10.0) for i in range(12)]
    return write_video(folder / "two_minutes_720p.mp4", scenes, fps=25, size=(1280, 720), gop=50, codec="libx264")


def bench_video(videos: list[Path], bundle_dir: Path | None, repeat: int) -> dict:
    encoder = None
    if bundle_dir is not None:
        from photod.model.bundle import Bundle
        from photod.model.encoder import ImageEncoder

        encoder = ImageEncoder(Bundle.load(bundle_dir), threads=2)
    out = {}
    for path in videos:
        v = decode_video(str(path), path.name, VideoConfig())
        sample_s = best(lambda path=path: decode_video(str(path), path.name, VideoConfig()), repeat)
        minutes = (v.meta.duration or 0) / 60
        row = {
            "duration_s": round(v.meta.duration or 0, 1),
            "moments": len(v.moments),
            "looked": v.looked,
            "sample_s": round(sample_s, 3),
            "sample_s_per_minute": round(sample_s / minutes, 3),
        }
        if encoder is not None:
            from PIL import Image

            images = [Image.open(BytesIO(m.staged.jpeg)).convert("RGB") for m in v.moments]
            encoder.encode(images[:1])  # warm
            enc_s = best(lambda images=images: encoder.encode(images), repeat)
            row["encode_s"] = round(enc_s, 3)
            row["total_s_per_minute"] = round((sample_s + enc_s) / minutes, 3)
        row["moments_per_minute"] = round(len(v.moments) / minutes, 1)
        out[path.name] = row
        print(
            f"video {path.name} ({row['duration_s']} s): {row['moments']} moments from {row['looked']} looks, "
            f"sampled in {sample_s:.3f} s"
            + (f", encoded in {row['encode_s']:.3f} s" if encoder else "")
            + f"; per minute of video: {row['moments_per_minute']} moments, "
            + f"{row.get('total_s_per_minute', row['sample_s_per_minute']):.3f} s",
            flush=True,
        )
    return out


def ingest_once(folder: Path) -> float:
    with tempfile.TemporaryDirectory(prefix="photod-bench-") as tmp:
        cat, stage = Catalog(Path(tmp) / "catalog.db"), Stage(tmp)
        try:
            root = cat.add_root(photod.config.make_root(folder))
            cat.set_root_online(root.id)
            reconcile(cat, cat.root(root.id), present=lambda: True)
            t0 = time.perf_counter()
            Ingester(cat, stage, workers=1).drain()
            return time.perf_counter() - t0
        finally:
            stage.close()
            cat.close()


def bench_earth(repeat: int, work: Path) -> dict:
    earth = PRISM / "earth.mov"
    as_video, as_frames = work / "video", work / "frames"
    as_video.mkdir()
    as_frames.mkdir()
    (as_video / "earth.mov").write_bytes(earth.read_bytes())  # a copy in a temporary folder, read as a root
    v = decode_video(str(earth), "earth.mov")
    for i, m in enumerate(v.moments):
        (as_frames / f"earth_{i:03d}.jpg").write_bytes(m.staged.jpeg)
    video_s = min(ingest_once(as_video) for _ in range(repeat))
    frames_s = min(ingest_once(as_frames) for _ in range(repeat))
    print(
        f"earth.mov ingested as a video in {video_s * 1000:.1f} ms; its {len(v.moments)} moments as JPEG "
        f"files in {frames_s * 1000:.1f} ms: {video_s / frames_s:.1f}x",
        flush=True,
    )
    return {
        "moments": len(v.moments),
        "video_ms": round(video_s * 1000, 1),
        "frames_ms": round(frames_s * 1000, 1),
        "ratio": round(video_s / frames_s, 2),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--bundle", type=Path, default=None, help="a model bundle to encode the moments with")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    print(f"CPU: {cpu_summary()}", flush=True)
    result = {"cpu": cpu_summary(), "raw": bench_raw(args.repeat)}
    with tempfile.TemporaryDirectory(prefix="photod-bench-") as tmp:
        work = Path(tmp)
        videos = sorted(p for p in PRISM.iterdir() if p.suffix.lower() in (".mov", ".mp4")) + [generated_clip(work)]
        result["video"] = bench_video(videos, args.bundle, args.repeat)
        result["earth"] = bench_earth(args.repeat, work)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
