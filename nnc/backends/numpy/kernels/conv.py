"""Convolution kernels: im2col / col2im and the convolutions built on them.

Every convolution is one (batched) matrix product over patches. ``im2col`` takes the
patches as a strided view (``sliding_window_view``: no Python loop over pixels) and
the reshape before the product makes the one copy BLAS needs; ``col2im`` adds
patches back with one vectorised slice per kernel offset.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "col2im",
    "conv2d_backward",
    "conv2d_forward",
    "conv2d_transpose_backward",
    "conv2d_transpose_forward",
    "grouped_kernels",
    "im2col",
    "pad2d",
]


def pad2d(x, padding, value=0.0):
    """x [N, C, H, W] padded by ((top, bottom), (left, right)) with ``value``."""
    (top, bottom), (left, right) = padding
    if top == bottom == left == right == 0:
        return x
    return np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)), constant_values=value)


def im2col(x, kernel, stride=(1, 1), dilation=(1, 1)):
    """What every kernel offset meets in x [N, C, H, W] (already padded), as one
    contiguous array [kh, kw, C, N, out_h, out_w]: a strided view of the windows,
    then one copy, ordered so that the copy moves whole rows and the convolution is
    a single matrix product over (offset, channel)."""
    (kh, kw), (sh, sw), (dh, dw) = kernel, stride, dilation
    span = ((kh - 1) * dh + 1, (kw - 1) * dw + 1)
    windows = np.lib.stride_tricks.sliding_window_view(x, span, axis=(2, 3))
    windows = windows[:, :, ::sh, ::sw, ::dh, ::dw]  # [N, C, out_h, out_w, kh, kw]
    return np.ascontiguousarray(windows.transpose(4, 5, 1, 0, 2, 3))


def col2im(cols, shape, stride=(1, 1), dilation=(1, 1)):
    """The adjoint of im2col: cols [kh, kw, C, N, out_h, out_w] added back into an
    array of ``shape`` [N, C, H, W] (a view of a [C, N, H, W] array), one strided
    slice per kernel offset."""
    kh, kw, _, _, out_h, out_w = cols.shape
    (sh, sw), (dh, dw) = stride, dilation
    n, channels, h, w = shape
    x = np.zeros((channels, n, h, w), dtype=cols.dtype)  # cols' (C, N) order: whole rows
    for i in range(kh):
        for j in range(kw):
            rows = slice(i * dh, i * dh + sh * (out_h - 1) + 1, sh)
            columns = slice(j * dw, j * dw + sw * (out_w - 1) + 1, sw)
            x[:, :, rows, columns] += cols[i, j]
    return x.transpose(1, 0, 2, 3)


def grouped_kernels(weight, groups):
    """weight [F, C/groups, kh, kw] as [groups, F/groups, kh*kw*C/groups], its columns
    in im2col's (offset, channel) order."""
    filters, group_channels, kh, kw = weight.shape
    per_group = weight.reshape(groups, filters // groups, group_channels, kh, kw)
    return per_group.transpose(0, 1, 3, 4, 2).reshape(groups, filters // groups, -1)


def conv2d_forward(
    x, weight, bias=None, stride=(1, 1), padding=((0, 0), (0, 0)), dilation=(1, 1), groups=1
):
    """Cross-correlation of x [N, C, H, W] with weight [F, C/groups, kh, kw] plus bias.

    One (batched, per group) matrix product of the kernels and the im2col patches.
    Returns y [N, F, out_h, out_w] and the patches [groups, kh*kw*C/groups,
    N*out_h*out_w] that the backward pass reuses.
    """
    filters, group_channels, kh, kw = weight.shape
    cols = im2col(pad2d(x, padding), (kh, kw), stride, dilation)
    n, out_h, out_w = cols.shape[3:]
    cols = cols.reshape(kh, kw, groups, group_channels, -1).transpose(2, 0, 1, 3, 4)
    cols = cols.reshape(groups, kh * kw * group_channels, -1)
    y = (grouped_kernels(weight, groups) @ cols).reshape(filters, n, out_h, out_w)
    if bias is not None:
        y += bias[:, None, None, None]
    return y.transpose(1, 0, 2, 3), cols


def conv2d_backward(
    d_y,
    cols,
    x_shape,
    weight,
    stride=(1, 1),
    padding=((0, 0), (0, 0)),
    dilation=(1, 1),
    groups=1,
    need_input=True,
):
    """Gradients of conv2d_forward: d_weight, and d_x when ``need_input`` (else None)."""
    filters, group_channels, kh, kw = weight.shape
    n, _, out_h, out_w = d_y.shape
    d_rows = d_y.transpose(1, 0, 2, 3).reshape(groups, filters // groups, -1)
    d_kernels = d_rows @ cols.transpose(0, 2, 1)  # [groups, F/groups, kh*kw*C/groups]
    d_kernels = d_kernels.reshape(groups, filters // groups, kh, kw, group_channels)
    d_weight = d_kernels.transpose(0, 1, 4, 2, 3).reshape(weight.shape)
    if not need_input:
        return d_weight, None
    d_cols = grouped_kernels(weight, groups).transpose(0, 2, 1) @ d_rows
    d_cols = d_cols.reshape(groups, kh, kw, group_channels, n, out_h, out_w)
    d_cols = d_cols.transpose(1, 2, 0, 3, 4, 5, 6).reshape(kh, kw, -1, n, out_h, out_w)
    (top, bottom), (left, right) = padding
    padded = (n, x_shape[1], x_shape[2] + top + bottom, x_shape[3] + left + right)
    d_x = col2im(d_cols, padded, stride, dilation)
    return d_weight, d_x[:, :, top : top + x_shape[2], left : left + x_shape[3]]


def conv2d_transpose_forward(
    x, weight, bias=None, stride=(1, 1), crop=((0, 0), (0, 0)), output_padding=(0, 0)
):
    """Transposed convolution of x [N, C, H, W] with weight [C, F, kh, kw].

    Each input pixel scatters ``x[c] * weight[c]`` into the full output at stride
    ``stride`` (col2im of one matrix product); then ``crop`` ((top, bottom), (left,
    right)) is cut off, after ``output_padding`` rows/columns were added at the end.
    Returns y [N, F, out_h, out_w] and x as a matrix [C, N*H*W] for the backward pass.
    """
    n, channels, h, w = x.shape
    _, filters, kh, kw = weight.shape
    (sh, sw), (extra_h, extra_w) = stride, output_padding
    rows = x.transpose(1, 0, 2, 3).reshape(channels, -1)
    kernels = weight.transpose(2, 3, 1, 0).reshape(-1, channels)  # [(kh, kw, F), C]
    cols = (kernels @ rows).reshape(kh, kw, filters, n, h, w)
    full_h, full_w = (h - 1) * sh + kh + extra_h, (w - 1) * sw + kw + extra_w
    full = col2im(cols, (n, filters, full_h, full_w), stride)
    (top, bottom), (left, right) = crop
    y = full[:, :, top : full_h - bottom, left : full_w - right]
    if bias is not None:
        y = y + bias[:, None, None]
    return y, rows


def conv2d_transpose_backward(
    d_y, rows, x_shape, weight, stride=(1, 1), crop=((0, 0), (0, 0)), output_padding=(0, 0)
):
    """Gradients of conv2d_transpose_forward: (d_weight, d_x)."""
    n, channels, h, w = x_shape
    _, filters, kh, kw = weight.shape
    (sh, sw), (extra_h, extra_w) = stride, output_padding
    (top, bottom), (left, right) = crop
    full_h, full_w = (h - 1) * sh + kh + extra_h, (w - 1) * sw + kw + extra_w
    d_full = np.zeros((n, filters, full_h, full_w), dtype=d_y.dtype)
    d_full[:, :, top : full_h - bottom, left : full_w - right] = d_y
    d_cols = im2col(d_full, (kh, kw), stride)[:, :, :, :, :h, :w].reshape(kh * kw * filters, -1)
    kernels = weight.transpose(2, 3, 1, 0).reshape(-1, channels)
    d_weight = (d_cols @ rows.T).reshape(kh, kw, filters, channels).transpose(3, 2, 0, 1)
    d_x = (kernels.T @ d_cols).reshape(channels, n, h, w)
    return d_weight, d_x.transpose(1, 0, 2, 3)
