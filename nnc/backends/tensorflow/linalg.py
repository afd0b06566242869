"""TensorFlow lowerings of ``matmul`` and ``param``, on channels-first values.

``tf.linalg.matmul`` broadcasts the leading (batch) axes of its operands as NumPy
does; after the indexing of :mod:`nnc.backends.matmul_plan` (a per-sample vector
made a row or a column, the operand of lower rank given size-1 axes after its batch
axis) it computes nnc's per-sample matmul. A ``param`` is the ``Param`` layer: a
variable of its canonical shape, read with a leading batch axis of size 1.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from nnc.backends.matmul_plan import matmul_expression
from nnc.backends.tensorflow.graph import FIRST, ModelEmitter
from nnc.ir.ops.linalg import Matmul, Param

Lowered = tuple[str, str]


def _matmul(e: ModelEmitter, node: Matmul) -> Lowered:
    a, b = (e.input(node, k, FIRST).local for k in range(2))
    a_rank, b_rank = (e.model.value_type(ref).rank for ref in node.inputs)
    return matmul_expression(a, b, a_rank, b_rank, "tf.linalg.matmul"), FIRST


def _param(e: ModelEmitter, node: Param) -> Lowered:
    kwargs: dict[str, object] = {"shape": list(node.shape)}
    if not node.trainable:
        kwargs["trainable"] = False
    return f"{e.layer(node, 'Param', **kwargs)}()", FIRST


LINALG: dict[str, Callable[[ModelEmitter, Any], Lowered]] = {
    "matmul": _matmul,
    "param": _param,
}
