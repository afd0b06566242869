"""Kernels for the gradient of ``matmul`` on batched operands.

An operand is a batch ``[N, *per_sample]`` (``N`` may be 1: a ``param``). A batched
array of rank 2 is a batch of vectors: on the left a row ``[1, k]``, on the right a
column ``[k, 1]``. The shorter operand gets size-1 axes right after its batch axis,
then ``np.matmul`` broadcasts the rest; each gradient is summed back over the axes
its operand was broadcast along.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "matmul_grad_a",
    "matmul_grad_b",
    "matmul_operands",
    "output_matrices",
    "sum_to_shape",
]


def matmul_operands(a, b):
    """``a`` and ``b`` as stacks of matrices of one rank: vectors made matrices, the
    shorter one given size-1 axes after its batch axis."""
    a2 = a[:, None, :] if a.ndim == 2 else a
    b2 = b[:, :, None] if b.ndim == 2 else b
    rank = max(a2.ndim, b2.ndim)
    a2 = a2.reshape(a2.shape[:1] + (1,) * (rank - a2.ndim) + a2.shape[1:])
    b2 = b2.reshape(b2.shape[:1] + (1,) * (rank - b2.ndim) + b2.shape[1:])
    return a2, b2


def sum_to_shape(g, shape):
    """``g`` summed over the axes where ``shape`` (of the same rank) has 1 and ``g`` not."""
    pairs = enumerate(zip(shape, g.shape, strict=True))
    axes = tuple(i for i, (n, m) in pairs if n == 1 and m != 1)
    return g.sum(axis=axes, keepdims=True) if axes else g


def output_matrices(dy, a, b):
    """The output gradient with the vector axes that the forward pass removed."""
    if b.ndim == 2:
        dy = dy[..., None]
    if a.ndim == 2:
        dy = dy[..., None, :]
    return dy


def matmul_grad_a(dy, a, b):
    """d loss / d a of ``a @ b``, in ``a``'s shape."""
    a2, b2 = matmul_operands(a, b)
    da = output_matrices(dy, a, b) @ np.swapaxes(b2, -1, -2)
    return sum_to_shape(da, a2.shape).reshape(a.shape)


def matmul_grad_b(dy, a, b):
    """d loss / d b of ``a @ b``, in ``b``'s shape."""
    a2, b2 = matmul_operands(a, b)
    db = np.swapaxes(a2, -1, -2) @ output_matrices(dy, a, b)
    return sum_to_shape(db, b2.shape).reshape(b.shape)
