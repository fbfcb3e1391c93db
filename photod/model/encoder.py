"""ONNX Runtime sessions for a bundle's image and text towers.

Each encoder opens its session once and keeps it: the daemon and the TUI never reload a model per query.
The CUDA provider is used when onnxruntime-gpu and a GPU are there (a first bulk encode on a GPU box),
the CPU provider otherwise. Outputs are L2-normalised again here: the graphs already normalise, but an
int8 or fp16 graph drifts a little, and cosine similarity assumes unit vectors.

A vector must not depend on the photos (or texts) encoded with it: re-encoding after a crash, a reindex
elsewhere, or a photo arriving alone instead of in a folder dump must not move it in a ranking. fp32 and
fp16 graphs compute every row on its own. int8 graphs quantize their activations at run time with one
scale per tensor, that is over the whole batch, so a photo's int8 vector moved with its batch-mates (cosine
0.9998 between the same photo alone and in a batch of 16). Int8 towers therefore run one row per call, on
`threads` rows at a time, each call on one ONNX Runtime thread: per-photo scales, bit-identical vectors
whatever the batch, and faster than the batched run on the 2-core VNNI CPU of the README (ViT-B-16: 17.9
against 14.0 images/s at batch 16, benchmarks/bench_encode.py compare), since two single-thread calls keep
both cores busier than one two-thread call that synchronises at every op. A single photo (a query by
example) is then one single-thread call.
"""

from __future__ import annotations

import logging
import os
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Sequence

import numpy as np
import onnxruntime as ort
from PIL import Image

from photod.errors import ModelError
from photod.model.preprocess import preprocess_batch

if TYPE_CHECKING:
    from photod.model.bundle import Bundle

log = logging.getLogger(__name__)

_DTYPES = {
    "tensor(float)": np.float32,
    "tensor(float16)": np.float16,
    "tensor(int64)": np.int64,
    "tensor(int32)": np.int32,
}


def choose_providers(requested: Sequence[str] | None = None) -> list[str]:
    """The execution providers to use: CUDA first when this onnxruntime has it, then CPU."""
    available = ort.get_available_providers()
    if requested:
        missing = [p for p in requested if p not in available]
        if missing:
            raise ModelError(f"onnxruntime here has no {', '.join(missing)}", f"available: {', '.join(available)}")
        return list(requested)
    chosen = [p for p in ("CUDAExecutionProvider",) if p in available]
    return chosen + ["CPUExecutionProvider"]


def open_session(
    path: str | os.PathLike[str], threads: int = 2, providers: Sequence[str] | None = None, arena: bool = True
) -> ort.InferenceSession:
    """An inference session on `threads` CPU threads (intra-op), optimised once at load. `arena=False` for
    models whose input shapes change from call to call: ONNX Runtime's arena keeps the largest it has served
    for good."""
    opts = ort.SessionOptions()
    opts.enable_cpu_mem_arena = arena
    opts.intra_op_num_threads = max(1, int(threads))
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3
    # Idle pool threads sleep instead of spinning: the daemon shares its cores with the decode workers,
    # and on a busy 2-core VNNI box a batched int8 ViT-B-16 ran 8.45 images/s without spinning against
    # 5.90 with it (benchmarks/bench_encode.py quant, interleaved). Single-thread sessions have no pool.
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        session = ort.InferenceSession(str(path), sess_options=opts, providers=choose_providers(providers))
    except Exception as exc:  # onnxruntime raises its own classes (InvalidProtobuf, NoSuchFile, Fail, ...)
        raise ModelError(
            f"cannot load the ONNX model {path}: {exc}",
            "the bundle may be incomplete; import the model again with `photod model import`",
        ) from exc
    log.debug("loaded %s with %s", path, session.get_providers())
    return session


def normalise(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length, as float32."""
    x = np.asarray(x, dtype=np.float32)
    unit: np.ndarray = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    return unit


def runs_rowwise(precision: str) -> bool:
    """Whether a tower of this precision is run one row per call (see the module docstring)."""
    return precision == "int8"


class _Tower:
    def __init__(self, path: str | os.PathLike[str], bundle: Bundle, threads: int, providers: Sequence[str] | None):
        self.bundle = bundle
        self.rowwise = runs_rowwise(bundle.precision)
        threads = max(1, int(threads))
        self.session = open_session(path, 1 if self.rowwise else threads, providers)
        # Worker threads start on first use and end with the encoder.
        self._rows = ThreadPoolExecutor(threads, "photod-encode") if self.rowwise and threads > 1 else None
        first_in, first_out = self.session.get_inputs()[0], self.session.get_outputs()[0]
        self.input_name, self.output_name = first_in.name, first_out.name
        self.input_dtype = _DTYPES.get(first_in.type, np.float32)
        self.dim = int(bundle.embed_dim)

    @property
    def providers(self) -> list[str]:
        names: list[str] = self.session.get_providers()  # ONNX Runtime ships no types
        return names

    def _call(self, batch: np.ndarray) -> np.ndarray:
        out: np.ndarray = self.session.run(
            [self.output_name], {self.input_name: batch.astype(self.input_dtype, copy=False)}
        )[0]
        return out

    def _run(self, batch: np.ndarray) -> np.ndarray:
        return self._run_rows([row[None] for row in batch] if self.rowwise else [batch])

    def _run_rows(self, parts: Sequence[np.ndarray]) -> np.ndarray:
        """The embeddings of `parts` (batches, or single rows in rowwise mode) stacked in order."""
        outs = (
            list(self._rows.map(self._call, parts))
            if self._rows and len(parts) > 1
            else [self._call(part) for part in parts]
        )
        out = np.concatenate(outs) if len(outs) > 1 else outs[0]
        if out.ndim != 2 or out.shape[1] != self.dim:
            raise ModelError(
                f"{self.bundle.path} gave embeddings of shape {out.shape}, expected (n, {self.dim})",
                "the manifest's embedding size does not match the model: import it again",
            )
        return normalise(out)


class ImageEncoder(_Tower):
    """The image tower of a bundle. `model_id` is the id its vectors are recorded with."""

    def __init__(self, bundle: Bundle, threads: int = 2, providers: Sequence[str] | None = None):
        super().__init__(bundle.image_path, bundle, threads, providers)
        self.model_id: str = bundle.image_id
        self.size = int(bundle.image_size)
        self.mean = tuple(bundle.mean)
        self.std = tuple(bundle.std)

    def preprocess(self, images: Sequence[Image.Image]) -> np.ndarray:
        """Images as the model's input batch, float32 (n, 3, S, S)."""
        return preprocess_batch(images, self.size, self.mean, self.std)

    def encode(self, images: Sequence[Image.Image]) -> np.ndarray:
        """Unit embeddings, float32 (n, d), of RGB PIL images."""
        if not images:
            return np.zeros((0, self.dim), dtype=np.float32)
        return self.encode_array(self.preprocess(images))

    def encode_array(self, batch: np.ndarray) -> np.ndarray:
        """Unit embeddings of an already preprocessed batch (n, 3, S, S)."""
        if len(batch) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        return self._run(np.ascontiguousarray(batch))


class TextEncoder(_Tower):
    """The text tower of a bundle, with its tokenizer."""

    def __init__(self, bundle: Bundle, threads: int = 2, providers: Sequence[str] | None = None):
        from photod.model.tokenizer import Tokenizer

        super().__init__(bundle.text_path, bundle, threads, providers)
        self.tokenizer = Tokenizer.from_vocab(bundle.vocab_path)
        self.context_length = int(bundle.context_length)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Unit embeddings, float32 (n, d), of texts."""
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        tokens = self.tokenizer.tokenize(texts, self.context_length)
        if not self.trims:
            return self._run(tokens)
        if self.rowwise:  # each text on its own length
            return self._run_rows([trim_tokens(row[None]) for row in tokens])
        return self._run(trim_tokens(tokens))

    @property
    def trims(self) -> bool:
        """Whether the bundle's export says its text graph takes any number of tokens (and was verified so).
        A short query then costs a fraction of the padded context: 8 ms instead of 35 ms for "海边的日落" on
        a ViT-B-16 text tower here. Bundles exported before this was recorded run padded, as they always did."""
        export = getattr(self.bundle, "export", None) or {}
        return bool(export.get("text", {}).get("dynamic_tokens"))


def trim_tokens(tokens: np.ndarray) -> np.ndarray:
    """Drop the padding columns that every row of a token batch shares. The text tower masks padding and
    reads the [CLS] position, so the embeddings are those of the padded batch."""
    used = np.flatnonzero(tokens.any(axis=0))
    return tokens[:, : int(used[-1]) + 1] if used.size else tokens[:, :2]
