"""TensorFlow lowerings of learned_positions (the ``LearnedPositions`` layer, its
table in nnc's layout) and sinusoidal_positions (the ``sinusoidal_positions``
helper: the table built in float64 from the input's length, rounded once, as the
NumPy backend does). Sequences are [N, t, d] on every backend: no layout change."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from nnc.backends.codegen import py_literal
from nnc.backends.tensorflow.graph import FIRST, ModelEmitter
from nnc.ir.ops.positions import LearnedPositions, SinusoidalPositions

Lowered = tuple[str, str]


def _learned_positions(e: ModelEmitter, node: LearnedPositions) -> Lowered:
    x = e.input(node, 0, FIRST)
    dim = e.model.value_type(node.inputs[0]).shape[1]
    kwargs: dict[str, object] = {"max_len": node.max_len, "dim": dim}
    if not node.trainable:
        kwargs["trainable"] = False
    layer = e.layer(node, "LearnedPositions", **kwargs)
    return f"{layer}({x.local})", FIRST


def _sinusoidal_positions(e: ModelEmitter, node: SinusoidalPositions) -> Lowered:
    x = e.input(node, 0, FIRST)
    e.library.add("sinusoidal_positions")
    return f"sinusoidal_positions({x.local}, {py_literal(node.base)})", FIRST


POSITIONS: dict[str, Callable[[ModelEmitter, Any], Lowered]] = {
    "learned_positions": _learned_positions,
    "sinusoidal_positions": _sinusoidal_positions,
}
