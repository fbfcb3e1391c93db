"""Exporting a Chinese-CLIP model to a photod model bundle: two ONNX towers, verified before anything is kept.

Path: cn_clip's CLIP (fp32, eval) -> image tower (encode_image, L2-normalised) and text tower (encode_text
on token ids, L2-normalised) -> ONNX with a dynamic batch axis -> fp32 as is, fp16 by onnxruntime's float16
converter, or int8 by onnxruntime's dynamic quantization (photod/model/convert.py, no torch) -> both graphs run in onnxruntime on sample images
and texts and compared with the PyTorch model -> bundle written and installed.

Exporter: torch's TorchScript-based exporter (`dynamo=False`) at opset 17. On these models it exports in
well under a second per tower where the torch.export-based one takes ~10 s even for tiny ones, and both
give identical embeddings; the newer exporter (opset 18) is kept as a fallback for a torch without the old.

ViT image towers (fp32 and int8) are exported in the fused form of photod/finetune/optimize.py: attention as ONNX
Runtime's Attention op (QAttention once quantized) and the last block for the class token only, which on a
2-core AVX2 CPU makes the ViT-B-16 image tower 5-12% faster in int8 and up to 15% in fp32, same output.
That graph is verified against the original PyTorch model like any other; should it fail to export or to
verify, the tower is exported unfused instead (fp16 always is: it targets GPUs, where the fp16 converter
and CUDA's fused attention are a separate matter).
"""

from __future__ import annotations

import copy
import logging
import re
import shutil
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import onnx
import onnxruntime as ort
import torch
from cn_clip.clip import utils as cn_utils
from PIL import Image, ImageDraw

from photod.errors import ModelError
from photod.finetune.checkpoint import load_model
from photod.finetune.optimize import CUSTOM_OPSETS, fused_image_tower
from photod.model import bundle as bundles
from photod.model import convert, registry
from photod.model.encoder import runs_rowwise, trim_tokens
from photod.model.preprocess import CLIP_MEAN, CLIP_STD
from photod.model.tokenizer import DEFAULT_CONTEXT_LENGTH

log = logging.getLogger(__name__)

OPSET = 17
FALLBACK_OPSET = 18
VOCAB_SOURCE = Path(cn_utils.__file__).parent / "vocab.txt"
# One tower above this many bytes of fp32 weights cannot be one protobuf (2 GB limit): weights go to .data.
EXTERNAL_DATA_BYTES = convert.EXTERNAL_BYTES

# Refusal bounds on per-sample cosine between ONNX and PyTorch embeddings: (minimum, mean).
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
# Precisions whose ViT image tower is exported in the fused form (see the module docstring).
FUSED_PRECISIONS = ("fp32", "int8")

SAMPLE_TEXTS = [
    "海边的日落", "我家的猫在沙发上", "穿红衣服的小女孩在草地上", "雪山下的湖泊", "北京故宫的红墙",
    "生日蛋糕上点着蜡烛", "夜晚城市的灯光", "一碗热腾腾的拉面", "下雨天的街道", "樱花盛开的公园",
    "a dog running on the beach", "two friends hiking in the mountains", "a red car parked on the street",
    "sunset over the sea 日落", "iPhone 拍的 2019 年国庆节烟花 🎆", "ＡＢＣ，全角标点！？",
    "婚礼", "", "孩子们在操场上踢足球，老师在旁边看着，天空很蓝，远处有一排高高的白杨树，"
    "风吹过来树叶沙沙作响，大家都笑得很开心，这是一段很长很长的描述，超过了模型的上下文长度。",
    "Grandma's 80th birthday party in the garden",
]


class _ImageTower(torch.nn.Module):
    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        features = self.model.encode_image(image)
        return features / features.norm(dim=-1, keepdim=True)


class _TextTower(torch.nn.Module):
    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, text: torch.Tensor) -> torch.Tensor:
        features = self.model.encode_text(text)
        return features / features.norm(dim=-1, keepdim=True)


# ---------------------------------------------------------------------------------------------------------
# sample inputs

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
    arrays.append(np.asarray(Image.fromarray((coarse * 255).astype(np.uint8)).resize((size, size),
                                                                                        Image.BICUBIC)) / 255.0)
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


def _load_images(images: Sequence[Image.Image | str | Path]) -> list[Image.Image]:
    out = []
    for item in images:
        if isinstance(item, Image.Image):
            out.append(item)
            continue
        try:
            with Image.open(item) as img:
                img.draft("RGB", (512, 512))  # JPEG draft: decode at reduced size, the check needs no detail
                out.append(img.convert("RGB"))
        except OSError as exc:
            raise ModelError(f"sample image {item} cannot be read: {exc}") from None
    return out


def _image_batch(images: Sequence[Image.Image], size: int) -> torch.Tensor:
    transform = cn_utils.image_transform(size)
    return torch.stack([transform(img) for img in images])


def _text_batch(texts: Sequence[str], context_length: int) -> torch.Tensor:
    return cn_utils.tokenize(list(texts), context_length=context_length)


# ---------------------------------------------------------------------------------------------------------
# export and conversion

def _export(module: torch.nn.Module, example: torch.Tensor, path: Path, input_name: str,
            output_name: str, fused: bool = False) -> dict[str, Any]:
    """Export one tower with a dynamic batch axis (and, for text, a dynamic token axis, so short queries
    run on their own length rather than the padded context); returns the exporter used and its opset.

    `fused`: the module is photod.finetune.optimize's fused ViT form, whose contrib ops only the TorchScript
    exporter writes; its failure is raised for the caller to export the plain tower instead."""
    module.eval()
    text = input_name == bundles.TEXT_INPUT
    axes = {0: "batch", 1: "tokens"} if text else {0: "batch"}
    try:
        # The tracer warns about shape checks inside torch's attention code (constant for a given model)
        # and about its own deprecation; neither is actionable for the person importing a model.
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                module, (example,), str(path), input_names=[input_name], output_names=[output_name],
                dynamic_axes={input_name: axes, output_name: {0: "batch"}},
                opset_version=OPSET, do_constant_folding=True, dynamo=False,
                custom_opsets=CUSTOM_OPSETS if fused else None)
        return {"exporter": "torchscript", "opset": OPSET, "dynamic_tokens": text, "fused": fused}
    except Exception as exc:  # noqa: BLE001 - any failure of the old exporter sends us to the new one
        if fused:
            raise
        log.warning("TorchScript ONNX export failed (%s); trying the torch.export-based exporter", exc)
    for stale in path.parent.iterdir():
        stale.unlink()
    shapes = {0: torch.export.Dim("batch", min=1, max=4096)}
    if text:
        shapes[1] = torch.export.Dim("tokens", min=2, max=int(example.shape[1]))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            program = torch.onnx.export(
                module, (example,), input_names=[input_name], output_names=[output_name],
                dynamic_shapes={input_name: shapes}, opset_version=FALLBACK_OPSET, dynamo=True)
        program.save(str(path))
    except Exception as exc:  # noqa: BLE001
        raise ModelError(f"exporting the {input_name} tower to ONNX failed: {exc}") from exc
    return {"exporter": "dynamo", "opset": FALLBACK_OPSET, "dynamic_tokens": text, "fused": False}


# ---------------------------------------------------------------------------------------------------------
# verification

def _session(path: Path) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return (a * b).sum(axis=1)


def _compare(path: Path, input_name: str, inputs: torch.Tensor, reference: np.ndarray,
             precision: str = "fp32") -> dict[str, float]:
    """Min and mean cosine between ONNX and reference embeddings, run as photod.model.encoder runs the
    precision: the whole batch and batch size 1, or (int8) one row per call."""
    batch = inputs.numpy()
    session = _session(path)

    def run(x: np.ndarray) -> np.ndarray:
        return session.run(None, {input_name: x})[0]

    text = input_name == bundles.TEXT_INPUT
    if runs_rowwise(precision):
        full = np.concatenate([run(row[None]) for row in batch])
        parts = [_cosines(full, reference)]
        if text:  # as photod runs it: each text trimmed to its own length, against the padded reference
            parts.append(_cosines(np.concatenate([run(trim_tokens(row[None])) for row in batch]), reference))
    else:
        full = run(batch)
        parts = [_cosines(full, reference), _cosines(run(batch[:1]), reference[:1])]
        if text:  # as photod runs it: padding trimmed, against the padded reference
            parts += [_cosines(run(trim_tokens(batch)), reference),
                      _cosines(run(trim_tokens(batch[1:2])), reference[1:2])]
    if full.shape != reference.shape:
        raise ModelError(f"ONNX {input_name} tower returned shape {full.shape}, expected {reference.shape}")
    cos = np.concatenate(parts)
    if not np.all(np.isfinite(cos)):
        return {"min": -1.0, "mean": -1.0}
    return {"min": round(float(cos.min()), 6), "mean": round(float(cos.mean()), 6)}


def _check(figures: dict[str, float], precision: str, tower: str) -> None:
    low, mean = BOUNDS[precision]
    if figures["min"] < low or figures["mean"] < mean:
        raise ModelError(
            f"the {precision} ONNX {tower} tower disagrees with the PyTorch model: cosine min "
            f"{figures['min']:.6f}, mean {figures['mean']:.6f} (needs min >= {low}, mean >= {mean}); "
            "nothing was written",
            "try --precision fp32" if precision != "fp32" else
            "this is an export bug for this architecture; please report it with the checkpoint's arch")


# ---------------------------------------------------------------------------------------------------------
# public API

def default_name(checkpoint: str | Path | None, arch: str, precision: str) -> str:
    """"vit-b-16-int8" for a named arch, else "<checkpoint stem>-<precision>" made safe as a folder name."""
    stem = arch if arch != "custom" or checkpoint is None else Path(checkpoint).stem
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", stem).strip("-._").lower() or "model"
    return f"{stem[:50]}-{precision}"


def export_bundle_from_model(model: torch.nn.Module, vision_config: dict[str, Any], text_config: dict[str, Any],
                             out_dir: str | Path, *, precision: str = "int8", arch: str = "custom",
                             name: str = "model", source: str = "", context_length: int = DEFAULT_CONTEXT_LENGTH,
                             images: Sequence[Image.Image | str | Path] | None = None,
                             texts: Sequence[str] | None = None) -> bundles.Bundle:
    """Export a cn_clip CLIP model to a verified bundle folder `out_dir` (created; must not exist).

    The model is copied to CPU fp32 (the caller's is untouched). Both towers are exported, converted to
    `precision`, run in onnxruntime on `images` (default: synthetic ones) and `texts` (default: 20
    Chinese/English ones) and compared with PyTorch; a tower below the bounds in BOUNDS raises ModelError
    and leaves no `out_dir`. Returns the Bundle (not installed: see photod.model.registry.install_bundle).
    """
    return _export_folder(copy.deepcopy(model).to("cpu").float().eval(), vision_config, text_config, out_dir,
                          precision=precision, arch=arch, name=name, source=source,
                          context_length=context_length, images=images, texts=texts)


def _export_folder(model: torch.nn.Module, vision_config: dict[str, Any], text_config: dict[str, Any],
                   out_dir: str | Path, *, precision: str, arch: str, name: str, source: str,
                   context_length: int = DEFAULT_CONTEXT_LENGTH, images=None, texts=None) -> bundles.Bundle:
    """export_bundle_from_model for a model already on CPU in fp32 (used as is, not copied)."""
    if precision not in bundles.PRECISIONS:
        raise ModelError(f"unknown precision {precision!r}", f"use one of {', '.join(bundles.PRECISIONS)}")
    registry.check_name(name)
    if context_length > int(text_config["text_max_position_embeddings"]):
        raise ModelError(f"context length {context_length} exceeds the text tower's "
                         f"{text_config['text_max_position_embeddings']} positions")
    vocab_lines = sum(1 for _ in VOCAB_SOURCE.open(encoding="utf-8"))
    if vocab_lines > int(text_config["vocab_size"]):
        raise ModelError(f"the text tower has {text_config['vocab_size']} token embeddings but cn_clip's "
                         f"vocabulary has {vocab_lines} tokens", "use a text config with vocab_size 21128")
    out = Path(out_dir)
    if out.exists():
        raise ModelError(f"export folder {out} already exists", "give a new folder")
    out.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=".export-", dir=out.parent))
    try:
        out.mkdir()
        return _export_bundle(model.eval(), vision_config, text_config, out, scratch, precision, arch, name,
                              source, context_length, images, texts)
    except BaseException:
        shutil.rmtree(out, ignore_errors=True)
        raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _export_fp32(model: torch.nn.Module, module: torch.nn.Module, fused: torch.nn.Module | None,
                 inputs: torch.Tensor, path: Path, input_name: str, output_name: str, reference: np.ndarray,
                 tower: str) -> tuple[dict[str, Any], dict[str, float]]:
    """Export one tower's fp32 graph to `path` and verify it against `reference`: (export info, figures).

    The fused form, where there is one, is tried first; if it fails to export or to verify, the tower is
    exported plain (a slower graph beats no bundle). The plain graph failing its check raises ModelError."""
    args = (inputs, path, input_name, output_name, reference, tower)
    if fused is not None:
        try:
            return _export_verified(model, fused, *args, fused=True)
        except Exception as exc:  # noqa: BLE001 - any failure of the fused form falls back to the plain one
            log.warning("the fused %s tower did not export or verify (%s); exporting it unfused", tower, exc)
            for stale in path.parent.iterdir():
                stale.unlink()
    return _export_verified(model, module, *args)


def _export_verified(model: torch.nn.Module, module: torch.nn.Module, inputs: torch.Tensor, path: Path,
                     input_name: str, output_name: str, reference: np.ndarray, tower: str,
                     fused: bool = False) -> tuple[dict[str, Any], dict[str, float]]:
    # Trace with a batch of 2: a batch of 1 lets the tracer fold the batch size into broadcasts.
    info = _export(module, inputs[:2], path, input_name, output_name, fused=fused)
    onnx.checker.check_model(str(path))
    # The export leaves the tower in eval mode; re-assert it, dropout must not touch the reference.
    model.eval()
    figures = _compare(path, input_name, inputs, reference)
    _check(figures, "fp32", tower)
    return info, figures


def _export_bundle(model, vision_config, text_config, out: Path, scratch: Path, precision: str, arch: str,
                   name: str, source: str, context_length: int, images, texts) -> bundles.Bundle:
    size = int(vision_config["image_resolution"])
    image_inputs = _image_batch(_load_images(images) if images else sample_images(), size)
    text_inputs = _text_batch(texts if texts else SAMPLE_TEXTS, context_length)
    image_tower, text_tower = _ImageTower(model).eval(), _TextTower(model).eval()
    fused = {"image": fused_image_tower(model) if precision in FUSED_PRECISIONS else None}
    seconds: dict[str, float] = {}
    with torch.no_grad():
        t0 = time.perf_counter()
        reference = {"image": image_tower(image_inputs).numpy(), "text": text_tower(text_inputs).numpy()}
        seconds["pytorch"] = time.perf_counter() - t0
    specs = {
        "image": (image_tower, image_inputs, bundles.IMAGE_INPUT, bundles.IMAGE_OUTPUT, bundles.IMAGE_FILE),
        "text": (text_tower, text_inputs, bundles.TEXT_INPUT, bundles.TEXT_OUTPUT, bundles.TEXT_FILE),
    }
    verification: dict[str, Any] = {
        "samples": {"images": len(image_inputs), "texts": len(text_inputs)},
        "bounds": {p: {"min": b[0], "mean": b[1]} for p, b in BOUNDS.items() if p in ("fp32", precision)},
        "fp32": {},
    }
    if precision != "fp32":
        verification[precision] = {}
    export_info: dict[str, Any] = {}
    for tower, (module, inputs, input_name, output_name, filename) in specs.items():
        work = scratch / tower
        work.mkdir()
        fp32_path = work / filename
        t0 = time.perf_counter()
        export_info[tower], figures = _export_fp32(model, module, fused.get(tower), inputs, fp32_path,
                                                   input_name, output_name, reference[tower], tower)
        seconds[f"export_{tower}"] = time.perf_counter() - t0
        verification["fp32"][tower] = figures
        external = sum(p.numel() * 4 for p in module.parameters()) > EXTERNAL_DATA_BYTES
        t0 = time.perf_counter()
        convert.convert(fp32_path, out / filename, precision, tower, external)
        seconds[f"convert_{tower}"] = time.perf_counter() - t0
        if precision != "fp32":
            figures = _compare(out / filename, input_name, inputs, reference[tower], precision)
            verification[precision][tower] = figures
            _check(figures, precision, tower)
        log.info("%s tower: %s", tower, {k: v.get(tower) for k, v in verification.items() if k in
                                         ("fp32", precision)})
    shutil.copyfile(VOCAB_SOURCE, out / bundles.VOCAB_FILE)
    export_info.update({
        "torch": torch.__version__, "onnx": onnx.__version__, "onnxruntime": ort.__version__,
        "seconds": {k: round(v, 3) for k, v in seconds.items()},
    })
    return bundles.write_manifest(
        out, name=name, arch=arch, vision_config=dict(vision_config), text_config=dict(text_config),
        embed_dim=int(vision_config["embed_dim"]), image_size=size, context_length=context_length,
        mean=list(CLIP_MEAN), std=list(CLIP_STD), precision=precision, source=source,
        verification=verification, export=export_info)


def _add_checkpoint(exported: bundles.Bundle, checkpoint: Path) -> bundles.Bundle:
    """Put the source weights into the bundle folder and re-hash it (the manifest lists every file)."""
    shutil.copy2(checkpoint, exported.path / bundles.CHECKPOINT_FILE)
    fields = {k: v for k, v in exported.to_manifest().items()
              if k not in ("files", "image_id", "text_id", "model_id")}
    return bundles.write_manifest(exported.path, **fields)


def import_checkpoint(checkpoint: str | Path, data_dir: str | Path, *, arch: str | None = None,
                      vision_config: str | Path | None = None, text_config: str | Path | None = None,
                      precision: str = "int8", name: str | None = None, activate: bool = True,
                      replace: bool = False, source: str | None = None,
                      images: Sequence[Image.Image | str | Path] | None = None,
                      texts: Sequence[str] | None = None, keep_checkpoint: bool = False) -> bundles.Bundle:
    """Import a Chinese-CLIP checkpoint into `<data_dir>/models/<name>` as a verified bundle.

    Architecture: `arch` (RN50, ViT-B-16, ViT-L-14, ViT-L-14-336, ViT-H-14) or `vision_config` +
    `text_config` JSON files in cn_clip's format. `name` defaults to "<arch>-<precision>" (or
    "<checkpoint stem>-<precision>"). With `activate` the new bundle becomes the active model.
    Raises ModelError (with nothing written) on a bad file, a mismatched architecture, a name already
    taken (unless `replace`), or ONNX output that disagrees with PyTorch. With `keep_checkpoint` the
    checkpoint is copied into the bundle (checkpoint.pt), so `photod finetune` can start from it anywhere.
    """
    if precision not in bundles.PRECISIONS:
        raise ModelError(f"unknown precision {precision!r}", f"use one of {', '.join(bundles.PRECISIONS)}")
    t0 = time.perf_counter()
    loaded = load_model(checkpoint, arch, vision_config, text_config)
    name = registry.check_name(name or default_name(checkpoint, loaded.arch, precision))
    root = registry.models_dir(data_dir)
    if (root / name).exists() and not replace:
        raise ModelError(f"a model named {name!r} is already installed in {root}",
                         "choose another name with --name, or remove it with `photod model remove`")
    root.mkdir(parents=True, exist_ok=True)
    build = Path(tempfile.mkdtemp(prefix=f".build-{name}-", dir=root))
    try:
        exported = _export_folder(
            loaded.model, loaded.vision_config, loaded.text_config, build / "bundle", precision=precision,
            arch=loaded.arch, name=name, source=source or str(Path(checkpoint).resolve()),
            images=images, texts=texts)
        if keep_checkpoint:
            exported = _add_checkpoint(exported, Path(checkpoint))
        installed = registry.install_bundle(exported.path, data_dir, name, replace=replace)
    finally:
        shutil.rmtree(build, ignore_errors=True)
    if activate:
        installed = registry.use_bundle(data_dir, name)
    log.info("imported %s as model %s (%s, model id %s) in %.1f s", checkpoint, name, precision,
             installed.model_id, time.perf_counter() - t0)
    return installed
