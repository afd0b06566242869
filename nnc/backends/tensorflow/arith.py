"""TensorFlow lowerings of the broadcasting arithmetic (add ... minimum), neg and
constant.

The operators are TensorFlow's (``a * b``, ``1.0 - g``, ``a ** b``); their gradients
sum back over broadcast axes. ``a ** b`` is ``tf.pow``, whose gradient is nnc's
definition (d/db = a^b * ln(a) where a > 0, 0 where a <= 0). ``maximum``/``minimum``
are ``tf.where`` on the comparison, so a tie sends the gradient to the left operand by
construction. Operands of equal shape keep their layout; operands that broadcast are
read channels-first (nnc's layout), a lower-rank one with unit axes after its batch
axis (``b[:, None]``). A constant is ``tf.constant`` of shape ``[1, ...]``.
"""

from __future__ import annotations

from typing import Any

from nnc.backends.codegen import py_literal
from nnc.backends.tensorflow.graph import FIRST, ModelEmitter
from nnc.ir.ops.arith import ConstantTensor, _Broadcasting

Lowered = tuple[str, str]


def _number(value: float) -> str:
    text = py_literal(float(value))
    return f"({text})" if value < 0 else text


def _arith(e: ModelEmitter, node: _Broadcasting) -> Lowered:
    out = node.type
    ins = [e.model.value_type(r) for r in node.inputs]
    if all(t.shape == out.shape for t in ins):
        first = e.input(node, 0, None)
        values = [first, *(e.input(node, k, first.layout) for k in range(1, len(ins)))]
        ops, layout = [v.local for v in values], first.layout
    else:
        ops, layout = [], FIRST
        for k, t in enumerate(ins):
            local = e.input(node, k, FIRST).local
            missing = out.rank - t.rank
            ops.append(local + ("[:, " + ", ".join(["None"] * missing) + "]" if missing else ""))
    if node.scalar is not None:
        ops.insert(0 if node.scalar_side == "left" else 1, _number(node.scalar))
    a, b = ops[0], ops[-1]
    if node.op in ("maximum", "minimum"):
        compare = ">=" if node.op == "maximum" else "<="
        return f"tf.where({a} {compare} {b}, {a}, {b})", layout
    symbol = "**" if node.op == "pow" else node.symbol
    return f" {symbol} ".join(ops), layout


def _neg(e: ModelEmitter, node: Any) -> Lowered:
    x = e.input(node, 0, None)
    return f"-{x.local}", x.layout


def _constant(e: ModelEmitter, node: ConstantTensor) -> Lowered:
    batched = py_literal([node.nested()])  # a batch axis of size 1 broadcasts
    return f"tf.constant({batched}, dtype=tf.float32)", FIRST


ARITH: dict[str, Any] = {
    **dict.fromkeys(("add", "sub", "mul", "div", "pow", "maximum", "minimum"), _arith),
    "neg": _neg,
    "constant": _constant,
}
