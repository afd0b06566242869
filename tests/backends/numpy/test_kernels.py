"""The kernels copied into generated modules: self-contained, and their forward
maths equal to naive transcriptions of docs/semantics.md (loops over every index).
The gradient checks prove each backward pass matches its forward pass; these tests
prove the forward passes compute what nnc defines."""

from __future__ import annotations

import builtins
import math

import numpy as np
import pytest

from nnc.backends.numpy.kernels import KERNELS, closure, conv, global_names, source
from nnc.backends.numpy.kernels.conv import conv2d_forward, conv2d_transpose_forward
from nnc.backends.numpy.kernels.core import erf, log_softmax, softmax
from nnc.backends.numpy.kernels.norm import batchnorm_forward, lrn_forward
from nnc.backends.numpy.kernels.pool import (
    maxpool_backward,
    maxpool_forward,
    window_counts,
    window_sum,
)
from nnc.backends.numpy.kernels.recurrent import gru_forward, lstm_forward, rnn_forward

RNG = np.random.default_rng(0)


def test_kernels_are_self_contained() -> None:
    """A kernel refers only to np, builtins and other kernels (emitted with it)."""
    allowed = set(KERNELS) | set(dir(builtins)) | {"np"}
    for name, function in KERNELS.items():
        unknown = global_names(function.__code__) - allowed
        assert not unknown, f"kernel {name} uses {unknown}"
        assert source(name).startswith(f"def {name}(")
    assert closure(["lstm_forward"]) == [
        "lstm_forward",
        "lstm_gate_order",
        "projection",
        "sigmoid_halves",
    ]


def test_erf_matches_math_erf() -> None:
    x = np.linspace(-7.0, 7.0, 14001)
    expected = np.array([math.erf(v) for v in x])
    assert np.abs(erf(x) - expected).max() < 1e-14
    assert erf(np.float32([0.5])).dtype == np.float32


def test_softmax_family_is_stable() -> None:
    x = np.array([[1000.0, -1000.0, 0.0]])
    np.testing.assert_allclose(softmax(x), [[1.0, 0.0, 0.0]])
    np.testing.assert_allclose(log_softmax(x), [[0.0, -2000.0, -1000.0]])


def naive_conv2d(x, weight, bias, stride, pads, dilation, groups):  # type: ignore[no-untyped-def]
    """y[o, p] = b[o] + sum_{c in group(o)} sum_k W[o, c, k] x_pad[c, p s + k d]."""
    (top, bottom), (left, right) = pads
    xp = np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)))
    n, _, h, w = xp.shape
    filters, cg, kh, kw = weight.shape
    out_h = (h - (kh - 1) * dilation[0] - 1) // stride[0] + 1
    out_w = (w - (kw - 1) * dilation[1] - 1) // stride[1] + 1
    y = np.zeros((n, filters, out_h, out_w))
    for b, o, i, j in np.ndindex(y.shape):
        g = o // (filters // groups)
        total = bias[o]
        for c, ki, kj in np.ndindex(cg, kh, kw):
            total += (
                weight[o, c, ki, kj]
                * xp[
                    b,
                    g * cg + c,
                    i * stride[0] + ki * dilation[0],
                    j * stride[1] + kj * dilation[1],
                ]
            )
        y[b, o, i, j] = total
    return y


@pytest.mark.parametrize(
    "stride, pads, dilation, groups",
    [((1, 1), ((0, 0), (0, 0)), (1, 1), 1), ((2, 1), ((0, 1), (2, 1)), (1, 2), 2)],
)
def test_conv2d_is_cross_correlation(stride, pads, dilation, groups) -> None:  # type: ignore[no-untyped-def]
    x = RNG.normal(size=(2, 4, 6, 7))
    weight = RNG.normal(size=(6, 4 // groups, 2, 3))
    bias = RNG.normal(size=6)
    y, _ = conv2d_forward(x, weight, bias, stride, pads, dilation, groups)
    np.testing.assert_allclose(y, naive_conv2d(x, weight, bias, stride, pads, dilation, groups))


@pytest.mark.parametrize("rows", [True, False])
@pytest.mark.parametrize("width", [7, 12])
def test_conv2d_patches_along_rows_or_im2col(rows, width, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Both patch layouts (whole rows for narrow stride-1 outputs, else im2col) give
    the naive convolution, and gradients that satisfy the bilinear identity
    <dy, conv(x, W)> = <d_W, W> = <d_x, x> (no bias)."""
    monkeypatch.setattr(conv, "along_rows", lambda stride, out_w: rows)
    x = RNG.normal(size=(3, 4, 6, width))
    weight = RNG.normal(size=(6, 2, 2, 3))
    stride, pads, dilation, groups = (1, 1), ((1, 0), (2, 1)), (2, 1), 2
    y, cols = conv.conv2d_forward(x, weight, None, stride, pads, dilation, groups)
    naive = naive_conv2d(x, weight, np.zeros(6), stride, pads, dilation, groups)
    np.testing.assert_allclose(y, naive, atol=1e-12)
    d_y = RNG.normal(size=y.shape)
    d_weight, d_x = conv.conv2d_backward(d_y, cols, x.shape, weight, stride, pads, dilation, groups)
    inner = np.sum(d_y * naive)
    assert abs(np.sum(d_weight * weight) - inner) < 1e-9 * abs(inner)
    assert abs(np.sum(d_x * x) - inner) < 1e-9 * abs(inner)


def test_conv2d_transpose_scatters_then_crops() -> None:
    """full[o, i s + k] += sum_c x[c, i] W[c, o, k]; y = crop(full) + b."""
    x = RNG.normal(size=(2, 3, 3, 2))
    weight = RNG.normal(size=(3, 2, 3, 2))
    bias = RNG.normal(size=2)
    stride, crop, extra = (2, 3), ((1, 0), (0, 2)), (1, 2)
    full = np.zeros((2, 2, (3 - 1) * 2 + 3 + extra[0], (2 - 1) * 3 + 2 + extra[1]))
    for n, c, i, j, o, ki, kj in np.ndindex(2, 3, 3, 2, 2, 3, 2):
        full[n, o, i * 2 + ki, j * 3 + kj] += x[n, c, i, j] * weight[c, o, ki, kj]
    expected = full[:, :, 1:, : full.shape[3] - 2] + bias[:, None, None]
    y, _ = conv2d_transpose_forward(x, weight, bias, stride, crop, extra)
    np.testing.assert_allclose(y, expected)


def test_pooling_windows() -> None:
    """Same padding (extra pad at the end): max ignores padding, avg divides by the
    real elements, sum adds them."""
    x = RNG.normal(size=(2, 3, 5, 4))
    size, stride, pads = (3, 2), (2, 2), ((1, 1), (0, 0))
    y_max, _ = maxpool_forward(x, size, stride, pads)
    y_sum = window_sum(x, size, stride, pads)
    counts = window_counts((5, 4), size, stride, pads, np.float64)
    for n, c, i, j in np.ndindex(y_max.shape):
        rows = range(max(i * 2 - 1, 0), min(i * 2 - 1 + 3, 5))
        cols = range(j * 2, min(j * 2 + 2, 4))
        window = x[n, c][np.ix_(list(rows), list(cols))]
        assert y_max[n, c, i, j] == window.max()
        assert y_sum[n, c, i, j] == pytest.approx(window.sum())
        assert counts[i, j] == window.size


@pytest.mark.parametrize(
    "size, stride, pads",
    [
        ((2, 2), None, ((0, 0), (0, 0))),
        ((2, 3), (2, 3), ((1, 0), (0, 2))),
        ((3, 2), (2, 1), ((0, 0), (1, 0))),
    ],
)
def test_maxpool_gradient_goes_to_the_first_maximum(size, stride, pads) -> None:  # type: ignore[no-untyped-def]
    """Tiling (stride = size, with padding and a remainder) and overlapping windows: the
    whole gradient of a window goes to its first maximal element in row-major order,
    also when the window holds ties (ReLU zeros)."""
    x = np.maximum(RNG.integers(-2, 2, size=(2, 3, 7, 8)), 0).astype(np.float64)
    (kh, kw), (sh, sw) = size, stride or size
    y, where = maxpool_forward(x, size, stride, pads)
    d_y = RNG.normal(size=y.shape)
    d_x = maxpool_backward(d_y, where, x.shape, size, stride, pads)
    (top, _), (left, _) = pads
    expected = np.zeros_like(x)
    for n, c, i, j in np.ndindex(y.shape):
        cells = [
            (r, q)
            for r in range(i * sh - top, i * sh - top + kh)
            for q in range(j * sw - left, j * sw - left + kw)
            if 0 <= r < 7 and 0 <= q < 8
        ]
        first = max(cells, key=lambda rq: (x[n, c, rq[0], rq[1]], -cells.index(rq)))
        assert y[n, c, i, j] == x[n, c, first[0], first[1]]
        expected[n, c, first[0], first[1]] += d_y[n, c, i, j]
    np.testing.assert_allclose(d_x, expected)
    # a channel-major d_y (as convolutions lay out their outputs) gives the same d_x
    channel_major = np.ascontiguousarray(d_y.transpose(1, 0, 2, 3)).transpose(1, 0, 2, 3)
    np.testing.assert_allclose(
        maxpool_backward(channel_major, where, x.shape, size, stride, pads), expected
    )


def test_batchnorm_and_lrn_formulas() -> None:
    x = RNG.normal(size=(4, 3, 2, 2))
    gamma, beta = RNG.normal(size=3), RNG.normal(size=3)
    y, (*_, count) = batchnorm_forward(x, gamma, beta, None, None, 1e-5, True)
    axes = (0, 2, 3)
    expected = (x - x.mean(axes, keepdims=True)) / np.sqrt(x.var(axes, keepdims=True) + 1e-5)
    np.testing.assert_allclose(y, gamma[:, None, None] * expected + beta[:, None, None])
    assert count == 16
    y, _ = lrn_forward(x, size=2, alpha=0.3, beta=0.75, bias=1.5)
    for n, c, i, j in np.ndindex(x.shape):
        window = range(c - 0, c + 2)  # floor((2-1)/2) = 0 before, ceil = 1 after
        total = sum(x[n, k, i, j] ** 2 for k in window if 0 <= k < 3)
        assert y[n, c, i, j] == pytest.approx(x[n, c, i, j] / (1.5 + 0.3 / 2 * total) ** 0.75)


def _sigmoid(z):  # type: ignore[no-untyped-def]
    return 1 / (1 + np.exp(-z))


def test_recurrent_layers_follow_the_gate_formulas() -> None:
    n, steps, features, hidden = 3, 4, 2, 5
    x = RNG.normal(size=(n, steps, features))
    w_ih, w_hh = RNG.normal(size=(4 * hidden, features)), RNG.normal(size=(4 * hidden, hidden))
    b = RNG.normal(size=4 * hidden)

    h = np.zeros((n, hidden))
    states = rnn_forward(x, w_ih[:hidden], w_hh[:hidden, :], b[:hidden])
    for t in range(steps):
        h = np.tanh(x[:, t] @ w_ih[:hidden].T + h @ w_hh[:hidden].T + b[:hidden])
        np.testing.assert_allclose(states[:, t], h)

    h, c = np.zeros((n, hidden)), np.zeros((n, hidden))
    states, _ = lstm_forward(x, w_ih, w_hh, b)
    for t in range(steps):
        z = x[:, t] @ w_ih.T + h @ w_hh.T + b
        i, f = _sigmoid(z[:, :hidden]), _sigmoid(z[:, hidden : 2 * hidden])
        g, o = np.tanh(z[:, 2 * hidden : 3 * hidden]), _sigmoid(z[:, 3 * hidden :])
        c = f * c + i * g
        h = o * np.tanh(c)
        np.testing.assert_allclose(states[:, t], h)

    w_ih3, w_hh3 = w_ih[: 3 * hidden], w_hh[: 3 * hidden]
    b_ih, b_hh = b[: 3 * hidden], RNG.normal(size=3 * hidden)
    h = np.zeros((n, hidden))
    states, _ = gru_forward(x, w_ih3, w_hh3, b_ih, b_hh)
    for t in range(steps):
        xi, hh = x[:, t] @ w_ih3.T + b_ih, h @ w_hh3.T + b_hh
        r = _sigmoid(xi[:, :hidden] + hh[:, :hidden])
        z = _sigmoid(xi[:, hidden : 2 * hidden] + hh[:, hidden : 2 * hidden])
        cand = np.tanh(xi[:, 2 * hidden :] + r * hh[:, 2 * hidden :])
        h = (1 - z) * cand + z * h
        np.testing.assert_allclose(states[:, t], h)


def test_first_extreme_sends_ties_to_the_first_element_in_row_major_order() -> None:
    from nnc.backends.numpy.kernels.reduce import first_extreme

    x = np.array([[[1.0, 3.0], [3.0, 0.0]], [[2.0, 2.0], [2.0, 2.0]]])  # [2, 2, 2]
    mask = first_extreme(x, (1, 2))
    assert mask.tolist() == [[[0, 1], [0, 0]], [[1, 0], [0, 0]]]
    low = first_extreme(x, (1,), largest=False)  # per column: the first minimum
    assert low.tolist() == [[[1, 0], [0, 1]], [[1, 1], [0, 0]]]
