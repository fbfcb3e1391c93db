"""photod/model/convert.py: int8 conversion with ONNX Runtime only, weights written as Constant nodes
quantized like initializers, nothing left behind that the quantized graph does not read."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from photod.model import convert


def _constant_weight_graph(seed: int = 0) -> tuple[onnx.ModelProto, np.ndarray]:
    """x (n, 64) @ W (64, 48) + b, with W a Constant node (as torch's exporter writes some buffers) and
    an initializer nothing reads."""
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((64, 48)).astype(np.float32)
    nodes = [
        helper.make_node("Constant", [], ["w"], value=numpy_helper.from_array(w, "w")),
        helper.make_node("MatMul", ["x", "w"], ["xw"]),
        helper.make_node("Add", ["xw", "b"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 64])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 48])],
        [
            numpy_helper.from_array(rng.standard_normal(48).astype(np.float32), "b"),
            numpy_helper.from_array(np.ones((256, 256), np.float32), "stale"),
        ],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), w


def _run(path, x):
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return sess.run(None, {"x": x})[0]


def test_constant_weights_are_quantized_and_unused_tensors_dropped(tmp_path):
    model, _ = _constant_weight_graph()
    fp32, int8 = tmp_path / "fp32.onnx", tmp_path / "int8.onnx"
    onnx.save(model, str(fp32))
    convert.quantize_int8(fp32, int8, "image")
    quantized = onnx.load(str(int8))
    constants = [
        n
        for n in quantized.graph.node
        if n.op_type == "Constant" and n.attribute[0].t.ByteSize() >= convert.WEIGHT_BYTES
    ]
    assert constants == []
    kinds = {t.name: t.data_type for t in quantized.graph.initializer}
    assert TensorProto.INT8 in kinds.values() and "stale" not in kinds
    assert not any(n.op_type == "DynamicQuantizeLinear" and n.input[0] == "w" for n in quantized.graph.node)
    # Weights quantized once at conversion: the int8 file is about a quarter of the fp32 weights.
    assert int8.stat().st_size < 0.5 * fp32.stat().st_size
    x = np.random.default_rng(1).standard_normal((5, 64)).astype(np.float32)
    want, got = _run(fp32, x), _run(int8, x)
    cos = (want * got).sum(1) / np.linalg.norm(want, axis=1) / np.linalg.norm(got, axis=1)
    assert cos.min() > 0.999


def test_constants_to_initializers_keeps_what_the_graph_computes(tmp_path):
    model, w = _constant_weight_graph()
    before = tmp_path / "before.onnx"
    onnx.save(model, str(before))
    moved = convert.constants_to_initializers(model)
    assert moved >= w.nbytes and not [n for n in model.graph.node if n.op_type == "Constant"]
    assert convert.prune_initializers(model) >= 256 * 256 * 4
    onnx.checker.check_model(model)
    after = tmp_path / "after.onnx"
    onnx.save(model, str(after))
    x = np.random.default_rng(2).standard_normal((3, 64)).astype(np.float32)
    assert np.array_equal(_run(before, x), _run(after, x))
