"""Shared pieces of the benchmarks: full-size Chinese-CLIP models with random weights, their bundles cached
under .bench/, and synthetic pictures.

Random weights run exactly as fast as trained ones, so throughput and latency measured on them are the
figures a real checkpoint gives. Weights are drawn from a fixed seed, so the PyTorch model rebuilt in a
later run is the very model the cached bundles were exported from.

    python benchmarks/common.py [--archs ViT-B-16,RN50] [--precisions int8,fp32]   # build the bundles
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from photod.config import StageConfig  # noqa: E402

BENCH = REPO / ".bench"
MODELS = BENCH / "models"
SEED = 20240601


def cpu_summary() -> str:
    """The CPU model and the instruction sets that decide int8 and fp32 speed, printed with every figure:
    machines differ (AVX2 without VNNI here, AVX-512 VNNI or AMX elsewhere, dot-product on ARM)."""
    from photod.service.cpu import read_cpu

    cpu = read_cpu()
    have = cpu.features() or ["none of " + "/".join(cpu.lacking())]
    return f"{cpu.model}; {cpu.cores} cores; {' '.join(have)}"


def clip_model(arch: str, seed: int = SEED):
    """cn_clip's CLIP for a named arch (ViT-B-16, RN50, ...), fp32, eval, random weights from `seed`.

    Returns (model, vision_config, text_config)."""
    import torch

    from photod.finetune.checkpoint import build_model, load_configs

    vision, text, _ = load_configs(arch)
    torch.manual_seed(seed)
    return build_model(vision, text), vision, text


def bundle_path(arch: str, precision: str) -> Path:
    return MODELS / f"{arch.lower()}-{precision}"


def ensure_bundle(arch: str, precision: str, model=None):
    """The cached bundle of a random-weight full-size arch at a precision, exported (and verified) if absent."""
    from photod.model.bundle import Bundle

    path = bundle_path(arch, precision)
    if (path / "manifest.json").exists():
        return Bundle.load(path)
    from photod.finetune.export import export_bundle_from_model

    if model is None:
        model, vision, text = clip_model(arch)
    else:
        model, vision, text = model
    t0 = time.perf_counter()
    bundle = export_bundle_from_model(
        model,
        vision,
        text,
        path,
        precision=precision,
        arch=arch,
        name=f"{arch.lower()}-{precision}",
        source=f"random weights, seed {SEED}",
    )
    print(
        f"exported {arch} {precision} in {time.perf_counter() - t0:.0f} s:"
        f" {json.dumps(bundle.to_manifest().get('verification', {}).get(precision, {}))}",
        flush=True,
    )
    return bundle


def plain_look(searcher, text: str, k: int = 20, filters=None) -> list[dict]:
    """A text query by its look alone, the search before the query language: the text embedded, the k nearest
    photos that pass the filters (Searcher.by_meaning, as photod.search.finder asks it), and their catalog rows
    read, as `photod search --json` rows."""
    from photod.search.query import Term
    from photod.store import wordsearch

    hits = searcher.by_meaning([Term(text)], k=k, filters=filters or wordsearch.EVERYTHING).results
    rows = {r["id"]: r for r in wordsearch.search_name(searcher.catalog, ids=[h.id for h in hits], limit=None)}
    return [h.result(rows[h.id]).to_json() for h in hits if h.id in rows]


def picture(seed: int, size: int = StageConfig.size) -> Image.Image:
    """A varied synthetic photo: a smooth gradient background, a few shapes, a blur or noise, different per seed.

    Pictures from one family (seed // 40) share their palette and layout, so image-to-image neighbours
    exist, as in a real library where photos of one event resemble each other."""
    family = np.random.default_rng(seed // 40)
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size] / size
    base = family.uniform(-1, 1, (3, 3)) + rng.normal(0, 0.15, (3, 3))
    arr = np.stack([0.5 + 0.5 * np.sin(3 * (a * x + b * y) + c * 6) for a, b, c in base], axis=-1)
    img = Image.fromarray((arr * 255).astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(img)
    for _ in range(int(family.integers(2, 7))):
        x0, y0 = (family.integers(0, size, 2) + rng.integers(-size // 10, size // 10, 2)).tolist()
        w, h = family.integers(size // 10, size // 2, 2).tolist()
        colour = tuple(int(c) for c in np.clip(family.integers(0, 256, 3) + rng.integers(-30, 30, 3), 0, 255))
        (draw.ellipse if family.random() < 0.5 else draw.rectangle)([x0, y0, x0 + w, y0 + h], fill=colour)
    if rng.random() < 0.3:
        img = img.filter(ImageFilter.GaussianBlur(float(rng.uniform(1, 4))))
    if rng.random() < 0.4:
        noise = rng.normal(0, rng.uniform(5, 25), (size, size, 3))
        img = Image.fromarray(np.clip(np.asarray(img, dtype=np.float32) + noise, 0, 255).astype(np.uint8))
    return img


def pictures(n: int, size: int = StageConfig.size, start: int = 0) -> list[Image.Image]:
    return [picture(i, size) for i in range(start, start + n)]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="build the benchmark bundles under .bench/models")
    ap.add_argument("--archs", default="ViT-B-16,RN50")
    ap.add_argument("--precisions", default="int8,fp32")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    for arch in args.archs.split(","):
        built = None
        for precision in args.precisions.split(","):
            if not (bundle_path(arch, precision) / "manifest.json").exists():
                built = built or clip_model(arch)
                ensure_bundle(arch, precision, built)
    return 0


if __name__ == "__main__":
    sys.exit(main())
