"""ONNX lowering of the RBM layer: its up pass as Gemm (weight [visible, hidden],
no transpose) and Sigmoid. The visible bias is not part of the graph."""

from __future__ import annotations

from nnc.backends.onnx.builder import GraphBuilder, Lowering
from nnc.ir.ops.energy import Rbm


def rbm(b: GraphBuilder, node: Rbm) -> None:
    inputs = [b.value(node.inputs[0]), b.param(node, "weight"), b.param(node, "hidden_bias")]
    logits = b.op("Gemm", inputs, f"{node.name}/gemm")
    b.bind(node, b.op("Sigmoid", [logits], node.name))


LOWERINGS: dict[str, Lowering] = {"rbm": rbm}
