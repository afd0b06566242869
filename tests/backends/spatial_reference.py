"""An independent float64 reference for the spatial ops added by issue 19, written
from docs/semantics.md one output element at a time (slow, obvious loops), shared by
the per-backend test references. ``evaluate`` returns None for an op it does not know.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np


def _source(o: int, n: int, s: int, align_corners: bool) -> float:
    if align_corners:
        return o * (n - 1) / (n * s - 1) if n * s > 1 else 0.0
    return min(max((o + 0.5) / s - 0.5, 0.0), n - 1.0)


def resize(x: np.ndarray, scales: tuple[int, ...], mode: str, align_corners: bool) -> np.ndarray:
    spatial = x.shape[2:]
    out = np.zeros(x.shape[:2] + tuple(n * s for n, s in zip(spatial, scales, strict=True)))
    for index in itertools.product(*(range(d) for d in out.shape[2:])):
        if mode == "nearest":
            src = tuple(o // s for o, s in zip(index, scales, strict=True))
            out[(..., *index)] = x[(..., *src)]
            continue
        # bilinear: the product of one pair of linear weights per axis
        corners: list[list[tuple[int, float]]] = []
        for o, n, s in zip(index, spatial, scales, strict=True):
            c = _source(o, n, s, align_corners)
            low = min(math.floor(c), n - 1)
            frac = c - low
            corners.append([(low, 1.0 - frac), (min(low + 1, n - 1), frac)])
        for combo in itertools.product(*corners):
            weight = math.prod(w for _, w in combo)
            out[(..., *index)] += weight * x[(..., *(i for i, _ in combo))]
    return out


def depth_to_space(x: np.ndarray, b: int) -> np.ndarray:
    n, cb, h, w = x.shape
    c = cb // (b * b)
    y = np.zeros((n, c, h * b, w * b))
    for k, i, j in itertools.product(range(c), range(h * b), range(w * b)):
        y[:, k, i, j] = x[:, ((i % b) * b + j % b) * c + k, i // b, j // b]
    return y


def space_to_depth(x: np.ndarray, b: int) -> np.ndarray:
    n, c, hb, wb = x.shape
    y = np.zeros((n, c * b * b, hb // b, wb // b))
    for k, i, j in itertools.product(range(c), range(hb), range(wb)):
        y[:, ((i % b) * b + j % b) * c + k, i // b, j // b] = x[:, k, i, j]
    return y


def evaluate(node: Any, x: np.ndarray) -> np.ndarray | None:
    if node.op == "resize":
        return resize(x, node.scales(x.ndim - 2), node.mode, node.align_corners)
    if node.op == "depth_to_space":
        return depth_to_space(x, node.block)
    if node.op == "space_to_depth":
        return space_to_depth(x, node.block)
    return None


OPS = frozenset({"resize", "depth_to_space", "space_to_depth"})
