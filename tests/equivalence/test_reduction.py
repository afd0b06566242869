"""``reduction = sum`` adds the loss terms over the batch and every time step instead
of averaging them: on every backend the summed loss of a batch of B sequences of T
steps is B·T times the mean loss (T times for one sequence, the texts' L = Σ_t L_t),
its gradients B·T times the mean's, and training with it matches the float64
reference."""

from __future__ import annotations

import numpy as np
import pytest

import nnc
from nnc.backends.registry import parse_backend
from nnc.ir.weights import init_weights
from nnc.verify import verify
from tests.equivalence.matrix import INFERENCE, TRAINING, explain, need

STEPS = 8  # time steps; with B = 4 there are 32 positions, a power of two

SOURCE = """
model Steps {{
    input x: [{steps}, 2]
    rnn(5, return_sequences = true)
    dense(3)
}}

train Steps {{
    data      "steps.npz"
    loss      {loss}
    optimizer adam(lr = 0.01)
}}
"""

LOSSES = ["cross_entropy", "mse", "mae", "binary_cross_entropy"]


def programs(loss: str) -> tuple[nnc.Program, nnc.Program]:
    mean = nnc.parse(SOURCE.format(steps=STEPS, loss=loss))
    summed = nnc.parse(SOURCE.format(steps=STEPS, loss=f"{loss}(reduction = sum)"))
    return mean, summed


def batch(size: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(size)
    x = rng.normal(size=(size, STEPS, 2)).astype(np.float32)
    y = np.eye(3, dtype=np.float32)[rng.integers(0, 3, size=(size, STEPS))]
    return x, y


def positions(loss: str, size: int) -> int:
    """How many terms the mean divides by: positions for cross_entropy (the classes
    are summed), elements otherwise."""
    return size * STEPS * (1 if loss == "cross_entropy" else 3)


@pytest.mark.parametrize("backend", TRAINING + INFERENCE)
@pytest.mark.parametrize("size", [1, 4])
def test_summed_cross_entropy_is_exactly_n_times_the_mean(backend: str, size: int) -> None:
    """With a power-of-two count of positions (8 steps of 1 or 4 sequences) the mean
    is the sum divided exactly, so the identity holds bit for bit in float32."""
    need(backend)
    mean, summed = programs("cross_entropy")
    weights = init_weights(mean, "Steps", seed=0)
    x, y = batch(size)
    code = parse_backend(backend).load()
    mean_loss = code.build(mean, "Steps", weights).loss(x, y)
    summed_loss = code.build(summed, "Steps", weights).loss(x, y)
    assert summed_loss == size * STEPS * mean_loss
    assert summed_loss > 1.0  # a real loss, not 0 == 0


@pytest.mark.parametrize("backend", TRAINING + INFERENCE)
@pytest.mark.parametrize("loss", LOSSES)
def test_summed_loss_is_n_times_the_mean(backend: str, loss: str) -> None:
    """Every reducible loss; 96 elements (not a power of two) for the elementwise
    ones, so equal to float32 rounding: relative 1e-6."""
    need(backend)
    mean, summed = programs(loss)
    weights = init_weights(mean, "Steps", seed=0)
    x, y = batch(4)
    code = parse_backend(backend).load()
    mean_loss = code.build(mean, "Steps", weights).loss(x, y)
    summed_loss = code.build(summed, "Steps", weights).loss(x, y)
    assert summed_loss == pytest.approx(positions(loss, 4) * mean_loss, rel=1e-6)


@pytest.mark.parametrize("backend", TRAINING)
def test_summed_gradients_are_n_times_the_mean(backend: str) -> None:
    need(backend)
    mean, summed = programs("cross_entropy")
    weights = init_weights(mean, "Steps", seed=0)
    x, y = batch(4)
    code = parse_backend(backend).load()
    g_mean = code.build(mean, "Steps", weights).gradients(x, y)
    g_summed = code.build(summed, "Steps", weights).gradients(x, y)
    assert g_summed.keys() == g_mean.keys()
    for name, g in g_mean.items():
        scale = float(np.abs(g).max()) * 32
        assert np.abs(g_summed[name] - 32 * g).max() <= 1e-6 * scale, name


@pytest.mark.parametrize("backend", TRAINING + INFERENCE)
def test_training_with_the_summed_loss_matches_the_reference(backend: str) -> None:
    need(backend)
    _, summed = programs("cross_entropy")
    report = verify(summed, backends=[backend], steps=10)
    assert report.equivalent, explain(report)
