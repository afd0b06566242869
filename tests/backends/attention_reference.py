"""An independent float64 reference of attention, written from docs/semantics.md
(Attention) with an explicit loop over heads, samples and queries, for the backend
tests. ``xs`` are the node's batched inputs, ``p`` its parameters without the node
prefix (``query.weight``...)."""

from __future__ import annotations

from typing import Any

import numpy as np

OPS = frozenset({"attention"})


def evaluate(node: Any, xs: list[np.ndarray], p: dict[str, np.ndarray]) -> np.ndarray:
    xs = [np.asarray(x, np.float64) for x in xs]
    mask = xs[-1] if len(xs) > 1 and xs[-1].ndim == 2 else None
    tensors = xs[:-1] if mask is not None else xs
    q, k, v = (tensors * 3)[:3] if len(tensors) == 1 else (tensors + tensors[-1:])[:3]

    def linear(x: np.ndarray, part: str) -> np.ndarray:
        y = x @ p[f"{part}.weight"].T
        return y + p[f"{part}.bias"] if f"{part}.bias" in p else y

    queries, keys, values = linear(q, "query"), linear(k, "key"), linear(v, "value")
    h = node.heads
    kd, vd = queries.shape[-1] // h, values.shape[-1] // h
    n, t, s = q.shape[0], q.shape[1], k.shape[1]
    mixed = np.zeros((n, t, h * vd))
    for b in range(n):
        for head in range(h):
            qh = queries[b, :, head * kd : (head + 1) * kd]
            kh = keys[b, :, head * kd : (head + 1) * kd]
            vh = values[b, :, head * vd : (head + 1) * vd]
            for i in range(t):
                attended = [
                    j
                    for j in range(s)
                    if (not node.causal or j <= i) and (mask is None or mask[b, j] != 0)
                ]
                if not attended:
                    continue  # a query attending no key: all-zero weights
                scores = np.array([qh[i] @ kh[j] for j in attended]) / np.sqrt(kd)
                weights = np.exp(scores - scores.max())
                weights /= weights.sum()
                mixed[b, i, head * vd : (head + 1) * vd] = weights @ vh[attended]
    return linear(mixed, "output")
