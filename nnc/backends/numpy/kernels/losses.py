"""Loss kernels: each returns the loss (a 0-d array) and its gradient with respect to
the model output. Formulas and reductions are those of docs/semantics.md: ``mean``
divides the sum of the terms by their count, ``sum`` leaves it as it is."""

from __future__ import annotations

import numpy as np

from nnc.backends.numpy.kernels.core import log_softmax, sigmoid

__all__ = [
    "binary_cross_entropy_from_logits",
    "binary_cross_entropy_from_probabilities",
    "counted_positions",
    "cross_entropy_from_logits",
    "cross_entropy_from_logits_padded",
    "cross_entropy_from_probabilities",
    "cross_entropy_from_probabilities_padded",
    "mae",
    "mse",
    "reduction_divisor",
    "sse",
]


def reduction_divisor(count, reduction):
    """What the sum of ``count`` terms is divided by: their count for ``mean``, 1 for
    ``sum``."""
    return count if reduction == "mean" else 1


def mse(output, target, reduction="mean"):
    """Squared error over all elements (batch included), averaged or summed."""
    error = output - target
    n = reduction_divisor(error.size, reduction)
    return np.sum(error * error) / n, error * (2 / n)


def mae(output, target, reduction="mean"):
    """Absolute error over all elements, averaged or summed; its gradient is
    sign(error), 0 at 0."""
    error = output - target
    n = reduction_divisor(error.size, reduction)
    return np.sum(np.abs(error)) / n, np.sign(error) / n


def sse(output, target):
    """Half the sum of squared errors over batch and elements: 0.5 * sum((y - t)^2)."""
    error = output - target
    return 0.5 * np.sum(error * error), error


def cross_entropy_from_logits(logits, target, reduction="mean"):
    """-sum_c t_c log softmax(logits)_c over the last axis, averaged (or summed) over
    the other positions; log-sum-exp keeps logits of +-1000 finite."""
    positions = reduction_divisor(logits.size // logits.shape[-1], reduction)
    log_p = log_softmax(logits, axis=-1)
    loss = -np.sum(target * log_p) / positions
    d_logits = np.exp(log_p) * target.sum(axis=-1, keepdims=True) - target
    return loss, d_logits / positions


def cross_entropy_from_probabilities(p, target, reduction="mean"):
    """-sum_c t_c log max(p_c, 1e-7) over the last axis, averaged (or summed) over the
    other positions."""
    positions = reduction_divisor(p.size // p.shape[-1], reduction)
    clipped = np.maximum(p, 1e-7)
    loss = -np.sum(target * np.log(clipped)) / positions
    d_p = np.where(p > 1e-7, -target / clipped, 0) / positions
    return loss, d_p


def counted_positions(target, reduction):
    """What a cross-entropy with a padding label divides by: for ``mean`` the
    positions whose target row is not all zero (at least 1), for ``sum`` 1."""
    if reduction != "mean":
        return 1
    return max(int(np.count_nonzero(target.any(axis=-1))), 1)


def cross_entropy_from_logits_padded(logits, target, reduction="mean"):
    """Cross-entropy from logits with a padding label: a padding position has an
    all-zero target row, adds 0 (gradient 0) and is not counted in the mean."""
    positions = counted_positions(target, reduction)
    log_p = log_softmax(logits, axis=-1)
    loss = -np.sum(target * log_p) / positions
    d_logits = np.exp(log_p) * target.sum(axis=-1, keepdims=True) - target
    return loss, d_logits / positions


def cross_entropy_from_probabilities_padded(p, target, reduction="mean"):
    """Cross-entropy of probabilities (clipped at 1e-7) with a padding label: all-zero
    target rows add 0 and are not counted in the mean."""
    positions = counted_positions(target, reduction)
    clipped = np.maximum(p, 1e-7)
    loss = -np.sum(target * np.log(clipped)) / positions
    d_p = np.where(p > 1e-7, -target / clipped, 0) / positions
    return loss, d_p


def binary_cross_entropy_from_logits(logits, target, reduction="mean"):
    """-(t log sigmoid(y) + (1 - t) log(1 - sigmoid(y))), mean (or sum) over all
    elements, computed as max(y, 0) - y t + log(1 + e^-|y|)."""
    n = reduction_divisor(logits.size, reduction)
    loss = np.sum(np.maximum(logits, 0) - logits * target + np.log1p(np.exp(-np.abs(logits))))
    return loss / n, (sigmoid(logits) - target) / n


def binary_cross_entropy_from_probabilities(p, target, reduction="mean"):
    """-(t log p + (1 - t) log(1 - p)) with p clipped to [1e-7, 1 - 1e-7], mean (or
    sum) over all elements."""
    n = reduction_divisor(p.size, reduction)
    clipped = np.clip(p, 1e-7, 1 - 1e-7)
    loss = -np.sum(target * np.log(clipped) + (1 - target) * np.log(1 - clipped)) / n
    inside = (p > 1e-7) & (p < 1 - 1e-7)
    d_p = np.where(inside, (clipped - target) / (clipped * (1 - clipped)), 0) / n
    return loss, d_p
