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


def _taps(padded: np.ndarray, kernel: Any, stride: Any, dilation: Any, out: Any) -> Any:
    """Yield (kernel offset, what that tap of every window reads) from ``padded``."""
    for offset in itertools.product(*(range(k) for k in kernel)):
        index = tuple(
            slice(o * d, o * d + (m - 1) * s + 1, s)
            for o, d, s, m in zip(offset, dilation, stride, out, strict=True)
        )
        yield offset, padded[(slice(None), slice(None), *index)]


def pool(node: Any, x: np.ndarray) -> np.ndarray:
    """Max, mean over the real elements, or sum, one window tap at a time: the taps of
    a window are start + k * dilation; a tap in the padding (NaN here) takes no part."""
    from nnc.ir.types import TensorType

    w = node.window(TensorType(shape=x.shape[1:]))
    padded = np.pad(x, [(0, 0), (0, 0), *w.pads], constant_values=np.nan)
    out = [
        (n - (k - 1) * d - 1) // s + 1
        for n, k, s, d in zip(padded.shape[2:], w.kernel, w.stride, w.dilations, strict=True)
    ]
    taps = np.stack([t for _, t in _taps(padded, w.kernel, w.stride, w.dilations, out)])
    if node.op.startswith("maxpool"):
        return np.nanmax(taps, axis=0)
    if node.op.startswith("avgpool"):
        return np.nanmean(taps, axis=0)
    return np.nansum(taps, axis=0)


def conv(node: Any, x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None) -> np.ndarray:
    """Cross-correlation with zero padding and groups, one kernel tap at a time:
    y[n, o] += W[o, c, tap] * x_pad[n, c, p * s + tap * d] over the group's c."""
    padded = np.pad(x, [(0, 0), (0, 0), *node.pads(x.shape[2:])])
    filters, per_group = weight.shape[:2]
    out = [
        (n - (k - 1) * d - 1) // s + 1
        for n, k, s, d in zip(
            padded.shape[2:], node.kernel, node.stride, node.dilation, strict=True
        )
    ]
    y = np.zeros((x.shape[0], filters, *out))
    out_per_group = filters // node.groups
    for offset, tap in _taps(padded, node.kernel, node.stride, node.dilation, out):
        for f in range(filters):
            first = (f // out_per_group) * per_group
            w = weight[(f, slice(None), *offset)]
            y[:, f] += np.tensordot(w, tap[:, first : first + per_group], axes=([0], [1]))
    if bias is not None:
        y += bias.reshape(1, -1, *(1,) * len(out))
    return y


def grouped_norm(node: Any, x: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """groupnorm / instancenorm: per sample and group of consecutive channels, the mean
    and biased variance over the group's channels and positions; per-channel affine."""
    channels = x.shape[1]
    groups = channels if node.op == "instancenorm" else node.groups
    size = channels // groups
    y = np.zeros_like(x)
    for sample in range(x.shape[0]):
        for g in range(groups):
            block = x[sample, g * size : (g + 1) * size]
            normal = (block - block.mean()) / np.sqrt(block.var() + node.eps)
            for c in range(g * size, (g + 1) * size):
                y[sample, c] = weight[c] * normal[c - g * size] + bias[c]
    return y


POOLS = frozenset({"maxpool", "avgpool", "sumpool", "maxpool3d", "avgpool3d"})
LAYER_OPS = frozenset({"conv3d", "instancenorm", "groupnorm"})


def handles(node: Any) -> bool:
    """Whether this module is the reference for the node: the ops it owns, and the
    pooling variants (dilation, ceil mode, explicit pads) the older references lack."""
    if node.op in OPS or node.op in LAYER_OPS or node.op in ("maxpool3d", "avgpool3d"):
        return True
    if node.op not in POOLS:
        return False
    return node.dilation != (1,) or node.ceil_mode or isinstance(node.padding, tuple)


def evaluate_layer(node: Any, x: np.ndarray, params: dict[str, np.ndarray]) -> np.ndarray:
    """The reference for any node that ``handles`` accepts; ``params`` maps the node's
    own parameter names (``weight``, ``bias``) to float64 arrays."""
    if node.op == "conv3d":
        return conv(node, x, params["weight"], params.get("bias"))
    if node.op in ("instancenorm", "groupnorm"):
        return grouped_norm(node, x, params["weight"], params["bias"])
    if node.op in POOLS:
        return pool(node, x)
    result = evaluate(node, x)
    assert result is not None
    return result


def evaluate(node: Any, x: np.ndarray) -> np.ndarray | None:
    if node.op == "resize":
        return resize(x, node.scales(x.ndim - 2), node.mode, node.align_corners)
    if node.op == "depth_to_space":
        return depth_to_space(x, node.block)
    if node.op == "space_to_depth":
        return space_to_depth(x, node.block)
    return None


OPS = frozenset({"resize", "depth_to_space", "space_to_depth"})
