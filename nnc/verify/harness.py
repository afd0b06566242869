"""Differential testing of backends: one model, the same canonical weights and
batches everywhere, compared with a float64 NumPy reference.

:func:`verify` runs a model on every requested backend and measures, against the
reference, the forward outputs, the gradients of the loss with respect to every
parameter, and the parameters, losses and optimizer state after ``steps`` training
steps. Dropout is disabled for the comparison (each framework draws its own masks).
When the forward pass deviates, :func:`first_deviating_layer` names the first layer
whose output does.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from nnc.backends import backend_name, framework_available, get_backend
from nnc.backends.runtime import Runtime
from nnc.errors import BackendError, RecipeError
from nnc.ir.ops.dense import Embedding
from nnc.ir.ops.reshape import Dropout
from nnc.ir.passes import check
from nnc.ir.passes.inline import inline_calls
from nnc.ir.program import Model, Program
from nnc.ir.training import (
    BinaryCrossEntropy,
    CrossEntropy,
    DataFile,
    Mse,
    Recipe,
    learning_rate,
)
from nnc.ir.weights import init_weights
from nnc.verify.tolerance import (
    SYMBOLIC_LENGTH,
    Deviation,
    Tolerance,
    deviation,
    tolerance_for,
)

REFERENCE = "reference"  # the NumPy backend in float64
TRAINING_BACKENDS = ("numpy", "torch", "tensorflow")
INFERENCE_BACKENDS = ("onnx",)
BATCH = 8


@dataclass(frozen=True)
class Case:
    """What one comparison runs: a checked program with one supervised recipe, the
    model, the initial weights and the batches of each training step."""

    program: Program
    model: str
    weights: dict[str, np.ndarray]
    batches: list[tuple[list[np.ndarray], np.ndarray]]
    lrs: list[float]

    @property
    def inputs(self) -> list[np.ndarray]:
        return self.batches[0][0]

    @property
    def target(self) -> np.ndarray:
        return self.batches[0][1]


@dataclass
class Run:
    """What one backend computed for a case."""

    outputs: dict[str, np.ndarray]
    gradients: dict[str, np.ndarray] = field(default_factory=dict)
    losses: list[float] = field(default_factory=list)
    weights_after: dict[str, np.ndarray] = field(default_factory=dict)
    state_after: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass
class Row:
    """One backend (or pair of backends) against another."""

    backend: str
    against: str
    forward: Deviation
    gradients: Deviation | None
    training: Deviation | None
    passed: bool
    first_bad_layer: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Report:
    model: str
    tolerance: Tolerance
    steps: int
    rows: list[Row]
    notes: list[str] = field(default_factory=list)

    @property
    def equivalent(self) -> bool:
        return all(r.passed for r in self.rows)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "steps": self.steps,
            "tolerance": asdict(self.tolerance),
            "rows": [r.to_dict() for r in self.rows],
            "notes": self.notes,
            "equivalent": self.equivalent,
        }


# -- preparing a case ---------------------------------------------------------------------


def comparable(
    program: Program,
    model: str | None = None,
    optimizer: Any = None,
    schedule: Any = None,
) -> tuple[Program, str]:
    """The program with dropout disabled and exactly one supervised recipe for
    ``model`` (the existing one, with optimizer/schedule substituted; or mse + sgd)."""
    name = model or next(
        (r.model for r in program.recipes.values() if isinstance(r, Recipe)),
        next(iter(program.models)),
    )
    models = {
        n: m.model_copy(update={"nodes": tuple(_no_dropout(node) for node in m.nodes)})
        for n, m in program.models.items()
    }
    recipe = next(
        (r for r in program.recipes.values() if isinstance(r, Recipe) and r.model == name), None
    )
    if recipe is None:
        recipe = Recipe(
            name=f"verify_{name}", model=name, data=DataFile(path="<synthetic>"), loss=Mse()
        )
    update: dict[str, Any] = {}
    if optimizer is not None:
        update["optimizer"] = optimizer
    if schedule is not None:
        update["schedule"] = schedule
    recipe = recipe.model_copy(update=update)
    checked = check(program.model_copy(update={"models": models, "recipes": {recipe.name: recipe}}))
    return checked, name


def _no_dropout(node: Any) -> Any:
    return node.model_copy(update={"rate": 0.0}) if isinstance(node, Dropout) else node


STEPS_PER_EPOCH = 2  # the schedule advances one epoch every two steps


def make_case(program: Program, model: str, steps: int, seed: int = 0) -> Case:
    """Weights from the seed and one synthetic batch per step, shaped for the model;
    the learning rate of step ``i`` is the schedule's at epoch ``i // STEPS_PER_EPOCH``."""
    recipe = next(iter(program.recipes.values()))
    if not isinstance(recipe, Recipe):
        raise RecipeError("verification needs a supervised recipe")
    rng = np.random.default_rng(seed)
    m = program.models[model]
    batches = [_batch(program, m, recipe, rng) for _ in range(max(steps, 1))]
    lrs = [
        learning_rate(recipe.optimizer.lr, recipe.schedule, i // STEPS_PER_EPOCH)
        for i in range(steps)
    ]
    return Case(program, model, init_weights(program, model, seed), batches, lrs)


def _batch(
    program: Program, m: Model, recipe: Recipe, rng: np.random.Generator
) -> tuple[list[np.ndarray], np.ndarray]:
    vocab = _vocab_limits(program, m)
    inputs = []
    for i in m.inputs:
        shape = (BATCH, *(d if isinstance(d, int) else SYMBOLIC_LENGTH for d in i.type.shape))
        if i.type.dtype == "int64":
            inputs.append(rng.integers(0, vocab.get(i.name, 2), size=shape).astype(np.int64))
        else:
            inputs.append(rng.normal(size=shape).astype(np.float32))
    if recipe.target == "input":
        return inputs, inputs[0]
    out = m.output_types[0]
    shape = (BATCH, *(d if isinstance(d, int) else SYMBOLIC_LENGTH for d in out.shape))
    if isinstance(recipe.loss, CrossEntropy):
        target = np.eye(shape[-1], dtype=np.float32)[rng.integers(0, shape[-1], size=shape[:-1])]
    elif isinstance(recipe.loss, BinaryCrossEntropy):
        target = rng.uniform(0.05, 0.95, size=shape).astype(np.float32)
    else:
        target = rng.normal(size=shape).astype(np.float32)
    return inputs, target


def _vocab_limits(program: Program, m: Model) -> dict[str, int]:
    flat = inline_calls(program, m)
    limits: dict[str, int] = {}
    for node in flat.nodes:
        if isinstance(node, Embedding):
            for ref in node.inputs:
                limits[ref] = min(limits.get(ref, node.vocab), node.vocab)
    return limits


# -- running -------------------------------------------------------------------------------


def build(backend: str, case: Case, program: Program | None = None) -> Runtime:
    program = program or case.program
    if backend == REFERENCE:
        return get_backend("numpy").build(program, case.model, case.weights, dtype="float64")
    return get_backend(backend).build(program, case.model, case.weights)


def run(backend: str, case: Case, train: bool = True) -> Run:
    runtime = build(backend, case)
    outputs = _outputs(runtime, case.model, case.program, case.inputs)
    result = Run(outputs=outputs)
    if not train:
        return result
    x, y = case.inputs[0], case.target
    result.gradients = dict(runtime.gradients(x, y))
    for (inputs, target), lr in zip(case.batches, case.lrs, strict=False):
        result.losses.append(float(runtime.train_step(inputs[0], target, lr)))
    result.weights_after = dict(runtime.get_weights())
    result.state_after = dict(runtime.get_optimizer_state())
    return result


def _outputs(
    runtime: Runtime, model: str, program: Program, inputs: Sequence[np.ndarray]
) -> dict[str, np.ndarray]:
    out = runtime.forward(*inputs)
    names = program.models[model].outputs
    values = out if isinstance(out, tuple | list) else (out,)
    return {n: np.asarray(v) for n, v in zip(names, values, strict=True)}


# -- comparing -------------------------------------------------------------------------------


def verify(
    program: Program,
    model: str | None = None,
    backends: Sequence[str] | None = None,
    steps: int = 20,
    seed: int = 0,
    optimizer: Any = None,
    schedule: Any = None,
    locate: bool = True,
) -> Report:
    """Compare every requested (default: every installed) backend with the reference."""
    prog, name = comparable(program, model, optimizer, schedule)
    case = make_case(prog, name, steps, seed)
    tol = tolerance_for(prog, name, BATCH)
    chosen = (
        [backend_name(b) for b in backends]
        if backends
        else [b for b in (*TRAINING_BACKENDS, *INFERENCE_BACKENDS) if framework_available(b)]
    )
    ref = run(REFERENCE, case)
    noisy = _noise_parameters(prog, name, ref.gradients)
    notes = []
    if noisy:
        notes.append(
            "not identifiable: a bias feeding a batchnorm has a zero gradient whose float32 "
            "rounding noise adaptive optimizers amplify; these tensors (and the running mean "
            "absorbing them) are compared with an absolute tolerance of sum(lr) = "
            f"{sum(case.lrs):.3g}: {', '.join(sorted(noisy))}"
        )
    runs: dict[str, Run] = {}
    rows: list[Row] = []
    for b in chosen:
        train = b not in INFERENCE_BACKENDS
        try:
            runs[b] = run(b, case, train=train)
        except BackendError as exc:
            notes.append(f"{b}: {exc}")
            rows.append(
                Row(b, REFERENCE, Deviation(math.inf, math.inf, str(exc)), None, None, False)
            )
            continue
        rows.append(_compare(b, REFERENCE, runs[b], ref, tol, noisy, sum(case.lrs), train))
        if locate and rows[-1].forward.max_rel > tol.forward:
            rows[-1].first_bad_layer = first_deviating_layer(b, case, tol)
    names = list(runs)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            both_train = a not in INFERENCE_BACKENDS and b not in INFERENCE_BACKENDS
            rows.append(
                _compare(a, b, runs[a], runs[b], tol, noisy, sum(case.lrs), both_train, pair=True)
            )
    return Report(model=name, tolerance=tol, steps=steps, rows=rows, notes=notes)


def _compare(
    name: str,
    against: str,
    got: Run,
    ref: Run,
    tol: Tolerance,
    noisy: frozenset[str],
    lr_sum: float,
    train: bool,
    pair: bool = False,
) -> Row:
    # Two float32 backends may each be off by a tolerance, in opposite directions.
    scale = 2.0 if pair else 1.0
    forward = deviation(got.outputs, ref.outputs)
    passed = forward.max_rel <= scale * tol.forward
    grads = training = None
    if train:
        grads = deviation(got.gradients, ref.gradients, skip=noisy)
        after = deviation(got.weights_after, ref.weights_after, skip=noisy)
        losses = deviation({"loss": np.array(got.losses)}, {"loss": np.array(ref.losses)})
        for n in noisy:
            a, b = got.weights_after.get(n), ref.weights_after.get(n)
            if a is not None and b is not None and float(np.abs(a - b).max()) > lr_sum:
                after = after.worse(Deviation(float(np.abs(a - b).max()), math.inf, n))
        training = after.worse(losses)
        passed = passed and grads.max_rel <= scale * tol.gradient
        passed = passed and training.max_rel <= scale * tol.training
    return Row(name, against, forward, grads, training, passed)


def _noise_parameters(
    program: Program, model: str, gradients: Mapping[str, np.ndarray]
) -> frozenset[str]:
    """Biases whose reference gradient is zero up to float64 rounding because a
    batchnorm follows them, plus that batchnorm's running mean (which absorbs them)."""
    scale = max((float(np.abs(g).max()) for g in gradients.values() if g.size), default=0.0)
    zero = {
        n
        for n, g in gradients.items()
        if n.endswith(".bias") and g.size and float(np.abs(g).max()) <= 1e-9 * scale
    }
    flat = inline_calls(program, model)
    out: set[str] = set()
    for node in flat.nodes:
        if node.op != "batchnorm":
            continue
        for ref in node.inputs:
            if f"{ref}.bias" in zero:
                out |= {f"{ref}.bias", f"{node.name}.running_mean"}
    return frozenset(out)


def first_deviating_layer(backend: str, case: Case, tol: Tolerance) -> str | None:
    """The first node, in topological order, whose output on ``backend`` deviates from
    the reference by more than the forward tolerance."""
    m = case.program.models[case.model]
    for node in m.nodes:
        for k in range(max(len(node.outs), 1)):
            ref_name = node.name if k == 0 else f"{node.name}:{k}"
            probe = _probe(case.program, case.model, ref_name)
            sub = Case(probe, case.model, case.weights, case.batches, case.lrs)
            try:
                got = run(backend, sub, train=False).outputs
                ref = run(REFERENCE, sub, train=False).outputs
            except BackendError:
                return node.name
            d = deviation(got, ref)
            if d.max_rel > tol.forward:
                return f"{node.name} ({node.op}): max abs {d.max_abs:.3g}, max rel {d.max_rel:.3g}"
    return None


def _probe(program: Program, model: str, output: str) -> Program:
    """The program with ``model`` outputting ``output`` and no recipe (forward only)."""
    m = program.models[model].model_copy(update={"outputs": (output,)})
    return program.model_copy(update={"models": {**program.models, model: m}, "recipes": {}})
