"""Rewrites of the exported ONNX graph: folding what the fixed window length makes constant,
fusing attention into onnxruntime's MultiHeadAttention and running 1-D convolutions as 2-D ones
(faster on CPUs), un-sharing Gemm weights that onnxruntime's dynamic quantiser would break,
dropping the activations' quantise/dequantise pairs of a weight-only int8 model, and dropping the
intermediate shape annotations that make onnxruntime slower."""

from __future__ import annotations

import collections
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


def fuse_attention(model) -> int:
    """Fuse each scaled dot-product attention into one `com.microsoft::MultiHeadAttention` node, in place.

    Returns the number fused. The TorchScript exporter writes an attention over a projection X (B, S, n*H*hd)
    of n packed parts (q, k, v; or q; or k, v) as

        Reshape(X, (B, S, n, H, hd)) -> Transpose(2, 0, 3, 1, 4) -> Split(axis 0) -> Squeeze(0): (B, H, S, hd) each
        p = Softmax(MatMul(Mul(q, a), Mul(Transpose(0, 1, 3, 2)(k), b)), axis=-1)      (B, H, Sq, Sk)
        out = Reshape(Transpose(0, 2, 1, 3)(MatMul(p, v)), (B, Sq, H*hd))

    about 15 nodes (12 run by onnxruntime after its own fusions) that become one MultiHeadAttention (query,
    key, value (B, S, H*hd), num_heads=H, scale=a*b), which onnxruntime's CPU builds (x86 and ARM) run
    with a single kernel; where X is Add(MatMul(x, W), bias) for all three, the biases move into the node.
    Only that exact pattern is matched, with the shapes checked by ONNX shape inference; anything else
    (a mask, another softmax axis, a shape that does not fit, attention weights used elsewhere) is left
    as it is. Parity with PyTorch is checked by the export afterwards.

    Measured with convs_as_2d on the default model (encoder + DIN head, random weights; 8 attentions, 262
    -> 162 nodes in onnxruntime's session graph), batch 1, one thread, thread CPU time, 40 paired interleaved
    rounds of 150 calls, AMD Zen 3 (AVX2): the float graph runs in 0.972 [q25 0.965, q75 0.985] of the time
    of the unfused one, the weight-only int8 graph in 0.959 [0.941, 0.970]; max |dp| against PyTorch 1.2e-7
    either way. Fusing attention alone measured 0.99-1.01 of it, the 2-D convolutions alone 0.97-0.98.
    """
    import onnx
    from onnx import helper, numpy_helper

    g = model.graph
    ix = _Index(g)
    shapes = _inferred_shapes(model)
    taken = _names(g)
    matches = [m for m in (_match_attention(sm, ix, shapes) for sm in g.node if sm.op_type == "Softmax") if m]
    if not matches:
        return 0
    new_inits, parts_of, after = [], {}, collections.defaultdict(list)
    for m in matches:
        srcs = m["sources"]
        biases = [_bias_of(x, ix, shapes) for x, _, _ in srcs]
        if all(b is not None for b in biases):  # move the projections' biases into the attention
            srcs = [(mm, i, n) for (mm, _), (_, i, n) in zip(biases, srcs)]
        inputs = []
        for x, i, n in srcs:
            if n == 1:
                inputs.append(x)
                continue
            if x not in parts_of:  # the packed projection, split on its last axis: (B, S, H*hd) each
                sizes = _unique(taken, f"{x}__mha_split_sizes")
                new_inits.append(numpy_helper.from_array(np.full(n, m["width"], dtype=np.int64), sizes))
                parts_of[x] = [_unique(taken, f"{x}__mha_part{j}") for j in range(n)]
                after[x].append(helper.make_node("Split", [x, sizes], parts_of[x], axis=-1,
                                                 name=_unique(taken, f"{x}__mha_split")))
            inputs.append(parts_of[x][i])
        if all(b is not None for b in biases):
            name = _unique(taken, f"{m['out'].name}__mha_bias")
            bias = np.concatenate([b[b.shape[0] // n * i:b.shape[0] // n * (i + 1)]
                                   for (_, b), (_, i, n) in zip(biases, m["sources"])])
            new_inits.append(numpy_helper.from_array(bias.astype(np.float32), name))
            inputs.append(name)
        m["mha"] = helper.make_node("MultiHeadAttention", inputs, [m["out"].output[0]], domain="com.microsoft",
                                    name=f"{m['out'].name}__mha", num_heads=m["heads"], scale=m["scale"])
    replaced = {id(m["out"]): m["mha"] for m in matches}
    nodes = []
    for n in g.node:
        nodes.append(replaced.get(id(n), n))
        for o in n.output:
            nodes.extend(after.pop(o, []))
    for x, split in after.items():  # a projection that is a graph input
        nodes[:0] = split
    del g.node[:]
    g.node.extend(nodes)
    g.initializer.extend(new_inits)
    _drop_dead(g)
    if not any(o.domain == "com.microsoft" for o in model.opset_import):
        model.opset_import.append(onnx.helper.make_opsetid("com.microsoft", 1))
    return len(matches)


def attention_softmaxes(model) -> int:
    """How many attentions the graph holds: MultiHeadAttention nodes and Softmax nodes over a (scaled) MatMul."""
    ix = _Index(model.graph)

    def scores(name: str) -> bool:
        scaled = ix.parent(name, "Mul") or ix.parent(name, "Div")
        return ix.parent(name, "MatMul") is not None or (scaled is not None and ix.parent(scaled.input[0], "MatMul")
                                                         is not None)

    return sum(1 for n in model.graph.node if n.op_type in ("Softmax", "MultiHeadAttention")
               and (n.op_type == "MultiHeadAttention" or scores(n.input[0])))


def convs_as_2d(model) -> int:
    """Run each 1-D convolution as a 2-D one (Unsqueeze -> Conv (1, k) -> Squeeze), in place; returns how many.

    onnxruntime's x86 and ARM CPU builds have blocked NCHWc kernels (with Relu and Add fused in) for 2-D
    convolutions only. The weights keep their values, reshaped (O, I, k) -> (O, I, 1, k). Relu and Add
    between convolutions run on the 4-D tensors, so that a chain of convolutions (a residual block) stays
    4-D and is squeezed back to (B, C, T) only where another op reads it. See fuse_attention for the time.
    """
    from onnx import helper, numpy_helper

    g = model.graph
    inits = {i.name: i for i in g.initializer}
    convs = [n for n in g.node if n.op_type == "Conv" and len(n.input) > 1 and n.input[1] in inits
             and len(inits[n.input[1]].dims) == 3]
    if not convs:
        return 0
    taken = _names(g)
    axis = _unique(taken, "conv2d__axis2")
    g.initializer.append(numpy_helper.from_array(np.array([2], dtype=np.int64), axis))
    twin: dict[str, str] = {}  # a (B, C, T) tensor -> its (B, C, 1, T) twin
    nodes = []

    def squeeze_back(name4: str, name: str) -> None:
        nodes.append(helper.make_node("Squeeze", [name4, axis], [name], name=_unique(taken, f"{name}__sq")))

    conv_ids = {id(n) for n in convs}
    for n in g.node:
        if id(n) in conv_ids:
            x = n.input[0]
            if x not in twin:
                twin[x] = _unique(taken, f"{x}__4d")
                nodes.append(helper.make_node("Unsqueeze", [x, axis], [twin[x]], name=_unique(taken, f"{x}__unsq")))
            w = inits[n.input[1]]
            w4 = numpy_helper.from_array(numpy_helper.to_array(w)[:, :, None, :], _unique(taken, f"{w.name}__2d"))
            g.initializer.append(w4)
            y4 = twin[n.output[0]] = _unique(taken, f"{n.output[0]}__4d")
            nodes.append(helper.make_node("Conv", [twin[x], w4.name, *n.input[2:]], [y4], name=n.name + "__2d",
                                          **_conv_2d_attributes(n)))
            squeeze_back(y4, n.output[0])
        elif n.op_type in ("Relu", "Add") and n.input and all(i in twin for i in n.input):
            y4 = twin[n.output[0]] = _unique(taken, f"{n.output[0]}__4d")
            nodes.append(helper.make_node(n.op_type, [twin[i] for i in n.input], [y4], name=n.name + "__4d"))
            squeeze_back(y4, n.output[0])
        else:
            nodes.append(n)
    del g.node[:]
    g.node.extend(nodes)
    _drop_dead(g)
    return len(convs)


def _conv_2d_attributes(conv) -> dict:
    """A 1-D Conv's attributes for the same convolution over (B, C, 1, T)."""
    from onnx import helper

    out = {}
    for a in conv.attribute:
        v = helper.get_attribute_value(a)
        if a.name in ("kernel_shape", "strides", "dilations"):
            v = [1, *v]
        elif a.name == "pads":
            v = [0, v[0], 0, v[1]]
        out[a.name] = v
    return out


class _Index:
    """Who produces and who reads each tensor of a graph, and its constants (initializers, Constant nodes)."""

    def __init__(self, g):
        from onnx import numpy_helper

        self.producer = {o: n for n in g.node for o in n.output}
        self.readers = collections.defaultdict(list)
        for n in g.node:
            for i in n.input:
                self.readers[i].append(n)
        self.outputs = {o.name for o in g.output}
        self.consts = {i.name: numpy_helper.to_array(i) for i in g.initializer}
        for n in g.node:
            if n.op_type == "Constant" and n.attribute and n.attribute[0].name == "value":
                self.consts[n.output[0]] = numpy_helper.to_array(n.attribute[0].t)

    def parent(self, name: str, op: str):
        n = self.producer.get(name)
        return n if n is not None and n.op_type == op else None

    def only_reader(self, name: str, op: str):
        """The node reading `name` if it is the only reader, of type `op`, and `name` is no graph output."""
        r = self.readers.get(name, [])
        return r[0] if len(r) == 1 and r[0].op_type == op and name not in self.outputs else None

    def ints(self, name: str) -> list[int] | None:
        """A constant integer tensor as a list; a Concat of constant scalars and non-constants with None for those."""
        if name in self.consts:
            return [int(v) for v in self.consts[name].reshape(-1)]
        cat = self.parent(name, "Concat")
        if cat is None:
            return None
        out = []
        for i in cat.input:
            c = self.consts.get(i)
            if c is not None and c.size != 1:
                return None
            out.append(None if c is None else int(c.reshape(-1)[0]))
        return out


def _attr(node, name: str, default=None):
    from onnx import helper

    return next((helper.get_attribute_value(a) for a in node.attribute if a.name == name), default)


def _inferred_shapes(model) -> dict[str, list[int | None]]:
    """Tensor name -> shape by ONNX shape inference (None for a dimension it does not know)."""
    import onnx

    g = onnx.shape_inference.infer_shapes(model).graph
    return {vi.name: [d.dim_value if d.HasField("dim_value") else None for d in vi.type.tensor_type.shape.dim]
            for vi in list(g.value_info) + list(g.input) + list(g.output) if vi.type.tensor_type.HasField("shape")}


def _scaled(name: str, ix: _Index) -> tuple[str, float]:
    """(x, a) for `name` = Mul(x, a) with a constant scalar a, else (name, 1)."""
    mul = ix.parent(name, "Mul")
    if mul is not None and ix.only_reader(mul.output[0], "MatMul"):
        for j in (0, 1):
            c = ix.consts.get(mul.input[j])
            if c is not None and c.size == 1:
                return mul.input[1 - j], float(c.reshape(-1)[0])
    return name, 1.0


def _heads(t: str, ix: _Index, shapes) -> tuple[str, int, int, int, int] | None:
    """(X, i, n, H, hd) for t = Squeeze(Split(Transpose(2, 0, 3, 1, 4)(Reshape(X, (B, S, n, H, hd))), axis 0)[i], 0)."""
    sq = ix.parent(t, "Squeeze")
    split = sq is not None and ix.parent(sq.input[0], "Split")
    tr = split and ix.parent(split.input[0], "Transpose")
    rs = tr and ix.parent(tr.input[0], "Reshape")
    if not rs or list(_attr(tr, "perm", [])) != [2, 0, 3, 1, 4] or _attr(split, "axis", 0) != 0:
        return None
    if (ix.ints(sq.input[1]) if len(sq.input) > 1 else list(_attr(sq, "axes", []))) != [0]:
        return None
    n = len(split.output)
    sizes = ix.ints(split.input[1]) if len(split.input) > 1 and split.input[1] else [1] * n
    target, x = ix.ints(rs.input[1]), rs.input[0]
    if sizes != [1] * n or target is None or len(target) != 5 or None in target[1:] or min(target[2:]) <= 0:
        return None
    _, s, n_, heads, hd = target
    xs = shapes.get(x)
    if n_ != n or not xs or len(xs) != 3 or xs[2] != n * heads * hd or s not in (0, xs[1]) or not xs[1]:
        return None
    return x, list(split.output).index(sq.input[0]), n, heads, hd


def _match_attention(sm, ix: _Index, shapes) -> dict | None:
    """The attention around Softmax `sm` (see fuse_attention), or None where the graph is not that pattern."""
    if _attr(sm, "axis", -1) not in (-1, 3):
        return None
    scores = ix.parent(sm.input[0], "MatMul")
    if scores is None or not ix.only_reader(scores.output[0], "Softmax"):
        return None
    q, a = _scaled(scores.input[0], ix)
    kt, b = _scaled(scores.input[1], ix)
    kt = ix.parent(kt, "Transpose")
    mm = ix.only_reader(sm.output[0], "MatMul")
    tr = mm and mm.input[0] == sm.output[0] and ix.only_reader(mm.output[0], "Transpose")
    out = tr and ix.only_reader(tr.output[0], "Reshape")
    if not out or list(_attr(tr, "perm", [])) != [0, 2, 1, 3]:
        return None
    if kt is None or list(_attr(kt, "perm", [])) != [0, 1, 3, 2] or len(ix.readers[kt.output[0]]) != 1:
        return None
    sources = [_heads(t, ix, shapes) for t in (q, kt.input[0], mm.input[1])]
    if None in sources or len({(h, hd) for _, _, _, h, hd in sources}) != 1:
        return None
    heads, hd = sources[0][3:]
    sq = shapes[sources[0][0]][1]
    target = ix.ints(out.input[1])
    if target is None or len(target) != 3 or target[1] not in (0, sq) or target[2] != heads * hd:
        return None
    return {"sources": [s[:3] for s in sources], "heads": heads, "width": heads * hd, "scale": a * b, "out": out}


def _bias_of(x: str, ix: _Index, shapes):
    """(m, bias) for x (B, S, F) = Add(m = MatMul(...), bias) with a constant bias (F,), else None."""
    add = ix.parent(x, "Add")
    if add is None:
        return None
    for j in (0, 1):
        c = ix.consts.get(add.input[j])
        if c is not None and c.shape == (shapes[x][-1],) and ix.parent(add.input[1 - j], "MatMul") is not None:
            return add.input[1 - j], c
    return None


def _names(g) -> set[str]:
    """The names a graph uses (tensors and nodes), for _unique."""
    return ({i.name for i in g.initializer} | {i.name for i in g.input} | {o for n in g.node for o in n.output}
            | {n.name for n in g.node})


def _unique(taken: set[str], name: str) -> str:
    """`name`, or `name` with a number appended, that is not in `taken` (which then holds it)."""
    out, k = name, 0
    while out in taken:
        k += 1
        out = f"{name}{k}"
    taken.add(out)
    return out


def _drop_dead(g) -> None:
    """Remove the nodes whose outputs nothing reads and the initializers no node reads."""
    outputs = {o.name for o in g.output}
    while True:
        read = {i for n in g.node for i in n.input} | outputs
        live = [n for n in g.node if any(o in read for o in n.output)]
        if len(live) == len(g.node):
            break
        del g.node[:]
        g.node.extend(live)
    read = {i for n in g.node for i in n.input}
    live = [i for i in g.initializer if i.name in read]
    del g.initializer[:]
    g.initializer.extend(live)
