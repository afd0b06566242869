"""Float64 references of the broadcasting arithmetic and constants, written from
docs/semantics.md (Arithmetic) for the per-backend test references.

Each takes the node and its batched inputs ``[N, *sample]``. Broadcasting is written
out here rather than left to NumPy: every operand is padded to the result's rank with
unit axes after its batch axis, and each axis then takes the size that is not 1.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np


def _stretch(arrays: list[np.ndarray]) -> list[np.ndarray]:
    """The operands padded to one rank (unit axes after the batch axis) and tiled to one
    shape, axis by axis."""
    rank = max(a.ndim for a in arrays)
    padded = [a.reshape(a.shape[:1] + (1,) * (rank - a.ndim) + a.shape[1:]) for a in arrays]
    sizes = []
    for axis in range(rank):
        dims = {a.shape[axis] for a in padded} - {1}
        assert len(dims) <= 1, f"operands do not broadcast: {[a.shape for a in arrays]}"
        sizes.append(dims.pop() if dims else 1)
    out = []
    for a in padded:
        reps = tuple(s if d == 1 else 1 for d, s in zip(a.shape, sizes, strict=True))
        out.append(np.tile(a, reps))
    return out


def _operands(node: Any, xs: list[np.ndarray]) -> list[np.ndarray]:
    xs = [np.asarray(x, dtype=np.float64) for x in xs]
    if node.scalar is not None:
        number = np.full_like(xs[0], node.scalar)
        xs.insert(0 if node.scalar_side == "left" else 1, number)
    return _stretch(xs)


def _binary(fn: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> Callable[..., np.ndarray]:
    def apply(node: Any, xs: list[np.ndarray]) -> np.ndarray:
        ops = _operands(node, xs)
        total = ops[0]
        for other in ops[1:]:  # add takes two or more terms
            total = fn(total, other)
        return total

    return apply


def _constant(node: Any, xs: list[np.ndarray]) -> np.ndarray:
    return np.array(node.value, dtype=np.float64).reshape((1, *node.shape))


ARITH: dict[str, Callable[[Any, list[np.ndarray]], np.ndarray]] = {
    "add": _binary(lambda a, b: a + b),
    "sub": _binary(lambda a, b: a - b),
    "mul": _binary(lambda a, b: a * b),
    "div": _binary(lambda a, b: a / b),
    "pow": _binary(lambda a, b: np.exp(b * np.log(a)) if np.all(a > 0) else a**b),
    "maximum": _binary(lambda a, b: np.where(a >= b, a, b)),
    "minimum": _binary(lambda a, b: np.where(a <= b, a, b)),
    "neg": lambda node, xs: -np.asarray(xs[0], dtype=np.float64),
    "constant": _constant,
}
