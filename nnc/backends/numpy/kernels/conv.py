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
    "im2col",
    "pad2d",
]


def pad2d(x, padding, value=0.0):
    """x [N, C, H, W] padded by ((top, bottom), (left, right)) with ``value``."""
    (top, bottom), (left, right) = padding
    if top == bottom == left == right == 0:
        return x
    return np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)), constant_values=value)


def im2col(x, kernel, stride, dilation):
    """The patch under every kernel position of x [N, C, H, W] (already padded), as a
    view [N, out_h, out_w, C, kh, kw]."""
    (kh, kw), (sh, sw), (dh, dw) = kernel, stride, dilation
    span = ((kh - 1) * dh + 1, (kw - 1) * dw + 1)
    windows = np.lib.stride_tricks.sliding_window_view(x, span, axis=(2, 3))
    return windows[:, :, ::sh, ::sw, ::dh, ::dw].transpose(0, 2, 3, 1, 4, 5)


def col2im(patches, shape, stride, dilation):
    """The adjoint of im2col: patches [N, out_h, out_w, C, kh, kw] added back into an
    array of ``shape`` [N, C, H, W], one strided slice per kernel offset."""
    _, out_h, out_w, _, kh, kw = patches.shape
    (sh, sw), (dh, dw) = stride, dilation
    x = np.zeros(shape, dtype=patches.dtype)
    for i in range(kh):
        for j in range(kw):
            rows = slice(i * dh, i * dh + sh * (out_h - 1) + 1, sh)
            cols = slice(j * dw, j * dw + sw * (out_w - 1) + 1, sw)
            x[:, :, rows, cols] += patches[:, :, :, :, i, j].transpose(0, 3, 1, 2)
    return x


def conv2d_forward(
    x, weight, bias=None, stride=(1, 1), padding=((0, 0), (0, 0)), dilation=(1, 1), groups=1
):
    """Cross-correlation of x [N, C, H, W] with weight [F, C/groups, kh, kw] plus bias.

    Returns y [N, F, out_h, out_w] and the patch matrix [groups, N*out_h*out_w,
    C/groups*kh*kw] that the backward pass reuses.
    """
    filters, _, kh, kw = weight.shape
    patches = im2col(pad2d(x, padding), (kh, kw), stride, dilation)
    n, out_h, out_w = patches.shape[:3]
    cols = patches.reshape(n * out_h * out_w, groups, -1).transpose(1, 0, 2)
    kernels = weight.reshape(groups, filters // groups, -1)
    y = (cols @ kernels.transpose(0, 2, 1)).transpose(1, 0, 2).reshape(n, out_h, out_w, filters)
    if bias is not None:
        y = y + bias
    return y.transpose(0, 3, 1, 2), cols


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
    filters, _, kh, kw = weight.shape
    n, _, out_h, out_w = d_y.shape
    d_rows = d_y.transpose(0, 2, 3, 1).reshape(n * out_h * out_w, groups, -1).transpose(1, 0, 2)
    d_weight = (d_rows.transpose(0, 2, 1) @ cols).reshape(weight.shape)
    if not need_input:
        return d_weight, None
    d_cols = d_rows @ weight.reshape(groups, filters // groups, -1)
    d_patches = d_cols.transpose(1, 0, 2).reshape(n, out_h, out_w, x_shape[1], kh, kw)
    (top, bottom), (left, right) = padding
    padded = (n, x_shape[1], x_shape[2] + top + bottom, x_shape[3] + left + right)
    d_x = col2im(d_patches, padded, stride, dilation)
    return d_weight, d_x[:, :, top : top + x_shape[2], left : left + x_shape[3]]


def conv2d_transpose_forward(
    x, weight, bias=None, stride=(1, 1), crop=((0, 0), (0, 0)), output_padding=(0, 0)
):
    """Transposed convolution of x [N, C, H, W] with weight [C, F, kh, kw].

    Each input pixel scatters ``x[c] * weight[c]`` into the full output at stride
    ``stride`` (col2im of one matrix product); then ``crop`` ((top, bottom), (left,
    right)) is cut off, after ``output_padding`` rows/columns were added at the end.
    Returns y [N, F, out_h, out_w] and x as a matrix [N*H*W, C] for the backward pass.
    """
    n, channels, h, w = x.shape
    _, filters, kh, kw = weight.shape
    (sh, sw), (op_h, op_w) = stride, output_padding
    rows = x.transpose(0, 2, 3, 1).reshape(n * h * w, channels)
    patches = (rows @ weight.reshape(channels, -1)).reshape(n, h, w, filters, kh, kw)
    full_h, full_w = (h - 1) * sh + kh + op_h, (w - 1) * sw + kw + op_w
    full = col2im(patches, (n, filters, full_h, full_w), stride, (1, 1))
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
    (sh, sw), (op_h, op_w) = stride, output_padding
    (top, bottom), (left, right) = crop
    full_h, full_w = (h - 1) * sh + kh + op_h, (w - 1) * sw + kw + op_w
    d_full = np.zeros((n, filters, full_h, full_w), dtype=d_y.dtype)
    d_full[:, :, top : full_h - bottom, left : full_w - right] = d_y
    d_patches = im2col(d_full, (kh, kw), stride, (1, 1))[:, :h, :w]
    d_cols = d_patches.reshape(n * h * w, filters * kh * kw)
    d_weight = (rows.T @ d_cols).reshape(weight.shape)
    d_x = (d_cols @ weight.reshape(channels, -1).T).reshape(n, h, w, channels)
    return d_weight, d_x.transpose(0, 3, 1, 2)
