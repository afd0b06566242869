"""Convolution and pooling over any number of spatial dims: x [N, C, *spatial].

The 3-D ops (conv3d, maxpool3d, avgpool3d) and dilated pooling run on these; the
1-D and 2-D ops keep the kernels of ``conv.py`` and ``pool.py``. Windows are one
strided view (``sliding_window_view``), copied once into the matrix a convolution
multiplies; pooling reduces the view; the backward passes add back one strided slice
per kernel offset. Pads are ((begin, end), ...) per spatial dim.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "conv_nd_backward",
    "conv_nd_forward",
    "maxpool_nd_backward",
    "maxpool_nd_forward",
    "offset_slices",
    "pad_nd",
    "padded_zeros",
    "unpad",
    "window_counts_nd",
    "window_sum_nd",
    "window_sum_nd_backward",
    "window_view",
]


def pad_nd(x, pads, value=0.0):
    """x [N, C, *spatial] padded by ``pads`` ((begin, end) per spatial dim) with ``value``."""
    if not any(b or e for b, e in pads):
        return x
    return np.pad(x, ((0, 0), (0, 0), *pads), constant_values=value)


def window_view(x, kernel, stride, dilation):
    """The windows of x [N, C, *spatial] (already padded) as a strided view
    [N, C, *out, *kernel]: no copy."""
    rank = len(kernel)
    span = tuple((k - 1) * d + 1 for k, d in zip(kernel, dilation, strict=True))
    windows = np.lib.stride_tricks.sliding_window_view(x, span, axis=tuple(range(2, 2 + rank)))
    steps = tuple(slice(None, None, s) for s in stride) + tuple(
        slice(None, None, d) for d in dilation
    )
    return windows[(slice(None), slice(None), *steps)]


def padded_zeros(x_shape, padding, dtype):
    """Zeros of x's shape [N, C, *spatial] grown by ``padding``."""
    grown = (m + b + e for m, (b, e) in zip(x_shape[2:], padding, strict=True))
    return np.zeros((*x_shape[:2], *grown), dtype=dtype)


def unpad(x, x_shape, padding):
    """The inside of a padded array: the part of shape ``x_shape`` that padding grew."""
    inside = tuple(slice(b, b + m) for m, (b, _) in zip(x_shape[2:], padding, strict=True))
    return x[(slice(None), slice(None), *inside)]


def offset_slices(offset, stride, dilation, out):
    """Where kernel offset ``offset`` reads in the padded input, one slice per dim."""
    return tuple(
        slice(o * d, o * d + s * (m - 1) + 1, s)
        for o, s, d, m in zip(offset, stride, dilation, out, strict=True)
    )


def conv_nd_forward(x, weight, bias=None, stride=None, padding=None, dilation=None, groups=1):
    """Cross-correlation of x [N, C, *spatial] with weight [F, C/groups, *kernel] plus bias.

    One (batched, per group) matrix product of the kernels and the patches. Returns
    y [N, F, *out] and the patches [groups, C/groups * prod(kernel), N * prod(out)]
    that the backward pass reuses.
    """
    filters, _, *kernel = weight.shape
    rank = len(kernel)
    stride, dilation = stride or (1,) * rank, dilation or (1,) * rank
    windows = window_view(pad_nd(x, padding or ((0, 0),) * rank), kernel, stride, dilation)
    n, out = x.shape[0], windows.shape[2 : 2 + rank]
    # [N, C, *out, *kernel] -> [C, *kernel, N, *out], one copy
    order = (1, *range(2 + rank, 2 + 2 * rank), 0, *range(2, 2 + rank))
    cols = np.ascontiguousarray(windows.transpose(order)).reshape(groups, -1, n * np.prod(out))
    kernels = weight.reshape(groups, filters // groups, -1)
    y = (kernels @ cols).reshape(filters, n, *out)
    if bias is not None:
        y = y + bias.reshape(-1, *(1,) * (rank + 1))
    return np.moveaxis(y, 0, 1), cols


def conv_nd_backward(
    d_y, cols, x_shape, weight, stride=None, padding=None, dilation=None, groups=1, need_input=True
):
    """Gradients of conv_nd_forward: d_weight, and d_x when ``need_input`` (else None)."""
    filters, _, *kernel = weight.shape
    rank = len(kernel)
    stride, dilation = stride or (1,) * rank, dilation or (1,) * rank
    padding = padding or ((0, 0),) * rank
    n, out = d_y.shape[0], d_y.shape[2:]
    d_rows = np.moveaxis(d_y, 1, 0).reshape(groups, filters // groups, -1)
    d_weight = (d_rows @ cols.transpose(0, 2, 1)).reshape(weight.shape)
    if not need_input:
        return d_weight, None
    kernels = weight.reshape(groups, filters // groups, -1)
    d_cols = (kernels.transpose(0, 2, 1) @ d_rows).reshape(-1, *kernel, n, *out)
    d_x = padded_zeros(x_shape, padding, d_y.dtype)
    for offset in np.ndindex(*kernel):
        where = offset_slices(offset, stride, dilation, out)
        d_x[(slice(None), slice(None), *where)] += np.moveaxis(d_cols[(slice(None), *offset)], 1, 0)
    return d_weight, unpad(d_x, x_shape, padding)


def maxpool_nd_forward(x, size, stride, padding, dilation):
    """Maximum of each window (padding is -inf, so it never wins). Returns y and, per
    window, the flat (row-major) offset of its first maximal element."""
    windows = window_view(pad_nd(x, padding, -np.inf), size, stride, dilation)
    flat = windows.reshape(*windows.shape[: x.ndim], -1)
    argmax = flat.argmax(axis=-1)
    return np.take_along_axis(flat, argmax[..., None], axis=-1)[..., 0], argmax


def maxpool_nd_backward(d_y, argmax, x_shape, size, stride, padding, dilation):
    """Each window's gradient goes to its first maximal element."""
    out = d_y.shape[2:]
    d_x = padded_zeros(x_shape, padding, d_y.dtype)
    for flat, offset in enumerate(np.ndindex(*size)):
        where = offset_slices(offset, stride, dilation, out)
        d_x[(slice(None), slice(None), *where)] += d_y * (argmax == flat)
    return unpad(d_x, x_shape, padding)


def window_sum_nd(x, size, stride, padding, dilation):
    """Sum of each window (padding adds zeros)."""
    windows = window_view(pad_nd(x, padding), size, stride, dilation)
    return windows.sum(axis=tuple(range(x.ndim, windows.ndim)))


def window_sum_nd_backward(d_y, x_shape, size, stride, padding, dilation):
    """The adjoint of window_sum_nd: each window's gradient goes to all its elements."""
    out = d_y.shape[2:]
    d_x = padded_zeros(x_shape, padding, d_y.dtype)
    for offset in np.ndindex(*size):
        d_x[(slice(None), slice(None), *offset_slices(offset, stride, dilation, out))] += d_y
    return unpad(d_x, x_shape, padding)


def window_counts_nd(spatial, size, stride, padding, dilation, dtype=np.float32):
    """How many real (unpadded) elements each window covers: [*out]."""
    ones = np.ones((1, 1, *spatial), dtype=dtype)
    return window_sum_nd(ones, size, stride, padding, dilation)[0, 0]
