"""Fusing the attention of a ViT image graph into ONNX Runtime's `com.microsoft.Attention`, on the graph alone.

A bundle made from a checkpoint gets its fused ViT tower from PyTorch (photod.finetune.optimize). A bundle
made from Chinese-CLIP's ONNX files has no PyTorch model to trace, and ONNX Runtime's own transformer
optimizer (model types vit and clip) fuses layer norms and GELUs in these graphs but no attention: it does
not know the pattern nn.MultiheadAttention leaves. So the pattern is found here, by its ends rather than by
its node list, which differs between torch's two exporters:

- the start: a MatMul by a (width, 3 x width) weight, the packed QKV projection, and the Add of its bias;
- the end: the input of the next MatMul or Gemm by a (width, width) weight, the output projection;
- between them, one Softmax, and nothing read from outside but constants.

Those nodes are replaced by one Attention node (which takes the packed weight as it is: columns q | k | v,
and scales by 1/sqrt(head width), as nn.MultiheadAttention does) between two Reshapes, since the tower runs
(tokens, 1, width) and Attention wants (1, tokens, width); with one row per run the two hold the same memory.
Dynamic quantization then makes it QAttention. The caller verifies the fused graph against the plain one and
keeps the plain one if it disagrees.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from pathlib import Path

import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from photod.model.convert import prune_initializers

log = logging.getLogger(__name__)

CONTRIB = "com.microsoft"
# Precisions whose ViT image tower is made with fused attention, from a checkpoint or from ONNX files. fp16
# is not: it targets GPUs, where the fp16 converter and CUDA's own fused attention are a separate matter.
FUSED_PRECISIONS = ("fp32", "int8")


class _Graph:
    def __init__(self, graph: onnx.GraphProto):
        self.graph = graph
        self.weights = {t.name: tuple(t.dims) for t in graph.initializer}
        self.producer = {out: node for node in graph.node for out in node.output}
        self.consumers: dict[str, list[onnx.NodeProto]] = defaultdict(list)
        for node in graph.node:
            for name in node.input:
                self.consumers[name].append(node)
        self.constant = {out for node in graph.node if node.op_type == "Constant" for out in node.output}

    def is_constant(self, name: str) -> bool:
        return name in self.weights or name in self.constant or name == ""

    def weight_of(self, node: onnx.NodeProto) -> tuple[int, ...] | None:
        """The shape of a MatMul's right-hand weight (a Gemm's, transposed when transB)."""
        if node.op_type not in ("MatMul", "Gemm") or len(node.input) < 2:
            return None
        shape = self.weights.get(node.input[1])
        if shape and node.op_type == "Gemm" and any(a.name == "transB" and a.i for a in node.attribute):
            shape = shape[::-1]
        return shape


def _bias(g: _Graph, qkv: onnx.NodeProto) -> str | None:
    """The QKV projection's bias: a Gemm's third input, or the 1-d constant a MatMul's only consumer adds."""
    if qkv.op_type == "Gemm":
        return qkv.input[2] if len(qkv.input) > 2 and g.is_constant(qkv.input[2]) else None
    users = g.consumers.get(qkv.output[0], [])
    if len(users) == 1 and users[0].op_type == "Add":
        return next((i for i in users[0].input if len(g.weights.get(i, ())) == 1), None)
    return None


def _upstream_projection(g: _Graph, start: onnx.NodeProto) -> tuple[onnx.NodeProto, str, int] | None:
    """(QKV projection, its bias, w) above `start`: the nearest MatMul or Gemm by a (w, 3w) weight."""
    seen, todo = set(), [start]
    while todo:
        node = todo.pop(0)
        for name in node.input:
            up = g.producer.get(name)
            if up is None or id(up) in seen or g.is_constant(name):
                continue
            seen.add(id(up))
            shape = g.weight_of(up)
            if shape and len(shape) == 2 and shape[1] == 3 * shape[0]:
                bias = _bias(g, up)
                return (up, bias, shape[0]) if bias and g.weights.get(bias) == (shape[1],) else None
            todo.append(up)
    return None


def _downstream_projection(g: _Graph, softmax: onnx.NodeProto, width: int) -> str | None:
    """The tensor the output projection (a MatMul or Gemm by a width x width weight) reads below `softmax`."""
    todo, seen = [softmax], set()
    while todo:
        node = todo.pop()
        for out in node.output:
            for down in g.consumers.get(out, []):
                if g.weight_of(down) == (width, width) and down.input[0] == out:
                    return str(out)  # onnx's protobuf fields are typed Any
                if id(down) not in seen and down.op_type in ("MatMul", "Transpose", "Reshape"):
                    seen.add(id(down))
                    todo.append(down)
    return None


def _region(g: _Graph, first: onnx.NodeProto, last: str) -> list[onnx.NodeProto] | None:
    """The nodes from `first` to the one producing `last`, if nothing in between reads a non-constant
    tensor from outside and nothing outside reads a tensor from inside but `last`."""
    above, todo = set(), [last]
    while todo:  # ancestors of `last` up to `first`
        node = g.producer.get(todo.pop())
        if node is None or id(node) in above:
            continue
        above.add(id(node))
        if node is not first:
            todo += [i for i in node.input if not g.is_constant(i)]
    if id(first) not in above:
        return None
    region = [n for n in g.graph.node if id(n) in above]
    inside = {out for n in region for out in n.output}
    for node in region:
        if node is not first and any(not g.is_constant(i) and i not in inside for i in node.input):
            return None
        for out in node.output:
            if out != last and any(id(c) not in above for c in g.consumers.get(out, [])):
                return None
    return region


def fold_constants(path: Path, out: Path, external: bool) -> onnx.ModelProto:
    """The graph at `path` with its constants folded by ONNX Runtime's basic, hardware-independent level.

    On a one-row graph that settles every shape computation and weight transpose torch's TorchScript exporter
    leaves to run time (the deploy script turns its constant folding off), so the attention pattern is the
    same for both exporters."""
    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    options.optimized_model_filepath = str(out)
    if external:
        options.add_session_config_entry("session.optimized_model_external_initializers_file_name", out.name + ".data")
    ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return onnx.load(str(out))


def fuse_attention(model: onnx.ModelProto, heads: int) -> int:
    """Replace each attention of the ViT graph `model` (a batch of one, constants folded: fold_constants) by
    an Attention node with `heads` heads, in place. Returns the number fused; 0 leaves the graph untouched."""
    g = _Graph(model.graph)
    plans = []
    for softmax in [n for n in model.graph.node if n.op_type == "Softmax"]:
        found = _upstream_projection(g, softmax)
        if found is None:
            continue
        qkv, bias, width = found
        last = _downstream_projection(g, softmax, width)
        if not last:
            continue
        region = _region(g, qkv, last)
        if region is None or sum(n.op_type == "Softmax" for n in region) != 1:
            continue
        plans.append((qkv, bias, width, last, region))
    if not plans:
        return 0
    drop, new_nodes = set(), {}
    for i, (qkv, bias, width, last, region) in enumerate(plans):
        p = f"photod_attention_{i}_"
        weight = qkv.input[1]
        if g.weight_of(qkv) != g.weights[weight]:  # a Gemm's transB weight: Attention wants (w, 3w)
            source = next(t for t in model.graph.initializer if t.name == weight)
            model.graph.initializer.append(
                numpy_helper.from_array(numpy_helper.to_array(source).T.copy(), p + "weight")
            )
            weight = p + "weight"
        model.graph.initializer.extend(
            [
                helper.make_tensor(p + "batch_first", TensorProto.INT64, [3], [1, -1, width]),
                helper.make_tensor(p + "tokens_first", TensorProto.INT64, [2], [-1, width]),
            ]
        )
        new_nodes[id(region[0])] = [
            helper.make_node("Reshape", [qkv.input[0], p + "batch_first"], [p + "in"]),
            helper.make_node(
                "Attention", [p + "in", weight, bias], [p + "out"], domain=CONTRIB, num_heads=heads, name=p + "node"
            ),
            helper.make_node("Reshape", [p + "out", p + "tokens_first"], [last]),
        ]
        drop |= {id(n) for n in region}
    kept = []
    for node in model.graph.node:
        kept += new_nodes.get(id(node), [] if id(node) in drop else [node])
    del model.graph.node[:]
    model.graph.node.extend(kept)
    if not any(o.domain == CONTRIB for o in model.opset_import):
        model.opset_import.append(helper.make_opsetid(CONTRIB, 1))
    prune_initializers(model)  # the shapes and scales of the replaced nodes
    log.debug("fused %d attention blocks", len(plans))
    return len(plans)
