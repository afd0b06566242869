"""Lowerings of learned_positions and sinusoidal_positions (``kernels/positions.py``):
both add to their input, so the input's gradient is the output's."""

from __future__ import annotations

from nnc.backends.codegen import py_literal
from nnc.backends.numpy.walk import Lowering, NodeContext
from nnc.ir.ops.positions import LearnedPositions, SinusoidalPositions


def _learned_forward(c: NodeContext) -> None:
    c.call(c.y, c.kernel("learned_positions"), [c.x(), c.param("weight")])


def _learned_backward(c: NodeContext) -> None:
    assert isinstance(c.node, LearnedPositions)
    if c.trains("weight"):
        kernel = c.kernel("learned_positions_backward")
        c.grad_param("weight", f"{kernel}({c.dy}, {c.node.max_len})")
    c.grad_input(0, c.dy)


def _sinusoidal_forward(c: NodeContext) -> None:
    assert isinstance(c.node, SinusoidalPositions)
    c.call(c.y, c.kernel("sinusoidal_positions"), [c.x(), py_literal(c.node.base)])


def _sinusoidal_backward(c: NodeContext) -> None:
    c.grad_input(0, c.dy)


LOWERINGS: dict[str, Lowering] = {
    "learned_positions": Lowering(_learned_forward, _learned_backward),
    "sinusoidal_positions": Lowering(_sinusoidal_forward, _sinusoidal_backward),
}
