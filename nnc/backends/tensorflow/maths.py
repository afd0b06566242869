"""TensorFlow lowerings of the element-wise maths (exp ... mish) and the reductions.

The element-wise forms are data; each computes nnc's gradient at its kinks
(``tf.clip_by_value`` passes it on ``[min, max]``, ``tf.nn.relu6`` on ``(0, 6)``).
``tf.reduce_max`` splits its gradient among ties, so max, min and global_max_pool
use the ``first_extreme`` helper (the first extreme element in row-major order).
Reductions read the canonical (channels-first) layout, so the axes are nnc's.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from nnc.backends.codegen import py_literal
from nnc.backends.tensorflow.graph import FIRST, ModelEmitter
from nnc.ir.ops import Node
from nnc.ir.ops.math import Clip
from nnc.ir.ops.reduce import GlobalMaxPool, _Reduce

Lowered = tuple[str, str]

ELEMENTWISE: dict[str, str] = {
    "exp": "tf.exp({x})",
    "log": "tf.math.log({x})",
    "sqrt": "tf.sqrt({x})",
    "rsqrt": "tf.math.rsqrt({x})",
    "abs": "tf.abs({x})",
    "square": "tf.square({x})",
    "erf": "tf.math.erf({x})",
    "relu6": "tf.nn.relu6({x})",
    "hard_sigmoid": "tf.nn.relu6({x} + 3) / 6",
    "hard_swish": "{x} * tf.nn.relu6({x} + 3) / 6",
    "softsign": "tf.nn.softsign({x})",
    "mish": "{x} * tf.tanh(tf.nn.softplus({x}))",
}


def _elementwise(e: ModelEmitter, node: Node) -> Lowered:
    x = e.input(node, 0, None)
    return ELEMENTWISE[node.op].format(x=x.local), x.layout


def _clip(e: ModelEmitter, node: Clip) -> Lowered:
    x = e.input(node, 0, None)
    bounds = f"{py_literal(node.min)}, {py_literal(node.max)}"
    return f"tf.clip_by_value({x.local}, {bounds})", x.layout


def _axes(e: ModelEmitter, node: _Reduce | GlobalMaxPool) -> tuple[int, ...]:
    return tuple(a + 1 for a in node.axes(e.model.value_type(node.inputs[0])))


def _keepdims(node: _Reduce | GlobalMaxPool) -> str:
    return ", keepdims=True" if isinstance(node, _Reduce) and node.keepdims else ""


def _reduce(e: ModelEmitter, node: _Reduce) -> Lowered:
    x = e.input(node, 0, FIRST)
    axes = _axes(e, node)
    if not axes:
        return x.local, FIRST
    fn = {"sum": "tf.reduce_sum", "mean": "tf.reduce_mean"}[node.op]
    return f"{fn}({x.local}, axis={py_literal(axes)}{_keepdims(node)})", FIRST


def _extreme(e: ModelEmitter, node: _Reduce | GlobalMaxPool) -> Lowered:
    x = e.input(node, 0, FIRST)
    axes = _axes(e, node)
    if not axes:
        return x.local, FIRST
    e.library.add("first_extreme")
    largest = ", largest=False" if node.op == "min" else ""
    return f"first_extreme({x.local}, {py_literal(axes)}{_keepdims(node)}{largest})", FIRST


LOWERINGS: dict[str, Callable[[ModelEmitter, Any], Lowered]] = {
    **{op: _elementwise for op in ELEMENTWISE},
    "clip": _clip,
    "sum": _reduce,
    "mean": _reduce,
    "max": _extreme,
    "min": _extreme,
    "global_max_pool": _extreme,
}
