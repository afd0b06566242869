"""ONNX lowerings of the activations and of the graph ops (add, concat).

One-to-one activations are data (``SIMPLE``); the others are named functions.
"""

from __future__ import annotations

import math
from typing import Any

from nnc.backends.onnx.builder import GraphBuilder, Lowering
from nnc.ir.base import Op
from nnc.ir.ops.activations import Elu, Gelu, LeakyRelu, PRelu, Selu, _SoftmaxFamily
from nnc.ir.ops.graph import Concat

# Activations that are exactly one ONNX op without attributes.
SIMPLE: dict[str, str] = {
    "sigmoid": "Sigmoid",
    "tanh": "Tanh",
    "relu": "Relu",
    "softplus": "Softplus",  # onnxruntime computes it stably for large |x|
}

SELU_ALPHA = 1.6732632423543772
SELU_SCALE = 1.0507009873554805
FIRST_OPSET_WITH_GELU = 20


def _axis(axis: int) -> int:
    """A per-sample axis as an axis of the batched tensor."""
    return axis + 1 if axis >= 0 else axis


def simple(b: GraphBuilder, node: Op) -> None:
    b.bind(node, b.op(SIMPLE[node.op], [b.value(node.inputs[0])], node.name))


def linear(b: GraphBuilder, node: Op) -> None:
    b.alias(node)


def step(b: GraphBuilder, node: Op) -> None:
    # Heaviside as (x > 0) cast to float: exactly 0 or 1, and 0 at x = 0.
    zero = b.scalar(f"{node.name}/zero", 0.0)
    positive = b.op("Greater", [b.value(node.inputs[0]), zero], f"{node.name}/positive")
    b.bind(node, b.op("Cast", [positive], node.name, to=1))  # 1 = TensorProto.FLOAT


def leaky_relu(b: GraphBuilder, node: LeakyRelu) -> None:
    b.bind(node, b.op("LeakyRelu", [b.value(node.inputs[0])], node.name, alpha=node.alpha))


def elu(b: GraphBuilder, node: Elu) -> None:
    b.bind(node, b.op("Elu", [b.value(node.inputs[0])], node.name, alpha=node.alpha))


def selu(b: GraphBuilder, node: Selu) -> None:
    # Explicit constants: ONNX's defaults are these values rounded to float32.
    attributes: dict[str, Any] = {"alpha": SELU_ALPHA, "gamma": SELU_SCALE}
    b.bind(node, b.op("Selu", [b.value(node.inputs[0])], node.name, **attributes))


def gelu(b: GraphBuilder, node: Gelu) -> None:
    x = b.value(node.inputs[0])
    if b.opset >= FIRST_OPSET_WITH_GELU:
        b.bind(node, b.op("Gelu", [x], node.name, approximate="none"))
        return
    # Before opset 20: the exact form 0.5 * x * (1 + erf(x / sqrt(2))), in the same
    # op sequence as PyTorch's exporter, so the importer recognises either.
    scaled = b.op("Div", [x, b.scalar(f"{node.name}/sqrt2", math.sqrt(2.0))], f"{node.name}/scaled")
    erf = b.op("Erf", [scaled], f"{node.name}/erf")
    shifted = b.op("Add", [erf, b.scalar(f"{node.name}/one", 1.0)], f"{node.name}/one_plus_erf")
    product = b.op("Mul", [x, shifted], f"{node.name}/product")
    b.bind(node, b.op("Mul", [product, b.scalar(f"{node.name}/half", 0.5)], node.name))


def silu(b: GraphBuilder, node: Op) -> None:
    x = b.value(node.inputs[0])
    gate = b.op("Sigmoid", [x], f"{node.name}/sigmoid")
    b.bind(node, b.op("Mul", [x, gate], node.name))


def prelu(b: GraphBuilder, node: PRelu) -> None:
    # The slope [C] must broadcast against [N, C, ...]: give it unit trailing dims.
    rank = b.input_type(node).rank
    if rank == 1:
        slope = b.param(node, "alpha")
    else:
        alpha = b.weight(node, "alpha")
        slope = b.initializer(f"{node.name}/slope", alpha.reshape(alpha.shape + (1,) * (rank - 1)))
    b.bind(node, b.op("PRelu", [b.value(node.inputs[0]), slope], node.name))


def softmax(b: GraphBuilder, node: _SoftmaxFamily) -> None:
    op_type = "Softmax" if node.op == "softmax" else "LogSoftmax"
    x = b.value(node.inputs[0])
    rank = b.input_type(node).rank + 1  # with the batch
    axis = _axis(node.axis) % rank
    if b.opset >= 13 or axis == rank - 1:
        b.bind(node, b.op(op_type, [x], node.name, axis=_axis(node.axis)))
        return
    # Before opset 13 Softmax normalises over all the axes from `axis` on, as one:
    # move the axis last, normalise there, and move it back.
    perm = [*(a for a in range(rank) if a != axis), axis]
    moved = b.op("Transpose", [x], f"{node.name}/axis_last", perm=perm)
    normalized = b.op(op_type, [moved], f"{node.name}/normalized", axis=rank - 1)
    back = [perm.index(a) for a in range(rank)]
    b.bind(node, b.op("Transpose", [normalized], node.name, perm=back))


def concat(b: GraphBuilder, node: Concat) -> None:
    parts = [b.value(ref) for ref in node.inputs]
    b.bind(node, b.op("Concat", parts, node.name, axis=_axis(node.axis)))


LOWERINGS: dict[str, Lowering] = {
    **{op: simple for op in SIMPLE},
    "linear": linear,
    "step": step,
    "leaky_relu": leaky_relu,
    "elu": elu,
    "selu": selu,
    "gelu": gelu,
    "silu": silu,
    "prelu": prelu,
    "softmax": softmax,
    "log_softmax": softmax,
    "concat": concat,
}
