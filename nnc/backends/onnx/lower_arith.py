"""ONNX lowerings of the broadcasting arithmetic (add ... minimum), neg and constant.

ONNX broadcasts like NumPy over the whole tensor, batch axis included, so an operand
of lower rank is first given unit axes after its batch axis (``Unsqueeze``). A number
operand is a scalar initializer (``<node>/scalar``); a constant is an initializer of
shape ``[1, ...]`` named after its node. Every lowering is valid from opset 11.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nnc.backends.onnx.builder import GraphBuilder, Lowering
from nnc.ir.ops.arith import ConstantTensor, _Broadcasting

ONNX_OPS = {
    "add": "Add",
    "sub": "Sub",
    "mul": "Mul",
    "div": "Div",
    "pow": "Pow",
    "maximum": "Max",
    "minimum": "Min",
}


def arith(b: GraphBuilder, node: _Broadcasting) -> None:
    rank = node.type.rank
    operands: list[str] = []
    for k, ref in enumerate(node.inputs):
        missing = rank - b.input_type(node, k).rank
        value = b.value(ref)
        if missing:
            value = b.unsqueeze(value, list(range(1, missing + 1)), f"{node.name}/aligned{k}")
        operands.append(value)
    if node.scalar is not None:
        number = b.scalar(f"{node.name}/scalar", node.scalar)
        operands.insert(0 if node.scalar_side == "left" else 1, number)
    op_type = ONNX_OPS[node.op]
    if node.op == "add" and len(operands) > 2:
        op_type = "Sum"
    b.bind(node, b.op(op_type, operands, node.name))


def neg(b: GraphBuilder, node: Any) -> None:
    b.bind(node, b.op("Neg", [b.value(node.inputs[0])], node.name))


def constant(b: GraphBuilder, node: ConstantTensor) -> None:
    array = np.array(node.value, dtype=np.float32).reshape((1, *node.shape))
    b.bind(node, b.initializer(node.name, array))


LOWERINGS: dict[str, Lowering] = {
    **dict.fromkeys(ONNX_OPS, arith),
    "neg": neg,
    "constant": constant,
}
