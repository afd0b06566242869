"""Normalization kernels: batchnorm, layernorm, group (and instance) normalization and
local response normalization."""

from __future__ import annotations

import numpy as np

__all__ = [
    "batchnorm_backward",
    "batchnorm_forward",
    "channel_window_sum",
    "groupnorm_backward",
    "groupnorm_forward",
    "layernorm_backward",
    "layernorm_forward",
    "lrn_backward",
    "lrn_forward",
]


def batchnorm_forward(x, gamma, beta, running_mean, running_var, eps, training):
    """Normalize each channel (axis 1) over the batch and spatial axes.

    Training uses the batch mean and biased variance; evaluation the running
    statistics. Returns y and what the backward pass and the running-statistics
    update need: (x_hat, inv_std, batch mean, batch variance, values per channel).
    """
    axes = (0, *range(2, x.ndim))
    channel = (1, -1) + (1,) * (x.ndim - 2)
    if training:
        mean = x.mean(axis=axes)
        var = x.var(axis=axes)
    else:
        mean, var = running_mean, running_var
    inv_std = 1 / np.sqrt(var + eps)
    x_hat = (x - mean.reshape(channel)) * inv_std.reshape(channel)
    y = gamma.reshape(channel) * x_hat + beta.reshape(channel)
    return y, (x_hat, inv_std, mean, var, x.size // x.shape[1])


def batchnorm_backward(d_y, saved, gamma, training):
    """Gradients of batchnorm_forward: (d_x, d_gamma, d_beta). In training the batch
    statistics depend on x, which adds the two mean terms."""
    x_hat, inv_std, _, _, _ = saved
    axes = (0, *range(2, d_y.ndim))
    channel = (1, -1) + (1,) * (d_y.ndim - 2)
    d_gamma = (d_y * x_hat).sum(axis=axes)
    d_beta = d_y.sum(axis=axes)
    d_x_hat = d_y * gamma.reshape(channel)
    if training:
        d_x_hat = (
            d_x_hat
            - d_x_hat.mean(axis=axes, keepdims=True)
            - x_hat * (d_x_hat * x_hat).mean(axis=axes, keepdims=True)
        )
    return d_x_hat * inv_std.reshape(channel), d_gamma, d_beta


def layernorm_forward(x, gamma, beta, eps):
    """Normalize over the last axis (biased variance), then scale and shift.
    Returns y and (x_hat, inv_std) for the backward pass."""
    mean = x.mean(axis=-1, keepdims=True)
    inv_std = 1 / np.sqrt(x.var(axis=-1, keepdims=True) + eps)
    x_hat = (x - mean) * inv_std
    return gamma * x_hat + beta, (x_hat, inv_std)


def layernorm_backward(d_y, saved, gamma):
    """Gradients of layernorm_forward: (d_x, d_gamma, d_beta)."""
    x_hat, inv_std = saved
    axes = tuple(range(d_y.ndim - 1))
    d_x_hat = d_y * gamma
    d_x = inv_std * (
        d_x_hat
        - d_x_hat.mean(axis=-1, keepdims=True)
        - x_hat * (d_x_hat * x_hat).mean(axis=-1, keepdims=True)
    )
    return d_x, (d_y * x_hat).sum(axis=axes), d_y.sum(axis=axes)


def groupnorm_forward(x, gamma, beta, groups, eps):
    """Normalize each sample over groups of consecutive channels (axis 1) and all
    positions (biased variance), then scale and shift per channel. Instance norm is
    one channel per group. Returns y and (x_hat, inv_std) for the backward pass."""
    grouped = x.reshape(len(x), groups, -1)
    mean = grouped.mean(axis=-1, keepdims=True)
    inv_std = 1 / np.sqrt(grouped.var(axis=-1, keepdims=True) + eps)
    x_hat = ((grouped - mean) * inv_std).reshape(x.shape)
    channel = (1, -1) + (1,) * (x.ndim - 2)
    return gamma.reshape(channel) * x_hat + beta.reshape(channel), (x_hat, inv_std)


def groupnorm_backward(d_y, saved, gamma, groups):
    """Gradients of groupnorm_forward: (d_x, d_gamma, d_beta); the group statistics
    depend on x, which adds the two mean terms (as in layernorm, per group)."""
    x_hat, inv_std = saved
    axes = (0, *range(2, d_y.ndim))
    channel = (1, -1) + (1,) * (d_y.ndim - 2)
    d_x_hat = (d_y * gamma.reshape(channel)).reshape(len(d_y), groups, -1)
    grouped = x_hat.reshape(len(d_y), groups, -1)
    d_x = inv_std * (
        d_x_hat
        - d_x_hat.mean(axis=-1, keepdims=True)
        - grouped * (d_x_hat * grouped).mean(axis=-1, keepdims=True)
    )
    return d_x.reshape(d_y.shape), (d_y * x_hat).sum(axis=axes), d_y.sum(axis=axes)


def channel_window_sum(a, before, after):
    """For every channel c (axis 1), the sum of a over channels [c - before, c + after],
    channels outside the array counting as zero."""
    pads = [(0, 0)] * a.ndim
    pads[1] = (before, after)
    padded = np.pad(a, pads)
    channels = a.shape[1]
    total = np.zeros_like(a)
    for k in range(before + after + 1):
        total += padded[:, k : k + channels]
    return total


def lrn_forward(x, size, alpha, beta, bias):
    """y_c = x_c / (bias + alpha/size * sum of x^2 over the channel window)^beta.
    Returns y and the denominator base (the scale) for the backward pass."""
    before = (size - 1) // 2
    scale = bias + (alpha / size) * channel_window_sum(x * x, before, size - 1 - before)
    return x * scale**-beta, scale


def lrn_backward(d_y, x, scale, size, alpha, beta):
    """Gradient of lrn_forward: the direct term, and through every window holding x_c
    (the window sum with its sides swapped is the adjoint of the window sum)."""
    before = (size - 1) // 2
    through_scale = channel_window_sum(d_y * x * scale ** (-beta - 1), size - 1 - before, before)
    return d_y * scale**-beta - (2 * alpha * beta / size) * x * through_scale
