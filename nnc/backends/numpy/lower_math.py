"""Lowerings of the element-wise maths (exp ... mish) and of the reductions.

The element-wise ops are data, as in :mod:`lower_elementwise`: a forward and a
backward expression over ``{x}``, ``{y}`` and ``{dy}``, written out as
docs/semantics.md defines them (``{min}`` and ``{max}`` are clip's bounds).
"""

from __future__ import annotations

import math

from nnc.backends.codegen import py_literal
from nnc.backends.numpy.lower_elementwise import Elementwise
from nnc.backends.numpy.walk import Lowering, NodeContext
from nnc.ir.ops.math import Clip
from nnc.ir.ops.reduce import GlobalMaxPool, _Reduce

TWO_OVER_SQRT_PI = 2 / math.sqrt(math.pi)

MATH: dict[str, Elementwise] = {
    "exp": Elementwise("np.exp({x})", "{dy} * {y}"),
    "log": Elementwise("np.log({x})", "{dy} / {x}"),
    "sqrt": Elementwise("np.sqrt({x})", "{dy} / (2 * {y})"),
    "rsqrt": Elementwise("1 / np.sqrt({x})", "-0.5 * {dy} * {y} ** 3"),
    "abs": Elementwise("np.abs({x})", "{dy} * np.sign({x})", comment="the gradient at 0 is 0"),
    "square": Elementwise("{x} * {x}", "2 * {x} * {dy}"),
    "erf": Elementwise(
        "erf({x})",
        f"{{dy}} * {TWO_OVER_SQRT_PI!r} * np.exp(-{{x}} * {{x}})",
        ("erf",),
        "d erf / dx = 2 / sqrt(pi) * e^(-x^2)",
    ),
    "clip": Elementwise(
        "np.clip({x}, {min}, {max})",
        "{dy} * (({x} >= {min}) & ({x} <= {max}))",
        comment="the gradient is 1 on [min, max], bounds included",
    ),
    "relu6": Elementwise(
        "np.clip({x}, 0, 6)",
        "{dy} * (({x} > 0) & ({x} < 6))",
        comment="the gradient is 1 on (0, 6), bounds excluded",
    ),
    "hard_sigmoid": Elementwise(
        "np.clip({x} + 3, 0, 6) / 6",
        "{dy} * (({x} > -3) & ({x} < 3)) / 6",
        comment="relu6(x + 3) / 6",
    ),
    "hard_swish": Elementwise(
        "{x} * np.clip({x} + 3, 0, 6) / 6",
        "{dy} * np.where({x} <= -3, 0, np.where({x} >= 3, 1, (2 * {x} + 3) / 6))",
        comment="x * relu6(x + 3) / 6",
    ),
    "softsign": Elementwise("{x} / (1 + np.abs({x}))", "{dy} / (1 + np.abs({x})) ** 2"),
}


def _fill(c: NodeContext, template: str) -> str:
    fields: dict[str, str] = {}
    if "{x}" in template:
        fields["x"] = c.x()
    if "{y}" in template:
        fields["y"] = c.y
    if "{dy}" in template:
        fields["dy"] = c.dy
    if isinstance(c.node, Clip):
        fields["min"] = py_literal(c.node.min)
        fields["max"] = py_literal(c.node.max)
    return template.format(**fields)


def _elementwise(spec: Elementwise) -> Lowering:
    def forward(c: NodeContext) -> None:
        for name in spec.kernels:
            c.kernel(name)
        if spec.comment:
            c.line(f"# {spec.comment}")
        c.line(f"{c.y} = {_fill(c, spec.forward)}")

    def backward(c: NodeContext) -> None:
        c.grad_input(0, _fill(c, spec.backward))

    return Lowering(forward, backward)


def _mish_forward(c: NodeContext) -> None:
    c.line(f"{c.temp('tanh')} = np.tanh(np.logaddexp(0, {c.x()}))  # tanh(softplus(x))")
    c.line(f"{c.y} = {c.x()} * {c.temp('tanh')}")


def _mish_backward(c: NodeContext) -> None:
    t, x = c.temp("tanh"), c.x()
    c.grad_input(0, f"{c.dy} * ({t} + {x} * (1 - {t} * {t}) * {c.kernel('sigmoid')}({x}))")


# -- reductions -------------------------------------------------------------------------


def _axes(c: NodeContext) -> tuple[int, ...]:
    """The reduced axes of the batched array (the sample's axes shifted by one)."""
    assert isinstance(c.node, _Reduce | GlobalMaxPool)
    return tuple(a + 1 for a in c.node.axes(c.in_types[0]))


def _keepdims(c: NodeContext) -> bool:
    return isinstance(c.node, _Reduce) and c.node.keepdims


def _reduce_forward(c: NodeContext) -> None:
    method = {"global_max_pool": "max"}.get(c.node.op, c.node.op)
    keep = ", keepdims=True" if _keepdims(c) else ""
    c.line(f"{c.y} = {c.x()}.{method}(axis={py_literal(_axes(c))}{keep})")


def _spread(c: NodeContext) -> str:
    """The output gradient with the reduced axes back (as unit axes)."""
    if _keepdims(c):
        return c.dy
    return f"np.expand_dims({c.dy}, {py_literal(_axes(c))})"


def _count(c: NodeContext) -> str:
    """How many elements each output averages: a number, or shape products."""
    dims = [c.in_types[0].shape[a - 1] for a in _axes(c)]
    if all(isinstance(d, int) for d in dims):
        return str(math.prod(int(d) for d in dims))
    return "(" + " * ".join(f"{c.x()}.shape[{a}]" for a in _axes(c)) + ")"


def _sum_backward(c: NodeContext) -> None:
    c.grad_input(0, f"np.broadcast_to({_spread(c)}, {c.x()}.shape)")


def _mean_backward(c: NodeContext) -> None:
    c.grad_input(0, f"np.broadcast_to({_spread(c)}, {c.x()}.shape) / {_count(c)}")


def _extreme_backward(c: NodeContext) -> None:
    largest = c.node.op != "min"
    kernel = c.kernel("first_extreme")
    args = f"{c.x()}, {py_literal(_axes(c))}" + ("" if largest else ", largest=False")
    c.line(f"# the gradient goes to the first {'max' if largest else 'min'}imum (row-major)")
    c.grad_input(0, f"{kernel}({args}) * {_spread(c)}")


LOWERINGS: dict[str, Lowering] = {
    **{op: _elementwise(spec) for op, spec in MATH.items()},
    "mish": Lowering(_mish_forward, _mish_backward),
    "sum": Lowering(_reduce_forward, _sum_backward),
    "mean": Lowering(_reduce_forward, _mean_backward),
    "max": Lowering(_reduce_forward, _extreme_backward),
    "min": Lowering(_reduce_forward, _extreme_backward),
    "global_max_pool": Lowering(_reduce_forward, _extreme_backward),
}
