"""Loss kernels: each returns the loss (a 0-d array) and its gradient with respect to
the model output. Formulas and reductions are those of docs/semantics.md."""

from __future__ import annotations

import numpy as np

from nnc.backends.numpy.kernels.core import log_softmax, sigmoid

__all__ = [
    "binary_cross_entropy_from_logits",
    "binary_cross_entropy_from_probabilities",
    "cross_entropy_from_logits",
    "cross_entropy_from_probabilities",
    "mae",
    "mse",
    "sse",
]


def mse(output, target):
    """Mean squared error over all elements (batch included)."""
    error = output - target
    return np.mean(error * error), error * (2 / error.size)


def mae(output, target):
    """Mean absolute error over all elements; its gradient is sign(error), 0 at 0."""
    error = output - target
    return np.mean(np.abs(error)), np.sign(error) / error.size


def sse(output, target):
    """Half the sum of squared errors over batch and elements: 0.5 * sum((y - t)^2)."""
    error = output - target
    return 0.5 * np.sum(error * error), error


def cross_entropy_from_logits(logits, target):
    """-sum_c t_c log softmax(logits)_c over the last axis, averaged over the other
    positions; log-sum-exp keeps logits of +-1000 finite."""
    positions = logits.size // logits.shape[-1]
    log_p = log_softmax(logits, axis=-1)
    loss = -np.sum(target * log_p) / positions
    d_logits = np.exp(log_p) * target.sum(axis=-1, keepdims=True) - target
    return loss, d_logits / positions


def cross_entropy_from_probabilities(p, target):
    """-sum_c t_c log max(p_c, 1e-7) over the last axis, averaged over the other positions."""
    positions = p.size // p.shape[-1]
    clipped = np.maximum(p, 1e-7)
    loss = -np.sum(target * np.log(clipped)) / positions
    d_p = np.where(p > 1e-7, -target / clipped, 0) / positions
    return loss, d_p


def binary_cross_entropy_from_logits(logits, target):
    """-(t log sigmoid(y) + (1 - t) log(1 - sigmoid(y))), mean over all elements,
    computed as max(y, 0) - y t + log(1 + e^-|y|)."""
    loss = np.mean(np.maximum(logits, 0) - logits * target + np.log1p(np.exp(-np.abs(logits))))
    return loss, (sigmoid(logits) - target) / logits.size


def binary_cross_entropy_from_probabilities(p, target):
    """-(t log p + (1 - t) log(1 - p)) with p clipped to [1e-7, 1 - 1e-7], mean over all
    elements."""
    clipped = np.clip(p, 1e-7, 1 - 1e-7)
    loss = -np.mean(target * np.log(clipped) + (1 - target) * np.log(1 - clipped))
    inside = (p > 1e-7) & (p < 1 - 1e-7)
    d_p = np.where(inside, (clipped - target) / (clipped * (1 - clipped)), 0) / p.size
    return loss, d_p
