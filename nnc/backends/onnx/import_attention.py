"""ONNX -> IR: torch's exported ``nn.MultiheadAttention`` (self-attention, as
``nn.TransformerEncoderLayer`` runs it) becomes one ``attention`` node.

The legacy (TorchScript) exporter writes it as a packed input projection
``MatMul(x, W [d, 3d]) -> Add(b [3d])``, then some forty nodes that split q, k and
v, fold the heads into the batch (``Reshape``/``Transpose``/``Gather``/
``Squeeze``), scale, ``MatMul``, ``Softmax``, ``MatMul``, merge the heads, and an
output projection ``Gemm(W_o [d, d], b_o [d])`` with a ``Reshape`` back to
``[t, N, d]``. Those middle nodes move the batch axis into and out of the head
axis, so no view of them is an nnc value: the chain is imported as a whole or not
at all.

The chain is found structurally (:func:`find`): the projection, its bias, every
node it reaches up to the ``Gemm`` (only reshaping, gathering, scaling, matrix
products and softmax, reading nothing from outside but constants), and the
``Reshape`` after it. It is then checked numerically (:func:`match`): the chain,
run by onnx's reference evaluator on a random batch, must give nnc's attention's
outputs (``docs/semantics.md``) for one head count within 1e-4 relative. That
check also says which axis of the chain's input and output holds the batch
(torch's ``batch_first=True`` transposes to time-major around the chain; with
``batch_first=False`` the whole graph is time-major). A chain that looks like
attention but computes something else (a mask, another scale) is refused, naming
its first node.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx
from onnx import helper, numpy_helper

from nnc.backends.onnx.importer import TIME_MAJOR_READERS, Const, Importer, Tensor
from nnc.backends.onnx.reader import Graph, OnnxImportError, describe

# The ops between the input projection and the output projection.
_INNER = frozenset(
    {
        "Reshape",
        "Unsqueeze",
        "Squeeze",
        "Transpose",
        "Gather",
        "Split",
        "Slice",
        "Mul",
        "Div",
        "Sqrt",
        "Cast",
        "MatMul",
        "Softmax",
        "Identity",
        "Dropout",
    }
)
_MAX_NODES = 120
TOLERANCE = 1e-4


@dataclass(frozen=True)
class Chain:
    """The nodes of one exported attention, first (the input projection) to last
    (the ``Reshape`` after the output projection)."""

    nodes: tuple[onnx.NodeProto, ...]
    in_weight: np.ndarray  # [d, 3d], x @ W
    in_bias: np.ndarray  # [3d]
    out_weight: np.ndarray  # [d, d], torch layout [out, in]
    out_bias: np.ndarray  # [d]

    @property
    def root(self) -> onnx.NodeProto:
        return self.nodes[0]

    @property
    def end(self) -> onnx.NodeProto:
        return self.nodes[-1]


@dataclass(frozen=True)
class Match:
    chain: Chain
    heads: int
    input_batch_axis: int  # where the chain's input holds the batch (0 or 1)
    output_batch_axis: int

    def params(self) -> dict[str, np.ndarray]:
        """The weights in nnc's layouts (torch ``nn.Linear``: ``[out, in]``)."""
        c = self.chain
        d = c.out_weight.shape[0]
        w, b = c.in_weight, c.in_bias
        return {
            "query.weight": w[:, :d].T,
            "query.bias": b[:d],
            "key.weight": w[:, d : 2 * d].T,
            "key.bias": b[d : 2 * d],
            "value.weight": w[:, 2 * d :].T,
            "value.bias": b[2 * d :],
            "output.weight": c.out_weight,
            "output.bias": c.out_bias,
        }


def _attr(node: onnx.NodeProto, name: str, default: object) -> object:
    for a in node.attribute:
        if a.name == name:
            return helper.get_attribute_value(a)
    return default


def find(graph: Graph, root: onnx.NodeProto) -> Chain | None:
    """The exported attention starting at the ``MatMul`` ``root``, or None."""
    if root.op_type != "MatMul" or len(root.input) != 2 or root.input[0] in graph.consts:
        return None
    w = graph.consts.get(root.input[1])
    if w is None or w.ndim != 2 or w.shape[1] != 3 * w.shape[0]:
        return None
    d = w.shape[0]
    add = graph.sole_consumer(root.output[0])
    if add is None or add.op_type != "Add" or len(add.input) != 2:
        return None
    other = add.input[1] if add.input[0] == root.output[0] else add.input[0]
    b = graph.consts.get(other)
    if b is None or b.shape != (3 * d,):
        return None
    region: list[onnx.NodeProto] = []
    seen = {id(root), id(add)}
    gemm: onnx.NodeProto | None = None
    stray: onnx.NodeProto | None = None
    frontier = [add.output[0]]
    while frontier:
        tensor = frontier.pop()
        if tensor in graph.outputs:
            return None
        for reader in graph.consumers.get(tensor, []):
            if id(reader) in seen:
                continue
            seen.add(id(reader))
            if reader.op_type == "Gemm":
                if gemm is not None:
                    return None
                gemm = reader
                continue
            if reader.op_type not in _INNER or len(region) >= _MAX_NODES:
                stray = stray or reader
                continue
            region.append(reader)
            frontier.extend(o for o in reader.output if o)
    made = {o for n in (root, add, *region) for o in n.output}
    scores = any(n.op_type == "MatMul" and set(n.input) <= made for n in region)  # q @ kᵀ
    if scores and (stray is not None or gemm is None):
        # It is attention, but not the form nnc reads (a mask added, say).
        what = f"{describe(stray)}, which" if stray is not None else "no output projection Gemm"
        raise OnnxImportError(
            f"{describe(root)}: starts what reads as torch's packed multi-head attention "
            f"(input projection {list(w.shape)}), but its nodes up to the output projection "
            f"include {what} nnc's attention does not compute there; nnc imports torch's "
            "nn.MultiheadAttention self-attention without attn_mask, key_padding_mask or "
            "is_causal"
        )
    if stray is not None or gemm is None:
        return None
    out_w = graph.consts.get(gemm.input[1]) if len(gemm.input) > 1 else None
    out_b = graph.consts.get(gemm.input[2]) if len(gemm.input) > 2 else None
    if out_w is None or out_b is None or out_w.shape != (d, d) or out_b.size != d:
        return None
    if (
        _attr(gemm, "transA", 0)
        or _attr(gemm, "alpha", 1.0) != 1.0
        or _attr(gemm, "beta", 1.0) != 1.0
    ):
        return None
    end = graph.sole_consumer(gemm.output[0])
    if end is None or end.op_type != "Reshape" or end.input[0] != gemm.output[0]:
        return None
    made = {o for n in (root, add, *region, gemm) for o in n.output}
    for node in (*region, gemm, end):
        for name in node.input:
            if name and name not in made and name not in graph.consts:
                return None  # reads a computed tensor from outside (a mask, say)
    inside = {id(n) for n in (root, add, *region, gemm, end)}
    for node in (root, add, *region):
        for name in node.output:
            if name in graph.outputs or any(
                id(r) not in inside for r in graph.consumers.get(name, [])
            ):
                return None
    order = {id(n): k for k, n in enumerate(graph.nodes)}
    region.sort(key=lambda n: order.get(id(n), 0))
    weight = out_w if _attr(gemm, "transB", 0) else out_w.T
    return Chain((root, add, *region, gemm, end), w, b, weight, out_b.reshape(-1))


def _sample_shape(graph: Graph, chain: Chain) -> tuple[int, int, int]:
    """A shape ``[a, b, d]`` for the chain's input: the end Reshape's static target
    (the exporter bakes static sizes in), else a small one."""
    d = chain.out_weight.shape[0]
    target = graph.consts.get(chain.end.input[1])
    dims = [int(v) for v in target.reshape(-1)] if target is not None else []
    if len(dims) == 3 and all(v > 0 for v in dims) and dims[2] == d:
        return dims[0], dims[1], d
    return 4, 3, d


def _run(graph: Graph, chain: Chain, z: np.ndarray) -> np.ndarray | None:
    from onnx.reference import ReferenceEvaluator

    names = {name for n in chain.nodes for name in n.input if name in graph.consts}
    x = chain.root.input[0]
    g = helper.make_graph(
        list(chain.nodes),
        "attention",
        [helper.make_tensor_value_info(x, onnx.TensorProto.FLOAT, list(z.shape))],
        [helper.make_tensor_value_info(chain.end.output[0], onnx.TensorProto.FLOAT, None)],
        initializer=[numpy_helper.from_array(graph.consts[n], n) for n in sorted(names)],
    )
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", graph.opset)])
    try:
        (out,) = ReferenceEvaluator(model).run(None, {x: z})
    except Exception:  # the chain does not run on this shape: not the attention sought
        return None
    return np.asarray(out, dtype=np.float64)


def reference(x: np.ndarray, params: dict[str, np.ndarray], heads: int) -> np.ndarray:
    """nnc's attention on a batch-first ``x [N, t, d]``, in float64."""
    p = {k: v.astype(np.float64) for k, v in params.items()}
    n, t, d = x.shape
    hd = d // heads

    def split(name: str) -> np.ndarray:
        y = x @ p[f"{name}.weight"].T + p[f"{name}.bias"]
        return y.reshape(n, t, heads, hd).transpose(0, 2, 1, 3)

    q, k, v = split("query"), split("key"), split("value")
    scores = q @ k.transpose(0, 1, 3, 2) / np.sqrt(hd)
    scores = np.exp(scores - scores.max(axis=-1, keepdims=True))
    weights = scores / scores.sum(axis=-1, keepdims=True)
    merged = (weights @ v).transpose(0, 2, 1, 3).reshape(n, t, d)
    return merged @ p["output.weight"].T + p["output.bias"]


def match(graph: Graph, chain: Chain) -> Match | None:
    """The head count and batch axes for which the chain is nnc's attention."""
    shape = _sample_shape(graph, chain)
    z = np.random.default_rng(0).normal(size=shape).astype(np.float32)
    out = _run(graph, chain, z)
    if out is None or out.shape != shape:
        return None
    d = shape[2]
    scale = max(1.0, float(np.abs(out).max()))
    for input_axis in (0, 1):
        x = z.astype(np.float64) if input_axis == 0 else z.astype(np.float64).transpose(1, 0, 2)
        for heads in (h for h in range(1, d + 1) if d % h == 0):
            candidate = Match(chain, heads, input_axis, 0)
            y = reference(x, candidate.params(), heads)
            for output_axis in (0, 1):
                got = out if output_axis == 0 else out.transpose(1, 0, 2)
                if got.shape == y.shape and float(np.abs(got - y).max()) / scale < TOLERANCE:
                    return Match(chain, heads, input_axis, output_axis)
    return None


def matched(graph: Graph, root: onnx.NodeProto) -> Match | None:
    """The attention that starts at ``root``; an error when its nodes look like
    torch's attention but do not compute nnc's."""
    chain = find(graph, root)
    if chain is None:
        return None
    found = match(graph, chain)
    if found is None:
        raise OnnxImportError(
            f"{describe(root)}: starts what reads as torch's packed multi-head attention "
            f"(input projection {list(chain.in_weight.shape)} up to {describe(chain.end)}), "
            "but it does not compute nnc's attention (softmax(q kᵀ / √(d / heads)) v, no "
            "mask) for any head count; nnc imports torch's nn.MultiheadAttention "
            "self-attention without attn_mask or key_padding_mask"
        )
    return found


# Ops that compute each position alone, through which a time-major input reaches
# an attention (a pre-norm layer normalises it first).
_PER_POSITION = frozenset({"LayerNormalization", "Identity", "Dropout"})


def _readers_per_position(graph: Graph, name: str) -> list[tuple[onnx.NodeProto, str]]:
    """The nodes reading ``name`` or, through a few per-position ops, a value
    computed from it alone; each with the tensor it reads."""
    found: list[tuple[onnx.NodeProto, str]] = []
    frontier = [name]
    for _ in range(4):
        following: list[str] = []
        for tensor in frontier:
            for reader in graph.consumers.get(tensor, []):
                found.append((reader, tensor))
                if reader.op_type in _PER_POSITION and reader.input[0] == tensor:
                    following.append(reader.output[0])
        frontier = following
    return found


def time_major(graph: Graph, name: str) -> bool:
    """Whether graph input ``name`` feeds an attention that reads it time-major
    ([t, N, d]: torch's ``batch_first=False``)."""
    for reader, tensor in _readers_per_position(graph, name):
        if reader.op_type == "MatMul" and reader.input[0] == tensor:
            try:
                found = matched(graph, reader)
            except OnnxImportError:
                continue  # asked before folding, or refused: the pattern reports it
            if found is not None and found.input_batch_axis == 1:
                return True
    return False


TIME_MAJOR_READERS.append(time_major)


def attention(imp: Importer, node: onnx.NodeProto) -> None:
    """The pattern at a ``MatMul``: the whole chain becomes one ``attention``."""
    x = imp.value(node, 0)
    if not isinstance(x, Tensor) or x.rank != 3:
        return
    found = matched(imp.graph, node)
    if found is None:
        return
    if found.input_batch_axis != x.batch_axis:
        raise imp.error(
            node,
            f"starts an attention that reads the batch on axis {found.input_batch_axis} of "
            f"'{node.input[0]}', which holds it on axis {x.batch_axis}",
        )
    ref = imp.add(
        node,
        "attention",
        [imp.shaped(x, node, batch_first=False)],
        params=found.params(),
        heads=found.heads,
    )
    imp.env[found.chain.end.output[0]] = Tensor(ref, x.shape, found.output_batch_axis)
    imp.done.update(id(n) for n in found.chain.nodes)


_ELEMENTWISE = frozenset({"Add", "Sub", "Mul", "Div", "Pow"})


def per_position(imp: Importer, node: onnx.NodeProto) -> None:
    """An op of a time-major ``[t, N, d]`` tensor (torch's ``batch_first=False``
    encoder) that computes each position alone: ``LayerNormalization`` or
    ``ReduceMean`` (keeping dims) over the last axis, ``MatMul`` by a constant
    matrix, and ``Add``/``Sub``/``Mul``/``Div``/``Pow`` of such tensors and constants
    of at most one axis (a layer norm written out, below opset 17). It is converted
    on the batch-first values and its result keeps the batch on axis 1."""
    values = [imp.value(node, k) for k in range(len(node.input))]
    tensors = [k for k, v in enumerate(values) if isinstance(v, Tensor)]
    if not tensors or any(
        v.batch_axis != 1 or v.rank != 3 for v in values if isinstance(v, Tensor)
    ):
        return
    if node.op_type == "MatMul":
        if tensors != [0] or not (isinstance(values[1], Const) and values[1].array.ndim == 2):
            return
    elif node.op_type in _ELEMENTWISE:
        if any(isinstance(v, Const) and v.array.ndim > 1 for v in values):
            return
    elif node.op_type == "ReduceMean":
        given = _attr(node, "axes", None)
        axes = [int(a) for a in given] if isinstance(given, list) else None
        if axes is None and len(values) > 1 and isinstance(values[1], Const):
            axes = [int(a) for a in values[1].array.reshape(-1)]
        if tensors != [0] or axes not in ([-1], [2]) or not _attr(node, "keepdims", 1):
            return
    elif tensors != [0] or int(_attr(node, "axis", -1)) not in (-1, 2):  # type: ignore[call-overload]
        return
    saved = {node.input[k]: values[k] for k in tensors}
    for name, v in saved.items():
        if isinstance(v, Tensor):
            imp.env[name] = Tensor(v.ref, v.shape, 0)
    try:
        imp.converters[node.op_type](imp, node)
    finally:
        for name, v in saved.items():
            if v is not None:
                imp.env[name] = v
    out = imp.env[node.output[0]]
    if isinstance(out, Tensor):
        imp.env[node.output[0]] = Tensor(out.ref, out.shape, 1)
    imp.done.add(id(node))
