"""Rewrites of the exported ONNX graph: folding what the fixed window length makes constant,
un-sharing Gemm weights that onnxruntime's dynamic quantiser would break, dropping the
activations' quantise/dequantise pairs of a weight-only int8 model, and dropping the intermediate
shape annotations that make onnxruntime slower."""

from __future__ import annotations

from pathlib import Path

from crosshar.errors import CrossharError

import numpy as np


def fold_static_dims(model_bytes: bytes) -> bytes:
    """Fold what the fixed window length makes constant, for a smaller and faster graph.

    The TorchScript exporter records `x.shape[1]` as Shape -> Gather even though T is fixed, so
    slices of position tables (`pe[:T]`) and attention scales stay computed at run time and whole
    tables (a 512-row sinusoidal table) are stored. Gather(Shape(x), i) is replaced by a constant
    where ONNX shape inference knows dimension i, then onnxscript's optimizer folds what follows
    (the batch dimension stays dynamic). The parity check afterwards covers this rewrite.
    """
    import onnx
    from onnx import helper, numpy_helper
    from onnxscript import optimizer

    model = onnx.shape_inference.infer_shapes(onnx.load_from_string(model_bytes))
    g = model.graph
    dims = {}
    for vi in list(g.value_info) + list(g.input) + list(g.output):
        if vi.type.tensor_type.HasField("shape"):
            dims[vi.name] = [d.dim_value if d.HasField("dim_value") else None for d in vi.type.tensor_type.shape.dim]
    consts = {i.name: numpy_helper.to_array(i) for i in g.initializer}
    for n in g.node:
        if n.op_type == "Constant":
            consts.update({n.output[0]: numpy_helper.to_array(a.t) for a in n.attribute if a.name == "value"})
    shape_of = {n.output[0]: n.input[0] for n in g.node if n.op_type == "Shape" and not n.attribute}
    nodes = []
    for n in g.node:
        if n.op_type == "Gather" and n.input[0] in shape_of and n.input[1] in consts:
            d, idx = dims.get(shape_of[n.input[0]]), consts[n.input[1]]
            vals = [d[int(i)] for i in np.atleast_1d(idx)] if d is not None else [None]
            if all(v is not None and v > 0 for v in vals):
                value = numpy_helper.from_array(np.array(vals, dtype=np.int64).reshape(idx.shape))
                nodes.append(helper.make_node("Constant", [], [n.output[0]], value=value, name=n.name + "_static"))
                continue
        nodes.append(n)
    del g.node[:]
    g.node.extend(nodes)
    model = optimizer.optimize(model, num_iterations=1, input_size_limit=1 << 20, output_size_limit=1 << 20)
    drop_shape_annotations(model)
    return model.SerializeToString()


def drop_shape_annotations(model) -> int:
    """Remove the graph's intermediate shape annotations (`value_info`); returns how many.

    They are optional (inputs and outputs keep their shapes), stale ones upset tools, and
    onnxruntime runs the same graph slower with them: the quantiser's shape inference annotates
    every tensor, and each int8 model ran 4-6 % slower than the same file without them (weight-only
    0.690 against 0.659 ms per window, the float model 0.655; static 0.917 / 0.863, dynamic 1.173 /
    1.126; one thread, thread CPU time, 7 interleaved rounds of 300 calls; results/bench.md).
    """
    n = len(model.graph.value_info)
    del model.graph.value_info[:]
    return n


def unshare_gemm_weights(path: Path) -> int:
    """Give every Gemm its own copy of a weight it shares with another node; returns the count.

    onnxruntime's dynamic quantiser rewrites Gemm(transB=1) into MatMulInteger by transposing the
    weight, and breaks a weight shared by two Gemms (DanHAR's channel attention applies one MLP
    to the mean and to the max), producing a graph that does not load.
    """
    import collections

    import onnx

    model = onnx.load(str(path))
    g = model.graph
    inits = {i.name: i for i in g.initializer}
    uses = collections.Counter(i for n in g.node for i in n.input if i in inits)
    k = 0
    for n in g.node:
        if n.op_type != "Gemm":
            continue
        for j, name in enumerate(n.input[1:], 1):
            if name in inits and uses[name] > 1:
                uses[name] -= 1
                copy = onnx.TensorProto()
                copy.CopyFrom(inits[name])
                copy.name = f"{name}__gemm{k}"
                g.initializer.append(copy)
                n.input[j] = copy.name
                k += 1
    if k:
        onnx.save(model, str(path))
    return k


def drop_activation_qdq(path: Path) -> int:
    """Remove QuantizeLinear -> DequantizeLinear pairs on activations, keeping the weights' DequantizeLinear.

    Returns the number of pairs removed. A weight's DequantizeLinear reads an int8 initializer; an
    activation's reads the output of a QuantizeLinear, whose consumers are rewired to its float input.
    """
    import onnx

    model = onnx.load(str(path))
    g = model.graph
    inits = {i.name for i in g.initializer}
    q_in = {n.output[0]: n.input[0] for n in g.node if n.op_type == "QuantizeLinear" and n.input[0] not in inits}
    dq_in = {n.output[0]: q_in[n.input[0]] for n in g.node if n.op_type == "DequantizeLinear" and n.input[0] in q_in}
    if any(o.name in dq_in for o in g.output):
        raise CrossharError(f"{path}: a graph output is quantised; cannot make the model weight-only")
    nodes = [n for n in g.node if not (n.op_type == "QuantizeLinear" and n.output[0] in q_in)
             and not (n.op_type == "DequantizeLinear" and n.output[0] in dq_in)]
    for n in nodes:
        for j, name in enumerate(n.input):
            n.input[j] = dq_in.get(name, name)
    used = {i for n in nodes for i in n.input}
    live = [i for i in g.initializer if i.name in used]  # the activations' scales and zero points go
    del g.node[:], g.initializer[:]
    g.node.extend(nodes)
    g.initializer.extend(live)
    onnx.save(model, str(path))
    return len(dq_in)
