"""Convolution kernels: im2col / col2im and the convolutions built on them.

Every convolution is one (batched) matrix product over patches. ``im2col`` takes the
patches as a strided view (``sliding_window_view``: no Python loop over pixels) and
the reshape before the product makes the one copy BLAS needs; ``col2im`` adds
patches back with one vectorised slice per kernel offset.

A stride-1 convolution with narrow outputs (``along_rows``) takes its patches along
whole rows instead (``row_windows``): what kernel offset (i, j) meets is one run of
the flattened padded image, from i*W + j on, for every (channel, sample). The
product then computes W - out_w extra columns per output row (they are dropped:
``on_grid`` views the valid ones), but the copy into the patches and the adds of its
adjoint (``add_kernel_row``) move runs of about out_h*W elements rather than rows of
out_w, which is what small images need. Products over many positions go a few
thousand columns at a time (``blocked_matmul``), where OpenBLAS is fastest.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "add_kernel_row",
    "along_rows",
    "blocked_matmul",
    "blocked_matmul_nt",
    "col2im",
    "conv2d_backward",
    "conv2d_forward",
    "conv2d_transpose_backward",
    "conv2d_transpose_forward",
    "conv_patches",
    "grouped_kernels",
    "im2col",
    "on_grid",
    "pad2d",
    "row_windows",
]


def pad2d(x, padding, value=0.0):
    """x [N, C, H, W] padded by ((top, bottom), (left, right)) with ``value``."""
    (top, bottom), (left, right) = padding
    if top == bottom == left == right == 0:
        return x
    n, channels, h, w = x.shape
    padded = np.full((n, channels, h + top + bottom, w + left + right), value, dtype=x.dtype)
    padded[:, :, top : top + h, left : left + w] = x
    return padded


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


def row_windows(x, kernel, dilation=(1, 1)):
    """The stride-1 patches of x [N, C, H, W] (already padded) along whole rows:
    [kh, kw, C, N, L], where offset (i, j) holds the run of L = (out_h - 1)*W + out_w
    elements of each flattened image from i*dh*W + j*dw on. Output pixel (r, c) is at
    position r*W + c of a run (``on_grid``); the other positions wrap around a row's
    end and are never used. One strided view, one copy."""
    n, channels, h, w = x.shape
    (kh, kw), (dh, dw) = kernel, dilation
    out_h, out_w = h - (kh - 1) * dh, w - (kw - 1) * dw
    flat = x.reshape(n, channels, h * w)
    step_n, step_c, item = flat.strides
    shape = (kh, kw, channels, n, (out_h - 1) * w + out_w)
    strides = (dh * w * item, dw * item, step_c, step_n, item)
    view = np.lib.stride_tricks.as_strided(flat, shape, strides, writeable=False)
    return np.ascontiguousarray(view)


def on_grid(runs, out, pitch):
    """runs [F, N, L] (positions r*pitch + c) as the view [F, N, out_h, out_w]."""
    item = runs.itemsize
    strides = (runs.strides[0], runs.strides[1], pitch * item, item)
    return np.lib.stride_tricks.as_strided(runs, (*runs.shape[:2], *out), strides)


def add_kernel_row(image, d_cols, i, stride, dilation, out):
    """Add the patch gradients of kernel row i, d_cols [kw, C, N, P] (``conv_patches``'
    positions), back into image [C, N, H, W] (padded): one run of the flattened image
    per offset where P are whole rows (more positions than outputs), else one strided
    slice per offset."""
    kw, channels, n, positions = d_cols.shape
    (sh, sw), (dh, dw), (out_h, out_w) = stride, dilation, out
    h, w = image.shape[2:]
    if positions != out_h * out_w:
        flat = image.reshape(channels, n, h * w)
        for j in range(kw):
            start = i * dh * w + j * dw
            flat[:, :, start : start + positions] += d_cols[j]
        return
    rows = slice(i * dh, i * dh + sh * (out_h - 1) + 1, sh)
    for j in range(kw):
        columns = slice(j * dw, j * dw + sw * (out_w - 1) + 1, sw)
        image[:, :, rows, columns] += d_cols[j].reshape(channels, n, out_h, out_w)


def blocked_matmul(a, b, block=4096):
    """a [..., M, K] @ b [..., K, P], ``block`` columns of b at a time.

    OpenBLAS (NumPy's wheels) multiplies a thin matrix by one of tens of thousands of
    columns (LeNet-5's first convolution: 6x25 by 25x57088) about twice as slowly as
    it makes the same product a few thousand columns at a time."""
    shape = (*np.broadcast_shapes(a.shape[:-2], b.shape[:-2]), a.shape[-2], b.shape[-1])
    out = np.empty(shape, dtype=np.result_type(a, b))
    for start in range(0, b.shape[-1], block):
        np.matmul(a, b[..., start : start + block], out=out[..., start : start + block])
    return out


def blocked_matmul_nt(a, b, block=4096):
    """a [..., M, P] @ b [..., N, P]^T as a sum over blocks of ``block`` of the P
    columns: for a long P (the weight gradient of a convolution over many positions)
    OpenBLAS is several times faster this way than in one product (4x for LeNet-5's
    first convolution)."""
    out = a[..., :block] @ b[..., :block].swapaxes(-1, -2)
    for start in range(block, a.shape[-1], block):
        out += a[..., start : start + block] @ b[..., start : start + block].swapaxes(-1, -2)
    return out


def grouped_kernels(weight, groups):
    """weight [F, C/groups, kh, kw] as [groups, F/groups, kh*kw*C/groups], its columns
    in im2col's (offset, channel) order."""
    filters, group_channels, kh, kw = weight.shape
    per_group = weight.reshape(groups, filters // groups, group_channels, kh, kw)
    return per_group.transpose(0, 1, 3, 4, 2).reshape(groups, filters // groups, -1)


def along_rows(stride, out_w):
    """Whether a convolution takes its patches along whole rows (``row_windows``):
    for stride 1 and outputs narrower than 8, whose im2col would copy rows that short
    (4x4 outputs from 16 channels: a third faster forward and backward; outputs 10
    or 28 wide gain nothing, and the rows' extra positions cost memory)."""
    return tuple(stride) == (1, 1) and out_w < 8


def conv_patches(x, kernel, stride, dilation):
    """The patches of x [N, C, H, W] (already padded) as [kh, kw, C, N, P], and the
    pitch of an output row in P: whole rows (``row_windows``, pitch W) where
    ``along_rows``, else im2col's out_h*out_w positions (pitch out_w)."""
    out_w = (x.shape[3] - (kernel[1] - 1) * dilation[1] - 1) // stride[1] + 1
    if along_rows(stride, out_w):
        return row_windows(x, kernel, dilation), x.shape[3]
    cols = im2col(x, kernel, stride, dilation)
    return cols.reshape(*cols.shape[:4], -1), cols.shape[5]


def conv2d_forward(
    x, weight, bias=None, stride=(1, 1), padding=((0, 0), (0, 0)), dilation=(1, 1), groups=1
):
    """Cross-correlation of x [N, C, H, W] with weight [F, C/groups, kh, kw] plus bias.

    One (batched, per group) matrix product of the kernels and the patches
    (``conv_patches``). Returns y [N, F, out_h, out_w] and the patches [groups,
    kh*kw*C/groups, N*P] that the backward pass reuses.
    """
    filters, group_channels, kh, kw = weight.shape
    (dh, dw), (sh, sw) = dilation, stride
    x = pad2d(x, padding)
    out_h = (x.shape[2] - (kh - 1) * dh - 1) // sh + 1
    out_w = (x.shape[3] - (kw - 1) * dw - 1) // sw + 1
    cols, pitch = conv_patches(x, (kh, kw), stride, dilation)
    n, positions = cols.shape[3:]
    cols = cols.reshape(kh, kw, groups, group_channels, -1).transpose(2, 0, 1, 3, 4)
    cols = cols.reshape(groups, kh * kw * group_channels, -1)
    y = blocked_matmul(grouped_kernels(weight, groups), cols).reshape(filters, n, positions)
    if bias is not None:
        y += bias[:, None, None]
    return on_grid(y, (out_h, out_w), pitch).transpose(1, 0, 2, 3), cols


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
    (top, bottom), (left, right) = padding
    padded = (n, x_shape[1], x_shape[2] + top + bottom, x_shape[3] + left + right)
    positions = cols.shape[2] // n
    if positions == out_h * out_w:  # no unused positions: a reshape
        d_rows = d_y.transpose(1, 0, 2, 3).reshape(groups, filters // groups, -1)
    else:  # zeros where the runs wrap around, d_y on the grid
        d_runs = np.zeros((filters, n, positions), dtype=d_y.dtype)
        on_grid(d_runs, (out_h, out_w), padded[3])[...] = d_y.transpose(1, 0, 2, 3)
        d_rows = d_runs.reshape(groups, filters // groups, -1)
    d_kernels = blocked_matmul_nt(d_rows, cols)  # [groups, F/groups, kh*kw*C/groups]
    d_kernels = d_kernels.reshape(groups, filters // groups, kh, kw, group_channels)
    d_weight = d_kernels.transpose(0, 1, 4, 2, 3).reshape(weight.shape)
    if not need_input:
        return d_weight, None
    # d_x kernel row by kernel row: only one row's patch gradients exist at a time.
    d_x = np.zeros((padded[1], n, *padded[2:]), dtype=d_y.dtype)  # channel-major
    kernel_rows = grouped_kernels(weight, groups).reshape(groups, filters // groups, kh, -1)
    for i in range(kh):
        d_cols = blocked_matmul(kernel_rows[:, :, i].transpose(0, 2, 1), d_rows)
        d_cols = d_cols.reshape(groups, kw, group_channels, n, positions)
        d_cols = d_cols.transpose(1, 0, 2, 3, 4).reshape(kw, -1, n, positions)
        add_kernel_row(d_x, d_cols, i, stride, dilation, (out_h, out_w))
    d_x = d_x.transpose(1, 0, 2, 3)
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
