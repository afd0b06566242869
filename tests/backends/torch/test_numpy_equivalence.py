"""The PyTorch backend against the NumPy backend in float64, on the same canonical
weights and batches: every example's outputs, loss and gradients, and K = 20
optimizer steps of every optimizer.

Tolerances (torch runs in float32): outputs and losses within
``1e-5 * max(1, scale)``; gradients within ``1e-4 * max(1e-2, scale)`` per tensor;
weights after one step or 20 steps within ``2e-5 * max(1, scale)``. After an example's
first Adam step, weights are compared where the gradient is at least 1e-4 of the
model's largest: elsewhere ``lr * g / (|g| + eps)`` amplifies round-off.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from nnc.backends import numpy as numpy_backend
from nnc.backends import torch as torch_backend
from nnc.backends.codegen import select
from nnc.ir.training import GanRecipe, Recipe, learning_rate
from tests.backends.torch import support
from tests.backends.torch.test_optimizers import BATCHES, OPTIMIZERS, K, batches, program_for
from tests.backends.torch.test_semantics import targets_for
from tests.conftest import SMALL_EXAMPLE_FILES, load_example

pytestmark = pytest.mark.usefixtures("needs_torch")

BATCH = 4


def outputs(runtime: object, *inputs: np.ndarray) -> list[np.ndarray]:
    out = runtime.forward(*inputs)  # type: ignore[attr-defined]
    return list(out) if isinstance(out, tuple) else [out]


@pytest.mark.parametrize("example", SMALL_EXAMPLE_FILES, ids=lambda p: p.stem)
def test_example_matches_the_numpy_backend(example: Path) -> None:
    program = load_example(example)
    root, recipe = select(program)
    rng = np.random.default_rng(7)
    names = (
        [recipe.generator, recipe.discriminator] if isinstance(recipe, GanRecipe) else [root.name]
    )
    found = []
    for name in names:
        model = program.models[name]
        weights = support.random_weights(program, model, rng)
        inputs = support.random_inputs(program, model, BATCH, rng, support.SEQUENCE_LENGTH)
        ours = torch_backend.build(program, name, weights=weights)
        theirs = numpy_backend.build(program, name, weights=weights, dtype="float64")
        for k, (a, b) in enumerate(
            zip(outputs(ours, *inputs), outputs(theirs, *inputs), strict=True)
        ):
            found.append(support.deviation(f"{name} output {k}", a, b, support.FORWARD_RTOL, 1.0))
    if isinstance(recipe, Recipe):
        program = support.without_dropout(program)
        ours = torch_backend.build(program, recipe.model, weights=weights)
        theirs = numpy_backend.build(program, recipe.model, weights=weights, dtype="float64")
        x = inputs[0]
        t = targets_for(recipe.loss.kind, outputs(theirs, x)[0].shape, rng)
        found.append(
            support.deviation("loss", ours.loss(x, t), theirs.loss(x, t), support.FORWARD_RTOL, 1.0)
        )
        mine, reference = ours.gradients(x, t), theirs.gradients(x, t)
        assert sorted(mine) == sorted(reference)
        for n in mine:
            found.append(
                support.deviation(f"d/d {n}", mine[n], reference[n], support.GRADIENT_RTOL, 1e-2)
            )
        lr = recipe.optimizer.lr
        found.append(
            support.deviation(
                "train_step",
                ours.train_step(x, t, lr),
                theirs.train_step(x, t, lr),
                support.FORWARD_RTOL,
                1.0,
            )
        )
        after = theirs.get_weights()
        largest = max(float(np.max(np.abs(g))) for g in reference.values())
        for n, value in ours.get_weights().items():
            # Adam's first step is lr * g / (|g| + eps): where the true gradient is ~0
            # (a conv bias before batchnorm) it only amplifies float32 round-off.
            keep = np.abs(reference[n]) >= 1e-4 * largest if n in reference else ...
            found.append(
                support.deviation(f"{n} after a step", value[keep], after[n][keep], 2e-5, 1.0)
            )
    support.assert_close(found)


@pytest.mark.parametrize("optimizer", sorted(OPTIMIZERS))
def test_optimizer_trajectory_matches_the_numpy_backend(optimizer: str) -> None:
    program = program_for(
        OPTIMIZERS[optimizer], " l2 0.01\n schedule step(every = 2, gamma = 0.5)\n"
    )
    recipe = program.recipes["Net"]
    ours = torch_backend.build(program)
    theirs = numpy_backend.build(program, dtype="float64")
    for k, (x, t) in enumerate(batches()):
        lr = learning_rate(recipe.optimizer.lr, recipe.schedule, k // BATCHES)
        assert ours.train_step(x, t, lr) == pytest.approx(
            theirs.train_step(x, t, lr), rel=2e-5, abs=2e-5
        )
    found = []
    for name, value in ours.get_weights().items():
        found.append(support.deviation(name, value, theirs.get_weights()[name], 2e-5, 1.0))
    mine, reference = ours.get_optimizer_state(), theirs.get_optimizer_state()
    assert sorted(mine) == sorted(reference) and int(mine["step"]) == int(reference["step"]) == K
    for name in mine:
        if name != "step":
            found.append(support.deviation(name, mine[name], reference[name], 2e-5, 1.0))
    support.assert_close(found)


def test_optimizer_state_moves_between_backends() -> None:
    program = program_for(OPTIMIZERS["adam"])
    data = batches(2)
    theirs = numpy_backend.build(program, dtype="float64")
    for x, t in data[:5]:
        theirs.train_step(x, t, 0.01)
    ours = torch_backend.build(program, weights=theirs.get_weights())
    ours.set_optimizer_state(theirs.get_optimizer_state())
    for x, t in data[5:10]:
        assert ours.train_step(x, t, 0.01) == pytest.approx(theirs.train_step(x, t, 0.01), rel=2e-5)
    support.assert_close(
        [
            support.deviation(n, v, theirs.get_weights()[n], 2e-5, 1.0)
            for n, v in ours.get_weights().items()
        ]
    )
