"""Comparing a TensorFlow runtime with the float64 reference.

Tolerances (float32 backend against a float64 reference on the same canonical
weights and batch): outputs and losses agree within ``1e-4`` relative to the scale
of the reference values (``max(1, max |ref|)``); gradients within ``2e-4`` of
:func:`gradient_scale`. Every check reports the worst deviation it saw.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from nnc.ir.ops.reshape import Dropout
from nnc.ir.program import Program
from nnc.ir.training import BinaryCrossEntropy, CrossEntropy, Recipe
from tests.backends.tensorflow import reference as ref

OUTPUT_RTOL = 1e-4
GRADIENT_RTOL = 2e-4


def without_dropout(program: Program) -> Program:
    """The program with every dropout rate 0: masks are never comparable across
    implementations, so numeric comparisons run without them."""
    models = {
        name: m.model_copy(
            update={
                "nodes": tuple(
                    n.model_copy(update={"rate": 0.0}) if isinstance(n, Dropout) else n
                    for n in m.nodes
                )
            }
        )
        for name, m in program.models.items()
    }
    return program.model_copy(update={"models": models})


def gradient_scale(gradient: np.ndarray, largest: float) -> float:
    """What a gradient tensor's deviations are measured against: its own largest
    entry, but at least a tenth of the model's largest gradient (``largest``). A
    tensor whose true gradient is 0 (a convolution bias feeding batchnorm) still
    carries float32 rounding noise, which scales with the model's gradients."""
    return max(float(np.max(np.abs(gradient))), 0.1 * largest, 1e-12)


def deviation(actual: np.ndarray, expected: np.ndarray) -> float:
    """max |actual - expected| relative to max(1, max |expected|)."""
    actual, expected = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    assert actual.shape == expected.shape, f"shape {actual.shape} != {expected.shape}"
    scale = max(1.0, float(np.max(np.abs(expected), initial=0.0)))
    return float(np.max(np.abs(actual - expected), initial=0.0)) / scale


def sample_inputs(
    program: Program, model: str, n: int, rng: np.random.Generator, t: int = 5
) -> list[np.ndarray]:
    """A random batch for each input; symbolic dims become ``t``."""
    out = []
    for decl in program.models[model].inputs:
        shape = (n, *(d if isinstance(d, int) else t for d in decl.type.shape))
        if decl.type.dtype == "int64":
            out.append(rng.integers(0, 3, size=shape).astype(np.int64))
        else:
            out.append(rng.normal(size=shape).astype(np.float32))
    return out


def sample_target(loss: Any, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """Targets the loss expects: one-hot rows, 0/1 labels, or real values."""
    if isinstance(loss, CrossEntropy):
        classes = rng.integers(0, shape[-1], size=shape[:-1])
        return np.eye(shape[-1], dtype=np.float32)[classes]
    if isinstance(loss, BinaryCrossEntropy):
        return rng.integers(0, 2, size=shape).astype(np.float32)
    return rng.normal(size=shape).astype(np.float32)


@dataclass
class Report:
    """The worst deviations one comparison found."""

    outputs: float = 0.0
    loss: float = 0.0
    gradients: float = 0.0
    worst: str = ""


def compare_gradients(
    program: Program,
    model: str,
    recipe: Recipe,
    runtime: Any,
    x: np.ndarray,
    y: np.ndarray,
    rng: np.random.Generator,
    probes: int = 3,
) -> tuple[float, str]:
    """Worst relative deviation of runtime.gradients from reference finite differences:
    every coordinate of small tensors, ``probes`` random ones of large tensors, and one
    random direction through each whole tensor."""
    weights = {k: v.astype(np.float64) for k, v in runtime.get_weights().items()}
    got = runtime.gradients(x, y)
    offsets: dict[str, np.ndarray] = {}
    ref.run(program, model, weights, [x], ref.Pass(training=True, step_offsets=offsets))

    def loss_with(name: str):  # type: ignore[no-untyped-def]
        def f(value: np.ndarray) -> float:
            trial = {**weights, name: value}
            mode = ref.Pass(training=True, step_offsets=offsets)
            (out,) = ref.run(program, model, trial, [x], mode)
            return ref.loss_value(recipe.loss, out, y)

        return f

    largest = max(float(np.max(np.abs(g))) for g in got.values()) if got else 0.0
    worst, where = 0.0, ""
    for name, g in got.items():
        f = loss_with(name)
        coords = ref.probe_coords(g.shape, rng, probes)
        numeric = ref.numeric_gradient(f, weights[name], coords)
        picked = np.array([numeric[c] for c in coords])
        mine = np.array([g[c] for c in coords])
        scale = gradient_scale(g, largest)
        dev = float(np.max(np.abs(mine - picked))) / scale
        # One random direction through the whole tensor.
        direction = rng.normal(size=g.shape)
        eps = 1e-6
        along = (f(weights[name] + eps * direction) - f(weights[name] - eps * direction)) / (
            2 * eps
        )
        dev_dir = abs(float(np.sum(g * direction)) - along) / (
            scale * float(np.linalg.norm(direction)) * np.sqrt(g.size)
        )
        for d, label in ((dev, name), (dev_dir, f"{name} (direction)")):
            if d > worst:
                worst, where = d, label
    return worst, where
