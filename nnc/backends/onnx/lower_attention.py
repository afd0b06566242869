"""ONNX lowering of attention, decomposed (opset 11+; ONNX's own Attention op exists
only from opset 23): MatMul + Add projections, Reshape and Transpose into heads,
MatMul of queries and keys, the masked softmax written with Where, MatMul with the
values, and the output projection.

Unmasked, the softmax is ``Softmax`` over the last axis. With a causal mask or a key
mask: scores of keys not attended are replaced by -inf before ReduceMax, the row's
maximum by 0 where it is -inf (a query attending no key), and the exponentials of
keys not attended by 0, so such a query gets all-zero weights as in docs/semantics.md.
The causal mask is built from the runtime lengths (Shape, Range), so symbolic lengths
export.
"""

from __future__ import annotations

import numpy as np

from nnc.backends.onnx.builder import GraphBuilder, Lowering
from nnc.ir.ops.attention import Attention
from nnc.ir.types import Dim


def _project(b: GraphBuilder, node: Attention, x: str, part: str, perm: list[int]) -> str:
    """x W^T + b, split into heads [N, heads, L, d] (perm [0, 2, 1, 3]) or, for the
    keys, [N, heads, d, L] (perm [0, 2, 3, 1])."""
    name = f"{node.name}/{part}"
    weight_t = b.initializer(
        f"{node.name}.{part}.weight_transposed", b.weight(node, f"{part}.weight").T
    )
    y = b.op("MatMul", [x, weight_t], f"{name}/matmul")
    if node.bias:
        y = b.op("Add", [y, b.param(node, f"{part}.bias")], f"{name}/add")
    shape = b.ints(f"{name}/heads_shape", [0, 0, node.heads, -1])
    y = b.op("Reshape", [y, shape], f"{name}/heads")
    return b.op("Transpose", [y], f"{name}/transposed", perm=perm)


def _length(b: GraphBuilder, node: Attention, x: str, what: str, length: Dim) -> str:
    """The positions 0 .. length - 1 of axis 1 of ``x``: a constant where the length is
    static. (Of a ``param``, an initializer, onnxruntime folds Shape -> Gather into a
    1-element vector, which Range refuses: "Input to 'Range' op should be scalars".)"""
    if isinstance(length, int):
        return b.initializer(f"{node.name}/{what}_positions", np.arange(length, dtype=np.int64))
    shape = b.op("Shape", [x], f"{node.name}/{what}_shape")
    one = b.initializer(f"{node.name}/{what}_axis", np.array(1, dtype=np.int64))
    n = b.op("Gather", [shape, one], f"{node.name}/{what}_length", axis=0)
    start = b.initializer(f"{node.name}/{what}_start", np.array(0, dtype=np.int64))
    step = b.initializer(f"{node.name}/{what}_step", np.array(1, dtype=np.int64))
    return b.op("Range", [start, n, step], f"{node.name}/{what}_positions")


def _allowed(
    b: GraphBuilder, node: Attention, q: str, k: str, mask: str | None, lengths: tuple[Dim, Dim]
) -> str:
    """Booleans [t, s] or [N, 1, 1 or t, s]: which keys each query attends."""
    allowed = None
    if node.causal:
        t, s = lengths
        i = b.unsqueeze(_length(b, node, q, "query", t), [1], f"{node.name}/query_column")
        j = _length(b, node, k, "key", s)
        later = b.op("Greater", [j, i], f"{node.name}/later_key")
        allowed = b.op("Not", [later], f"{node.name}/causal")  # key j <= query i
    if mask is not None:
        zero = b.scalar(f"{node.name}/zero", 0.0)
        masked = b.op("Equal", [mask, zero], f"{node.name}/masked_key")
        keys = b.op("Not", [masked], f"{node.name}/attended_key")
        keys = b.unsqueeze(keys, [1, 2], f"{node.name}/attended_key_4d")
        allowed = keys if allowed is None else b.op("And", [allowed, keys], f"{node.name}/allowed")
    assert allowed is not None
    return allowed


def attention(b: GraphBuilder, node: Attention) -> None:
    ins = [b.input_type(node, i) for i in range(len(node.inputs))]
    (iq, ik, iv), im = node.split_inputs(ins)
    _, _, _, key_dim, _ = node.dims(ins)
    q, k, v = (b.value(node.inputs[i]) for i in (iq, ik, iv))
    q_h = _project(b, node, q, "query", [0, 2, 1, 3])
    k_t = _project(b, node, k, "key", [0, 2, 3, 1])
    v_h = _project(b, node, v, "value", [0, 2, 1, 3])
    scale = b.scalar(f"{node.name}/scale", float(np.float32(1.0 / np.sqrt(key_dim))))
    product = b.op("MatMul", [q_h, k_t], f"{node.name}/dot")
    scores = b.op("Mul", [product, scale], f"{node.name}/scores")
    if not node.causal and im is None:
        weights = b.op("Softmax", [scores], f"{node.name}/weights", axis=-1)
    else:
        mask = b.value(node.inputs[im]) if im is not None else None
        allowed = _allowed(b, node, q, k, mask, (ins[iq].shape[0], ins[ik].shape[0]))
        minus_inf = b.scalar(f"{node.name}/minus_inf", -np.inf)
        zero = b.scalar(f"{node.name}/zero_weight", 0.0)
        one = b.scalar(f"{node.name}/one", 1.0)
        kept = b.op("Where", [allowed, scores, minus_inf], f"{node.name}/kept_scores")
        top = b.reduce("ReduceMax", kept, [-1], f"{node.name}/top", keepdims=True)
        none = b.op("IsInf", [top], f"{node.name}/no_key")
        top = b.op("Where", [none, zero, top], f"{node.name}/shift")
        shifted = b.op("Sub", [kept, top], f"{node.name}/shifted")
        e = b.op("Exp", [shifted], f"{node.name}/exp")  # exp(-inf) = 0 for keys not attended
        total = b.reduce("ReduceSum", e, [-1], f"{node.name}/total", keepdims=True)
        positive = b.op("Greater", [total, zero], f"{node.name}/any_key")
        total = b.op("Where", [positive, total, one], f"{node.name}/divisor")
        weights = b.op("Div", [e, total], f"{node.name}/weights")
    mixed = b.op("MatMul", [weights, v_h], f"{node.name}/mixed_heads")
    mixed = b.op("Transpose", [mixed], f"{node.name}/mixed_transposed", perm=[0, 2, 1, 3])
    mixed = b.op(
        "Reshape", [mixed, b.ints(f"{node.name}/joined", [0, 0, -1])], f"{node.name}/mixed"
    )
    out_t = b.initializer(
        f"{node.name}.output.weight_transposed", b.weight(node, "output.weight").T
    )
    if not node.bias:
        b.bind(node, b.op("MatMul", [mixed, out_t], node.name))
        return
    y = b.op("MatMul", [mixed, out_t], f"{node.name}/output/matmul")
    b.bind(node, b.op("Add", [y, b.param(node, "output.bias")], node.name))


LOWERINGS: dict[str, Lowering] = {"attention": attention}
