"""Small Chinese-CLIP models imported through the real import path, and independent PyTorch references.

torch and cn_clip are imported inside the functions that need them, so a module importing this kit (and
the daemon-side tests) stays fast and runs without the finetune extra.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import onnxruntime as ort
from PIL import Image

from photod.model import bundle as bundles

PRECISIONS = ("fp32", "fp16", "int8")

TEXTS = [
    "海边的日落",
    "我家的猫在沙发上",
    "穿红衣服的小女孩在草地上",
    "a cat sleeping on a sofa",
    "下雪的北京",
    "2023年春节全家福",
    "🐱 喵喵",
    "ＯＫ！全角",
    "a very long caption " * 12,
    "",
]


@dataclass
class SmallImport:
    """One small checkpoint imported at every precision into one data dir."""

    kind: str
    checkpoint: Path
    vision_config: Path
    text_config: Path
    data_dir: Path
    bundles: dict[str, bundles.Bundle] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)


def sample_photos(samples: Path | None, count: int = 6) -> list[Path]:
    """Up to `count` real camera JPEGs from the shared samples (sorted, readable ones only)."""
    if samples is None or not Path(samples).is_dir():
        return []
    photos = []
    for path in sorted((Path(samples) / "jpg").glob("*.jpg")):
        try:
            with Image.open(path) as img:
                img.draft("RGB", (256, 256))
                img.convert("RGB").load()
        except OSError:
            continue
        photos.append(path)
        if len(photos) == count:
            break
    return photos


def open_images(paths: Sequence[Path]) -> list[Image.Image]:
    out = []
    for path in paths:
        with Image.open(path) as img:
            img.draft("RGB", (256, 256))
            out.append(img.convert("RGB"))
    return out


def import_small(
    workdir: Path,
    kind: str,
    precisions: Sequence[str] = PRECISIONS,
    images: Sequence[Path] = (),
    fp16_weights: bool = False,
) -> SmallImport:
    """Build the small `kind` checkpoint and import it (cn_clip format, configs as files) per precision."""
    from photod.finetune.export import import_checkpoint
    from tests.support.smallmodels import build_small_checkpoint

    workdir = Path(workdir)
    ckpt, vcfg, tcfg = build_small_checkpoint(workdir / "checkpoints", kind, seed=0, fp16_weights=fp16_weights)
    result = SmallImport(kind, ckpt, vcfg, tcfg, workdir / "data")
    result.data_dir.mkdir(exist_ok=True)
    for precision in precisions:
        t0 = time.perf_counter()
        result.bundles[precision] = import_checkpoint(
            ckpt,
            result.data_dir,
            vision_config=vcfg,
            text_config=tcfg,
            precision=precision,
            activate=(precision == "fp32"),
            images=list(images) or None,
        )
        result.seconds[precision] = time.perf_counter() - t0
    return result


def torch_reference(
    small: SmallImport, images: Sequence[Image.Image], texts: Sequence[str], context_length: int = 52
) -> tuple[np.ndarray, np.ndarray]:
    """L2-normalised (image, text) embeddings from cn_clip's PyTorch CLIP, loaded here without photod's
    loader: configs merged and "module." stripped by hand, as cn_clip's create_model does."""
    import torch
    from cn_clip.clip import image_transform, tokenize
    from cn_clip.clip.model import CLIP

    vision = json.loads(small.vision_config.read_text())
    if isinstance(vision["vision_layers"], str):
        vision["vision_layers"] = json.loads(vision["vision_layers"])
    model = CLIP(**vision, **json.loads(small.text_config.read_text()))
    state = torch.load(small.checkpoint, map_location="cpu", weights_only=True)["state_dict"]
    model.load_state_dict({k.removeprefix("module."): v for k, v in state.items()})
    model.float().eval()
    transform = image_transform(vision["image_resolution"])
    with torch.no_grad():
        img = model.encode_image(torch.stack([transform(i) for i in images]))
        txt = model.encode_text(tokenize(list(texts), context_length=context_length))
    img = img / img.norm(dim=-1, keepdim=True)
    txt = txt / txt.norm(dim=-1, keepdim=True)
    return img.numpy(), txt.numpy()


def session(path: Path) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.log_severity_level = 3
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def onnx_embeddings(
    bundle: bundles.Bundle, images: Sequence[Image.Image], texts: Sequence[str]
) -> tuple[np.ndarray, np.ndarray]:
    """(image, text) embeddings from the bundle's ONNX graphs, fed with cn_clip's own preprocessing."""
    import torch
    from cn_clip.clip import image_transform, tokenize

    transform = image_transform(bundle.image_size)
    pixels = torch.stack([transform(i) for i in images]).numpy()
    tokens = tokenize(list(texts), context_length=bundle.context_length).numpy()
    img = session(bundle.image_path).run([bundles.IMAGE_OUTPUT], {bundles.IMAGE_INPUT: pixels})[0]
    txt = session(bundle.text_path).run([bundles.TEXT_OUTPUT], {bundles.TEXT_INPUT: tokens})[0]
    return img, txt


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine similarity."""
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return (a * b).sum(axis=1)


def tiny_bundle(
    folder: Path, name: str = "tiny", seed: int = 0, text_seed: int | None = None, embed_dim: int = 8
) -> bundles.Bundle:
    """A complete, valid bundle folder without torch: two small real ONNX graphs (mean-pool + projection,
    embedding lookup + mean), cn_clip's vocab, and a manifest written by photod.model.bundle.write_manifest."""
    import importlib.util

    import onnx
    from onnx import TensorProto, helper, numpy_helper

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    spec = importlib.util.find_spec("cn_clip")
    if spec and spec.submodule_search_locations:
        vocab = (Path(list(spec.submodule_search_locations)[0]) / "clip" / "vocab.txt").read_text(encoding="utf-8")
    else:
        vocab = "\n".join(["[PAD]"] + [f"[unused{i}]" for i in range(99)] + ["[UNK]", "[CLS]", "[SEP]"]) + "\n"
    (folder / bundles.VOCAB_FILE).write_text(vocab, encoding="utf-8")
    vocab_size = vocab.count("\n")

    def graph(nodes, name_, inp, out, inits):
        g = helper.make_graph(nodes, name_, [inp], [out], inits)
        return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])

    rng = np.random.default_rng(seed)
    proj = numpy_helper.from_array(rng.standard_normal((3, embed_dim)).astype(np.float32), "proj")
    image = graph(
        [
            helper.make_node("ReduceMean", ["image"], ["pooled"], axes=[2, 3], keepdims=0),
            helper.make_node("MatMul", ["pooled", "proj"], [bundles.IMAGE_OUTPUT]),
        ],
        "image",
        helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 3, 16, 16]),
        helper.make_tensor_value_info(bundles.IMAGE_OUTPUT, TensorProto.FLOAT, ["batch", embed_dim]),
        [proj],
    )
    rng = np.random.default_rng(seed + 1 if text_seed is None else text_seed)
    table = numpy_helper.from_array(rng.standard_normal((vocab_size, embed_dim)).astype(np.float32), "table")
    text = graph(
        [
            helper.make_node("Gather", ["table", "text"], ["emb"], axis=0),
            helper.make_node("ReduceMean", ["emb"], [bundles.TEXT_OUTPUT], axes=[1], keepdims=0),
        ],
        "text",
        helper.make_tensor_value_info("text", TensorProto.INT64, ["batch", 8]),
        helper.make_tensor_value_info(bundles.TEXT_OUTPUT, TensorProto.FLOAT, ["batch", embed_dim]),
        [table],
    )
    onnx.save(image, str(folder / bundles.IMAGE_FILE))
    onnx.save(text, str(folder / bundles.TEXT_FILE))
    return bundles.write_manifest(
        folder,
        name=name,
        arch="custom",
        vision_config={"image_resolution": 16},
        text_config={},
        embed_dim=embed_dim,
        image_size=16,
        context_length=8,
        mean=[0.5, 0.5, 0.5],
        std=[0.25, 0.25, 0.25],
        precision="fp32",
        source="tests/support/modelkit.py",
    )
