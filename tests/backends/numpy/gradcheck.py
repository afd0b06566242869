"""Central finite differences against the generated backward pass, in float64.

``check(runtime, inputs)`` projects every output onto a fixed random direction
(the loss ``L = sum_k <output_k, R_k>``, so ``d L / d output_k = R_k``), runs the
generated ``backpropagate`` with input gradients, and compares every trainable
parameter's and every float input's gradient with ``(L(p + h) - L(p - h)) / 2h``.
The error reported per tensor is ``|analytic - numeric| / max(|analytic|, |numeric|)``
over the whole tensor (Euclidean norms).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

import nnc
from nnc.backends.numpy import build
from nnc.ir.program import Model

STEP = 1e-6


def runtime_for(source: str, model: str | None = None, seed: int = 0) -> Any:
    """A float64 runtime of ``source`` with random (not initial) weights."""
    program = nnc.parse(source)
    runtime = build(program, model, dtype="float64", seed=seed)
    rng = np.random.default_rng(seed + 1)
    weights = {}
    for name, value in runtime.get_weights().items():
        if name.endswith("running_var"):
            weights[name] = rng.uniform(0.5, 1.5, value.shape)
        else:
            weights[name] = rng.normal(0.0, 0.5, value.shape)
    runtime.set_weights(weights)
    return runtime


def random_inputs(
    model: Model, batch: int = 4, length: int = 3, vocab: int = 7, seed: int = 0
) -> list[np.ndarray]:
    """A batch for every input; symbolic dims take ``length``; int64 inputs index a
    vocabulary of ``vocab``."""
    rng = np.random.default_rng(seed)
    arrays = []
    for decl in model.inputs:
        shape = (batch, *(d if isinstance(d, int) else length for d in decl.type.shape))
        if decl.type.dtype == "int64":
            arrays.append(rng.integers(0, vocab, size=shape))
        else:
            arrays.append(rng.normal(0.0, 1.0, size=shape))
    return arrays


# Parameters whose gradient is zero for every input: attention's key bias adds q·b_k to
# every score of a query's row, and the softmax ignores a shift of a row.
ZERO_BY_CONSTRUCTION = (".key.bias",)


def trainable_names(runtime: Any) -> tuple[str, ...]:
    return tuple(runtime.module.TRAINABLE)


def check(runtime: Any, inputs: Sequence[np.ndarray], training: bool = True) -> dict[str, float]:
    """Relative error of every parameter and float-input gradient (see module doc)."""
    runtime.seed(0)
    outputs, cache = runtime.propagate(*inputs, training=training)
    outputs = outputs if isinstance(outputs, tuple) else (outputs,)
    rng = np.random.default_rng(123)
    directions = [rng.normal(size=o.shape) for o in outputs]

    def objective() -> float:
        runtime.seed(0)  # the same dropout masks in every evaluation
        out = runtime.propagate(*inputs, training=training)[0]
        out = out if isinstance(out, tuple) else (out,)
        return float(sum(np.sum(o * r) for o, r in zip(out, directions, strict=True)))

    grads, d_inputs = runtime.backpropagate(cache, *directions, input_gradients=True)
    d_inputs = d_inputs if isinstance(d_inputs, tuple) else (d_inputs,)
    assert set(grads) == set(trainable_names(runtime))
    errors: dict[str, float] = {}
    for name in grads:
        numeric = _numeric(runtime.weights[name], objective)
        if name.endswith(ZERO_BY_CONSTRUCTION):
            # exactly zero: the analytic gradient within float64 rounding of 0, the
            # differences at their noise (~1e-9); either one larger fails
            small = np.linalg.norm(grads[name]) < 1e-12 and np.linalg.norm(numeric) < 1e-7
            errors[name] = 0.0 if small else 1.0
            continue
        errors[name] = _relative(grads[name], numeric)
    for k, (array, grad) in enumerate(zip(inputs, d_inputs, strict=True)):
        if not np.issubdtype(array.dtype, np.floating):
            assert grad is None
            continue
        errors[f"input {k}"] = _relative(grad, _numeric(array, objective))
    return errors


def _numeric(array: np.ndarray, objective: Callable[[], float]) -> np.ndarray:
    grad = np.zeros_like(array)
    for index in np.ndindex(array.shape):
        saved = array[index]
        array[index] = saved + STEP
        plus = objective()
        array[index] = saved - STEP
        minus = objective()
        array[index] = saved
        grad[index] = (plus - minus) / (2 * STEP)
    return grad


def _relative(analytic: np.ndarray, numeric: np.ndarray) -> float:
    assert analytic.shape == numeric.shape
    scale = max(float(np.linalg.norm(analytic)), float(np.linalg.norm(numeric)), 1e-12)
    return float(np.linalg.norm(analytic - numeric)) / scale
