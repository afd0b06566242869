"""Float64 references of ``matmul`` and ``param``, written from docs/semantics.md
(Matmul and params) for the per-backend test references.

``matmul`` is NumPy's matmul applied to each sample on its own (a loop over the
batch), so the batch axis can never be mixed into the product; a batch of 1 (a
``param``) is read by every sample.
"""

from __future__ import annotations

from typing import Any

import numpy as np

OPS = frozenset({"matmul", "param"})


def matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    n = max(len(a), len(b))
    rows = [np.matmul(a[i if len(a) > 1 else 0], b[i if len(b) > 1 else 0]) for i in range(n)]
    return np.stack([np.asarray(r, dtype=np.float64) for r in rows])


def evaluate(node: Any, xs: list[np.ndarray], value: np.ndarray | None) -> np.ndarray:
    """The node's batched output; ``value`` is a param's canonical array."""
    if node.op == "param":
        assert value is not None
        return np.asarray(value, dtype=np.float64)[None]
    return matmul(np.asarray(xs[0], np.float64), np.asarray(xs[1], np.float64))
