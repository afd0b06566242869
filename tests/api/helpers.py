"""Weights, inputs and output comparisons for the pass tests."""

from __future__ import annotations

import importlib.util

import numpy as np

import nnc
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


def outputs(
    program: Program, model: str, weights: dict[str, np.ndarray], x: np.ndarray
) -> list[list[np.ndarray]]:
    """The model's outputs on ``x`` in float64, from the test reference and, once the
    NumPy backend is there, from it too: each is held to the promise."""
    found = [forward(program, model, weights, x)]
    if importlib.util.find_spec("nnc.backends.numpy") is not None:
        rt = nnc.runtime(program, "numpy", model, weights=weights, dtype="float64")
        out = rt.forward(x)
        found.append([np.asarray(o) for o in out] if isinstance(out, tuple) else [out])
    return found


def max_deviation(
    before: tuple[Program, str, dict[str, np.ndarray]],
    after: tuple[Program, str, dict[str, np.ndarray]],
    x: np.ndarray,
) -> float:
    """Largest absolute difference between the two models' outputs on ``x``."""
    worst = 0.0
    for a, b in zip(outputs(*before, x), outputs(*after, x), strict=True):
        assert [o.shape for o in a] == [o.shape for o in b]
        worst = max([worst, *(float(np.max(np.abs(p - q))) for p, q in zip(a, b, strict=True))])
    return worst
