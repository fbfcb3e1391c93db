"""Giving Chinese-CLIP's deployed ONNX towers the interface of a photod bundle's.

cn_clip's deploy script (cn_clip/deploy/pytorch_to_onnx.py) traces each tower on one example, a batch of
one and a text padded to the context length, without dynamic axes. The tracer bakes those sizes into the
graph: a Reshape to [1, 2048, 49] in RN50's pooling, a position table added at 52 tokens. Opening the
input's dimensions therefore does not make such a graph take a batch (ONNX Runtime refuses the Reshape),
and there is no torch on a Pi to trace it again. So the one-row graph is kept whole and run per row:

- batch: the graph becomes the body of an ONNX `Scan` over the batch axis. Scan feeds each row (Unsqueezed
  back to a batch of one) through the body and stacks the outputs, so a bundle tower takes any batch and
  every row is computed on its own, as photod requires of every tower (photod.model.encoder).
- tokens: a text batch of any length up to the context length is zero-padded to it in the graph (token id
  0 is [PAD], which the text tower masks), so the tower takes any token count and gives the padded
  embedding. It computes at the full context length, unlike a bundle exported from a checkpoint, whose
  text graph runs short queries on their own length; the manifest records `dynamic_tokens: false`, so the
  encoder does not bother trimming.
- outputs: cn_clip's graphs return unnormalised features; a bundle's return unit vectors, so an
  LpNormalization closes the graph.
"""

from __future__ import annotations

import onnx
from onnx import TensorProto, helper

from photod.errors import ModelError
from photod.model import bundle as bundles

_PREFIX = "photod_"


def only_input(graph: onnx.GraphProto) -> onnx.ValueInfoProto:
    """The graph's one real input (initializers listed as inputs, as old exporters did, are not)."""
    weights = {t.name for t in graph.initializer}
    inputs: list[onnx.ValueInfoProto] = [i for i in graph.input if i.name not in weights]
    if len(inputs) != 1 or len(graph.output) != 1:
        raise ModelError(
            f"an ONNX tower must have one input and one output, this one has "
            f"{[i.name for i in inputs]} -> {[o.name for o in graph.output]}",
            "give the .img. and .txt. files written by Chinese-CLIP's deploy script",
        )
    return inputs[0]


def dims(value: onnx.ValueInfoProto) -> list[int | str]:
    """A value's shape: numbers where fixed, names where symbolic, '?' where unknown."""
    return [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in value.type.tensor_type.shape.dim]


def _row_body(model: onnx.ModelProto, embed_dim: int) -> onnx.GraphProto:
    """The one-row graph as a Scan body: takes one row without its batch axis, returns one embedding."""
    graph = model.graph
    source, result = only_input(graph), graph.output[0]
    row, one, out, axis = (_PREFIX + n for n in ("row", "one_row", "row_embedding", "axis0"))
    elem = source.type.tensor_type.elem_type
    # The one-row input is renamed: a subgraph must not redefine a name of the graph around it, and the
    # bundle's input names (image, text) are what cn_clip calls its inputs too.
    body = [
        helper.make_node(
            n.op_type, [one if i == source.name else i for i in n.input], n.output, name=n.name, domain=n.domain
        )
        for n in graph.node
    ]
    for made, node in zip(body, graph.node):
        made.attribute.extend(node.attribute)
    weights = list(graph.initializer) + [helper.make_tensor(axis, TensorProto.INT64, [1], [0])]
    nodes = [
        helper.make_node("Unsqueeze", [row, axis], [one], name=_PREFIX + "add_batch"),
        *_in_order(body, {t.name for t in weights} | {one}),
        helper.make_node("Squeeze", [result.name, axis], [out], name=_PREFIX + "drop_batch"),
    ]
    return helper.make_graph(
        nodes,
        "row",
        [helper.make_tensor_value_info(row, elem, dims(source)[1:])],
        [helper.make_tensor_value_info(out, result.type.tensor_type.elem_type, [embed_dim])],
        initializer=weights,
        value_info=[v for v in graph.value_info if v.name != source.name],
    )


def _in_order(nodes: list[onnx.NodeProto], known: set[str]) -> list[onnx.NodeProto]:
    """`nodes` in an order where each comes after what it reads. A subgraph must be sorted so, while a main
    graph need not be: float16 converters append their input casts at the end."""
    known, pending = set(known) | {""}, list(nodes)
    ordered: list[onnx.NodeProto] = []
    while pending:
        ready = [n for n in pending if all(i in known for i in n.input)]
        if not ready:  # the rest reads names from outside (an outer scope) or is cyclic: keep their order
            return ordered + pending
        ready_ids = {id(n) for n in ready}
        pending = [n for n in pending if id(n) not in ready_ids]
        ordered += ready
        known.update(out for n in ready for out in n.output)
    return ordered


def _padding(input_name: str, context_length: int) -> tuple[list[onnx.NodeProto], list[onnx.TensorProto], str]:
    """Nodes that zero-pad int64 tokens (n, t) on the right to (n, context_length); their output's name."""
    p = _PREFIX
    nodes = [
        helper.make_node("Shape", [input_name], [p + "shape"]),
        helper.make_node("Slice", [p + "shape", p + "one", p + "two"], [p + "tokens"]),
        helper.make_node("Sub", [p + "context", p + "tokens"], [p + "missing"]),
        helper.make_node("Concat", [p + "no_pad", p + "missing"], [p + "pads"], axis=0),
        helper.make_node("Pad", [input_name, p + "pads"], [p + "padded"], mode="constant"),
    ]
    weights = [
        helper.make_tensor(p + "one", TensorProto.INT64, [1], [1]),
        helper.make_tensor(p + "two", TensorProto.INT64, [1], [2]),
        helper.make_tensor(p + "context", TensorProto.INT64, [1], [context_length]),
        helper.make_tensor(p + "no_pad", TensorProto.INT64, [3], [0, 0, 0]),
    ]
    return nodes, weights, p + "padded"


def batched_tower(model: onnx.ModelProto, tower: str, embed_dim: int) -> onnx.ModelProto:
    """A bundle tower (photod.model.bundle's input/output names, dynamic batch, unit outputs; text: any
    token count up to the context length) around the one-row graph `model`."""
    source = only_input(model.graph)
    shape = dims(source)
    if tower == "text":
        if len(shape) != 2 or not isinstance(shape[1], int) or shape[1] < 2:
            raise ModelError(f"the text tower's input has shape {shape}, expected (1, context length)")
        name, output = bundles.TEXT_INPUT, bundles.TEXT_OUTPUT
        nodes, weights, rows = _padding(name, shape[1])
    else:
        if len(shape) != 4 or not all(isinstance(d, int) for d in shape[1:]):
            raise ModelError(f"the image tower's input has shape {shape}, expected (1, 3, size, size)")
        name, output = bundles.IMAGE_INPUT, bundles.IMAGE_OUTPUT
        nodes, weights, rows = [], [], name
    raw = _PREFIX + "embeddings"
    nodes += [
        helper.make_node(
            "Scan", [rows], [raw], name=_PREFIX + "rows", num_scan_inputs=1, body=_row_body(model, embed_dim)
        ),
        helper.make_node("LpNormalization", [raw], [output], axis=1, p=2),
    ]
    batch_dims = ["batch"] + (["tokens"] if tower == "text" else shape[1:])
    graph = helper.make_graph(
        nodes,
        f"photod_{tower}_tower",
        [helper.make_tensor_value_info(name, source.type.tensor_type.elem_type, batch_dims)],
        [helper.make_tensor_value_info(output, TensorProto.FLOAT, ["batch", embed_dim])],
        initializer=weights,
    )
    out = helper.make_model(
        graph, opset_imports=list(model.opset_import), ir_version=model.ir_version, producer_name="photod"
    )
    if _opset(out) < 13:
        raise ModelError(
            f"the {tower} graph is ONNX opset {_opset(out)}; photod reads opset 13 or newer",
            "export it again with Chinese-CLIP's deploy script (it writes opset 13)",
        )
    return out


def _opset(model: onnx.ModelProto) -> int:
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
