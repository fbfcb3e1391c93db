"""Converting an fp32 ONNX tower to the precision a bundle ships in, with ONNX and ONNX Runtime only (no torch).

fp32 is saved as is, fp16 by onnxruntime's float16 converter, int8 by onnxruntime's dynamic quantization.
Before quantizing, weights the exporter wrote as `Constant` nodes are turned into initializers: the
quantizer only quantizes initializers, and takes anything else for an activation. The fused ViT tower's
packed QKV weights (photod/finetune/optimize.py) come out of torch's exporter as Constants, so without this
step the int8 ViT-B-16 image graph kept 85 MB of fp32 QKV weights and quantized them again on every run:
152.6 MB on disk, against 89.0 MB with every weight in int8.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import onnx
import onnx.numpy_helper

from photod.errors import ModelError

log = logging.getLogger(__name__)

# Constants below this size (shapes, axes, scalars) stay nodes: they are no weights and folding passes
# expect them where they are.
WEIGHT_BYTES = 1024
# A graph above this many bytes cannot be one protobuf (2 GB limit): its weights go to a .data file.
EXTERNAL_BYTES = 1_800_000_000


def _file_bytes(path: Path) -> int:
    data = path.with_name(path.name + ".data")
    return path.stat().st_size + (data.stat().st_size if data.exists() else 0)


def save(model: onnx.ModelProto, path: Path, external: bool) -> None:
    """Write `model`; with `external` its tensors go to one `<name>.data` file beside it (towers over 2 GB)."""
    if external:
        onnx.save_model(
            model,
            str(path),
            save_as_external_data=True,
            all_tensors_to_one_file=True,
            location=path.name + ".data",
            size_threshold=1024,
        )
    else:
        onnx.save_model(model, str(path))


def has_op(model: onnx.ModelProto, op_type: str) -> bool:
    return any(node.op_type == op_type for node in model.graph.node)


def constants_to_initializers(model: onnx.ModelProto) -> int:
    """Turn the main graph's tensor-valued Constant nodes of WEIGHT_BYTES or more into initializers of the
    same name (what every consumer reads is unchanged). Returns the bytes moved."""
    graph, kept, moved = model.graph, [], 0
    for node in graph.node:
        value = node.attribute[0] if node.op_type == "Constant" and len(node.attribute) == 1 else None
        if value is not None and value.name == "value" and value.t.ByteSize() >= WEIGHT_BYTES:
            tensor = onnx.TensorProto()
            tensor.CopyFrom(value.t)
            tensor.name = node.output[0]
            graph.initializer.append(tensor)
            moved += tensor.ByteSize()
        else:
            kept.append(node)
    del graph.node[:]
    graph.node.extend(kept)
    return moved


def prune_initializers(model: onnx.ModelProto) -> int:
    """Drop the main graph's initializers that no node (nor a graph output) reads. Returns the bytes dropped."""
    graph = model.graph
    read = {name for node in graph.node for name in node.input} | {out.name for out in graph.output}
    for node in graph.node:  # subgraphs (If/Loop bodies) may read outer initializers
        for attr in node.attribute:
            for sub in [attr.g] * attr.HasField("g") + list(attr.graphs):
                read |= {name for n in sub.node for name in n.input}
    unused = [t for t in graph.initializer if t.name not in read]
    for tensor in unused:
        graph.initializer.remove(tensor)
    return sum(t.ByteSize() for t in unused)


class _QuietQuantizer(logging.Filter):
    """Drops the quantizer's per-tensor chatter, which it logs on the root logger at INFO and WARNING."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "quantization" not in record.pathname or "onnxruntime" not in record.pathname


def quantize_int8(
    fp32_path: Path,
    out_path: Path,
    tower: str,
    *,
    per_channel: bool = True,
    reduce_range: bool = True,
    signed_weights: bool = True,
) -> None:
    """Write the int8 form of the fp32 graph at `fp32_path` (one file: int8 towers stay far below 2 GB).

    Dynamic quantization: int8 weights, activations quantized at run time, so no calibration set is needed.
    Activation scales are per tensor, so photod.model.encoder runs int8 towers one photo (one text) per
    run: a vector must not depend on what it was batched with. MatMul/Gemm carry nearly all of a
    transformer's compute; Gather (the text tower's 21128-row embedding table) is a quarter of the text
    tower's size. Convolutions stay fp32: ORT's ConvInteger has no fast CPU kernel and per-tensor activation
    quantization costs a ResNet's convs accuracy, so RN50 keeps its conv quality (and speed).
    per_channel + reduce_range: 7-bit weights cannot saturate the u8*s8 pair sums of AVX2 CPUs without
    VNNI; on the small models per-channel without reduce_range fell to 0.991 min cosine, with it 0.9997+.
    A fused ViT graph's Attention nodes become QAttention: the QKV projection in int8 as well.
    The keyword arguments are there for benchmarks/bench_encode.py quant, which measures the alternatives."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    model = onnx.load(str(fp32_path))
    moved = constants_to_initializers(model)
    ops = (
        ["MatMul", "Gemm"]
        + (["Gather"] if tower == "text" else [])
        + (["Attention"] if has_op(model, "Attention") else [])
    )
    quiet = _QuietQuantizer()
    logging.getLogger().addFilter(quiet)
    try:
        with tempfile.TemporaryDirectory(prefix=".quantize-", dir=fp32_path.parent) as tmp:
            source = fp32_path
            if moved:
                source = Path(tmp) / fp32_path.name
                save(model, source, external=_file_bytes(fp32_path) > EXTERNAL_BYTES)
            del model
            quantize_dynamic(
                str(source),
                str(out_path),
                op_types_to_quantize=ops,
                per_channel=per_channel,
                reduce_range=reduce_range,
                weight_type=QuantType.QInt8 if signed_weights else QuantType.QUInt8,
                use_external_data_format=False,
                # Towers are fp32 throughout; nodes ONNX Runtime's own optimizer wrote
                # (photod.model.fuse.fold_constants) carry no type for shape inference to find.
                extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
            )
    finally:
        logging.getLogger().removeFilter(quiet)
    quantized = onnx.load(str(out_path))
    dropped = prune_initializers(quantized)
    if dropped:
        save(quantized, out_path, external=False)
    log.info(
        "%s tower in int8: %.1f MB of Constant weights quantized, %.1f MB of unused tensors dropped",
        tower,
        moved / 1e6,
        dropped / 1e6,
    )


def _upcast_tensor(tensor: onnx.TensorProto) -> bool:
    if tensor.data_type != onnx.TensorProto.FLOAT16:
        return False
    tensor.CopyFrom(onnx.numpy_helper.from_array(onnx.numpy_helper.to_array(tensor).astype("float32"), tensor.name))
    return True


def _upcast_graph(graph: onnx.GraphProto) -> int:
    count = sum(_upcast_tensor(t) for t in graph.initializer)
    for value in list(graph.input) + list(graph.output) + list(graph.value_info):
        if value.type.tensor_type.elem_type == onnx.TensorProto.FLOAT16:
            value.type.tensor_type.elem_type = onnx.TensorProto.FLOAT
    for node in graph.node:
        for attr in node.attribute:
            if attr.name == "to" and node.op_type == "Cast" and attr.i == onnx.TensorProto.FLOAT16:
                attr.i = onnx.TensorProto.FLOAT
            if attr.HasField("t"):
                count += _upcast_tensor(attr.t)
            for sub in [attr.g] * attr.HasField("g") + list(attr.graphs):
                count += _upcast_graph(sub)
    return count


def upcast_fp16(model: onnx.ModelProto) -> int:
    """Turn an fp16 graph (onnxconverter-common's or onnxruntime's float16 converter, keep_io_types) back into
    fp32, in place: fp16 weights and constants widened, casts to fp16 made casts to fp32 (the converter's
    casts at the inputs and outputs then cast float to float, which ONNX Runtime removes), fp16 value types
    made fp32. Returns the number of tensors widened.

    Why: ONNX Runtime's CPU provider lacks fp16 kernels for much of a transformer, and int8 is quantized
    from fp32. The weights keep fp16's rounding, so the fp32 graph computes what the fp16 one meant, more
    exactly. It also mends what the converter breaks: cn_clip's deploy script converts with shape inference
    off, and on the graphs of torch's newer exporter that leaves a Cast to fp32 typed as fp16, which ONNX
    Runtime refuses to load (seen on every text tower it wrote here)."""
    return _upcast_graph(model.graph)


def convert(fp32_path: Path, out_path: Path, precision: str, tower: str, external: bool) -> None:
    """Write `out_path` from the fp32 graph at `fp32_path` in the requested precision."""
    if precision == "fp32":
        save(onnx.load(str(fp32_path)), out_path, external)
    elif precision == "fp16":
        from onnxruntime.transformers.float16 import convert_float_to_float16

        # keep_io_types: callers feed and read float32 whatever the precision inside.
        # Shape inference cannot run on a protobuf over 2 GB; the converter works without it.
        model = convert_float_to_float16(onnx.load(str(fp32_path)), keep_io_types=True, disable_shape_infer=external)
        save(model, out_path, external=False)
    elif precision == "int8":
        quantize_int8(fp32_path, out_path, tower)
    else:
        raise ModelError(f"unknown precision {precision!r}", "use fp32, fp16 or int8")
