"""Every example compiles, imports and trains a step on the PyTorch backend, and its
outputs and gradients match the float64 reference on the same canonical weights
and batch (dropout off for the gradients; tolerances in ``support``).

Gradients are checked at up to 10 random entries of every parameter by central
differences, and along one random direction through all parameters at once
(``|g·d - numeric| <= 1e-4 * sum |g||d|``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import nnc
from nnc.backends import torch as backend
from nnc.backends.codegen import select
from nnc.ir.training import GanRecipe, Recipe
from tests.backends.torch import reference, support
from tests.backends.torch.test_semantics import targets_for
from tests.conftest import SMALL_EXAMPLE_FILES, load_example

pytestmark = pytest.mark.usefixtures("needs_torch")

BATCH = 4


@pytest.mark.parametrize("example", SMALL_EXAMPLE_FILES, ids=lambda p: p.stem)
def test_example_matches_reference(example: Path) -> None:
    program = load_example(example)
    root, recipe = select(program)
    rng = np.random.default_rng(0)
    names = (
        [recipe.generator, recipe.discriminator] if isinstance(recipe, GanRecipe) else [root.name]
    )
    for name in names:
        model = program.models[name]
        weights = support.random_weights(program, model, rng)
        inputs = support.random_inputs(program, model, BATCH, rng, support.SEQUENCE_LENGTH)
        output = backend.build(program, name, weights=weights).forward(*inputs)
        support.assert_close(
            support.forward_deviations(program, name, weights, inputs, [output], training=False)
        )
    if isinstance(recipe, Recipe):
        check_training(program, recipe, weights, inputs[0], rng)


def check_training(
    program: nnc.Program,
    recipe: Recipe,
    weights: dict[str, np.ndarray],
    x: np.ndarray,
    rng: np.random.Generator,
) -> None:
    program = support.without_dropout(program)
    name = recipe.model
    runtime = backend.build(program, name, weights=weights)
    output_shape = (
        BATCH,
        *support.concrete(program.models[name].output_types[0], support.SEQUENCE_LENGTH),
    )
    t = targets_for(recipe.loss.kind, output_shape, rng)
    trace = reference.Trace()
    reference.run(program, name, weights, [x], training=True, trace=trace)

    def loss(w: dict[str, np.ndarray]) -> float:
        frozen = reference.Trace(steps=trace.steps, frozen=True)
        y = reference.run(program, name, w, [x], training=True, trace=frozen)[0]
        return reference.loss_value(recipe.loss, y, t)

    grads = runtime.gradients(x, t)
    assert sorted(grads) == sorted(support.trainable_names(program, program.models[name]))
    numeric = reference.numeric_gradient(loss, weights, list(grads), limit=10)
    support.assert_close(
        [
            support.deviation(f"d/d {n}", grads[n].reshape(-1)[i], d, support.GRADIENT_RTOL, 1e-2)
            for n, (i, d) in numeric.items()
        ]
    )
    direction = {n: rng.normal(size=g.shape) for n, g in grads.items()}
    eps = 1e-6
    up = {**weights, **{n: weights[n] + eps * d for n, d in direction.items()}}
    down = {**weights, **{n: weights[n] - eps * d for n, d in direction.items()}}
    along = (loss(up) - loss(down)) / (2 * eps)
    analytic = sum(float(np.sum(grads[n] * d)) for n, d in direction.items())
    scale = sum(float(np.sum(np.abs(grads[n] * d))) for n, d in direction.items())
    assert abs(analytic - along) <= 1e-4 * scale, (analytic, along, scale)

    before = runtime.get_weights()
    assert runtime.train_step(x, t, recipe.optimizer.lr) == pytest.approx(loss(weights), rel=1e-5)
    after = runtime.get_weights()
    moved = [n for n in grads if not np.array_equal(after[n], before[n])]
    assert moved == [n for n in grads if np.any(grads[n])]
    assert int(runtime.get_optimizer_state()["step"]) == 1
