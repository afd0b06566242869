"""Lowerings of the element-wise maths (exp ... mish) and of the reductions.

torch's own functions compute nnc's gradients at the kinks: ``torch.clamp`` passes
the gradient on ``[min, max]`` (bounds included), ``F.relu6`` and ``F.hardsigmoid``
on the open intervals, ``torch.abs`` gives 0 at 0. ``F.hardswish`` does not (its
gradient at -3 is -0.5 and at 3 is 1.5), so hard_swish is written out. ``amax`` and
``amin`` split the gradient among ties, so max and min use the ``first_extreme``
helper, which sends it to the first extreme element in row-major order.
"""

from __future__ import annotations

from typing import Any

from nnc.backends.codegen import py_literal
from nnc.backends.torch.layers import Layer, Lowering, Site
from nnc.ir.ops.math import Clip
from nnc.ir.ops.reduce import GlobalMaxPool, _Reduce

# Element-wise ops that are one torch call on their input.
SIMPLE: dict[str, str] = {
    "exp": "torch.exp",
    "log": "torch.log",
    "sqrt": "torch.sqrt",
    "rsqrt": "torch.rsqrt",
    "abs": "torch.abs",
    "square": "torch.square",
    "erf": "torch.erf",
    "relu6": "F.relu6",
    "hard_sigmoid": "F.hardsigmoid",
    "softsign": "F.softsign",
    "mish": "F.mish",
}


def simple(node: Any, site: Site) -> Layer:
    return Layer(forward=f"{SIMPLE[node.op]}({site.x})")


def clip(node: Clip, site: Site) -> Layer:
    bounds = f"{py_literal(node.min)}, {py_literal(node.max)}"
    return Layer(forward=f"torch.clamp({site.x}, {bounds})")


def hard_swish(node: Any, site: Site) -> Layer:
    return Layer(
        forward=f"{site.x} * F.relu6({site.x} + 3) / 6",
        comment="x * relu6(x + 3) / 6: F.hardswish's gradient differs at x = -3 and 3",
    )


def _dims(node: _Reduce | GlobalMaxPool, site: Site) -> tuple[int, ...]:
    return tuple(a + 1 for a in node.axes(site.ins[0]))


def _keepdim(node: _Reduce | GlobalMaxPool) -> str:
    return ", keepdim=True" if isinstance(node, _Reduce) and node.keepdims else ""


def reduce(node: _Reduce, site: Site) -> Layer:
    dims = _dims(node, site)
    if not dims:  # nothing to reduce (torch would read an empty dim as every dim)
        return Layer(forward=None)
    return Layer(forward=f"{site.x}.{node.op}(dim={py_literal(dims)}{_keepdim(node)})")


def extreme(node: _Reduce | GlobalMaxPool, site: Site) -> Layer:
    dims = _dims(node, site)
    if not dims:
        return Layer(forward=None)
    largest = "" if node.op != "min" else ", largest=False"
    args = f"{site.x}, {py_literal(dims)}{_keepdim(node)}{largest}"
    return Layer(forward=f"first_extreme({args})", helpers=("first_extreme",))


MATHS: dict[str, Lowering] = {
    **dict.fromkeys(SIMPLE, simple),
    "clip": clip,
    "hard_swish": hard_swish,
    "sum": reduce,
    "mean": reduce,
    "max": extreme,
    "min": extreme,
    "global_max_pool": extreme,
}
