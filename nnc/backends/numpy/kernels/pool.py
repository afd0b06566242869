"""Pooling kernels over x [N, C, H, W] (1-D pooling adds a unit height).

Windows are strided slices: one vectorised operation per offset inside the window,
never a loop over pixels. ``padding`` is ((top, bottom), (left, right)).
"""

from __future__ import annotations

import numpy as np

from nnc.backends.numpy.kernels.conv import im2col, pad2d

__all__ = [
    "maxpool_backward",
    "maxpool_forward",
    "window_counts",
    "window_sum",
    "window_sum_backward",
]


def maxpool_forward(x, size, stride=None, padding=((0, 0), (0, 0))):
    """Maximum of each window (padding never wins: it is -inf); the stride defaults to
    the window size. Returns y and, per window, the flat offset of its first maximal
    element (row-major)."""
    stride = size if stride is None else stride
    patches = im2col(pad2d(x, padding, -np.inf), size, stride, (1, 1))
    n, out_h, out_w, channels = patches.shape[:4]
    flat = patches.reshape(n, out_h, out_w, channels, -1)
    argmax = flat.argmax(axis=-1)
    y = np.take_along_axis(flat, argmax[..., None], axis=-1)[..., 0]
    return y.transpose(0, 3, 1, 2), argmax.transpose(0, 3, 1, 2)


def maxpool_backward(d_y, argmax, x_shape, size, stride=None, padding=((0, 0), (0, 0))):
    """Each window's gradient goes to its first maximal element."""
    (kh, kw), (sh, sw) = size, size if stride is None else stride
    (top, bottom), (left, right) = padding
    n, channels, h, w = x_shape
    out_h, out_w = d_y.shape[2:]
    d_x = np.zeros((n, channels, h + top + bottom, w + left + right), dtype=d_y.dtype)
    for i in range(kh):
        for j in range(kw):
            rows = slice(i, i + sh * (out_h - 1) + 1, sh)
            cols = slice(j, j + sw * (out_w - 1) + 1, sw)
            d_x[:, :, rows, cols] += d_y * (argmax == i * kw + j)
    return d_x[:, :, top : top + h, left : left + w]


def window_sum(x, size, stride=None, padding=((0, 0), (0, 0))):
    """Sum of each window (zero padding; the stride defaults to the window size), adding
    one strided slice per window offset."""
    (kh, kw), (sh, sw) = size, size if stride is None else stride
    x = pad2d(x, padding)
    out_h = (x.shape[2] - kh) // sh + 1
    out_w = (x.shape[3] - kw) // sw + 1
    y = np.zeros((*x.shape[:2], out_h, out_w), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            y += x[:, :, i : i + sh * (out_h - 1) + 1 : sh, j : j + sw * (out_w - 1) + 1 : sw]
    return y


def window_sum_backward(d_y, x_shape, size, stride=None, padding=((0, 0), (0, 0))):
    """The adjoint of window_sum: each window's gradient goes to all its elements."""
    (kh, kw), (sh, sw) = size, size if stride is None else stride
    (top, bottom), (left, right) = padding
    n, channels, h, w = x_shape
    out_h, out_w = d_y.shape[2:]
    d_x = np.zeros((n, channels, h + top + bottom, w + left + right), dtype=d_y.dtype)
    for i in range(kh):
        for j in range(kw):
            d_x[:, :, i : i + sh * (out_h - 1) + 1 : sh, j : j + sw * (out_w - 1) + 1 : sw] += d_y
    return d_x[:, :, top : top + h, left : left + w]


def window_counts(spatial, size, stride=None, padding=((0, 0), (0, 0)), dtype=np.float32):
    """How many real (unpadded) elements each window covers: [out_h, out_w]."""
    ones = np.ones((1, 1, *spatial), dtype=dtype)
    return window_sum(ones, size, stride, padding)[0, 0]
