"""Lowerings of the activations: element-wise ops, PReLU and the softmax family.

Most activations are data: a forward and a backward expression over ``{x}`` (the
input), ``{y}`` (the output) and ``{dy}`` (the output's gradient), written out
exactly as docs/semantics.md defines them. The rest are small functions.
"""

from __future__ import annotations

from dataclasses import dataclass

from nnc.backends.codegen import py_literal
from nnc.backends.numpy.walk import Lowering, NodeContext, batch_axis
from nnc.ir.ops.activations import Elu, LeakyRelu, LogSoftmax, Softmax

SELU_ALPHA = 1.6732632423543772
SELU_SCALE = 1.0507009873554805


@dataclass(frozen=True)
class Elementwise:
    """An activation written as two expressions, and the kernels they call."""

    forward: str
    backward: str
    kernels: tuple[str, ...] = ()
    comment: str = ""


_SELU_FORWARD = (
    f"{SELU_SCALE!r} * np.where({{x}} > 0, {{x}}, {SELU_ALPHA!r} * np.expm1(np.minimum({{x}}, 0)))"
)
_SELU_BACKWARD = (
    f"np.where({{x}} > 0, {SELU_SCALE!r} * {{dy}}, {{dy}} * ({{y}} + {SELU_SCALE * SELU_ALPHA!r}))"
)

ELEMENTWISE: dict[str, Elementwise] = {
    "linear": Elementwise("{x}", "{dy}", comment="identity"),
    "step": Elementwise(
        "({x} > 0).astype({x}.dtype)",
        "{dy}",
        comment="straight-through gradient: d step / dx is taken as 1",
    ),
    "sigmoid": Elementwise("sigmoid({x})", "{dy} * {y} * (1 - {y})", ("sigmoid",)),
    "tanh": Elementwise("np.tanh({x})", "{dy} * (1 - {y} * {y})"),
    "relu": Elementwise("np.maximum({x}, 0)", "{dy} * ({x} > 0)"),
    "leaky_relu": Elementwise(
        "np.where({x} > 0, {x}, {alpha} * {x})", "np.where({x} > 0, {dy}, {alpha} * {dy})"
    ),
    "elu": Elementwise(
        "np.where({x} > 0, {x}, {alpha} * np.expm1(np.minimum({x}, 0)))",
        "np.where({x} > 0, {dy}, {dy} * ({y} + {alpha}))",
    ),
    "selu": Elementwise(
        _SELU_FORWARD,
        _SELU_BACKWARD,
        comment=f"scale * elu(x, alpha), scale = {SELU_SCALE}, alpha = {SELU_ALPHA}",
    ),
    "gelu": Elementwise(
        "gelu({x})", "{dy} * gelu_grad({x})", ("gelu", "gelu_grad"), "x * Phi(x), exact erf form"
    ),
    "softplus": Elementwise(
        "np.logaddexp(0, {x})", "{dy} * sigmoid({x})", ("sigmoid",), "log(1 + e^x), stably"
    ),
}


def _fill(c: NodeContext, template: str) -> str:
    fields: dict[str, str] = {}
    if "{x}" in template:
        fields["x"] = c.x()
    if "{y}" in template:
        fields["y"] = c.y
    if "{dy}" in template:
        fields["dy"] = c.dy
    if isinstance(c.node, LeakyRelu | Elu):
        fields["alpha"] = py_literal(c.node.alpha)
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


def _silu_forward(c: NodeContext) -> None:
    c.call(c.temp("sigmoid"), c.kernel("sigmoid"), [c.x()])
    c.line(f"{c.y} = {c.x()} * {c.temp('sigmoid')}")


def _silu_backward(c: NodeContext) -> None:
    s = c.temp("sigmoid")
    c.grad_input(0, f"{c.dy} * {s} * (1 + {c.x()} * (1 - {s}))")


def _channel_param(c: NodeContext, name: str) -> str:
    """A per-channel parameter [C] shaped to broadcast over [N, C, ...]."""
    rank = c.in_types[0].rank
    return c.param(name) + ("[:, " + ", ".join(["None"] * (rank - 1)) + "]" if rank > 1 else "")


def _spatial_axes(rank: int) -> str:
    """The batch and spatial axes of a [N, C, ...] array: everything but the channels."""
    return py_literal((0, *range(2, rank + 1))) if rank > 1 else "0"


def _prelu_forward(c: NodeContext) -> None:
    c.line("# a learned slope per channel (axis 0 of the sample) for x <= 0")
    c.line(f"{c.y} = np.where({c.x()} > 0, {c.x()}, {_channel_param(c, 'alpha')} * {c.x()})")


def _prelu_backward(c: NodeContext) -> None:
    x, axes = c.x(), _spatial_axes(c.in_types[0].rank)
    c.grad_param("alpha", f"np.where({x} > 0, 0, {c.dy} * {x}).sum(axis={axes})")
    c.grad_input(0, f"np.where({x} > 0, {c.dy}, {_channel_param(c, 'alpha')} * {c.dy})")


def _softmax_forward(c: NodeContext) -> None:
    assert isinstance(c.node, Softmax | LogSoftmax)
    kernel = c.kernel(c.node.op)
    c.line(f"{c.y} = {kernel}({c.x()}, axis={batch_axis(c.node.axis)})")


def _softmax_backward(c: NodeContext) -> None:
    assert isinstance(c.node, Softmax)
    y, dy, axis = c.y, c.dy, batch_axis(c.node.axis)
    c.grad_input(0, f"{y} * ({dy} - ({dy} * {y}).sum(axis={axis}, keepdims=True))")


def _log_softmax_backward(c: NodeContext) -> None:
    assert isinstance(c.node, LogSoftmax)
    y, dy, axis = c.y, c.dy, batch_axis(c.node.axis)
    c.grad_input(0, f"{dy} - np.exp({y}) * {dy}.sum(axis={axis}, keepdims=True)")


LOWERINGS: dict[str, Lowering] = {
    **{op: _elementwise(spec) for op, spec in ELEMENTWISE.items()},
    "silu": Lowering(_silu_forward, _silu_backward),
    "prelu": Lowering(_prelu_forward, _prelu_backward),
    "softmax": Lowering(_softmax_forward, _softmax_backward),
    "log_softmax": Lowering(_softmax_forward, _log_softmax_backward),
}
