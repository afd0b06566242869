"""TensorFlow lowerings of ``matmul`` and ``param``, on channels-first values.

After the indexing of :mod:`nnc.backends.matmul_plan` (a per-sample vector made a
row or a column, the operand of lower rank given size-1 axes after its batch axis)
``tf.linalg.matmul`` computes nnc's per-sample matmul. It would broadcast the
leading axes itself (BatchMatMulV2), but its gradient corrupts memory for some
broadcasts (TF 2.21 with oneDNN: ``[N, 1, m, k] @ [1, 1, k, n]``), so the library's
``batch_matmul`` avoids it: a right factor shared by every sample (a ``param``) is
one ``tf.tensordot``, anything else is broadcast explicitly (``tf.broadcast_to``).

A ``param`` is the ``Param`` layer: a variable of its canonical shape, read with a
leading batch axis of size 1.
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
    e.library.add("batch_matmul")
    return matmul_expression(a, b, a_rank, b_rank, "batch_matmul"), FIRST


def _param(e: ModelEmitter, node: Param) -> Lowered:
    kwargs: dict[str, object] = {"shape": list(node.shape)}
    if not node.trainable:
        kwargs["trainable"] = False
    return f"{e.layer(node, 'Param', **kwargs)}.read()", FIRST


LINALG: dict[str, Callable[[ModelEmitter, Any], Lowered]] = {
    "matmul": _matmul,
    "param": _param,
}
