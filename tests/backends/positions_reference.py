"""An independent float64 reference of the position ops, written from
docs/semantics.md (Positions) with explicit loops and ``math.sin`` / ``math.cos``,
for the backend tests. ``p`` holds the node's parameters without its prefix."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

OPS = frozenset({"learned_positions", "sinusoidal_positions"})


def encoding(t: int, d: int, base: float) -> np.ndarray:
    """PE[p, 2i] = sin(p / base^(2i/d)), PE[p, 2i+1] = cos(p / base^(2i/d))."""
    table = np.zeros((t, d))
    for p in range(t):
        for j in range(d):
            i = j // 2
            angle = p / base ** (2 * i / d)
            table[p, j] = math.sin(angle) if j % 2 == 0 else math.cos(angle)
    return table


def evaluate(node: Any, x: np.ndarray, p: dict[str, np.ndarray]) -> np.ndarray:
    x = np.asarray(x, np.float64)
    t, d = x.shape[1], x.shape[2]
    if node.op == "learned_positions":
        return x + np.asarray(p["weight"], np.float64)[:t]
    return x + encoding(t, d, node.base)
