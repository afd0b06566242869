"""Pooling kernels over x [N, C, H, W] (1-D pooling adds a unit height).

Windows are strided slices: one vectorised operation per offset inside the window,
never a loop over pixels or windows. Max pooling whose windows tile the input
(stride = size, the usual case) copies the windows once, offset-major, and reduces
over the offsets. ``padding`` is ((top, bottom), (left, right)).
"""

from __future__ import annotations

import numpy as np

from nnc.backends.numpy.kernels.conv import pad2d

__all__ = [
    "maxpool_backward",
    "maxpool_forward",
    "window_counts",
    "window_sum",
    "window_sum_backward",
    "window_tiles",
    "zeros_in_layout",
]


def zeros_in_layout(shape, like):
    """Zeros of ``shape`` [N, C, H, W] laid out as ``like`` is: channel-major (memory
    order C, N, H, W, as a convolution's matrix product writes its output) when
    ``like`` is, else row-major. Keeping the convolutions' layout through pooling saves
    each convolution a transposing copy of its input and of its output gradient."""
    if like.strides[1] > like.strides[0] and like.transpose(1, 0, 2, 3).flags.c_contiguous:
        channel_major = np.zeros((shape[1], shape[0], *shape[2:]), dtype=like.dtype)
        return channel_major.transpose(1, 0, 2, 3)
    return np.zeros(shape, dtype=like.dtype)


def window_tiles(x, size, out):
    """The windows of x [N, C, H, W] when they tile it (stride = size), as a view
    [N, C, out_h, kh, out_w, kw] of its first out_h*kh rows and out_w*kw columns."""
    (kh, kw), (out_h, out_w) = size, out
    n, channels = x.shape[:2]
    return x[:, :, : out_h * kh, : out_w * kw].reshape(n, channels, out_h, kh, out_w, kw)


def maxpool_forward(x, size, stride=None, padding=((0, 0), (0, 0))):
    """Maximum of each window (padding never wins: it is -inf); the stride defaults to
    the window size. Returns y and where each window's first maximal element is: for
    tiling windows a mask [kh*kw, N, C, out_h, out_w] over the row-major offsets, else
    the flat offset per window, comparing one strided slice per window offset."""
    (kh, kw), (sh, sw) = size, size if stride is None else stride
    x = pad2d(x, padding, -np.inf)
    out_h = (x.shape[2] - kh) // sh + 1
    out_w = (x.shape[3] - kw) // sw + 1
    if (sh, sw) == (kh, kw):
        windows = window_tiles(x, size, (out_h, out_w)).transpose(3, 5, 0, 1, 2, 4)
        windows = windows.reshape(kh * kw, *windows.shape[2:])  # one copy, offset-major
        y = windows.max(axis=0)
        first = windows == y
        seen = first[0].copy()
        for offset in range(1, kh * kw):  # ties: only the first maximum wins
            first[offset] &= ~seen
            seen |= first[offset]
        return y, first
    y = x[:, :, : sh * (out_h - 1) + 1 : sh, : sw * (out_w - 1) + 1 : sw]
    argmax = np.zeros(y.shape, dtype=np.intp)
    for i in range(kh):
        for j in range(kw):
            if i == j == 0:
                continue
            candidate = x[
                :, :, i : i + sh * (out_h - 1) + 1 : sh, j : j + sw * (out_w - 1) + 1 : sw
            ]
            larger = candidate > y  # strictly: ties keep the first maximum
            y = np.where(larger, candidate, y)
            argmax[larger] = i * kw + j
    return np.ascontiguousarray(y), argmax


def maxpool_backward(d_y, argmax, x_shape, size, stride=None, padding=((0, 0), (0, 0))):
    """Each window's gradient goes to its first maximal element (``argmax`` as
    maxpool_forward returns it)."""
    (kh, kw), (sh, sw) = size, size if stride is None else stride
    (top, bottom), (left, right) = padding
    n, channels, h, w = x_shape
    out_h, out_w = d_y.shape[2:]
    d_x = zeros_in_layout((n, channels, h + top + bottom, w + left + right), d_y)
    if (sh, sw) == (kh, kw):  # argmax is the mask of first maxima, offset-major
        tiles = window_tiles(d_x, size, (out_h, out_w)).transpose(3, 5, 0, 1, 2, 4)
        np.multiply(argmax.reshape(kh, kw, *d_y.shape), d_y, out=tiles)
        return d_x[:, :, top : top + h, left : left + w]
    for i in range(kh):
        for j in range(kw):
            rows = slice(i, i + sh * (out_h - 1) + 1, sh)
            cols = slice(j, j + sw * (out_w - 1) + 1, sw)
            d_x[:, :, rows, cols] += d_y * (argmax == i * kw + j)
    return d_x[:, :, top : top + h, left : left + w]


def window_sum(x, size, stride=None, padding=((0, 0), (0, 0))):
    """Sum of each window (zero padding; the stride defaults to the window size),
    separably: the window's kh rows first, one strided slice per row offset, then the
    kw columns of those row sums (kh + kw - 2 array additions, not kh*kw - 1)."""
    (kh, kw), (sh, sw) = size, size if stride is None else stride
    x = pad2d(x, padding)
    out_h = (x.shape[2] - kh) // sh + 1
    out_w = (x.shape[3] - kw) // sw + 1
    rows = x[:, :, : sh * (out_h - 1) + 1 : sh]
    for i in range(1, kh):
        rows = rows + x[:, :, i : i + sh * (out_h - 1) + 1 : sh]
    y = rows[:, :, :, : sw * (out_w - 1) + 1 : sw]
    for j in range(1, kw):
        y = y + rows[:, :, :, j : j + sw * (out_w - 1) + 1 : sw]
    return y.copy() if kh * kw == 1 else y  # never a view of x


def window_sum_backward(d_y, x_shape, size, stride=None, padding=((0, 0), (0, 0))):
    """The adjoint of window_sum: each window's gradient goes to all its elements."""
    (kh, kw), (sh, sw) = size, size if stride is None else stride
    (top, bottom), (left, right) = padding
    n, channels, h, w = x_shape
    out_h, out_w = d_y.shape[2:]
    d_x = zeros_in_layout((n, channels, h + top + bottom, w + left + right), d_y)
    for i in range(kh):
        for j in range(kw):
            d_x[:, :, i : i + sh * (out_h - 1) + 1 : sh, j : j + sw * (out_w - 1) + 1 : sw] += d_y
    return d_x[:, :, top : top + h, left : left + w]


def window_counts(spatial, size, stride=None, padding=((0, 0), (0, 0)), dtype=np.float32):
    """How many real (unpadded) elements each window covers: [out_h, out_w]."""
    ones = np.ones((1, 1, *spatial), dtype=dtype)
    return window_sum(ones, size, stride, padding)[0, 0]
