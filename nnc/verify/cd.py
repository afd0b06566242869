"""Cross-backend equivalence of contrastive divergence (``nnc verify`` on a CD recipe).

:func:`verify_cd` runs ``steps`` CD steps of every rbm layer of a CD recipe's model on
every requested backend (numpy, torch, tensorflow: the steps of
:func:`nnc.train.cd_session.backend_step`, in float32) and on the float64 NumPy
reference, from the same canonical weights (``init_weights`` from ``seed``), on the
same batches and the same uniforms (:func:`nnc.train.energy.draw_uniforms`, from
``cd_generator(seed)``), and compares:

- ``recon_error``: every step's reconstruction error (the "forward" check: the up
  pass, a hidden sample and the down pass);
- after the steps, every weight, every velocity and the chain each step ended on
  (``<layer>.chain.<step>``). The chains are samples, compared exactly: one flipped
  unit deviates by 1, far over any tolerance.

Each layer of a stack is checked on its own batches (CD trains one layer at a time):
per step ``BATCH`` samples of the layer's visible size, Bernoulli(0.5) for Bernoulli
visible units, standard normal for Gaussian ones. The tolerance is that of the
longest float32 sum of a step, ``K = max(visible, hidden, BATCH)``
(:func:`nnc.verify.tolerance.tolerance_for`'s rule).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from nnc.errors import RecipeError
from nnc.ir.passes import check
from nnc.ir.program import Program
from nnc.ir.training import CdRecipe, Recipe
from nnc.ir.weights import init_weights
from nnc.train.energy import Arrays, CdSettings, Uniforms, cd_generator, cd_step, draw_uniforms
from nnc.verify.cases import BATCH, REFERENCE, Report, Row
from nnc.verify.tolerance import (
    CEILING,
    FLOOR,
    FORWARD_FACTOR,
    Deviation,
    Tolerance,
    deviation,
)

PARAMS = ("weight", "visible_bias", "hidden_bias")
Step = Callable[..., tuple[Arrays, Arrays, np.ndarray, float]]


def cd_backends() -> list[str]:
    """The backends with a contrastive divergence step, from the registry."""
    from nnc.backends.registry import backends

    return [b.name for b in backends(cd=True)]


@dataclass(frozen=True)
class CdLayer:
    """One rbm layer of the case: its name, visible kind, initial weights, and per
    step a batch and its uniforms."""

    name: str
    visible: str
    weights: Arrays  # float32, canonical
    batches: list[np.ndarray]
    uniforms: list[Uniforms]


@dataclass(frozen=True)
class CdCase:
    recipe: CdRecipe
    settings: CdSettings
    layers: list[CdLayer]


@dataclass
class CdRun:
    errors: dict[str, np.ndarray] = field(default_factory=dict)  # <layer>.recon_error
    after: dict[str, np.ndarray] = field(default_factory=dict)  # weights, velocities, chains


def default_cd(program: Program, model: str | None = None) -> CdRecipe | None:
    """The CD recipe ``nnc verify`` checks: the one that trains the model to verify
    (named, or the only model of a program without a supervised recipe), when no
    supervised recipe trains it."""
    recipes = list(program.recipes.values())
    if model is None:
        if any(isinstance(r, Recipe) for r in recipes) or len(program.models) != 1:
            chosen = next((r for r in recipes if isinstance(r, CdRecipe)), None)
            supervised = {r.model for r in recipes if isinstance(r, Recipe)}
            if chosen is None or supervised or len(program.models) != 1:
                return None
        model = next(iter(program.models))
    if any(isinstance(r, Recipe) and r.model == model for r in recipes):
        return None
    return next((r for r in recipes if isinstance(r, CdRecipe) and r.model == model), None)


def select_cd(program: Program, recipe: str | CdRecipe | None) -> CdRecipe:
    if isinstance(recipe, CdRecipe):
        return recipe
    found = [
        r for r in program.recipes.values() if isinstance(r, CdRecipe) and recipe in (None, r.name)
    ]
    if len(found) != 1:
        names = ", ".join(r.name for r in program.recipes.values() if isinstance(r, CdRecipe))
        raise RecipeError(
            "verify_cd needs one contrastive divergence recipe"
            + (f" named '{recipe}'" if recipe else "")
            + f". Received: {names or 'none'}"
        )
    return found[0]


def make_cd_case(program: Program, recipe: CdRecipe, steps: int, seed: int = 0) -> CdCase:
    """Initial weights from ``seed``; per layer and step a batch from
    ``default_rng(seed)`` and the step's uniforms from ``cd_generator(seed)``."""
    model = program.models[recipe.model]
    weights = init_weights(program, model, seed)
    o = recipe.optimizer
    settings = CdSettings(o.k, o.lr, o.momentum, o.weight_decay, o.persistent)
    data_rng, uniforms = np.random.default_rng(seed), cd_generator(seed)
    layers = []
    for node in model.nodes:
        w = {p: weights[f"{node.name}.{p}"] for p in PARAMS}
        visible, hidden = w["weight"].shape
        kind = getattr(node, "visible", "bernoulli")
        batches, drawn = [], []
        for _ in range(steps):
            if kind == "gaussian":
                v0 = data_rng.standard_normal((BATCH, visible))
            else:
                v0 = (data_rng.random((BATCH, visible)) < 0.5).astype(np.float64)
            batches.append(v0)
            drawn.append(draw_uniforms(uniforms, settings.k, BATCH, visible, hidden, kind))
        layers.append(CdLayer(node.name, kind, w, batches, drawn))
    return CdCase(recipe, settings, layers)


def backend_steps(backend: str) -> Step:
    if backend == REFERENCE:
        return cd_step
    from nnc.train.cd_session import backend_step

    return backend_step(backend, None)


def run_cd(backend: str, case: CdCase, step: Step | None = None) -> CdRun:
    """Every layer's ``steps`` CD steps on ``backend`` (``reference``: float64 NumPy)."""
    step = step or backend_steps(backend)
    dtype = np.float64 if backend == REFERENCE else np.float32
    out = CdRun()
    for layer in case.layers:
        w = {p: a.astype(dtype) for p, a in layer.weights.items()}
        velocity = {p: np.zeros_like(a) for p, a in w.items()}
        chain = layer.batches[0].astype(dtype) if case.settings.persistent else None
        errors = []
        for i, (v, u) in enumerate(zip(layer.batches, layer.uniforms, strict=True)):
            w, velocity, vk, error = step(
                w, velocity, v.astype(dtype), u, case.settings, chain, visible=layer.visible
            )
            chain = vk if case.settings.persistent else None
            errors.append(error)
            out.after[f"{layer.name}.chain.{i + 1}"] = np.asarray(vk)
        out.errors[f"{layer.name}.recon_error"] = np.array(errors)
        for p in PARAMS:
            out.after[f"{layer.name}.{p}"] = np.asarray(w[p])
            out.after[f"{layer.name}.{p}.velocity"] = np.asarray(velocity[p])
    return out


def cd_tolerance(case: CdCase) -> Tolerance:
    """The tolerance of the longest float32 sum of a step: ``v W`` over the visible
    units, ``h Wᵀ`` over the hidden ones, the statistics over the batch."""
    k = max(max(max(layer.weights["weight"].shape), BATCH) for layer in case.layers)
    forward = min(max(FORWARD_FACTOR * math.sqrt(k), FLOOR), CEILING)
    return Tolerance(reduction=k, forward=forward, gradient=5 * forward, training=25 * forward)


def verify_cd(
    program: Program,
    recipe: str | CdRecipe | None = None,
    backends: Sequence[str] | None = None,
    steps: int = 10,
    seed: int = 0,
    steps_of: dict[str, Step] | None = None,
) -> Report:
    """Compare ``steps`` CD steps per rbm layer on every requested backend (default:
    numpy, torch and tensorflow, those installed) with the float64 NumPy reference,
    and every pair of backends. ``steps_of`` replaces a backend's step (tests)."""
    from nnc.backends.registry import parse_backend

    checked = check(program)
    cd = select_cd(checked, recipe)
    case = make_cd_case(checked, cd, steps, seed)
    tol = cd_tolerance(case)
    if backends:
        names = [parse_backend(b).name for b in backends]
    else:
        names = [b for b in cd_backends() if parse_backend(b).available()]
    for name in names:
        if name not in cd_backends():
            raise RecipeError(
                f"contrastive divergence runs on the {', '.join(cd_backends())} backends; "
                f"the {name} backend has no CD step",
                cd.span,
            )
        parse_backend(name).require()
    ref = run_cd(REFERENCE, case)
    runs = {b: run_cd(b, case, (steps_of or {}).get(b)) for b in names}
    rows = [_compare(b, REFERENCE, got, ref, tol) for b, got in runs.items()]
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            rows.append(_compare(a, b, runs[a], runs[b], tol, pair=True))
    layers = ", ".join(f"{layer.name} ({layer.visible})" for layer in case.layers)
    notes = [
        f"CD-{cd.optimizer.k}{' persistent' if cd.optimizer.persistent else ''}, "
        f"{steps} steps per layer, batch {BATCH}, the same uniforms on every backend; "
        f"layers {layers}"
    ]
    what = f"{cd.model} (contrastive divergence, recipe {cd.name})"
    return Report(model=what, tolerance=tol, steps=steps, rows=rows, notes=notes)


def _compare(
    name: str, against: str, got: CdRun, ref: CdRun, tol: Tolerance, pair: bool = False
) -> Row:
    scale = 2.0 if pair else 1.0
    errors = deviation(got.errors, ref.errors)
    training = deviation(got.after, ref.after)
    passed = errors.max_rel <= scale * tol.forward and training.max_rel <= scale * tol.training
    diagnosis = [] if passed else _diagnose(got, ref, training)
    return Row(name, against, errors, None, training, passed, diagnosis=diagnosis)


def _diagnose(got: CdRun, ref: CdRun, training: Deviation) -> list[str]:
    """The first step whose chain differs (a wrong sampling rule, or a tie of a
    uniform with a probability within float32 rounding), else the worst tensor."""
    for key, value in ref.after.items():
        if ".chain." in key:
            off = np.abs(np.asarray(got.after[key], np.float64) - value) > 1e-3
            if off.any():
                return [f"{key}: {int(off.sum())} of {value.size} sampled units differ"]
    return [f"worst after training: {training.where} (max abs {training.max_abs:.3g})"]
