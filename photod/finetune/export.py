"""Exporting a Chinese-CLIP model to a photod model bundle: two ONNX towers, verified before anything is kept.

Path: cn_clip's CLIP (fp32, eval) -> image tower (encode_image, L2-normalised) and text tower (encode_text
on token ids, L2-normalised) -> ONNX with a dynamic batch axis -> fp32 as is, fp16 by onnxruntime's float16
converter, or int8 by onnxruntime's dynamic quantization (photod/model/convert.py, no torch) -> both graphs
run in onnxruntime on sample images and texts and compared with the PyTorch model -> bundle written and installed.

Exporter: torch's TorchScript-based exporter (`dynamo=False`) at opset 17. On these models it exports many
times faster than the torch.export-based one, even for tiny ones (each bundle's manifest records the seconds
of its export under `export`), and both give identical embeddings; the newer exporter (opset 18) is kept as
a fallback for a torch without the old.

ViT image towers (fp32 and int8) are exported in the fused form of photod/finetune/optimize.py: attention as ONNX
Runtime's Attention op (QAttention once quantized) and the last block for the class token only, which makes
the image tower faster on a CPU in int8 and in fp32, same output (see benchmarks/bench_encode.py: `compare
--extra` times an unfused bundle beside the fused one).
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
from PIL import Image

from photod.errors import ModelError
from photod.finetune.checkpoint import load_model
from photod.finetune.optimize import CUSTOM_OPSETS, fused_image_tower
from photod.model import bundle as bundles
from photod.model import convert, registry
from photod.model.fuse import FUSED_PRECISIONS
from photod.model.preprocess import CLIP_MEAN, CLIP_STD
from photod.model.tokenizer import DEFAULT_CONTEXT_LENGTH
from photod.model.verify import BOUNDS, SAMPLE_TEXTS, check, compare, sample_images

log = logging.getLogger(__name__)

OPSET = 17
FALLBACK_OPSET = 18
# One tower above this many bytes of fp32 weights cannot be one protobuf (2 GB limit): weights go to .data.
EXTERNAL_DATA_BYTES = convert.EXTERNAL_BYTES


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


def _export(
    module: torch.nn.Module, example: torch.Tensor, path: Path, input_name: str, output_name: str, fused: bool = False
) -> dict[str, Any]:
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
                module,
                (example,),
                str(path),
                input_names=[input_name],
                output_names=[output_name],
                dynamic_axes={input_name: axes, output_name: {0: "batch"}},
                opset_version=OPSET,
                do_constant_folding=True,
                dynamo=False,
                custom_opsets=CUSTOM_OPSETS if fused else None,
            )
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
                module,
                (example,),
                input_names=[input_name],
                output_names=[output_name],
                dynamic_shapes={input_name: shapes},
                opset_version=FALLBACK_OPSET,
                dynamo=True,
            )
        program.save(str(path))
    except Exception as exc:  # noqa: BLE001
        raise ModelError(f"exporting the {input_name} tower to ONNX failed: {exc}") from exc
    return {"exporter": "dynamo", "opset": FALLBACK_OPSET, "dynamic_tokens": text, "fused": False}


# ---------------------------------------------------------------------------------------------------------
# public API


def default_name(checkpoint: str | Path | None, arch: str, precision: str) -> str:
    """ "vit-b-16-int8" for a named arch, else "<checkpoint stem>-<precision>" made safe as a folder name."""
    stem = arch if arch != "custom" or checkpoint is None else Path(checkpoint).stem
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", stem).strip("-._").lower() or "model"
    return f"{stem[:50]}-{precision}"


def export_bundle_from_model(
    model: torch.nn.Module,
    vision_config: dict[str, Any],
    text_config: dict[str, Any],
    out_dir: str | Path,
    *,
    precision: str = "int8",
    arch: str = "custom",
    name: str = "model",
    source: str = "",
    context_length: int = DEFAULT_CONTEXT_LENGTH,
    images: Sequence[Image.Image | str | Path] | None = None,
    texts: Sequence[str] | None = None,
) -> bundles.Bundle:
    """Export a cn_clip CLIP model to a verified bundle folder `out_dir` (created; must not exist).

    The model is copied to CPU fp32 (the caller's is untouched). Both towers are exported, converted to
    `precision`, run in onnxruntime on `images` (default: synthetic ones) and `texts` (default: 20
    Chinese/English ones) and compared with PyTorch; a tower below the bounds in BOUNDS raises ModelError
    and leaves no `out_dir`. Returns the Bundle (not installed: see photod.model.registry.install_bundle).
    """
    return _export_folder(
        copy.deepcopy(model).to("cpu").float().eval(),
        vision_config,
        text_config,
        out_dir,
        precision=precision,
        arch=arch,
        name=name,
        source=source,
        context_length=context_length,
        images=images,
        texts=texts,
    )


def _export_folder(
    model: torch.nn.Module,
    vision_config: dict[str, Any],
    text_config: dict[str, Any],
    out_dir: str | Path,
    *,
    precision: str,
    arch: str,
    name: str,
    source: str,
    context_length: int = DEFAULT_CONTEXT_LENGTH,
    images=None,
    texts=None,
) -> bundles.Bundle:
    """export_bundle_from_model for a model already on CPU in fp32 (used as is, not copied)."""
    if precision not in bundles.PRECISIONS:
        raise ModelError(f"unknown precision {precision!r}", f"use one of {', '.join(bundles.PRECISIONS)}")
    registry.check_name(name)
    if context_length > int(text_config["text_max_position_embeddings"]):
        raise ModelError(
            f"context length {context_length} exceeds the text tower's "
            f"{text_config['text_max_position_embeddings']} positions"
        )
    vocab_lines = sum(1 for _ in bundles.VOCAB_SOURCE.open(encoding="utf-8"))
    if vocab_lines > int(text_config["vocab_size"]):
        raise ModelError(
            f"the text tower has {text_config['vocab_size']} token embeddings but cn_clip's "
            f"vocabulary has {vocab_lines} tokens",
            "use a text config with vocab_size 21128",
        )
    out = Path(out_dir)
    if out.exists():
        raise ModelError(f"export folder {out} already exists", "give a new folder")
    out.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=".export-", dir=out.parent))
    try:
        out.mkdir()
        return _export_bundle(
            model.eval(),
            vision_config,
            text_config,
            out,
            scratch,
            precision,
            arch,
            name,
            source,
            context_length,
            images,
            texts,
        )
    except BaseException:
        shutil.rmtree(out, ignore_errors=True)
        raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _export_fp32(
    model: torch.nn.Module,
    module: torch.nn.Module,
    fused: torch.nn.Module | None,
    inputs: torch.Tensor,
    path: Path,
    input_name: str,
    output_name: str,
    reference: np.ndarray,
    tower: str,
) -> tuple[dict[str, Any], dict[str, float]]:
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


def _export_verified(
    model: torch.nn.Module,
    module: torch.nn.Module,
    inputs: torch.Tensor,
    path: Path,
    input_name: str,
    output_name: str,
    reference: np.ndarray,
    tower: str,
    fused: bool = False,
) -> tuple[dict[str, Any], dict[str, float]]:
    # Trace with a batch of 2: a batch of 1 lets the tracer fold the batch size into broadcasts.
    info = _export(module, inputs[:2], path, input_name, output_name, fused=fused)
    onnx.checker.check_model(str(path))
    # The export leaves the tower in eval mode; re-assert it, dropout must not touch the reference.
    model.eval()
    figures = compare(path, input_name, inputs.numpy(), reference)
    check(figures, "fp32", tower)
    return info, figures


def _export_bundle(
    model,
    vision_config,
    text_config,
    out: Path,
    scratch: Path,
    precision: str,
    arch: str,
    name: str,
    source: str,
    context_length: int,
    images,
    texts,
) -> bundles.Bundle:
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
        export_info[tower], figures = _export_fp32(
            model, module, fused.get(tower), inputs, fp32_path, input_name, output_name, reference[tower], tower
        )
        seconds[f"export_{tower}"] = time.perf_counter() - t0
        verification["fp32"][tower] = figures
        external = sum(p.numel() * 4 for p in module.parameters()) > EXTERNAL_DATA_BYTES
        t0 = time.perf_counter()
        convert.convert(fp32_path, out / filename, precision, tower, external)
        seconds[f"convert_{tower}"] = time.perf_counter() - t0
        if precision != "fp32":
            figures = compare(out / filename, input_name, inputs.numpy(), reference[tower], precision)
            verification[precision][tower] = figures
            check(figures, precision, tower)
        log.info("%s tower: %s", tower, {k: v.get(tower) for k, v in verification.items() if k in ("fp32", precision)})
    shutil.copyfile(bundles.VOCAB_SOURCE, out / bundles.VOCAB_FILE)
    export_info.update(
        {
            "torch": torch.__version__,
            "onnx": onnx.__version__,
            "onnxruntime": ort.__version__,
            "seconds": {k: round(v, 3) for k, v in seconds.items()},
        }
    )
    return bundles.write_manifest(
        out,
        name=name,
        arch=arch,
        vision_config=dict(vision_config),
        text_config=dict(text_config),
        embed_dim=int(vision_config["embed_dim"]),
        image_size=size,
        context_length=context_length,
        mean=list(CLIP_MEAN),
        std=list(CLIP_STD),
        precision=precision,
        source=source,
        verification=verification,
        export=export_info,
    )


def _add_checkpoint(exported: bundles.Bundle, checkpoint: Path) -> bundles.Bundle:
    """Put the source weights into the bundle folder and re-hash it (the manifest lists every file)."""
    shutil.copy2(checkpoint, exported.path / bundles.CHECKPOINT_FILE)
    fields = {k: v for k, v in exported.to_manifest().items() if k not in ("files", "image_id", "text_id", "model_id")}
    return bundles.write_manifest(exported.path, **fields)


def import_checkpoint(
    checkpoint: str | Path,
    data_dir: str | Path,
    *,
    arch: str | None = None,
    vision_config: str | Path | None = None,
    text_config: str | Path | None = None,
    precision: str = "int8",
    name: str | None = None,
    activate: bool = True,
    replace: bool = False,
    source: str | None = None,
    images: Sequence[Image.Image | str | Path] | None = None,
    texts: Sequence[str] | None = None,
    keep_checkpoint: bool = False,
) -> bundles.Bundle:
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
    spec = loaded.spec
    name = name or default_name(checkpoint, spec.arch, precision)
    root = registry.free_name(data_dir, name, replace)
    root.mkdir(parents=True, exist_ok=True)
    build = Path(tempfile.mkdtemp(prefix=f".build-{name}-", dir=root))
    try:
        exported = _export_folder(
            loaded.model,
            spec.vision_config,
            spec.text_config,
            build / "bundle",
            precision=precision,
            arch=spec.arch,
            name=name,
            source=source or str(Path(checkpoint).resolve()),
            images=images,
            texts=texts,
        )
        if keep_checkpoint:
            exported = _add_checkpoint(exported, Path(checkpoint))
        installed = registry.install_bundle(exported.path, data_dir, name, replace=replace)
    finally:
        shutil.rmtree(build, ignore_errors=True)
    if activate:
        installed = registry.use_bundle(data_dir, name)
    log.info(
        "imported %s as model %s (%s, model id %s) in %.1f s",
        checkpoint,
        name,
        precision,
        installed.model_id,
        time.perf_counter() - t0,
    )
    return installed
