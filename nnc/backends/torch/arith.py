"""Lowerings of the broadcasting arithmetic (add ... minimum), neg and constant.

The operators are torch's own (``a * b``, ``1.0 - g``), whose gradients sum back over
broadcast axes. A lower-rank operand gets unit axes after its batch axis
(``b[:, None]``). Where torch's gradient differs from nnc's definition it is
constructed: ``maximum``/``minimum`` are ``torch.where`` on the comparison, so a tie
sends the gradient to the left operand (``torch.maximum`` splits it), and ``pow``
with two tensors (or a number base <= 0, or the exponent 0) uses the ``power`` helper
(torch gives d/db = nan where a < 0 and d/da = 0 where b = 0; nnc gives 0 and
b * a^(b-1)). A constant is a non-persistent buffer of shape ``[1, ...]``: it follows
``.to(device)`` and stays out of the canonical weights.
"""

from __future__ import annotations

from typing import Any

from nnc.backends.codegen import py_literal
from nnc.backends.torch.layers import Layer, Lowering, Site
from nnc.ir.ops.arith import ConstantTensor, _Broadcasting


def _number(value: float) -> str:
    text = py_literal(float(value))
    return f"({text})" if value < 0 else text


def _aligned(site: Site, i: int) -> str:
    missing = site.out.rank - site.ins[i].rank
    return site.xs[i] + ("[:, " + ", ".join(["None"] * missing) + "]" if missing else "")


def arith(node: _Broadcasting, site: Site) -> Layer:
    ops = [_aligned(site, i) for i in range(len(site.xs))]
    if node.scalar is not None:
        ops.insert(0 if node.scalar_side == "left" else 1, _number(node.scalar))
    a, b = ops[0], ops[-1]
    if node.op in ("maximum", "minimum"):
        # a tie goes to the left operand: the right one is chosen only when strictly so
        compare = ">=" if node.op == "maximum" else "<="
        return Layer(forward=f"torch.where({a} {compare} {b}, {a}, {b})")
    if node.op == "pow":
        # torch's own gradient is nnc's for a number exponent other than 0 and for a
        # positive number base
        right, s = node.scalar_side == "right", node.scalar
        if s is not None and ((right and s != 0) or (not right and s > 0)):
            return Layer(forward=f"{a} ** {b}")
        return Layer(
            forward=f"power({a}, {b})",
            helpers=("power",),
            comment="d/db = a^b * ln(a) where a > 0, 0 where a <= 0",
        )
    return Layer(forward=f" {node.symbol} ".join(ops))


def neg(node: Any, site: Site) -> Layer:
    return Layer(forward=f"-{site.x}")


def constant(node: ConstantTensor, site: Site) -> Layer:
    batched = py_literal([node.nested()])  # a batch axis of size 1 broadcasts
    name = site.attr.removeprefix("self.")
    register = f"self.register_buffer({name!r}, torch.tensor({batched}), persistent=False)"
    return Layer(forward=site.attr, setup=(register,))


ARITH: dict[str, Lowering] = {
    **dict.fromkeys(("add", "sub", "mul", "div", "pow", "maximum", "minimum"), arith),
    "neg": neg,
    "constant": constant,
}
