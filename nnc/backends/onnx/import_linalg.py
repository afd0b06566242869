"""ONNX -> IR: the ``MatMul`` nodes that are not a dense layer.

ONNX's MatMul is NumPy's on the whole tensor, batch axis included; nnc's ``matmul``
is NumPy's per sample. The two agree, and the node is imported as ``matmul``, when
the batch axis stays a batch axis:

- two computed tensors that are both batches of matrices of one rank
  (``[N, ..., m, k] @ [N, ..., k, n]``);
- a computed batch of matrices (rank 3 and above) and a constant that does not
  reach the batch axis (its rank at most the per-sample rank) or is ``[1, ...]``
  there; the constant becomes a ``param`` (without its size-1 batch axis).

A batch of vectors ``[N, k]`` times a constant ``[k, n]`` stays a dense layer
(:func:`nnc.backends.onnx.import_layers.matmul`). Anything else mixes the batch into
the product and is refused, showing both shapes.
"""

from __future__ import annotations

import numpy as np
import onnx

from nnc.backends.onnx.importer import Const, Importer, Tensor
from nnc.ir.types import format_shape


def _shape(v: Tensor | Const) -> str:
    if isinstance(v, Const):
        return format_shape(tuple(v.array.shape))
    return format_shape(("N", *v.shape))


def _param(imp: Importer, node: onnx.NodeProto, array: np.ndarray, other: Tensor) -> str | None:
    """The constant as a param of the per-sample shape it has, or None when it would
    reach the batch axis of ``other`` (a batch of matrices)."""
    if other.rank < 3 or array.ndim == 0:
        return None
    if array.ndim == other.rank:
        if array.shape[0] != 1:
            return None
        array = array[0]
    elif array.ndim > other.rank:
        return None
    shape = tuple(int(d) for d in array.shape)
    return imp.add(None, "param", [], params={"value": array}, shape=shape)


def matmul(imp: Importer, node: onnx.NodeProto) -> None:
    a, b = imp.value(node, 0), imp.value(node, 1)
    refs: list[str | None] = [None, None]
    if isinstance(a, Tensor) and isinstance(b, Tensor):
        if a.rank == b.rank and a.rank >= 3:
            refs = [imp.shaped(a, node), imp.shaped(b, node)]
    elif isinstance(a, Tensor) and isinstance(b, Const):
        refs = [imp.shaped(a, node), _param(imp, node, b.array, a)]
    elif isinstance(a, Const) and isinstance(b, Tensor):
        refs = [_param(imp, node, a.array, b), imp.shaped(b, node)]
    if refs[0] is None or refs[1] is None:
        if not (isinstance(a, Tensor | Const) and isinstance(b, Tensor | Const)):
            raise imp.error(node, "needs two inputs, computed or constant")
        raise imp.error(
            node,
            f"multiplies {_shape(a)} by {_shape(b)}, where ONNX's product reaches the batch "
            "axis; nnc imports MatMul as its per-sample matmul only for two batches of "
            "matrices of one rank ([N, ..., m, k] @ [N, ..., k, n]), a batch of matrices "
            "and a constant that leaves the batch axis alone, or [N, k] @ a constant [k, n]",
        )
    out = imp.add(node, "matmul", [refs[0], refs[1]])
    imp.set(node, Tensor(out, imp.types[out].shape))


def add_param(imp: Importer, node: onnx.NodeProto, tensor_index: int, constant: np.ndarray) -> bool:
    """``x + c`` with a constant of exactly ``x``'s per-sample shape (``[*shape]`` or
    ``[1, *shape]``) that is no layer's bias: ``c`` becomes a ``param`` and the sum an
    ``add`` of equal shapes. False when the shapes differ (nnc's add does not
    broadcast)."""
    t = imp.tensor(node, tensor_index)
    if t.batch_axis != 0 or not all(isinstance(d, int) for d in t.shape):
        return False
    shape = tuple(int(d) for d in t.shape)
    if constant.shape == (1, *shape):
        constant = constant[0]
    if constant.shape != shape:
        return False
    ref = imp.shaped(t, node)
    value = imp.add(None, "param", [], params={"value": constant}, shape=shape)
    inputs = [value, ref] if tensor_index == 1 else [ref, value]
    imp.set(node, Tensor(imp.add(node, "add", inputs), t.shape))
    return True
