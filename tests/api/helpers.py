"""Weights and inputs for the pass tests."""

from __future__ import annotations

import numpy as np

from nnc.ir.program import Program
from nnc.ir.weights import init_weights
from tests.api.reference import forward

# Passes that promise unchanged outputs are held to this (max absolute deviation of
# float64 outputs; folded weights are stored in float32, so folding costs ~1e-7).
TOLERANCE = 1e-5


def trained_like(program: Program, model: str, seed: int = 0) -> dict[str, np.ndarray]:
    """Initial weights with batchnorm statistics and scales moved off their identity
    starting values, so that folding them is a real test."""
    weights = init_weights(program, model, seed)
    rng = np.random.default_rng(seed + 1)
    for name, value in weights.items():
        if name.endswith(".running_mean") or name.endswith(".bias"):
            weights[name] = rng.normal(0.0, 0.5, value.shape).astype(np.float32)
        elif name.endswith(".running_var"):
            weights[name] = rng.uniform(0.5, 2.0, value.shape).astype(np.float32)
        elif name.endswith(".weight") and value.ndim == 1:  # batchnorm scale
            weights[name] = rng.uniform(0.5, 1.5, value.shape).astype(np.float32)
    return weights


def batch(program: Program, model: str, n: int = 5, seed: int = 0, **dims: int) -> np.ndarray:
    """A random batch for the model's (single) input; symbolic dims from ``dims``."""
    shape = tuple(
        d if isinstance(d, int) else dims[d] for d in program.models[model].inputs[0].type.shape
    )
    return np.random.default_rng(seed).normal(size=(n, *shape))


def max_deviation(
    before: tuple[Program, str, dict[str, np.ndarray]],
    after: tuple[Program, str, dict[str, np.ndarray]],
    x: np.ndarray,
) -> float:
    """Largest absolute difference between the two models' outputs on ``x``."""
    a = forward(*before, x)
    b = forward(*after, x)
    assert [o.shape for o in a] == [o.shape for o in b]
    return max(float(np.max(np.abs(p - q))) for p, q in zip(a, b, strict=True))
