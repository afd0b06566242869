"""Generative recipes join the equivalence matrix.

- Through the training driver: the GAN and both autoencoders train 10 steps on the
  digits (the driver's batch order and, for the GAN, its noise) from the same
  canonical weights on numpy, torch and tensorflow, and end with the parameters of
  the float64 NumPy reference within the documented tolerance.
- Through :func:`nnc.verify.verify_gan`: a GAN with batchnorm, dropout (disabled for
  the comparison), the minimax loss, probabilities and two optimizers compares
  outputs, every step's figures, weights and optimizer state.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import pytest

import nnc
from nnc.backends import numpy as numpy_backend
from nnc.ir.training import GanRecipe
from nnc.train import TrainResult, train
from nnc.verify import deviation, tolerance_for, verify_gan
from tests.conftest import EXAMPLES
from tests.equivalence.matrix import TRAINING, explain, need

# example -> the batch that makes one epoch 10 steps (1,797 digits; 1,438 after the
# autoencoders' validation split)
TEN_STEPS = {"gan": 180, "autoencoder": 144, "conv_autoencoder": 144}

VARIANT = """
model G {
    input z: [8]
    dense(32) batchnorm relu
    dropout(0.2)
    dense(64) tanh
}

model D {
    input pixels: [64]
    dense(32) batchnorm leaky_relu(0.2)
    dropout(0.3)
    dense(1) sigmoid
}

train Gan {
    generator               G
    discriminator           D
    data                    digits, scale = symmetric
    noise                   uniform, 8
    loss                    minimax
    generator_optimizer     adam(lr = 0.002, beta1 = 0.5)
    discriminator_optimizer sgd(lr = 0.05, momentum = 0.9)
    batch                   32
    seed                    3
}
"""


def _reference_build(program: nnc.Program, what: Any, **options: Any) -> Any:
    options.pop("device", None)
    if isinstance(what, GanRecipe):
        return numpy_backend.build_gan(program, what, dtype="float64", **options)
    return numpy_backend.build(program, what, dtype="float64", **options)


@functools.cache
def run(example: str, backend: str) -> TrainResult:
    program = nnc.load(EXAMPLES / f"{example}.nn")
    build = _reference_build if backend == "reference" else None
    real = "numpy" if backend == "reference" else backend
    return train(program, epochs=1, batch=TEN_STEPS[example], save=False, backend=real, build=build)


@pytest.mark.parametrize("backend", TRAINING)
@pytest.mark.parametrize("example", list(TEN_STEPS))
def test_ten_driver_steps_match_the_reference(example: str, backend: str) -> None:
    need(backend)
    program = nnc.load(EXAMPLES / f"{example}.nn")
    recipe = next(iter(program.recipes.values()))
    models = recipe.models if isinstance(recipe, GanRecipe) else (recipe.model,)
    tolerance = max(
        (tolerance_for(program, m, TEN_STEPS[example]) for m in models),
        key=lambda t: t.training,
    )
    got, ref = run(example, backend), run(example, "reference")
    assert len(ref.history) == 1
    worst = deviation(got.runtime.get_weights(), ref.runtime.get_weights())
    assert worst.max_rel <= tolerance.training, (
        f"{example} on {backend}: {worst.where} deviates by {worst.max_rel:.2e} "
        f"(max abs {worst.max_abs:.2e}); tolerance {tolerance.describe()}"
    )
    state = deviation(got.runtime.get_optimizer_state(), ref.runtime.get_optimizer_state())
    assert state.max_rel <= tolerance.training, f"optimizer state {state.where}: {state.max_rel}"
    figures = {k: np.array(v) for k, v in got.history[0].items() if k not in ("epoch", "time")}
    expected = {k: np.array(v) for k, v in ref.history[0].items() if k not in ("epoch", "time")}
    assert deviation(figures, expected).max_rel <= tolerance.training


@pytest.mark.parametrize("backend", TRAINING)
def test_a_gan_with_batchnorm_and_two_optimizers_matches_the_reference(backend: str) -> None:
    need(backend)
    report = verify_gan(nnc.parse(VARIANT, "variant.nn"), backends=[backend], steps=10)
    assert report.equivalent, explain(report)
    assert report.notes and "generator/dense_1.bias" in report.notes[0]
