"""The generated optimizer updates against a direct transcription of the formulas of
docs/semantics.md, L2 regularisation and frozen layers, and the canonical optimizer
state through get/set."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import nnc
from nnc.backends.numpy import build

MODEL = """
model Net {
    input x: [3]
    dense(4, trainable = FROZEN) tanh
    dense(2)
}

train Net {
    data      "train.csv"
    loss      mse
    optimizer OPTIMIZER
    l2        L2
    seed      5
}
"""

OPTIMIZERS = {
    "sgd": "sgd(lr = 0.1)",
    "sgd momentum": "sgd(lr = 0.1, momentum = 0.9)",
    "sgd nesterov": "sgd(lr = 0.1, momentum = 0.8, nesterov = true)",
    "adagrad": "adagrad(lr = 0.1, eps = 1e-6, initial_accumulator = 0.1)",
    "rmsprop": "rmsprop(lr = 0.01, rho = 0.8, eps = 1e-6)",
    "adam": "adam(lr = 0.01, beta1 = 0.8, beta2 = 0.9, eps = 1e-6)",
}
SLOTS = {
    "sgd": (),
    "sgd momentum": ("velocity",),
    "sgd nesterov": ("velocity",),
    "adagrad": ("accumulator",),
    "rmsprop": ("square_avg",),
    "adam": ("m", "v"),
}
RATES = (0.1, 0.05, 0.1, 0.02)  # a changing learning rate, as a schedule would give


def program(optimizer: str, l2: float = 0.0, frozen: bool = False) -> nnc.Program:
    return nnc.parse(
        MODEL.replace("OPTIMIZER", OPTIMIZERS[optimizer])
        .replace("L2", repr(l2))
        .replace("FROZEN", "false" if frozen else "true")
    )


def data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.normal(size=(6, 3)), rng.normal(size=(6, 2))


def reference_step(
    name: str, p: np.ndarray, g: np.ndarray, state: dict[str, Any], lr: float, t: int
) -> np.ndarray:
    """docs/semantics.md, Optimizers, transcribed."""
    if name == "sgd":
        return p - lr * g
    if name in ("sgd momentum", "sgd nesterov"):
        mu = 0.9 if name == "sgd momentum" else 0.8
        state["velocity"] = mu * state.get("velocity", 0.0) + g
        if name == "sgd nesterov":
            return p - lr * (g + mu * state["velocity"])
        return p - lr * state["velocity"]
    if name == "adagrad":
        state["accumulator"] = state.get("accumulator", 0.1) + g**2
        return p - lr * g / (np.sqrt(state["accumulator"]) + 1e-6)
    if name == "rmsprop":
        state["square_avg"] = 0.8 * state.get("square_avg", 0.0) + (1 - 0.8) * g**2
        return p - lr * g / (np.sqrt(state["square_avg"]) + 1e-6)
    b1, b2 = 0.8, 0.9
    state["m"] = b1 * state.get("m", 0.0) + (1 - b1) * g
    state["v"] = b2 * state.get("v", 0.0) + (1 - b2) * g**2
    m_hat, v_hat = state["m"] / (1 - b1**t), state["v"] / (1 - b2**t)
    return p - lr * m_hat / (np.sqrt(v_hat) + 1e-6)


@pytest.mark.parametrize("l2", [0.0, 0.05])
@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_update_matches_the_formula(name: str, l2: float) -> None:
    prog = program(name, l2=l2)
    runtime = build(prog, dtype="float64")
    helper = build(prog, dtype="float64")  # computes gradients at the reference weights
    x, y = data()
    weights = runtime.get_weights()
    states: dict[str, dict[str, Any]] = {n: {} for n in weights}
    for t, lr in enumerate(RATES, start=1):
        helper.set_weights(weights)
        grads = helper.gradients(x, y)
        loss = runtime.train_step(x, y, lr)
        assert loss == pytest.approx(helper.loss(x, y), rel=1e-12)
        for n in weights:
            g = grads[n] + (l2 * weights[n] if n.endswith("weight") else 0.0)
            weights[n] = reference_step(name, weights[n], g, states[n], lr, t)
        for n, value in runtime.get_weights().items():
            np.testing.assert_allclose(value, weights[n], rtol=1e-12, atol=1e-14, err_msg=n)
    state = runtime.get_optimizer_state()
    assert state["step"].dtype == np.int64 and int(state["step"]) == len(RATES)
    assert set(state) == {"step"} | {f"{n}.{s}" for n in weights for s in SLOTS[name]}
    for n in weights:
        for slot in SLOTS[name]:
            np.testing.assert_allclose(state[f"{n}.{slot}"], states[n][slot], rtol=1e-12)


@pytest.mark.parametrize("name", ["sgd momentum", "adam"])
def test_frozen_layer_is_never_updated(name: str) -> None:
    runtime = build(program(name, l2=0.1, frozen=True))
    before = runtime.get_weights()
    x, y = data()
    for lr in RATES:
        runtime.train_step(x, y, lr)
    after = runtime.get_weights()
    np.testing.assert_array_equal(after["dense_1.weight"], before["dense_1.weight"])
    np.testing.assert_array_equal(after["dense_1.bias"], before["dense_1.bias"])
    assert np.abs(after["dense_2.weight"] - before["dense_2.weight"]).max() > 1e-4
    assert set(runtime.gradients(x, y)) == {"dense_2.weight", "dense_2.bias"}
    assert not any(key.startswith("dense_1.") for key in runtime.get_optimizer_state())


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_optimizer_state_round_trips(name: str) -> None:
    """A run resumed from saved weights and optimizer state continues identically."""
    prog = program(name)
    x, y = data()
    first = build(prog)
    for lr in RATES[:2]:
        first.train_step(x, y, lr)
    resumed = build(prog, weights=first.get_weights())
    resumed.set_optimizer_state(first.get_optimizer_state())
    for lr in RATES[2:]:
        assert resumed.train_step(x, y, lr) == first.train_step(x, y, lr)
    for n, value in first.get_weights().items():
        np.testing.assert_array_equal(resumed.get_weights()[n], value)


def test_optimizer_state_is_checked() -> None:
    runtime = build(program("adam"))
    state = runtime.get_optimizer_state()
    with pytest.raises(ValueError, match=r"must hold \['dense_1.bias.m'"):
        runtime.set_optimizer_state({"step": state["step"]})
    state["dense_1.weight.m"] = np.zeros((2, 2))
    with pytest.raises(ValueError, match=r"dense_1.weight.m must have shape \[4, 3\]"):
        runtime.set_optimizer_state(state)


def test_float32_stays_float32() -> None:
    """A float32 runtime keeps weights and optimizer state float32 through updates, even
    with a NumPy float64 learning rate."""
    runtime = build(program("adam"))
    x, y = data()
    runtime.train_step(x, y, np.float64(0.01))
    assert {v.dtype for v in runtime.get_weights().values()} == {np.dtype(np.float32)}
    state = runtime.get_optimizer_state()
    assert {v.dtype for k, v in state.items() if k != "step"} == {np.dtype(np.float32)}
