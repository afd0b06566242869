"""Every example through the TensorFlow backend: golden code, one training step, and
outputs, loss, gradients and batchnorm statistics against the float64 reference of
these tests and against nnc's NumPy backend run in float64 (tolerances in
helpers.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

import nnc
from nnc.backends import numpy as numpy_backend
from nnc.backends import tensorflow as backend
from nnc.backends.codegen import select
from nnc.backends.tensorflow.graph import uses_training
from nnc.ir.training import BinaryCrossEntropy, CdRecipe, GanRecipe, Recipe
from tests.backends.tensorflow import reference as ref
from tests.backends.tensorflow.helpers import (
    GRADIENT_RTOL,
    OUTPUT_RTOL,
    compare_gradients,
    deviation,
    gradient_scale,
    sample_inputs,
    sample_target,
    without_dropout,
)
from tests.conftest import EXAMPLE_FILES, SMALL_EXAMPLE_FILES, load_example


def test_golden(example: Path, golden) -> None:  # type: ignore[no-untyped-def]
    program = nnc.load(example)
    code = backend.emit(program, source=f"examples/{example.name}")
    golden(f"tensorflow/{example.stem}.py", code)


def _trained_models(program: nnc.Program) -> list[tuple[str, Recipe | None]]:
    """(model, supervised recipe) pairs to check; a GAN's discriminator counts, with
    its binary cross-entropy step; a model trained by contrastive divergence (which
    has no loss, and trains on numpy) has its outputs checked only."""
    model, recipe = select(program)
    if isinstance(recipe, GanRecipe):
        return [
            (
                recipe.discriminator,
                Recipe(
                    name=recipe.name,
                    model=recipe.discriminator,
                    data=recipe.data,
                    loss=BinaryCrossEntropy(from_logits=recipe.from_logits),
                    optimizer=recipe.discriminator_optimizer or recipe.optimizer,
                ),
            )
        ]
    if recipe is None:
        assert isinstance(program.recipes[next(iter(program.recipes))], CdRecipe)
    return [(model.name, recipe)]


@pytest.mark.parametrize("path", SMALL_EXAMPLE_FILES, ids=lambda p: p.stem)
def test_matches_reference(path: Path, runtimes: Any) -> None:
    program = without_dropout(load_example(path))
    rng = np.random.default_rng(0)
    for model, recipe in _trained_models(program):
        rt = runtimes(f"example-{path.stem}-{model}", lambda m=model: backend.build(program, m))
        (x,) = sample_inputs(program, model, 4, rng)
        weights = rt.get_weights()
        # Outputs, evaluation and training mode.
        (expected,) = ref.run(program, model, weights, [x])
        assert deviation(rt.forward(x), expected) < OUTPUT_RTOL
        if recipe is None:
            continue
        mode = ref.Pass(training=True)
        (expected_training,) = ref.run(program, model, weights, [x], mode)
        if uses_training(program, program.models[model]):  # else the graph above again
            assert deviation(rt.forward(x, training=True), expected_training) < OUTPUT_RTOL
        # Loss, in evaluation mode.
        y = sample_target(recipe.loss, expected.shape, rng)
        assert abs(rt.loss(x, y) - ref.loss_value(recipe.loss, expected, y)) < OUTPUT_RTOL * max(
            1.0, abs(ref.loss_value(recipe.loss, expected, y))
        )
        # Gradients against finite differences of the reference.
        worst, where = compare_gradients(program, model, recipe, rt, x, y, rng)
        assert worst < GRADIENT_RTOL, f"{path.stem}: gradient of {where} deviates by {worst:.2e}"
        # The train step returns the training-mode loss before its update and moves
        # batchnorm statistics as the reference does.
        loss = rt.train_step(x, y, 0.01)
        assert abs(loss - ref.loss_value(recipe.loss, expected_training, y)) < OUTPUT_RTOL * max(
            1.0, abs(loss)
        )
        after = rt.get_weights()
        for name, value in mode.updates.items():
            assert deviation(after[name], value) < OUTPUT_RTOL, name
        rt.set_weights(weights)


@pytest.mark.parametrize("path", SMALL_EXAMPLE_FILES, ids=lambda p: p.stem)
def test_matches_numpy_backend(path: Path, runtimes: Any) -> None:
    """Same canonical weights, same batch: the NumPy backend in float64 gives the same
    outputs, loss and (every entry of the) gradients, and after one train step (the
    recipe's optimizer, L2 included) the same weights and optimizer state. The NumPy
    backend's gradients are written out by hand, the reference's are finite
    differences: two independent checks."""
    program = without_dropout(load_example(path))
    rng = np.random.default_rng(7)
    for model, recipe in _trained_models(program):
        rt = runtimes(f"example-{path.stem}-{model}", lambda m=model: backend.build(program, m))
        start = rt.get_weights()
        reference = numpy_backend.build(program, model, weights=start, dtype="float64")
        (x,) = sample_inputs(program, model, 4, rng)
        expected = reference.forward(x)
        assert deviation(rt.forward(x), expected) < OUTPUT_RTOL
        if recipe is None:
            continue
        y = sample_target(recipe.loss, expected.shape, rng)
        assert abs(rt.loss(x, y) - reference.loss(x, y)) < OUTPUT_RTOL * max(
            1.0, abs(rt.loss(x, y))
        )
        got, want = rt.gradients(x, y), reference.gradients(x, y)
        assert sorted(got) == sorted(want)
        largest = max(float(np.max(np.abs(g))) for g in want.values())
        for name, g in want.items():
            worst = float(np.max(np.abs(got[name] - g))) / gradient_scale(g, largest)
            assert worst < GRADIENT_RTOL, f"{path.stem}: gradient of {name} deviates by {worst:.2e}"
        state = rt.get_optimizer_state()
        reference.set_optimizer_state(state)
        lr = 0.01
        loss = rt.train_step(x, y, lr)
        assert loss == pytest.approx(reference.train_step(x, y, lr), rel=OUTPUT_RTOL)
        after = rt.get_weights()
        for name, value in reference.get_weights().items():
            # Where the true gradient is 0 (a conv bias before batchnorm), Adam turns
            # rounding noise (1e-9 in float32, 1e-11 in float64) into steps of up to
            # lr: any update there is as right as another, so those entries are not
            # compared.
            defined = np.abs(want[name]) > 1e-7 if name in want else np.ones(value.shape, bool)
            assert deviation(after[name][defined], value[defined]) < OUTPUT_RTOL, name
        want_state = reference.get_optimizer_state()
        for name, value in rt.get_optimizer_state().items():
            assert deviation(value, want_state[name]) < OUTPUT_RTOL, name
        rt.set_weights(start)
        rt.set_optimizer_state(state)


@pytest.mark.parametrize(
    "path",
    [p for p in EXAMPLE_FILES if p.stem in ("digits_cnn", "digits_mlp")],
    ids=lambda p: p.stem,
)
def test_trains_with_dropout(path: Path, runtimes: Any) -> None:
    """The examples with dropout, as written: a step runs, and seeding replays it."""
    program = nnc.load(path)
    rt = backend.build(program, jit_compile=False)
    rng = np.random.default_rng(1)
    (x,) = sample_inputs(program, select(program)[0].name, 8, rng)
    y = sample_target(select(program)[1].loss, (8, 10), rng)  # type: ignore[union-attr]
    start = rt.get_weights()
    rt.seed(5)
    first = rt.forward(x, training=True)
    rt.seed(5)
    assert np.array_equal(rt.forward(x, training=True), first)
    assert not np.array_equal(rt.forward(x, training=True), first)  # a fresh mask
    loss = rt.train_step(x, y, 0.01)
    assert np.isfinite(loss)
    assert any(not np.array_equal(start[k], v) for k, v in rt.get_weights().items())


def test_generator_of_a_gan_runs_but_does_not_train(runtimes: Any) -> None:
    program = nnc.load(Path(__file__).parents[3] / "examples" / "gan.nn")
    rt = runtimes("gan-generator", lambda: backend.build(program, "Generator"))
    rng = np.random.default_rng(2)
    (z,) = sample_inputs(program, "Generator", 3, rng)
    (expected,) = ref.run(program, "Generator", rt.get_weights(), [z])
    assert deviation(rt.forward(z), expected) < OUTPUT_RTOL
    with pytest.raises(nnc.NncError, match="generator of GAN recipe 'DigitsGAN'"):
        rt.train_step(z, expected, 0.1)
