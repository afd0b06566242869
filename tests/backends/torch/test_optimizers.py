"""The generated optimizers against a direct float64 transcription of the Optimizers
table of docs/semantics.md: K = 20 updates of a two-layer linear network with mse,
with L2, a frozen layer, and learning-rate schedules; and optimizer state moved into
a fresh runtime continues the same trajectory.

Tolerance: parameters and returned losses within 2e-5 * max(1, scale) of the
float64 transcription after every step (float32 against float64).
"""

from __future__ import annotations

import numpy as np
import pytest

import nnc
from nnc.backends import torch as backend
from nnc.ir.training import learning_rate

pytestmark = pytest.mark.usefixtures("needs_torch")

K = 20
BATCHES = 4  # per epoch, so a schedule changes the rate within the run
TOL = 2e-5

OPTIMIZERS = {
    "sgd": "sgd(lr = 0.1)",
    "sgd_momentum": "sgd(lr = 0.1, momentum = 0.9)",
    "sgd_nesterov": "sgd(lr = 0.1, momentum = 0.9, nesterov = true)",
    "adagrad": "adagrad(lr = 0.1, initial_accumulator = 0.1)",
    "rmsprop": "rmsprop(lr = 0.01, rho = 0.8)",
    "adam": "adam(lr = 0.01, beta1 = 0.8, beta2 = 0.99, eps = 1e-6)",
}


def program_for(optimizer: str, extra: str = "", first: str = "dense(3)") -> nnc.Program:
    return nnc.parse(
        "model Net {\n input x: [4]\n " + first + "\n dense(2)\n}\n"
        'train Net {\n data "train.csv"\n loss mse\n optimizer ' + optimizer + "\n" + extra + "}\n"
    )


def batches(seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(seed)
    return [
        (rng.normal(size=(5, 4)).astype(np.float32), rng.normal(size=(5, 2)).astype(np.float32))
        for _ in range(K)
    ]


def mse_gradients(p: dict[str, np.ndarray], x: np.ndarray, t: np.ndarray) -> tuple[float, dict]:
    """Loss and gradients of mean((W2 (W1 x + b1) + b2 - t)^2), written out by hand."""
    h = x @ p["dense_1.weight"].T + p["dense_1.bias"]
    y = h @ p["dense_2.weight"].T + p["dense_2.bias"]
    dy = 2 * (y - t) / y.size
    dh = dy @ p["dense_2.weight"]
    grads = {
        "dense_2.weight": dy.T @ h,
        "dense_2.bias": dy.sum(axis=0),
        "dense_1.weight": dh.T @ x,
        "dense_1.bias": dh.sum(axis=0),
    }
    return float(np.mean((y - t) ** 2)), grads


class Transcription:
    """docs/semantics.md's update rules, in float64, with canonical state names."""

    def __init__(self, spec, l2: float, decayed: set[str], trainable: set[str]):  # type: ignore[no-untyped-def]
        self.spec, self.l2, self.decayed, self.trainable = spec, l2, decayed, trainable
        self.state: dict[str, np.ndarray] = {}
        self.t = 0

    def step(self, p: dict[str, np.ndarray], grads: dict[str, np.ndarray], lr: float) -> None:
        o = self.spec
        self.t += 1
        for name in sorted(self.trainable):
            g = grads[name] + (self.l2 * p[name] if name in self.decayed else 0.0)
            zero = np.zeros_like(p[name])
            if o.kind == "sgd" and o.momentum:
                v = o.momentum * self.state.get(f"{name}.velocity", zero) + g
                self.state[f"{name}.velocity"] = v
                p[name] = p[name] - lr * (g + o.momentum * v if o.nesterov else v)
            elif o.kind == "sgd":
                p[name] = p[name] - lr * g
            elif o.kind == "adagrad":
                acc = self.state.get(f"{name}.accumulator", zero + o.initial_accumulator) + g**2
                self.state[f"{name}.accumulator"] = acc
                p[name] = p[name] - lr * g / (np.sqrt(acc) + o.eps)
            elif o.kind == "rmsprop":
                v = o.rho * self.state.get(f"{name}.square_avg", zero) + (1 - o.rho) * g**2
                self.state[f"{name}.square_avg"] = v
                p[name] = p[name] - lr * g / (np.sqrt(v) + o.eps)
            else:
                m = o.beta1 * self.state.get(f"{name}.m", zero) + (1 - o.beta1) * g
                v = o.beta2 * self.state.get(f"{name}.v", zero) + (1 - o.beta2) * g**2
                self.state[f"{name}.m"], self.state[f"{name}.v"] = m, v
                m_hat, v_hat = m / (1 - o.beta1**self.t), v / (1 - o.beta2**self.t)
                p[name] = p[name] - lr * m_hat / (np.sqrt(v_hat) + o.eps)


def close(name: str, got: np.ndarray | float, want: np.ndarray | float) -> None:
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    scale = max(1.0, float(np.max(np.abs(want), initial=0.0)))
    diff = float(np.max(np.abs(got - want), initial=0.0))
    assert diff <= TOL * scale, f"{name}: max |diff| {diff:.3g} (scale {scale:.3g})"


def run_both(program: nnc.Program, steps: int = K) -> tuple[object, Transcription, dict]:
    recipe = program.recipes["Net"]
    runtime = backend.build(program)
    p = {k: v.astype(np.float64) for k, v in runtime.get_weights().items()}
    trainable = {n for n, t in runtime.tensors.items() if t.requires_grad}
    decayed = {"dense_1.weight", "dense_2.weight"}
    ref = Transcription(recipe.optimizer, recipe.l2, decayed, trainable)
    for k, (x, t) in enumerate(batches()[:steps]):
        lr = learning_rate(recipe.optimizer.lr, recipe.schedule, k // BATCHES)
        loss, grads = mse_gradients(p, x.astype(np.float64), t.astype(np.float64))
        close(f"loss of step {k + 1}", runtime.train_step(x, t, lr), loss)
        ref.step(p, grads, lr)
        for name, value in runtime.get_weights().items():
            close(f"{name} after step {k + 1}", value, p[name])
    return runtime, ref, p


@pytest.mark.parametrize("optimizer", sorted(OPTIMIZERS))
def test_optimizer_matches_transcription(optimizer: str) -> None:
    runtime, ref, _ = run_both(program_for(OPTIMIZERS[optimizer]))
    state = runtime.get_optimizer_state()  # type: ignore[attr-defined]
    assert int(state.pop("step")) == K
    assert sorted(state) == sorted(ref.state)
    for name, value in state.items():
        close(name, value, ref.state[name])


@pytest.mark.parametrize(
    ("optimizer", "schedule"),
    [
        ("sgd_momentum", "step(every = 2, gamma = 0.5)"),
        ("sgd_nesterov", "exponential(gamma = 0.8)"),
        ("adam", "step(every = 1, gamma = 0.7)"),
        ("rmsprop", "exponential(gamma = 0.9)"),
    ],
)
def test_schedules_scale_the_whole_step(optimizer: str, schedule: str) -> None:
    """lr multiplies the whole update, momentum included (PyTorch's form)."""
    run_both(program_for(OPTIMIZERS[optimizer], f" schedule {schedule}\n"))


@pytest.mark.parametrize("optimizer", ["sgd_momentum", "adam"])
def test_l2_applies_to_weights_only_and_frozen_layers_never_move(optimizer: str) -> None:
    program = program_for(OPTIMIZERS[optimizer], " l2 0.05\n", first="dense(3, trainable = false)")
    before = backend.build(program).get_weights()
    runtime, _, _ = run_both(program)
    after = runtime.get_weights()  # type: ignore[attr-defined]
    for name in ("dense_1.weight", "dense_1.bias"):
        assert np.array_equal(after[name], before[name]), f"frozen {name} moved"
    assert not any(k.startswith("dense_1.") for k in runtime.get_optimizer_state())  # type: ignore[attr-defined]


@pytest.mark.parametrize("optimizer", sorted(OPTIMIZERS))
@pytest.mark.parametrize("split", [0, 7])
def test_state_round_trip_continues_identically(optimizer: str, split: int) -> None:
    program = program_for(OPTIMIZERS[optimizer], " l2 0.01\n")
    data = batches(1)
    first = backend.build(program)
    for x, t in data[:split]:
        first.train_step(x, t, 0.05)
    fresh = backend.build(program, weights=first.get_weights())
    fresh.set_optimizer_state(first.get_optimizer_state())
    for x, t in data[split : split + 5]:
        assert fresh.train_step(x, t, 0.05) == first.train_step(x, t, 0.05)
    for name, value in first.get_weights().items():
        assert np.array_equal(fresh.get_weights()[name], value), name
    state, moved = first.get_optimizer_state(), fresh.get_optimizer_state()
    assert int(moved["step"]) == split + 5
    for name, value in state.items():
        assert np.array_equal(moved[name], value), name


def test_state_of_the_wrong_shape_or_names_is_refused() -> None:
    runtime = backend.build(program_for(OPTIMIZERS["adam"]))
    state = runtime.get_optimizer_state()
    with pytest.raises(KeyError, match=r"missing \['dense_1.weight.m'\]"):
        runtime.set_optimizer_state({k: v for k, v in state.items() if k != "dense_1.weight.m"})
    state["dense_1.bias.v"] = np.zeros(7, np.float32)
    with pytest.raises(ValueError, match=r"dense_1.bias.v has shape \[7\]; expected \[3\]"):
        runtime.set_optimizer_state(state)
