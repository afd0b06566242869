"""Optimizers, schedules, L2 and frozen layers: K = 20 train steps of the generated
runtime against a direct float64 transcription of docs/semantics.md (reference.py),
weights and canonical optimizer state compared after every step; and optimizer state
that round-trips into a fresh runtime and continues identically.

Tolerance: after 20 float32 steps the weights and state agree with the float64
trajectory within ``1e-5`` relative to their scale (max(1, max |value|))."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import nnc
from nnc.backends import tensorflow as backend
from nnc.ir.training import Recipe, learning_rate
from tests.backends.tensorflow import reference as ref
from tests.backends.tensorflow.helpers import deviation

K = 20
STEPS_PER_EPOCH = 4
TRAJECTORY_RTOL = 1e-5

MODEL = """
model T {
    input x: [3]
    dense(4) tanh
    dense(2)
}
"""

OPTIMIZERS = {
    "sgd": "sgd(lr = 0.1)",
    "sgd_momentum": "sgd(lr = 0.05, momentum = 0.9)",
    "sgd_nesterov": "sgd(lr = 0.05, momentum = 0.9, nesterov = true)",
    "adagrad": "adagrad(lr = 0.1, initial_accumulator = 0.1)",
    "rmsprop": "rmsprop(lr = 0.01, rho = 0.8)",
    "adam": "adam(lr = 0.01, beta1 = 0.8)",
    # A schedule changes lr between epochs: momentum must follow nnc's form, where lr
    # multiplies the whole step (Keras' folds lr into the velocity and would differ).
    "sgd_momentum_step_schedule": (
        "sgd(lr = 0.1, momentum = 0.9)\n    schedule step(every = 2, gamma = 0.5)"
    ),
    "adam_exponential_schedule": "adam(lr = 0.02)\n    schedule exponential(gamma = 0.7)",
    "rmsprop_l2": "rmsprop(lr = 0.01)\n    l2 0.05",
}


def program_for(optimizer: str, model: str = MODEL) -> nnc.Program:
    return nnc.parse(
        model + f'train T {{\n    data "unused.npz"\n    loss mse\n    optimizer {optimizer}\n'
        "    epochs 5\n}\n"
    )


def reference_gradients(
    program: nnc.Program, params: dict[str, np.ndarray], x, y
) -> dict[str, np.ndarray]:  # type: ignore[no-untyped-def]
    """Exact-enough (central differences, float64) loss gradients, plus L2 where due."""
    recipe = program.recipes["T"]
    assert isinstance(recipe, Recipe)
    grads = {}
    specs = {p.name: p.spec for p in nnc.model_params(program, "T")}
    for name, spec in specs.items():
        if not spec.trainable:
            continue

        def f(value: np.ndarray, name: str = name) -> float:
            (out,) = ref.run(program, "T", {**params, name: value}, [x])
            return ref.loss_value(recipe.loss, out, y)

        g = ref.numeric_gradient(f, params[name])
        if spec.decay:
            g = g + recipe.l2 * params[name]
        grads[name] = g
    return grads


def run_trajectory(program: nnc.Program, runtime: Any, steps: range, rng_seed: int = 0) -> None:
    """Step the runtime and the reference side by side, comparing after every step."""
    recipe = program.recipes["T"]
    assert isinstance(recipe, Recipe)
    module = runtime.module  # the generated module under nnc's adapter
    params = {k: v.astype(np.float64) for k, v in runtime.get_weights().items()}
    state: dict[str, Any] = {
        k: (int(v) if k == "step" else v.astype(np.float64))
        for k, v in runtime.get_optimizer_state().items()
    }
    rng = np.random.default_rng(rng_seed)
    for k in steps:
        x = rng.normal(size=(5, 3)).astype(np.float32)
        y = rng.normal(size=(5, 2)).astype(np.float32)
        epoch = k // STEPS_PER_EPOCH
        lr = learning_rate(recipe.optimizer.lr, recipe.schedule, epoch)
        assert module.learning_rate(epoch) == pytest.approx(lr, rel=1e-12)
        (out,) = ref.run(program, "T", params, [x])
        loss = runtime.train_step(x, y, lr)
        assert loss == pytest.approx(ref.loss_value(recipe.loss, out, y), rel=1e-5)
        ref.optimizer_update(
            recipe.optimizer, params, reference_gradients(program, params, x, y), state, lr
        )
        got = runtime.get_weights()
        for name, value in params.items():
            assert deviation(got[name], value) < TRAJECTORY_RTOL, f"step {k + 1}: {name}"
        got_state = runtime.get_optimizer_state()
        assert int(got_state["step"]) == state["step"] == k + 1
        for name, value in state.items():
            if name != "step":
                assert deviation(got_state[name], value) < TRAJECTORY_RTOL, f"step {k + 1}: {name}"


@pytest.mark.parametrize("case", sorted(OPTIMIZERS))
def test_matches_semantics(case: str, runtimes: Any) -> None:
    program = program_for(OPTIMIZERS[case])
    runtime = runtimes(f"optimizer-{case}", lambda: backend.build(program, seed=3))
    run_trajectory(program, runtime, range(K))


def test_frozen_layers_never_move(runtimes: Any) -> None:
    model = "model T {\n    input x: [3]\n    dense(4, trainable = false) tanh\n    dense(2)\n}\n"
    program = program_for("adam(lr = 0.05)\n    l2 0.1", model)
    runtime = backend.build(program, seed=4)
    before = runtime.get_weights()
    state = runtime.get_optimizer_state()
    assert not any(k.startswith("dense_1.") for k in state)  # no slots for frozen params
    assert set(runtime.gradients(np.ones((2, 3), np.float32), np.ones((2, 2), np.float32))) == {
        "dense_2.weight",
        "dense_2.bias",
    }
    run_trajectory(program, runtime, range(5))
    after = runtime.get_weights()
    for name in ("dense_1.weight", "dense_1.bias"):
        assert np.array_equal(after[name], before[name])
    assert not np.array_equal(after["dense_2.weight"], before["dense_2.weight"])


@pytest.mark.parametrize("case", ["sgd_nesterov", "adagrad", "adam_exponential_schedule"])
def test_state_round_trips(case: str, runtimes: Any) -> None:
    """Ten steps, then weights and optimizer state into a fresh runtime, ten more: the
    continuation is the one a single runtime makes."""
    program = program_for(OPTIMIZERS[case])
    first = runtimes(f"optimizer-{case}", lambda: backend.build(program, seed=3))
    rng = np.random.default_rng(11)
    batches = [
        (rng.normal(size=(5, 3)).astype(np.float32), rng.normal(size=(5, 2)).astype(np.float32))
        for _ in range(20)
    ]
    start_weights, start_state = first.get_weights(), first.get_optimizer_state()
    for x, y in batches[:10]:
        first.train_step(x, y, 0.01)
    weights, state = first.get_weights(), first.get_optimizer_state()
    second = backend.build(program, weights=weights)
    second.set_optimizer_state(state)
    assert {k: v.tolist() for k, v in second.get_optimizer_state().items()} == {
        k: v.tolist() for k, v in state.items()
    }
    for x, y in batches[10:]:
        first.train_step(x, y, 0.01)
        second.train_step(x, y, 0.01)
    for name, value in first.get_weights().items():
        assert np.array_equal(second.get_weights()[name], value), name
    # Leave the shared runtime as the trajectory test expects to find it.
    first.set_weights(start_weights)
    first.set_optimizer_state(start_state)
