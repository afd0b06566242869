"""ONNX lowerings of ``matmul`` and ``param``.

``MatMul`` follows NumPy's rule on the batched tensors, so each operand is first
made a stack of matrices with ``Unsqueeze`` (a per-sample vector gets its row or
column axis, the operand of lower rank size-1 axes after its batch axis; see
:mod:`nnc.backends.matmul_plan`) and the vector axes are squeezed from the product.
A ``param`` is the initializer ``<node>.value`` held as ``[1, *shape]``: its
canonical array with a batch axis of size 1.
"""

from __future__ import annotations

from nnc.backends.matmul_plan import matmul_axes
from nnc.backends.onnx.builder import GraphBuilder, Lowering
from nnc.ir.ops.linalg import Matmul, Param


def matmul(b: GraphBuilder, node: Matmul) -> None:
    a_axes, b_axes, out_axes = matmul_axes(b.input_type(node, 0).rank, b.input_type(node, 1).rank)
    operands = []
    for k, (axes, role) in enumerate(((a_axes, "a"), (b_axes, "b"))):
        x = b.value(node.inputs[k])
        operands.append(b.unsqueeze(x, axes, f"{node.name}/{role}") if axes else x)
    if not out_axes:
        b.bind(node, b.op("MatMul", operands, node.name))
        return
    product = b.op("MatMul", operands, f"{node.name}/product")
    b.bind(node, b.squeeze(product, out_axes, node.name))


def param(b: GraphBuilder, node: Param) -> None:
    value = b.weight(node, "value").reshape(1, *node.shape)
    b.bind(node, b.initializer(f"{node.name}.value", value))


LOWERINGS: dict[str, Lowering] = {"matmul": matmul, "param": param}
