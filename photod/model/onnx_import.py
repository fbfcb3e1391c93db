"""`photod model import` of Chinese-CLIP's own ONNX files: a bundle made with ONNX and ONNX Runtime only.

cn_clip's deploy script (cn_clip/deploy/pytorch_to_onnx.py) writes `<prefix>.img.fp32.onnx` and
`<prefix>.txt.fp32.onnx`, and fp16 copies whose weights sit in `<file>.extra_file` beside them; with torch
2.9 or newer each fp32 file comes with its weights in `<file>.data`. People share exactly these files (the
MT Photos project publishes vit-b-16.img.fp32.onnx and vit-b-16.txt.fp32.onnx), so a Raspberry Pi, where
torch does not belong, can make its bundle from them:

1. find the pair (two files, one of them, or a folder) and check that every weights file it names is there;
2. read the towers' facts (input size, embedding size, context length, patch size, layer counts, token
   table) and recognise the official architecture (photod.model.archs), `--arch` only where they cannot tell;
3. widen fp16 towers to fp32 (photod.model.convert.upcast_fp16): the fp32 one-row graph is the reference;
4. fuse a ViT image graph's attention (photod.model.fuse) and keep it if it verifies; convert the one-row
   graph to the bundle's precision (int8 quantized on the spot) and give it a batch axis, a free token axis
   and unit outputs (photod.model.batching);
5. run the bundle's towers on sample images and texts as the daemon will and compare them with the
   reference under the bounds of every import (photod.model.verify); refuse, writing nothing, below them;
6. write and install the bundle with photod's vocabulary and preprocessing.

Nothing here imports torch or cn_clip.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import onnx
import onnxruntime as ort
from onnx.external_data_helper import load_external_data_for_model

from photod.errors import ModelError
from photod.model import archs, batching, convert, fuse, registry, verify
from photod.model import bundle as bundles
from photod.model.encoder import normalise
from photod.model.preprocess import CLIP_MEAN, CLIP_STD, preprocess_batch
from photod.model.tokenizer import Tokenizer

log = logging.getLogger(__name__)

TOWER_MARKS = {"image": ".img.", "text": ".txt."}
FILES_HINT = (
    "give the <name>.img.<fp32|fp16>.onnx and <name>.txt.<fp32|fp16>.onnx files that Chinese-CLIP's "
    "deploy script writes (with their .onnx.data or .onnx.extra_file beside them), or their folder"
)


@dataclass(frozen=True)
class Tower:
    """One ONNX file of a pair: which tower it is and the precision its weights are in."""

    tower: str
    path: Path
    precision: str


# ---------------------------------------------------------------------------------------------------------
# finding the files


def _graph_head(path: Path) -> onnx.ModelProto:
    """The graph without its weights (cheap even for a 2 GB tower)."""
    try:
        return onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # noqa: BLE001 - protobuf and onnx raise several classes for a bad file
        raise ModelError(f"{path} is not an ONNX model ({type(exc).__name__}: {str(exc)[:200]})", FILES_HINT) from None


def _classify(path: Path) -> Tower:
    head = None
    tower = next((t for t, mark in TOWER_MARKS.items() if mark in path.name), None)
    if tower is None:
        head = _graph_head(path)
        name = batching.only_input(head.graph).name
        tower = name if name in TOWER_MARKS else None  # cn_clip names the inputs image and text
        if tower is None:
            raise ModelError(f"cannot tell whether {path} is the image or the text tower (input {name!r})", FILES_HINT)
    precision = "fp16" if ".fp16." in path.name else "fp32" if ".fp32." in path.name else None
    if precision is None:
        head = head or _graph_head(path)
        halves = sum(t.data_type == onnx.TensorProto.FLOAT16 for t in head.graph.initializer)
        precision = "fp16" if halves > len(head.graph.initializer) / 2 else "fp32"
    return Tower(tower, path, precision)


def _sibling(path: Path) -> list[Path]:
    for mark, other in ((".img.", ".txt."), (".txt.", ".img.")):
        if mark in path.name:
            return [path.with_name(path.name.replace(mark, other))]
    return []


def find_pair(paths: Sequence[str | os.PathLike[str]]) -> dict[str, Tower]:
    """{"image": Tower, "text": Tower} from the files or folder given. A single file brings its sibling
    (`.img.` <-> `.txt.`); where a folder holds both precisions, fp32 is taken (it is the exact one)."""
    candidates: list[Path] = []
    for given in map(Path, paths):
        if given.is_dir():
            candidates += sorted(given.glob("*.onnx"))
        elif given.is_file():
            candidates += [given] + [p for p in _sibling(given) if p.is_file() and len(paths) == 1]
        else:
            raise ModelError(f"{given} does not exist", FILES_HINT)
    found: dict[str, list[Tower]] = {"image": [], "text": []}
    for path in dict.fromkeys(candidates):
        tower = _classify(path)
        found[tower.tower].append(tower)
    missing = [t for t, towers in found.items() if not towers]
    if missing:
        seen = ", ".join(str(p) for p in candidates) or "no .onnx file"
        raise ModelError(f"the {' and '.join(missing)} tower is missing (found: {seen})", FILES_HINT)
    return {t: min(towers, key=lambda x: (x.precision != "fp32", x.path.name)) for t, towers in found.items()}


def _weights_files(model: onnx.ModelProto) -> set[str]:
    tensors = list(model.graph.initializer) + [a.t for n in model.graph.node for a in n.attribute if a.HasField("t")]
    return {
        entry.value
        for t in tensors
        if t.data_location == onnx.TensorProto.EXTERNAL
        for entry in t.external_data
        if entry.key == "location"
    }


def load_tower(tower: Tower) -> onnx.ModelProto:
    """The tower's graph with its weights, in fp32 (an fp16 tower is widened). A weights file that is not
    beside the graph is named, with what to do."""
    model = _graph_head(tower.path)
    for name in sorted(_weights_files(model)):
        if not (tower.path.parent / name).is_file():
            raise ModelError(
                f"{tower.path} keeps its weights in {name}, which is not beside it",
                f"copy {name} into {tower.path.parent} (the deploy script writes it next to the .onnx)",
            )
    try:
        load_external_data_for_model(model, str(tower.path.parent))
    except Exception as exc:  # noqa: BLE001
        raise ModelError(
            f"cannot read the weights of {tower.path}: {type(exc).__name__}: {str(exc)[:200]}", FILES_HINT
        ) from None
    if tower.precision == "fp16":
        convert.upcast_fp16(model)
    return model


# ---------------------------------------------------------------------------------------------------------
# what the graphs say


def _ops(model: onnx.ModelProto) -> Counter[str]:
    return Counter(node.op_type for node in model.graph.node)


def _patch_size(model: onnx.ModelProto) -> int | None:
    for node in model.graph.node:
        if node.op_type == "Conv":
            attrs: dict[str, list[int]] = {a.name: list(a.ints) for a in node.attribute}
            kernel, strides = attrs.get("kernel_shape"), attrs.get("strides")
            if kernel and kernel == strides and kernel[0] > 1 and len(set(kernel)) == 1:
                return kernel[0]
    return None


def _token_table(model: onnx.ModelProto) -> tuple[int, int] | None:
    """(rows, width) of the largest table a Gather reads: the token embeddings."""
    weights = {t.name: tuple(t.dims) for t in model.graph.initializer}
    tables = [
        weights[n.input[0]] for n in model.graph.node if n.op_type == "Gather" and len(weights.get(n.input[0], ())) == 2
    ]
    return max(tables, default=None)


def _int_dim(value: onnx.ValueInfoProto, axis: int) -> int | None:
    shape = batching.dims(value)
    size = shape[axis] if len(shape) > axis else None
    return size if isinstance(size, int) and size > 0 else None


def read_facts(image: onnx.ModelProto, text: onnx.ModelProto) -> archs.Facts:
    """What the two graphs show of their architecture (see photod.model.archs.Facts)."""
    image_in, text_in = batching.only_input(image.graph), batching.only_input(text.graph)
    dims = {t: _int_dim(m.graph.output[0], 1) for t, m in (("image", image), ("text", text))}
    if dims["image"] and dims["text"] and dims["image"] != dims["text"]:
        raise ModelError(
            f"the image tower gives {dims['image']}-d embeddings and the text tower {dims['text']}-d: "
            "they are not one model",
            "give the .img. and .txt. files of the same model",
        )
    table = _token_table(text)
    if table and table[0] != archs.VOCAB_SIZE:
        raise ModelError(
            f"the text tower's token table has {table[0]} rows; Chinese-CLIP's vocabulary, which "
            f"photod tokenizes with, has {archs.VOCAB_SIZE}",
            FILES_HINT,
        )
    return archs.Facts(
        image_size=_int_dim(image_in, 2),
        embed_dim=dims["image"] or dims["text"],
        context_length=_int_dim(text_in, 1),
        patch_size=_patch_size(image),
        vision_attention=_ops(image)["Softmax"] or None,
        text_width=table[1] if table else None,
        text_layers=_ops(text)["Softmax"] or None,
    )


def recognise(pair: dict[str, Tower], arch: str | None = None) -> tuple[archs.Facts, str]:
    """The pair's facts and architecture, read from the graphs without their weights."""
    facts = read_facts(_graph_head(pair["image"].path), _graph_head(pair["text"].path))
    return facts, archs.recognise(facts, arch)


# ---------------------------------------------------------------------------------------------------------
# building and checking


def _row_by_row(path: Path, inputs: np.ndarray) -> np.ndarray:
    """Unit embeddings of `inputs` through the one-row graph at `path`, one row per run."""
    session = verify.session(path)
    name = session.get_inputs()[0].name
    return normalise(np.concatenate([session.run(None, {name: row[None]})[0] for row in inputs]))


def _sample_inputs(size: int, context_length: int) -> dict[str, np.ndarray]:
    tokenizer = Tokenizer.from_vocab(bundles.VOCAB_SOURCE)
    return {
        "image": preprocess_batch(verify.sample_images(), size, CLIP_MEAN, CLIP_STD),
        "text": tokenizer.tokenize(verify.SAMPLE_TEXTS, context_length),
    }


def _fused(
    source: Path, heads: int, reference: np.ndarray, inputs: np.ndarray, path: Path, external: bool
) -> str | None:
    """Write the ViT graph at `source` with fused attention to `path` if it fuses and agrees with
    `reference` as an fp32 export must; None when it does, else why not (the plain graph is then used)."""
    fused = fuse.fold_constants(source, path.with_name("folded.onnx"), external)
    blocks = fuse.fuse_attention(fused, heads)
    if not blocks:
        return "no attention block was recognised"
    convert.save(fused, path, external)
    agreement = verify.figures(verify.cosines(_row_by_row(path, inputs), reference))
    if not verify.agrees(agreement, "fp32"):
        return f"the fused graph disagreed with the plain one (cosine {agreement})"
    log.info("image tower: %d attention blocks fused", blocks)
    return None


def _build_tower(
    model: onnx.ModelProto,
    tower: str,
    precision: str,
    embed_dim: int,
    heads: int | None,
    work: Path,
    out: Path,
    inputs: np.ndarray,
) -> dict[str, Any]:
    """Write the bundle tower `out` from the fp32 one-row `model`, verified; returns its figures and
    whether its attention is fused (ViT image towers in fp32 and int8, as for a checkpoint's export)."""
    external = model.ByteSize() > convert.EXTERNAL_BYTES
    reference_path = work / f"{tower}.fp32.onnx"
    convert.save(model, reference_path, external)
    reference = _row_by_row(reference_path, inputs)
    source = reference_path
    why_plain: str | None = "not a ViT image tower"
    if heads and precision in fuse.FUSED_PRECISIONS:
        fused_path = work / f"{tower}.fused.onnx"
        why_plain = _fused(reference_path, heads, reference, inputs, fused_path, external)
        source = reference_path if why_plain else fused_path
    converted = work / f"{tower}.{precision}.onnx"
    convert.convert(source, converted, precision, tower, external)
    bundle_tower = batching.batched_tower(onnx.load(str(converted)), tower, embed_dim)
    convert.save(bundle_tower, out, external=external and precision != "int8")
    name = bundles.TEXT_INPUT if tower == "text" else bundles.IMAGE_INPUT
    figures = verify.compare(out, name, inputs, reference, precision)
    verify.check(figures, precision, tower, reference="the fp32 graph")
    return {"figures": figures, "fused": why_plain is None, "why_plain": why_plain}


def _fp16_agreement(tower: Tower, inputs: np.ndarray, reference: Path) -> dict[str, Any]:
    """How the fp16 file as given agrees with its widened fp32 form, or why ONNX Runtime cannot run it."""
    try:
        given = _row_by_row(tower.path, inputs)
    except Exception as exc:  # noqa: BLE001 - the widened graph stands in; the reason is recorded
        return {"runs": False, "why": f"{type(exc).__name__}: {str(exc)[:160]}"}
    return {"runs": True, **verify.figures(verify.cosines(given, _row_by_row(reference, inputs)))}


def _tower_export(source: Tower, built: dict[str, Any]) -> dict[str, Any]:
    """The manifest's record of how one tower was made."""
    record = {
        "file": source.path.name,
        "precision": source.precision,
        "batch": "scan over rows",
        "dynamic_tokens": False,
        "fused": built["fused"],
    }
    if source.tower == "image" and not built["fused"]:
        record["why_plain"] = built["why_plain"]
    return record


def build_bundle(
    pair: dict[str, Tower], out: Path, facts: archs.Facts, arch: str, *, precision: str = "int8", name: str = "model"
) -> bundles.Bundle:
    """The verified bundle folder `out` (created) from the towers `pair`, whose facts and architecture
    `recognise` gave; see the module docstring."""
    if precision not in bundles.PRECISIONS:
        raise ModelError(f"unknown precision {precision!r}", f"use one of {', '.join(bundles.PRECISIONS)}")
    t0 = time.perf_counter()
    vision_config, text_config = archs.CONFIGS[arch]
    size = facts.image_size or vision_config["image_resolution"]
    context = facts.context_length
    if context is None:
        raise ModelError(f"the text tower {pair['text'].path} does not say its context length", FILES_HINT)
    embed_dim = facts.embed_dim or vision_config["embed_dim"]
    inputs = _sample_inputs(size, context)
    out.mkdir(parents=True)
    verification: dict[str, Any] = {
        "reference": "fp32 graph",
        "samples": {t: len(x) for t, x in inputs.items()},
        "bounds": {precision: dict(zip(("min", "mean"), verify.BOUNDS[precision]))},
        precision: {},
    }
    built = {}
    with tempfile.TemporaryDirectory(prefix=".onnx-import-", dir=out.parent) as tmp:
        for tower, source in pair.items():  # one tower in memory at a time: a Pi has little of it
            filename = bundles.TEXT_FILE if tower == "text" else bundles.IMAGE_FILE
            heads = archs.vision_heads(arch) if tower == "image" else None
            built[tower] = _build_tower(
                load_tower(source), tower, precision, embed_dim, heads, Path(tmp), out / filename, inputs[tower]
            )
            verification[precision][tower] = built[tower]["figures"]
            if source.precision == "fp16":
                verification.setdefault("fp16_source", {})[tower] = _fp16_agreement(
                    source, inputs[tower][:4], Path(tmp) / f"{tower}.fp32.onnx"
                )
            log.info("%s tower: %s", tower, verification[precision][tower])
    shutil.copyfile(bundles.VOCAB_SOURCE, out / bundles.VOCAB_FILE)
    export = {
        "from": "Chinese-CLIP deploy ONNX",
        "facts": facts.describe(),
        "onnx": onnx.__version__,
        "onnxruntime": ort.__version__,
        "seconds": round(time.perf_counter() - t0, 1),
        **{t: _tower_export(source, built[t]) for t, source in pair.items()},
    }
    return bundles.write_manifest(
        out,
        name=name,
        arch=arch,
        vision_config=dict(vision_config),
        text_config=dict(text_config),
        embed_dim=embed_dim,
        image_size=size,
        context_length=context,
        mean=list(CLIP_MEAN),
        std=list(CLIP_STD),
        precision=precision,
        source=", ".join(str(t.path.resolve()) for t in pair.values()),
        verification=verification,
        export=export,
    )


def import_onnx(
    paths: Sequence[str | os.PathLike[str]],
    data_dir: str | os.PathLike[str],
    *,
    arch: str | None = None,
    precision: str = "int8",
    name: str | None = None,
    activate: bool = True,
    replace: bool = False,
) -> bundles.Bundle:
    """Import Chinese-CLIP ONNX towers into `<data_dir>/models/<name>` as a verified bundle (the module
    docstring says how). `name` defaults to "<arch>-<precision>". Raises ModelError, with nothing written,
    on missing files, towers of no known architecture, a name already taken (unless `replace`), or a
    converted tower that disagrees with the fp32 graph."""
    pair = find_pair(paths)
    facts, arch = recognise(pair, arch)
    name = name or f"{arch.lower()}-{precision}"
    root = registry.free_name(data_dir, name, replace)
    root.mkdir(parents=True, exist_ok=True)
    build = Path(tempfile.mkdtemp(prefix=".build-onnx-", dir=root))
    try:
        made = build_bundle(pair, build / "bundle", facts, arch, precision=precision, name=name)
        installed = registry.install_bundle(made.path, data_dir, name, replace=replace)
    finally:
        shutil.rmtree(build, ignore_errors=True)
    if activate:
        installed = registry.use_bundle(data_dir, installed.name)
    log.info(
        "imported %s as model %s (%s %s)",
        ", ".join(str(t.path) for t in pair.values()),
        installed.name,
        installed.arch,
        precision,
    )
    return installed
