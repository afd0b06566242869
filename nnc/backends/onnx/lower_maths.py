"""ONNX lowerings of the element-wise maths (exp ... mish) and of the reductions.

Every lowering is valid from opset 11: ops that ONNX added later (HardSwish at 14,
Mish at 18) are written out from older ops below those opsets, and the reductions'
axes move from an attribute to an input where the opset says so
(:meth:`GraphBuilder.reduce`).
"""

from __future__ import annotations

from typing import Any

from nnc.backends.onnx.builder import GraphBuilder, Lowering
from nnc.ir.ops.math import Clip
from nnc.ir.ops.reduce import GlobalMaxPool, _Reduce

# Element-wise ops that are exactly one ONNX op without attributes.
SIMPLE: dict[str, str] = {
    "exp": "Exp",
    "log": "Log",
    "sqrt": "Sqrt",
    "abs": "Abs",
    "erf": "Erf",
    "softsign": "Softsign",
}
# ONNX's HardSigmoid is max(0, min(1, alpha * x + beta)); its default alpha is 0.2.
HARD_SIGMOID: dict[str, Any] = {"alpha": 1 / 6, "beta": 0.5}
FIRST_OPSET_WITH_HARD_SWISH = 14
FIRST_OPSET_WITH_MISH = 18
REDUCE_OPS = {"sum": "ReduceSum", "mean": "ReduceMean", "max": "ReduceMax", "min": "ReduceMin"}


def simple(b: GraphBuilder, node: Any) -> None:
    b.bind(node, b.op(SIMPLE[node.op], [b.value(node.inputs[0])], node.name))


def rsqrt(b: GraphBuilder, node: Any) -> None:
    root = b.op("Sqrt", [b.value(node.inputs[0])], f"{node.name}/sqrt")
    b.bind(node, b.op("Reciprocal", [root], node.name))


def square(b: GraphBuilder, node: Any) -> None:
    x = b.value(node.inputs[0])
    b.bind(node, b.op("Mul", [x, x], node.name))


def _clip(b: GraphBuilder, node: Any, low: float, high: float) -> None:
    bounds = [b.scalar(f"{node.name}/min", low), b.scalar(f"{node.name}/max", high)]
    b.bind(node, b.op("Clip", [b.value(node.inputs[0]), *bounds], node.name))


def clip(b: GraphBuilder, node: Clip) -> None:
    _clip(b, node, node.min, node.max)


def relu6(b: GraphBuilder, node: Any) -> None:
    _clip(b, node, 0.0, 6.0)


def hard_sigmoid(b: GraphBuilder, node: Any) -> None:
    b.bind(node, b.op("HardSigmoid", [b.value(node.inputs[0])], node.name, **HARD_SIGMOID))


def hard_swish(b: GraphBuilder, node: Any) -> None:
    x = b.value(node.inputs[0])
    if b.opset >= FIRST_OPSET_WITH_HARD_SWISH:
        b.bind(node, b.op("HardSwish", [x], node.name))
        return
    gate = b.op("HardSigmoid", [x], f"{node.name}/gate", **HARD_SIGMOID)
    b.bind(node, b.op("Mul", [x, gate], node.name))


def mish(b: GraphBuilder, node: Any) -> None:
    x = b.value(node.inputs[0])
    if b.opset >= FIRST_OPSET_WITH_MISH:
        b.bind(node, b.op("Mish", [x], node.name))
        return
    softplus = b.op("Softplus", [x], f"{node.name}/softplus")
    gate = b.op("Tanh", [softplus], f"{node.name}/tanh")
    b.bind(node, b.op("Mul", [x, gate], node.name))


def reduce(b: GraphBuilder, node: _Reduce) -> None:
    axes = [a + 1 for a in node.axes(b.input_type(node))]
    if not axes:  # ONNX reads empty axes as every axis: nothing to reduce here
        b.alias(node)
        return
    b.bind(
        node, b.reduce(REDUCE_OPS[node.op], b.value(node.inputs[0]), axes, node.name, node.keepdims)
    )


def global_max_pool(b: GraphBuilder, node: GlobalMaxPool) -> None:
    # GlobalMaxPool keeps unit spatial dims ([N, C, 1, 1]); nnc's result is [C].
    pooled = b.op("GlobalMaxPool", [b.value(node.inputs[0])], f"{node.name}/pooled")
    b.bind(node, b.op("Flatten", [pooled], node.name, axis=1))


LOWERINGS: dict[str, Lowering] = {
    **{op: simple for op in SIMPLE},
    "rsqrt": rsqrt,
    "square": square,
    "clip": clip,
    "relu6": relu6,
    "hard_sigmoid": hard_sigmoid,
    "hard_swish": hard_swish,
    "mish": mish,
    "sum": reduce,
    "mean": reduce,
    "max": reduce,
    "min": reduce,
    "global_max_pool": global_max_pool,
}
