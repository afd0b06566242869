"""``bias_trainable = false`` freezes a dense or conv layer's bias and nothing else:
on every training backend the bias keeps its initial value through training (no
gradient, no optimizer state), the weights train, and the steps match the float64
reference."""

from __future__ import annotations

import numpy as np
import pytest

import nnc
from nnc.backends.registry import parse_backend
from nnc.errors import NncError
from nnc.ir.weights import init_weights
from nnc.verify import verify
from tests.equivalence.matrix import TRAINING, explain, need

SOURCE = """
model Frozen {
    input image: [2, 5, 5]
    conv2d(3, 3, bias_init = uniform(-0.5, 0.5), bias_trainable = false) tanh
    flatten
    dense(4, bias_init = normal(0, 1), bias_trainable = false) sigmoid
    dense(2)
}

train Frozen {
    data      "frozen.npz"
    loss      mse
    optimizer adam(lr = 0.05)
}
"""
FROZEN = ["conv2d_1.bias", "dense_1.bias"]


@pytest.mark.parametrize("backend", TRAINING)
def test_frozen_biases_keep_their_initial_values(backend: str) -> None:
    need(backend)
    program = nnc.parse(SOURCE)
    start = init_weights(program, "Frozen", seed=3)
    assert all(np.abs(start[name]).max() > 0.05 for name in FROZEN)  # not zeros
    runtime = parse_backend(backend).load().build(program, "Frozen", start)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(8, 2, 5, 5)).astype(np.float32)
    y = rng.normal(size=(8, 2)).astype(np.float32)
    assert set(runtime.gradients(x, y)) == set(start) - set(FROZEN)
    losses = [runtime.train_step(x, y, 0.05) for _ in range(20)]
    after = runtime.get_weights()
    for name in FROZEN:
        np.testing.assert_array_equal(after[name], start[name], err_msg=name)
    for name in set(start) - set(FROZEN):  # the weights and the last bias train
        assert np.abs(after[name] - start[name]).max() > 1e-3, name
    assert losses[-1] < 0.5 * losses[0]
    state = runtime.get_optimizer_state()
    assert not any(key.startswith(tuple(FROZEN)) for key in state)


@pytest.mark.parametrize("backend", TRAINING)
def test_training_with_frozen_biases_matches_the_reference(backend: str) -> None:
    need(backend)
    report = verify(nnc.parse(SOURCE), backends=[backend], steps=10)
    assert report.equivalent, explain(report)


def test_only_the_biases_are_frozen() -> None:
    from nnc.ir.passes import model_params

    params = model_params(nnc.parse(SOURCE), "Frozen")
    assert [p.name for p in params if not p.spec.trainable] == FROZEN


def test_a_missing_bias_cannot_be_frozen() -> None:
    with pytest.raises(NncError) as info:
        nnc.parse(
            "model M {\n    input x: [2]\n    dense(3, bias = false, bias_trainable = false)\n}\n"
        )
    message = str(info.value)
    assert "bias_trainable = false freezes the bias, but bias = false removes it" in message
    assert info.value.span is not None and (info.value.span.line, info.value.span.col) == (3, 5)
