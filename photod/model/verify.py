"""Checking a converted tower against its reference before a bundle is written.

A tower is run on sample inputs as photod.model.encoder will run it (whole batches and single rows, or one
row per call for int8; texts trimmed to their own length where the graph allows it) and compared with the
reference embeddings by cosine. Used by both imports: from a PyTorch checkpoint (photod.finetune.export,
reference: the PyTorch model) and from Chinese-CLIP's ONNX files (photod.model.onnx_import, reference: the
fp32 graph). Needs no torch.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
from PIL import Image, ImageDraw

from photod.errors import ModelError
from photod.model import bundle as bundles
from photod.model.encoder import runs_rowwise, trim_tokens

# Refusal bounds on per-sample cosine between a converted tower's embeddings and its
# reference's (the PyTorch model, or the fp32 graph when a model is imported from ONNX files): (minimum, mean).
# - fp32 runs the same arithmetic in another order: anything below 0.9999 is an export bug.
# - fp16 keeps ~3 decimal digits per value; measured 1.00000 (min) on the small test models, so a min
#   below 0.999 means an overflow or a wrongly converted op, not rounding.
# - int8 (dynamic, per-channel weights, reduced range) measured min cosine 0.9997-0.9999 on the small test
#   models, and 0.99973 (image) / 0.99884 (text) on a full-size ViT-B-16 with random weights. Trained
#   weights have activation outliers random ones lack, so real models land lower; per-channel quantization
#   without reduced range already fell to 0.991 on the small models (u8*s8 saturation on AVX2), and such
#   errors compound with depth. A min of 0.98 and a mean of 0.99 leave room for trained weights while
#   refusing a quantization that would visibly reorder search results.
BOUNDS = {"fp32": (0.9999, 0.9999), "fp16": (0.999, 0.9995), "int8": (0.98, 0.99)}

SAMPLE_TEXTS = [
    "海边的日落",
    "我家的猫在沙发上",
    "穿红衣服的小女孩在草地上",
    "雪山下的湖泊",
    "北京故宫的红墙",
    "生日蛋糕上点着蜡烛",
    "夜晚城市的灯光",
    "一碗热腾腾的拉面",
    "下雨天的街道",
    "樱花盛开的公园",
    "a dog running on the beach",
    "two friends hiking in the mountains",
    "a red car parked on the street",
    "sunset over the sea 日落",
    "iPhone 拍的 2019 年国庆节烟花 🎆",
    "ＡＢＣ，全角标点！？",
    "婚礼",
    "",
    "孩子们在操场上踢足球，老师在旁边看着，天空很蓝，远处有一排高高的白杨树，"
    "风吹过来树叶沙沙作响，大家都笑得很开心，这是一段很长很长的描述，超过了模型的上下文长度。",
    "Grandma's 80th birthday party in the garden",
]


def sample_images(count: int = 8, size: int = 256, seed: int = 0) -> list[Image.Image]:
    """Deterministic synthetic photos-ish images: gradients, shapes, stripes, texture and noise.

    They need not look like anything: the check compares two implementations on the same input, and varied
    colour, frequency and contrast content reaches every part of the towers.
    """
    rng = np.random.RandomState(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / (size - 1)
    arrays = [
        np.stack([xx, yy, 1 - xx], -1),
        np.stack([np.hypot(xx - 0.5, yy - 0.5)] * 3, -1) * np.array([1.4, 0.9, 0.5]),
        np.stack([((xx * 8).astype(int) + (yy * 8).astype(int)) % 2] * 3, -1).astype(np.float32),
        rng.rand(size, size, 3).astype(np.float32),
        np.stack([(np.sin((xx + yy) * 30) + 1) / 2, yy, np.full_like(xx, 0.3)], -1),
    ]
    coarse = rng.rand(8, 8, 3)
    arrays.append(
        np.asarray(Image.fromarray((coarse * 255).astype(np.uint8)).resize((size, size), Image.Resampling.BICUBIC))
        / 255.0
    )
    images = [Image.fromarray((np.clip(a, 0, 1) * 255).astype(np.uint8)) for a in arrays]
    scene = Image.new("RGB", (size, size), (90, 150, 230))
    draw = ImageDraw.Draw(scene)
    draw.rectangle([0, size * 0.6, size, size], fill=(40, 140, 60))
    draw.ellipse([size * 0.6, size * 0.1, size * 0.85, size * 0.35], fill=(250, 200, 40))
    images.append(scene)
    shapes = Image.new("RGB", (size, size), (240, 235, 225))
    draw = ImageDraw.Draw(shapes)
    for _ in range(12):
        x0, y0 = rng.randint(0, size, 2)
        w, h = rng.randint(10, size // 2, 2)
        draw.rectangle([x0, y0, x0 + w, y0 + h], fill=tuple(int(c) for c in rng.randint(0, 256, 3)))
    images.append(shapes)
    while len(images) < count:
        images.append(Image.fromarray((rng.rand(size, size, 3) * 255).astype(np.uint8)))
    return images[:count]


def session(path: Path) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    cos: np.ndarray = (a * b).sum(axis=1)
    return cos


def compare(
    path: Path, input_name: str, batch: np.ndarray, reference: np.ndarray, precision: str = "fp32"
) -> dict[str, float]:
    """Min and mean cosine between ONNX and reference embeddings, run as photod.model.encoder runs the
    precision: the whole batch and batch size 1, or (int8) one row per call."""
    tower = session(path)

    def run(x: np.ndarray) -> np.ndarray:
        out: np.ndarray = tower.run(None, {input_name: x})[0]
        return out

    text = input_name == bundles.TEXT_INPUT
    if runs_rowwise(precision):
        full = np.concatenate([run(row[None]) for row in batch])
        parts = [cosines(full, reference)]
        if text:  # as photod runs it: each text trimmed to its own length, against the padded reference
            parts.append(cosines(np.concatenate([run(trim_tokens(row[None])) for row in batch]), reference))
    else:
        full = run(batch)
        parts = [cosines(full, reference), cosines(run(batch[:1]), reference[:1])]
        if text:  # as photod runs it: padding trimmed, against the padded reference
            parts += [
                cosines(run(trim_tokens(batch)), reference),
                cosines(run(trim_tokens(batch[1:2])), reference[1:2]),
            ]
    if full.shape != reference.shape:
        raise ModelError(f"ONNX {input_name} tower returned shape {full.shape}, expected {reference.shape}")
    return figures(np.concatenate(parts))


def figures(cos: np.ndarray) -> dict[str, float]:
    """Min and mean of per-sample cosines, rounded for the manifest; -1 both when any is not finite."""
    if not np.all(np.isfinite(cos)):
        return {"min": -1.0, "mean": -1.0}
    return {"min": round(float(cos.min()), 6), "mean": round(float(cos.mean()), 6)}


def agrees(figures: dict[str, float], precision: str) -> bool:
    """Whether `figures` reach the bounds of `precision`."""
    low, mean = BOUNDS[precision]
    return figures["min"] >= low and figures["mean"] >= mean


def check(figures: dict[str, float], precision: str, tower: str, reference: str = "the PyTorch model") -> None:
    """Raise ModelError, saying nothing was written, when `figures` fall below the bounds of `precision`."""
    low, mean = BOUNDS[precision]
    if not agrees(figures, precision):
        raise ModelError(
            f"the {precision} ONNX {tower} tower disagrees with {reference}: cosine min "
            f"{figures['min']:.6f}, mean {figures['mean']:.6f} (needs min >= {low}, mean >= {mean}); "
            "nothing was written",
            "try --precision fp32"
            if precision != "fp32"
            else "this is an export bug for this architecture; please report it with the model's arch",
        )
