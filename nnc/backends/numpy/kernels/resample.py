"""Resampling kernels over x [N, C, *spatial]: resize and the DCR block moves.

``scale`` holds one integer per spatial dim. Linear interpolation is separable: one
[n * scale, n] weight matrix per spatial axis, applied by a matrix product, so the
backward pass is the product with its transpose.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "depth_to_space",
    "linear_weights",
    "resize_linear",
    "resize_linear_backward",
    "resize_nearest",
    "resize_nearest_backward",
    "space_to_depth",
]


def resize_nearest(x, scale):
    """Output index o reads input floor(o / s): each element repeated s times."""
    for axis, s in enumerate(scale, start=2):
        x = np.repeat(x, s, axis=axis)
    return x


def resize_nearest_backward(d_y, scale):
    """Each input element receives the sum over the s elements copied from it."""
    for axis, s in enumerate(scale, start=2):
        shape = d_y.shape
        d_y = d_y.reshape(*shape[:axis], shape[axis] // s, s, *shape[axis + 1 :]).sum(axis=axis + 1)
    return d_y


def linear_weights(n, s, align_corners=False):
    """The [n * s, n] linear-interpolation matrix of one axis (float64). Half-pixel:
    output o sits at (o + 0.5) / s - 0.5, clamped to [0, n - 1]; with align_corners at
    o * (n - 1) / (n * s - 1)."""
    out = n * s
    o = np.arange(out, dtype=np.float64)
    if align_corners:
        source = o * ((n - 1) / (out - 1)) if out > 1 else np.zeros(out)
    else:
        source = np.clip((o + 0.5) / s - 0.5, 0.0, n - 1.0)
    low = np.minimum(np.floor(source).astype(np.intp), n - 1)
    high = np.minimum(low + 1, n - 1)
    frac = source - low
    weights = np.zeros((out, n))
    np.add.at(weights, (np.arange(out), low), 1.0 - frac)
    np.add.at(weights, (np.arange(out), high), frac)
    return weights


def resize_linear(x, scale, align_corners=False):
    """(Bi)linear upsampling, one spatial axis at a time."""
    for axis, s in enumerate(scale, start=2):
        weights = linear_weights(x.shape[axis], s, align_corners).astype(x.dtype)
        x = np.swapaxes(np.swapaxes(x, axis, -1) @ weights.T, axis, -1)
    return np.ascontiguousarray(x)


def resize_linear_backward(d_y, scale, align_corners=False):
    """The transpose of resize_linear: each axis's weight matrix, transposed."""
    for axis, s in enumerate(scale, start=2):
        weights = linear_weights(d_y.shape[axis] // s, s, align_corners).astype(d_y.dtype)
        d_y = np.swapaxes(np.swapaxes(d_y, axis, -1) @ weights, axis, -1)
    return np.ascontiguousarray(d_y)


def depth_to_space(x, block):
    """[N, b*b*C, H, W] -> [N, C, H*b, W*b]: channel (i*b + j)*C + c moves to offset
    (i, j) of the pixel block of channel c (DCR)."""
    n, channels, h, w = x.shape
    c = channels // (block * block)
    x = x.reshape(n, block, block, c, h, w).transpose(0, 3, 4, 1, 5, 2)
    return x.reshape(n, c, h * block, w * block)


def space_to_depth(x, block):
    """[N, C, H*b, W*b] -> [N, b*b*C, H, W], the inverse of depth_to_space."""
    n, c, hb, wb = x.shape
    h, w = hb // block, wb // block
    x = x.reshape(n, c, h, block, w, block).transpose(0, 3, 5, 1, 2, 4)
    return x.reshape(n, block * block * c, h, w)
