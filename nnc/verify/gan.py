"""Cross-backend equivalence of GAN training.

:func:`verify_gan` runs a GAN recipe on every requested backend from the same
canonical weights (``init_gan_weights``), on the same real batches and the same
noise, and compares with a float64 NumPy reference: G(z) and D(x) before training,
and after ``steps`` rounds (a discriminator step, then a generator step, as in
docs/semantics.md, "GAN") every step's figures, both models' weights and both
optimizers' state. Dropout is disabled (each framework draws its own masks).

Biases that feed a batchnorm have a true gradient of zero, so their updates are
float32 rounding noise; like :func:`nnc.verify.verify`, they are compared with an
absolute tolerance of the learning rates' sum instead. When a check fails, each
tensor's allowance for its own conditioning is worked out
(:func:`nnc.verify.sensitivity.trajectory_allowance`: a leaky_relu input within
rounding distance of its kink, say) and the check judged again with it.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from nnc.backends import registry
from nnc.backends.gancode import optimizers, select_gan
from nnc.backends.registry import parse_backend
from nnc.backends.runtime import GanRuntime
from nnc.ir.passes import check
from nnc.ir.passes.inline import inline_calls
from nnc.ir.program import Program
from nnc.ir.training import GanRecipe
from nnc.ir.weights import gan_models, init_gan_weights
from nnc.verify.cases import BATCH, REFERENCE, Report, Row, _no_dropout
from nnc.verify.sensitivity import trajectory_allowance
from nnc.verify.tolerance import (
    SYMBOLIC_LENGTH,
    Deviation,
    Tolerance,
    deviation,
    largest_reduction,
    tolerance_for,
)


@dataclass(frozen=True)
class GanCase:
    """What one GAN comparison runs: the checked program, its recipe, the initial
    weights, and per round a real batch and the two noise batches."""

    program: Program
    recipe: GanRecipe
    weights: dict[str, np.ndarray]
    rounds: list[tuple[np.ndarray, np.ndarray, np.ndarray]]  # real, D's noise, G's noise


@dataclass
class GanRun:
    outputs: dict[str, np.ndarray]
    figures: dict[str, np.ndarray] = field(default_factory=dict)
    weights_after: dict[str, np.ndarray] = field(default_factory=dict)
    state_after: dict[str, np.ndarray] = field(default_factory=dict)


def comparable_gan(
    program: Program, recipe: str | GanRecipe | None = None
) -> tuple[Program, GanRecipe]:
    """The checked program with dropout disabled, and its GAN recipe."""
    models = {
        n: m.model_copy(update={"nodes": tuple(_no_dropout(node) for node in m.nodes)})
        for n, m in program.models.items()
    }
    checked = check(program.model_copy(update={"models": models}))
    return checked, select_gan(checked, recipe.name if isinstance(recipe, GanRecipe) else recipe)


def make_gan_case(program: Program, recipe: GanRecipe, steps: int, seed: int = 0) -> GanCase:
    """Initial weights from ``seed``; per round a batch of real samples, uniform in
    [-1, 1] and shaped like the discriminator's input, and two noise batches drawn
    as the recipe's ``noise`` says."""
    rng = np.random.default_rng(seed)
    d_input = program.models[recipe.discriminator].inputs[0].type
    shape = (BATCH, *(d if isinstance(d, int) else SYMBOLIC_LENGTH for d in d_input.shape))
    rounds = []
    for _ in range(max(steps, 1)):
        real = rng.uniform(-1.0, 1.0, size=shape).astype(np.float32)
        rounds.append((real, _noise(rng, recipe), _noise(rng, recipe)))
    return GanCase(program, recipe, init_gan_weights(program, recipe, seed), rounds)


def _noise(rng: np.random.Generator, recipe: GanRecipe) -> np.ndarray:
    size = (BATCH, recipe.noise.size)
    if recipe.noise.dist == "normal":
        return rng.standard_normal(size).astype(np.float32)
    return rng.uniform(-1.0, 1.0, size).astype(np.float32)


def gan_tolerance(program: Program, recipe: GanRecipe) -> Tolerance:
    """The tolerance of the longer reduction of the two models (the generator step
    runs through both)."""
    worst = max(gan_models(recipe).values(), key=lambda m: largest_reduction(program, m, BATCH))
    return tolerance_for(program, worst, BATCH)


def noise_parameters(program: Program, recipe: GanRecipe) -> frozenset[str]:
    """Tensors whose updates are rounding noise: the bias of a layer whose output
    only a batchnorm reads (its true gradient is zero), that batchnorm's running
    mean, and their optimizer state."""
    out: set[str] = set()
    for role, model in gan_models(recipe).items():
        flat = inline_calls(program, model)
        readers: dict[str, list[bool]] = {}
        for node in flat.nodes:
            for ref in node.inputs:
                readers.setdefault(ref, []).append(node.centres_batch)
        for node in flat.nodes:
            if not node.centres_batch:
                continue
            for ref in node.inputs:
                if readers.get(ref) == [True]:
                    out |= {f"{role}/{ref}.bias", f"{role}/{node.name}.running_mean"}
    return frozenset(out)


def run_gan(backend: str, case: GanCase, train: bool = True) -> GanRun:
    """The outputs before training, and with ``train`` the figures, weights and
    optimizer state after the case's rounds."""
    runtime = _build(backend, case)
    real, z_d, _ = case.rounds[0]
    result = GanRun(
        {"generator": runtime.generate(z_d), "discriminator": runtime.discriminate(real)}
    )
    if not train:
        return result
    lrs = optimizers(case.recipe)
    figures: dict[str, list[float]] = {}
    for real, z_d, z_g in case.rounds:
        d = runtime.discriminator_step(real, z_d, lrs["discriminator"].lr)
        g = runtime.generator_step(z_g, lrs["generator"].lr)
        for name, value in {**d, **g}.items():
            figures.setdefault(name, []).append(value)
    result.figures = {name: np.array(values) for name, values in figures.items()}
    result.weights_after = runtime.get_weights()
    result.state_after = runtime.get_optimizer_state()
    return result


def _build(backend: str, case: GanCase) -> GanRuntime:
    if backend == REFERENCE:
        return (
            parse_backend("numpy")
            .load()
            .build_gan(case.program, case.recipe, case.weights, dtype="float64")
        )
    return parse_backend(backend).load().build_gan(case.program, case.recipe, case.weights)


def verify_gan(
    program: Program,
    recipe: str | GanRecipe | None = None,
    backends: Sequence[str] | None = None,
    steps: int = 10,
    seed: int = 0,
) -> Report:
    """Compare GAN training on every requested (default: every installed training)
    backend with the float64 NumPy reference, and every pair of backends."""
    prog, gan = comparable_gan(program, recipe)
    case = make_gan_case(prog, gan, steps, seed)
    tol = gan_tolerance(prog, gan)
    specs = (
        [parse_backend(b) for b in backends]
        if backends
        else registry.backends(trains=True, installed=True)
    )
    noisy = noise_parameters(prog, gan)
    lr_sum = steps * max(o.lr for o in optimizers(gan).values())
    notes = []
    if noisy:
        notes.append(
            "not identifiable: a bias feeding a batchnorm has a zero gradient whose float32 "
            "rounding noise the optimizers turn into steps; these tensors (and the running mean "
            f"absorbing them) are compared with an absolute tolerance of {lr_sum:.3g}: "
            + ", ".join(sorted(noisy))
        )
    ref = run_gan(REFERENCE, case)
    runs: dict[str, GanRun] = {}
    for spec in specs:
        spec.require_training()
        b = spec.name
        runs[b] = run_gan(b, case)

    def judged(allowed: Mapping[str | None, Mapping[str, float]]) -> list[Row]:
        rows = [
            _compare(b, REFERENCE, got, ref, tol, noisy, lr_sum, allowed.get(b))
            for b, got in runs.items()
        ]
        names = list(runs)
        for i, a in enumerate(names):
            for b in names[i + 1 :]:
                rows.append(
                    _compare(a, b, runs[a], runs[b], tol, noisy, lr_sum, allowed.get(None), True)
                )
        return rows

    rows = judged({})
    if not all(r.passed for r in rows):
        # The allowances only ever loosen a check: work them out only when one fails.
        rows = judged({b: gan_allowance(case, b) for b in [*runs, None]})
    what = f"{gan.generator} against {gan.discriminator} (GAN {gan.name})"
    return Report(model=what, tolerance=tol, steps=steps, rows=rows, notes=notes)


def trained_tensors(run: GanRun) -> dict[str, np.ndarray]:
    """What a GAN run is judged on after training: both models' weights, both
    optimizers' state and every round's figures, by name."""
    return {**run.weights_after, **run.state_after, **run.figures}


def gan_allowance(case: GanCase, backend: str | None = None) -> dict[str, float]:
    """Per trained tensor, the deviation the case's own conditioning explains (see
    :func:`~nnc.verify.sensitivity.trajectory_allowance`); ``backend`` None: for
    two backends against each other."""

    def rerun(b: str, weights: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        return trained_tensors(run_gan(b, dataclasses.replace(case, weights=dict(weights))))

    return trajectory_allowance(rerun, case.weights, backend)


def _compare(
    name: str,
    against: str,
    got: GanRun,
    ref: GanRun,
    tol: Tolerance,
    noisy: frozenset[str],
    lr_sum: float,
    allowed: Mapping[str, float] | None = None,
    pair: bool = False,
) -> Row:
    scale = 2.0 if pair else 1.0
    forward = deviation(got.outputs, ref.outputs)
    skip = noisy | {
        f"{n}.{slot}" for n in noisy for slot in ("velocity", "accumulator", "square_avg", "m", "v")
    }
    training = deviation(
        trained_tensors(got), trained_tensors(ref), skip, allowed, scale * tol.training
    )
    for n in noisy:
        a, b = got.weights_after.get(n), ref.weights_after.get(n)
        if a is not None and b is not None and float(np.abs(a - b).max()) > lr_sum:
            training = training.worse(Deviation(float(np.abs(a - b).max()), math.inf, n))
    passed = forward.max_rel <= scale * tol.forward and training.max_rel <= scale * tol.training
    return Row(name, against, forward, None, training, passed)
