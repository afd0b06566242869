"""Float64 references of the element-wise maths and the reductions, written from
docs/semantics.md (Element-wise maths, Reductions) for the per-backend test
references. Each takes the node and its batched input ``[N, *sample]``."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

_erf = np.vectorize(math.erf, otypes=[np.float64])


def _relu6(x: np.ndarray) -> np.ndarray:
    return np.minimum(np.maximum(x, 0.0), 6.0)


def _batched_axes(node: Any, x: np.ndarray) -> tuple[int, ...]:
    """nnc's per-sample axes (None: all) as axes of the batched array."""
    rank = x.ndim - 1
    if node.op == "global_max_pool":
        return tuple(range(2, x.ndim))
    axes = range(rank) if node.axis is None else node.axis
    return tuple(sorted((a + rank if a < 0 else a) + 1 for a in axes))


def _reduce(fn: Callable[..., np.ndarray]) -> Callable[[Any, np.ndarray], np.ndarray]:
    def apply(node: Any, x: np.ndarray) -> np.ndarray:
        keep = getattr(node, "keepdims", False)
        return fn(x, axis=_batched_axes(node, x), keepdims=keep)

    return apply


MATHS: dict[str, Callable[[Any, np.ndarray], np.ndarray]] = {
    "exp": lambda n, x: np.exp(x),
    "log": lambda n, x: np.log(x),
    "sqrt": lambda n, x: np.sqrt(x),
    "rsqrt": lambda n, x: 1.0 / np.sqrt(x),
    "abs": lambda n, x: np.abs(x),
    "square": lambda n, x: x * x,
    "erf": lambda n, x: _erf(x),
    "clip": lambda n, x: np.minimum(np.maximum(x, n.min), n.max),
    "relu6": lambda n, x: _relu6(x),
    "hard_sigmoid": lambda n, x: _relu6(x + 3.0) / 6.0,
    "hard_swish": lambda n, x: x * _relu6(x + 3.0) / 6.0,
    "softsign": lambda n, x: x / (1.0 + np.abs(x)),
    "mish": lambda n, x: x * np.tanh(np.log1p(np.exp(x))),
    "sum": _reduce(np.sum),
    "mean": _reduce(np.mean),
    "max": _reduce(np.max),
    "min": _reduce(np.min),
    "global_max_pool": _reduce(np.max),
}
