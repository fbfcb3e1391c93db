"""Tiny but real model bundles and staged libraries for encoder, index and search tests.

The graphs are small ONNX models run by real ONNX Runtime sessions: the image tower average-pools the
picture into a 4x4 grid of colours and projects it (so different pictures get different vectors and the
same picture the same vector); the text tower averages token embeddings over the real cn_clip vocabulary.
Both L2-normalise their output, as an exported Chinese-CLIP tower does.
"""

from __future__ import annotations

import importlib.util
import io
import shutil
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from PIL import Image

from photod.config import make_root
from photod.model import bundle as bundles
from photod.model import registry
from photod.model.preprocess import CLIP_MEAN, CLIP_STD
from photod.store.catalog import Catalog, PhotoMeta

REPO = Path(__file__).resolve().parent.parent.parent
OPSET = 17
GRID = 4


def cn_clip_vocab() -> Path:
    """The vocab.txt that ships with cn_clip (21128 tokens)."""
    # Found without importing cn_clip, which would import torch (seconds) for one text file.
    spec = importlib.util.find_spec("cn_clip")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("cn_clip is not installed: pip install -e '.[finetune]'")
    return Path(list(spec.submodule_search_locations)[0]) / "clip" / "vocab.txt"


def _normalise_nodes(src: str, dst: str) -> list:
    return [
        helper.make_node("ReduceL2", [src], [f"{dst}_norm"], axes=[1], keepdims=1),
        helper.make_node("Max", [f"{dst}_norm", "eps"], [f"{dst}_safe"]),
        helper.make_node("Div", [src, f"{dst}_safe"], [dst]),
    ]


def image_graph(embed_dim: int, image_size: int, seed: int = 0) -> onnx.ModelProto:
    """float32 (n, 3, S, S) -> unit float32 (n, embed_dim)."""
    rng = np.random.default_rng(seed)
    cell = image_size // GRID
    proj = rng.standard_normal((3 * GRID * GRID, embed_dim)).astype(np.float32)
    nodes = [
        helper.make_node("AveragePool", ["image"], ["pooled"], kernel_shape=[cell, cell], strides=[cell, cell]),
        helper.make_node("Flatten", ["pooled"], ["flat"], axis=1),
        helper.make_node("MatMul", ["flat", "proj"], ["raw"]),
        *_normalise_nodes("raw", "image_embedding"),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny_image",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 3, image_size, image_size])],
        [helper.make_tensor_value_info("image_embedding", TensorProto.FLOAT, ["batch", embed_dim])],
        [numpy_helper.from_array(proj, "proj"), numpy_helper.from_array(np.array([1e-12], np.float32), "eps")],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])


def text_graph(embed_dim: int, vocab_size: int, seed: int = 1, masked: bool = False) -> onnx.ModelProto:
    """int64 (n, L) -> unit float32 (n, embed_dim). `masked` averages the real tokens only, leaving out the
    padding (id 0), as a real tower's attention mask does: texts sharing characters are then close, and
    texts sharing none are not."""
    rng = np.random.default_rng(seed)
    table = rng.standard_normal((vocab_size, embed_dim)).astype(np.float32)
    if masked:
        table[0] = 0.0  # padding adds nothing to the sum...
        pooling = [
            helper.make_node("Gather", ["table", "text"], ["emb"], axis=0),
            helper.make_node("ReduceSum", ["emb", "axis1"], ["raw"], keepdims=0),
        ]  # ...and the normalisation below makes a sum and a mean the same direction
    else:
        pooling = [
            helper.make_node("Gather", ["table", "text"], ["emb"], axis=0),
            helper.make_node("ReduceMean", ["emb"], ["raw"], axes=[1], keepdims=0),
        ]
    nodes = [*pooling, *_normalise_nodes("raw", "text_embedding")]
    graph = helper.make_graph(
        nodes,
        "tiny_text",
        [helper.make_tensor_value_info("text", TensorProto.INT64, ["batch", "length"])],
        [helper.make_tensor_value_info("text_embedding", TensorProto.FLOAT, ["batch", embed_dim])],
        [
            numpy_helper.from_array(table, "table"),
            numpy_helper.from_array(np.array([1e-12], np.float32), "eps"),
            numpy_helper.from_array(np.array([1], np.int64), "axis1"),
        ],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])


def make_bundle(
    folder: Path,
    embed_dim: int = 32,
    image_size: int = 32,
    context_length: int = 16,
    name: str = "tiny",
    seed: int = 0,
    text_masked: bool = False,
    precision: str = "fp32",
) -> bundles.Bundle:
    """A complete bundle folder (manifest, both towers, the real vocab), loaded as a photod Bundle.
    `precision` "int8": both towers quantized by photod's own int8 conversion (photod/model/convert.py)."""
    from photod.model.convert import quantize_int8

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    vocab = cn_clip_vocab()
    shutil.copyfile(vocab, folder / bundles.VOCAB_FILE)
    vocab_size = sum(1 for _ in open(vocab, encoding="utf-8"))
    graphs = {
        bundles.IMAGE_FILE: image_graph(embed_dim, image_size, seed),
        bundles.TEXT_FILE: text_graph(embed_dim, vocab_size, seed + 1, text_masked),
    }
    for filename, graph in graphs.items():
        if precision == "int8":
            fp32 = folder / f"fp32-{filename}"
            onnx.save(graph, str(fp32))
            quantize_int8(fp32, folder / filename, "text" if filename == bundles.TEXT_FILE else "image")
            fp32.unlink()
        else:
            onnx.save(graph, str(folder / filename))
    return bundles.write_manifest(
        folder,
        name=name,
        arch="tiny-test",
        vision_config={},
        text_config={},
        embed_dim=embed_dim,
        image_size=image_size,
        context_length=context_length,
        mean=list(CLIP_MEAN),
        std=list(CLIP_STD),
        precision=precision,
        source="tests/support/onnxkit.py",
    )


def install_active(data_dir: Path, folder: Path, name: str = "tiny", **kw) -> bundles.Bundle:
    """Make a bundle, install it in the data dir and make it the active model."""
    make_bundle(folder, name=name, **kw)
    registry.install_bundle(folder, data_dir, name)
    return registry.use_bundle(data_dir, name)


def picture(seed: int, size: int = 48) -> Image.Image:
    """A distinct RGB picture: a smooth random gradient plus blocks, different for every seed."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size] / size
    chans = []
    for _ in range(3):
        a, b, c = rng.uniform(-1, 1, 3)
        chans.append(0.5 + 0.5 * np.sin(3 * (a * x + b * y) + c * 6))
    arr = np.stack(chans, axis=-1)
    for _ in range(3):
        x0, y0 = rng.integers(0, size - 8, 2)
        arr[y0 : y0 + 8, x0 : x0 + 8] = rng.uniform(0, 1, 3)
    return Image.fromarray((arr * 255).astype(np.uint8), "RGB")


def jpeg_bytes(img: Image.Image, quality: int = 90) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def add_photos(
    catalog: Catalog,
    root_dir: Path,
    n: int,
    staged: bool = True,
    label: str = "lib",
    camera: str | None = None,
    taken_at: str | None = None,
) -> list[int]:
    """n catalog rows under one root (no files on disk needed), staged or new, in one transaction."""
    root_dir.mkdir(parents=True, exist_ok=True)
    root = catalog.add_root(make_root(root_dir, label=label))
    catalog.update_root(root.id, online=1)
    ids = []
    with catalog.transaction():
        start = catalog.scalar("SELECT count(*) FROM photos WHERE root_id = ?", (root.id,))
        for i in range(start, start + n):
            pid, _ = catalog.upsert_file(root.id, f"album{i % 7}/img_{i:06d}.jpg", 1000 + i, 10**18 + i)
            if staged:
                catalog.mark_staged(pid, PhotoMeta(camera_model=camera, taken_at=taken_at), f"hash{root.id}-{i}")
            ids.append(pid)
    return ids


def stage_pictures(stage, ids: list[int], size: int = 48) -> dict[int, Image.Image]:
    """Put a distinct picture in the stage for each id; returns the pictures by id."""
    pics = {pid: picture(pid, size) for pid in ids}
    stage.put_many({pid: jpeg_bytes(img) for pid, img in pics.items()})
    return pics


def unit_vectors(n: int, dim: int, seed: int = 0, clusters: int | None = None) -> np.ndarray:
    """Random unit vectors; with `clusters`, grouped around that many centres, as real embeddings are."""
    rng = np.random.default_rng(seed)
    if clusters:
        centres = rng.standard_normal((clusters, dim)).astype(np.float32)
        x = centres[rng.integers(0, clusters, n)] + 0.6 * rng.standard_normal((n, dim)).astype(np.float32)
    else:
        x = rng.standard_normal((n, dim)).astype(np.float32)
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
