"""Position kernels over sequences x [N, t, d]: a learned table added per position,
and the fixed sine/cosine encoding (docs/semantics.md, Positions)."""

from __future__ import annotations

import numpy as np

__all__ = [
    "learned_positions",
    "learned_positions_backward",
    "sinusoid_table",
    "sinusoidal_positions",
]


def learned_positions(x, table):
    """x + table[:t]; a sequence longer than the table's max_len is refused."""
    t, max_len = x.shape[1], table.shape[0]
    if t > max_len:
        raise ValueError(
            f"learned_positions: a sequence of {t} positions is longer than max_len = {max_len}"
        )
    return x + table[:t]


def learned_positions_backward(d_y, max_len):
    """Row p of the table gets the batch's gradient at position p; rows past t get 0."""
    d_table = np.zeros((max_len, d_y.shape[2]), dtype=d_y.dtype)
    d_table[: d_y.shape[1]] = d_y.sum(axis=0)
    return d_table


def sinusoid_table(t, d, base):
    """PE [t, d] in float64: sin(p w_j) at even j, cos(p w_j) at odd j, with
    w_j = base^(-2 floor(j/2) / d)."""
    pairs = 2 * (np.arange(d) // 2)
    angles = np.arange(t, dtype=np.float64)[:, None] * np.power(float(base), -pairs / d)
    return np.where(np.arange(d) % 2 == 0, np.sin(angles), np.cos(angles))


def sinusoidal_positions(x, base):
    """x + PE[:t], the table computed in float64 and rounded to x's dtype once."""
    return x + sinusoid_table(x.shape[1], x.shape[2], base).astype(x.dtype)
