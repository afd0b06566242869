"""Lowerings of the broadcasting arithmetic (add ... minimum), neg and constant.

An operand of lower rank than the result gets unit axes right after its batch axis
(``b[:, None]``), so that NumPy's broadcasting lines the batch axes up. Each input's
gradient is computed at the result's shape and summed back over the axes its operand
was stretched along (docs/semantics.md, Arithmetic), including the batch axis of a
value that depends on no input (a constant, held as ``[1, ...]``).
"""

from __future__ import annotations

import math

from nnc.backends.codegen import py_literal
from nnc.backends.numpy.walk import Lowering, NodeContext
from nnc.ir.broadcast import reduced_axes
from nnc.ir.ops.arith import ConstantTensor, _Broadcasting


def _node(c: NodeContext) -> _Broadcasting:
    assert isinstance(c.node, _Broadcasting)
    return c.node


def _number(value: float) -> str:
    """A scalar operand; a negative one in brackets, so ``(-2.0) ** x`` stays a power."""
    text = py_literal(float(value))
    return f"({text})" if value < 0 else text


def _aligned(c: NodeContext, i: int) -> str:
    """Input ``i`` with unit axes after its batch axis up to the result's rank."""
    missing = c.out_type.rank - c.in_types[i].rank
    return c.x(i) + ("[:, " + ", ".join(["None"] * missing) + "]" if missing else "")


def _operands(c: NodeContext) -> list[str]:
    """The operands as written, the scalar in its place."""
    node = _node(c)
    ops = [_aligned(c, i) for i in range(len(node.inputs))]
    if node.scalar is not None:
        ops.insert(0 if node.scalar_side == "left" else 1, _number(node.scalar))
    return ops


def _forward(c: NodeContext) -> None:
    node, ops = _node(c), _operands(c)
    if node.op in ("maximum", "minimum"):
        expr = f"np.{node.op}({ops[0]}, {ops[1]})"
    else:
        expr = f" {'**' if node.op == 'pow' else node.symbol} ".join(ops)
    c.line(f"{c.y} = {expr}")


def _reduce(c: NodeContext, i: int, expr: str) -> str:
    """``expr`` (at the result's shape) summed back to input ``i``'s shape."""
    lead = c.out_type.rank - c.in_types[i].rank
    axes = [1 + a for a in reduced_axes(c.in_types[i].shape, c.out_type.shape)]
    ref = c.node.inputs[i]
    if ref in c.walk.batch_free and c.node.name not in c.walk.batch_free:
        axes.insert(0, 0)
    if not axes:
        return expr
    summed = f"np.sum({expr}, axis={py_literal(tuple(axes))}, keepdims=True)"
    return f"{summed}.reshape({c.x(i)}.shape)" if lead else summed


def _gradients(c: NodeContext) -> list[str]:
    """d loss / d operand at the result's shape, for each tensor operand in order."""
    node, dy = _node(c), c.dy
    op, s = node.op, node.scalar
    if s is not None:
        x, left = _aligned(c, 0), node.scalar_side == "left"
        number = _number(s)
        if op == "add":
            return [dy]
        if op == "sub":
            return [f"-{dy}" if left else dy]
        if op == "mul":
            return [f"{dy} * {number}"]
        if op == "div":
            return [f"-{dy} * {c.y} / {x}" if left else f"{dy} / {number}"]
        if op == "pow" and left:
            if s <= 0:  # no real logarithm of the base: the gradient is 0 by definition
                return [f"np.zeros_like({dy})"]
            return [f"{dy} * {c.y} * {py_literal(math.log(s))}"]
        if op == "pow":
            return [f"{dy} * {number} * {x} ** {_number(s - 1)}"]
        # maximum / minimum: the tensor gets the gradient where it is chosen; on a tie
        # it goes to the left operand.
        wins = {
            ("maximum", False): ">=",
            ("maximum", True): ">",
            ("minimum", False): "<=",
            ("minimum", True): "<",
        }[(op, left)]
        return [f"{dy} * ({x} {wins} {py_literal(float(s))})"]
    if op == "add":
        return [dy] * len(node.inputs)
    a, b = _aligned(c, 0), _aligned(c, 1)
    if op == "sub":
        return [dy, f"-{dy}"]
    if op == "mul":
        return [f"{dy} * {b}", f"{dy} * {a}"]
    if op == "div":
        return [f"{dy} / {b}", f"-{dy} * {c.y} / {b}"]
    if op == "pow":
        return [
            f"{dy} * {b} * {a} ** ({b} - 1)",
            f"{dy} * {c.y} * np.log(np.where({a} > 0, {a}, 1))",
        ]
    left_wins = ">=" if op == "maximum" else "<="
    right_wins = "<" if op == "maximum" else ">"
    return [f"{dy} * ({a} {left_wins} {b})", f"{dy} * ({a} {right_wins} {b})"]


def _backward(c: NodeContext) -> None:
    node = _node(c)
    if node.op == "pow" and node.scalar is None:
        c.line("# d/db = a^b * ln(a) where a > 0, and 0 where a <= 0")
    elif node.op in ("maximum", "minimum"):
        c.line("# the gradient goes to the chosen operand; on a tie, to the left one")
    for i, grad in enumerate(_gradients(c)):
        if c.needs(i):
            c.grad_input(i, _reduce(c, i, grad))


def _neg_forward(c: NodeContext) -> None:
    c.line(f"{c.y} = -{c.x()}")


def _neg_backward(c: NodeContext) -> None:
    c.grad_input(0, f"-{c.dy}")


def _constant_forward(c: NodeContext) -> None:
    assert isinstance(c.node, ConstantTensor)
    batched = [c.node.nested()]  # a batch axis of size 1: it broadcasts over the batch
    c.line(f"{c.y} = np.array({py_literal(batched)}, dtype=np.float32)")


def _no_gradient(c: NodeContext) -> None:
    """A constant depends on nothing that learns."""


LOWERINGS: dict[str, Lowering] = {
    **{
        op: Lowering(_forward, _backward)
        for op in ("add", "sub", "mul", "div", "pow", "maximum", "minimum")
    },
    "neg": Lowering(_neg_forward, _neg_backward),
    "constant": Lowering(_constant_forward, _no_gradient),
}
