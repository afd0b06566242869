"""Kernels for inputs and targets, element-wise maths, softmax and embedding lookups."""

from __future__ import annotations

import numpy as np

__all__ = [
    "as_batch",
    "as_padded_target",
    "as_target",
    "embedding_backward",
    "embedding_lookup",
    "erf",
    "gelu",
    "gelu_grad",
    "log_softmax",
    "sigmoid",
    "softmax",
]


def as_batch(value, name, shape, dtype):
    """``value`` as an array of ``dtype`` shaped ``[batch, *shape]``; a symbolic dim
    (a string in ``shape``) accepts any size."""
    array = np.asarray(value)
    integral = np.issubdtype(np.dtype(dtype), np.integer)
    if integral and array.size and not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"input {name} takes integer indices. Received dtype {array.dtype}")
    expected = "[batch, " + ", ".join(str(d) for d in shape) + "]"
    fits = array.ndim == len(shape) + 1 and all(
        isinstance(want, str) or want == got
        for want, got in zip(shape, array.shape[1:], strict=True)
    )
    if not fits:
        raise ValueError(f"input {name} expects {expected}. Received: {list(array.shape)}")
    return array.astype(dtype, copy=False)


def as_target(value, output, class_labels=False):
    """Targets shaped like ``output``; with ``class_labels``, integer class indices
    (one per row) are one-hot encoded first."""
    target = np.asarray(value)
    classes = output.shape[-1]
    if (
        class_labels
        and target.shape == output.shape[:-1]
        and np.issubdtype(target.dtype, np.integer)
    ):
        if target.size and (target.min() < 0 or target.max() >= classes):
            raise ValueError(
                f"class labels must lie in [0, {classes}). Received: {target.min()}..{target.max()}"
            )
        return np.eye(classes, dtype=output.dtype)[target]
    if target.shape != output.shape:
        raise ValueError(
            f"targets must be shaped like the output {list(output.shape)}. "
            f"Received: {list(target.shape)}"
        )
    return target.astype(output.dtype, copy=False)


def as_padded_target(value, output, ignore):
    """Targets for a cross-entropy whose label ``ignore`` is padding: integer labels
    (one per row) are one-hot encoded with an all-zero row for ``ignore``; rows pass
    through ``as_target``."""
    target = np.asarray(value)
    if target.shape != output.shape[:-1] or not np.issubdtype(target.dtype, np.integer):
        return as_target(value, output)
    kept = target != ignore
    return as_target(np.where(kept, target, 0), output, True) * kept[..., None]


def sigmoid(x):
    """The logistic function, 1 / (1 + e^-x), without overflow for large |x|."""
    return np.exp(-np.logaddexp(0, -x))


def softmax(x, axis=-1):
    """e^x / sum(e^x) along ``axis``, shifted by the maximum so that e^x cannot overflow."""
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def log_softmax(x, axis=-1):
    """x - log(sum(e^x)) along ``axis``, through the log-sum-exp of the shifted x."""
    shifted = x - x.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


def erf(x):
    """The error function, element-wise (NumPy has none); float64 accuracy ~1e-15.

    |x| < 2.5: its Maclaurin series; beyond: Laplace's continued fraction for erfc.
    Both run a fixed number of terms over the whole array.
    """
    a = np.abs(np.asarray(x, dtype=np.float64))
    near = np.minimum(a, 2.5)
    square = near * near
    term = near.copy()
    series = near.copy()
    for n in range(1, 60):  # erf z = 2/sqrt(pi) * sum (-1)^n z^(2n+1) / (n! (2n+1))
        term *= -square / n
        series += term / (2 * n + 1)
    far = np.maximum(a, 2.5)
    fraction = far.copy()
    for k in range(80, 0, -1):  # erfc z = e^-z^2 / sqrt(pi) / (z + 1/2 / (z + 1 / (z + ...)))
        fraction = far + (k / 2) / fraction
    tail = 1.0 - np.exp(-far * far) / (np.sqrt(np.pi) * fraction)
    value = np.where(a < 2.5, series * (2 / np.sqrt(np.pi)), tail)
    return (np.sign(x) * value).astype(np.result_type(x, np.float32))


def gelu(x):
    """x * Phi(x) = x/2 * (1 + erf(x / sqrt(2))), the exact (not tanh) form."""
    return 0.5 * x * (1 + erf(x / np.sqrt(2.0)).astype(x.dtype))


def gelu_grad(x):
    """d gelu / dx = Phi(x) + x * phi(x)."""
    cdf = 0.5 * (1 + erf(x / np.sqrt(2.0)).astype(x.dtype))
    return cdf + x * np.exp(-0.5 * x * x) / np.sqrt(2 * np.pi)


def embedding_lookup(table, indices):
    """Rows of ``table`` [vocab, dim] picked by integer ``indices`` (checked to be in range)."""
    vocab = table.shape[0]
    if indices.size and (indices.min() < 0 or indices.max() >= vocab):
        raise ValueError(
            f"embedding indices must lie in [0, {vocab}). "
            f"Received: {indices.min()}..{indices.max()}"
        )
    return table[indices]


def embedding_backward(indices, d_output, vocab):
    """Gradient of the table: each row adds the gradients of the positions that read it.

    Sorting the indices makes the additions one ``np.add.reduceat`` per run of equal ids.
    """
    ids = indices.ravel()
    rows = d_output.reshape(ids.size, -1)
    d_table = np.zeros((vocab, rows.shape[1]), dtype=d_output.dtype)
    if ids.size == 0:
        return d_table
    order = np.argsort(ids, kind="stable")
    sorted_ids = ids[order]
    starts = np.flatnonzero(np.concatenate(([True], sorted_ids[1:] != sorted_ids[:-1])))
    d_table[sorted_ids[starts]] = np.add.reduceat(rows[order], starts, axis=0)
    return d_table
