"""ONNX lowerings of the position ops (opset 11+).

``learned_positions``: ``Add(x, Slice(table, 0, t))`` with the table an initializer in
nnc's layout and ``t`` read from the input's shape, so symbolic lengths export.
``sinusoidal_positions``: the table built in the graph from the runtime length, in
double as the Python backends build it: ``Range`` of positions times the constant
frequencies ``ω_j`` gives the angles ``[t, d]``; ``Where`` picks ``Sin`` at even
``j`` and ``Cos`` at odd ``j``; one ``Cast`` to float, then ``Add``.
"""

from __future__ import annotations

import numpy as np
from onnx import TensorProto

from nnc.backends.onnx.builder import GraphBuilder, Lowering
from nnc.ir.ops.positions import LearnedPositions, SinusoidalPositions, sinusoid_frequencies


def _length(b: GraphBuilder, node: LearnedPositions | SinusoidalPositions, scalar: bool) -> str:
    """The input's length t (axis 1 of [N, t, d]): a scalar, or a 1-element vector."""
    shape = b.op("Shape", [b.value(node.inputs[0])], f"{node.name}/shape")
    index = np.array(1 if scalar else [1], dtype=np.int64)
    axis = b.initializer(f"{node.name}/length_axis", index)
    return b.op("Gather", [shape, axis], f"{node.name}/length", axis=0)


def learned_positions(b: GraphBuilder, node: LearnedPositions) -> None:
    zero, axes = b.ints(f"{node.name}/start", [0]), b.ints(f"{node.name}/axes", [0])
    inputs = [b.param(node, "weight"), zero, _length(b, node, scalar=False), axes]
    rows = b.op("Slice", inputs, f"{node.name}/rows")
    b.bind(node, b.op("Add", [b.value(node.inputs[0]), rows], node.name))


def sinusoidal_positions(b: GraphBuilder, node: SinusoidalPositions) -> None:
    d = int(b.input_type(node).shape[1])
    t = b.op("Cast", [_length(b, node, scalar=True)], f"{node.name}/t", to=TensorProto.DOUBLE)
    start = b.initializer(f"{node.name}/first", np.array(0.0))
    step = b.initializer(f"{node.name}/step", np.array(1.0))
    positions = b.op("Range", [start, t, step], f"{node.name}/positions")
    column = b.unsqueeze(positions, [1], f"{node.name}/position_column")
    frequencies = b.initializer(f"{node.name}/frequencies", sinusoid_frequencies(d, node.base))
    angles = b.op("Mul", [column, frequencies], f"{node.name}/angles")
    even = b.initializer(f"{node.name}/even", np.arange(d) % 2 == 0)
    sin = b.op("Sin", [angles], f"{node.name}/sin")
    cos = b.op("Cos", [angles], f"{node.name}/cos")
    table = b.op("Where", [even, sin, cos], f"{node.name}/table64")
    table = b.op("Cast", [table], f"{node.name}/table", to=TensorProto.FLOAT)
    b.bind(node, b.op("Add", [b.value(node.inputs[0]), table], node.name))


LOWERINGS: dict[str, Lowering] = {
    "learned_positions": learned_positions,
    "sinusoidal_positions": sinusoidal_positions,
}
