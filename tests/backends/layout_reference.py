"""An independent float64 reference for the layout ops of issue 19, written from
docs/semantics.md (Layout) one output element at a time (slow, obvious loops), shared
by the per-backend test references. It takes the node's attributes, never nnc's
helpers: Python's own ``range(n)[start:stop:step]`` is the slice rule, the mirror is
folded step by step. ``x`` is batched: ``[N, *sample]``.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import numpy as np


def _axis(a: int, rank: int) -> int:
    return a + rank if a < 0 else a


def transpose(node: Any, x: np.ndarray) -> np.ndarray:
    rank = x.ndim - 1
    perm = list(reversed(range(rank))) if node.perm is None else [_axis(p, rank) for p in node.perm]
    out = np.zeros((x.shape[0], *(x.shape[1 + p] for p in perm)))
    for index in np.ndindex(*out.shape[1:]):
        source = [0] * rank
        for i, p in enumerate(perm):
            source[p] = index[i]
        out[(slice(None), *index)] = x[(slice(None), *source)]
    return out


def squeeze(node: Any, x: np.ndarray) -> np.ndarray:
    rank = x.ndim - 1
    if node.axes is None:
        drop = {k for k in range(rank) if x.shape[1 + k] == 1}
    else:
        drop = {_axis(a, rank) for a in node.axes}
    return x.reshape(x.shape[0], *(d for k, d in enumerate(x.shape[1:]) if k not in drop))


def unsqueeze(node: Any, x: np.ndarray) -> np.ndarray:
    out_rank = x.ndim - 1 + len(node.axes)
    new = {_axis(a, out_rank) for a in node.axes}
    dims = iter(x.shape[1:])
    shape = [1 if k in new else next(dims) for k in range(out_rank)]
    return x.reshape(x.shape[0], *shape)


def slice_(node: Any, x: np.ndarray) -> np.ndarray:
    rank = x.ndim - 1
    picks = [list(range(n)) for n in x.shape[1:]]
    axes = node.axes if node.axes is not None else range(len(node.starts))
    steps = node.steps if node.steps is not None else [1] * len(node.starts)
    for a, start, stop, step in zip(axes, node.starts, node.stops, steps, strict=True):
        k = _axis(a, rank)
        picks[k] = list(range(x.shape[1 + k]))[start:stop:step]
    out = np.zeros((x.shape[0], *(len(p) for p in picks)))
    for index in np.ndindex(*out.shape[1:]):
        source = tuple(p[i] for p, i in zip(picks, index, strict=True))
        out[(slice(None), *index)] = x[(slice(None), *source)]
    return out


def _fold(j: int, n: int, mode: str) -> int:
    if mode == "edge":
        return 0 if j < 0 else (n - 1 if j >= n else j)
    while j < 0 or j >= n:  # reflect about the end elements, which are not repeated
        j = -j if j < 0 else 2 * (n - 1) - j
    return j


def pad(node: Any, x: np.ndarray) -> np.ndarray:
    rank = x.ndim - 1
    begins, ends = node.pads[:rank], node.pads[rank:]
    sizes = x.shape[1:]
    shape = [n + b + e for n, b, e in zip(sizes, begins, ends, strict=True)]
    out = np.zeros((x.shape[0], *shape))
    for index in np.ndindex(*shape):
        source = [i - b for i, b in zip(index, begins, strict=True)]
        inside = all(0 <= j < n for j, n in zip(source, sizes, strict=True))
        if node.mode == "constant" and not inside:
            out[(slice(None), *index)] = node.value
            continue
        folded = [_fold(j, n, node.mode) for j, n in zip(source, sizes, strict=True)]
        out[(slice(None), *index)] = x[(slice(None), *folded)]
    return out


def tile(node: Any, x: np.ndarray) -> np.ndarray:
    sizes = x.shape[1:]
    out = np.zeros((x.shape[0], *(n * r for n, r in zip(sizes, node.repeats, strict=True))))
    for index in np.ndindex(*out.shape[1:]):
        source = tuple(i % n for i, n in zip(index, sizes, strict=True))
        out[(slice(None), *index)] = x[(slice(None), *source)]
    return out


def broadcast_to(node: Any, x: np.ndarray) -> np.ndarray:
    shape = tuple(node.shape)
    sizes = (1,) * (len(shape) - (x.ndim - 1)) + x.shape[1:]
    x = x.reshape(x.shape[0], *sizes)
    out = np.zeros((x.shape[0], *shape))
    for index in itertools.product(*(range(d) for d in shape)):
        source = tuple(0 if n == 1 else i for i, n in zip(index, sizes, strict=True))
        out[(slice(None), *index)] = x[(slice(None), *source)]
    return out


LAYOUT: dict[str, Callable[[Any, np.ndarray], np.ndarray]] = {
    "transpose": transpose,
    "squeeze": squeeze,
    "unsqueeze": unsqueeze,
    "slice": slice_,
    "pad": pad,
    "tile": tile,
    "broadcast_to": broadcast_to,
}
OPS = frozenset(LAYOUT)


def evaluate(node: Any, x: np.ndarray) -> np.ndarray:
    return LAYOUT[node.op](node, np.asarray(x, np.float64))
