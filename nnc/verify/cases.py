"""What one equivalence check runs: the case (a model, its canonical weights, batches
and learning rates), a backend's run of it, and the rows and report comparing runs.
Shared by the harness (:mod:`nnc.verify.harness`) and the modules it calls
(compare, sensitivity, locate, transfer), which therefore form no circle with it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from nnc.backends.registry import parse_backend
from nnc.backends.runtime import Runtime
from nnc.errors import RecipeError
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
    QUIET,
    QUIET_STEP,
    SYMBOLIC_LENGTH,
    Deviation,
    Tolerance,
)

REFERENCE = "reference"  # the NumPy backend in float64
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

    @property
    def midpoint(self) -> int:
        """The step after which the optimizer state is moved to another backend."""
        return len(self.lrs) // 2


@dataclass
class Run:
    """What one backend computed for a case. ``weights_mid`` and ``state_mid`` are
    taken after :attr:`Case.midpoint` steps; ``runtime`` is kept for the transfers."""

    outputs: dict[str, np.ndarray]
    gradients: dict[str, np.ndarray] = field(default_factory=dict)
    losses: list[float] = field(default_factory=list)
    weights_mid: dict[str, np.ndarray] = field(default_factory=dict)
    state_mid: dict[str, np.ndarray] = field(default_factory=dict)
    weights_after: dict[str, np.ndarray] = field(default_factory=dict)
    state_after: dict[str, np.ndarray] = field(default_factory=dict)
    quiet: dict[str, np.ndarray] = field(default_factory=dict)  # see run(record_quiet=True)
    loss_margins: list[float] = field(default_factory=list)  # the same
    runtime: Runtime | None = field(default=None, repr=False)


@dataclass
class Row:
    """One backend (or pair of backends) against another. ``diagnosis`` explains a
    failure: the first deviating layer, parameter or optimizer slot."""

    backend: str
    against: str
    forward: Deviation
    gradients: Deviation | None
    training: Deviation | None
    passed: bool
    first_bad_layer: str | None = None
    diagnosis: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Transfer:
    """Training started on ``source``, its weights and optimizer state loaded into
    ``target`` half-way, the rest trained there: the final parameters, optimizer
    state and losses against the reference's uninterrupted run."""

    source: str
    target: str
    deviation: Deviation
    passed: bool
    slots: list[str] = field(default_factory=list)  # what the state held: step, m, v...
    diagnosis: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Report:
    model: str
    tolerance: Tolerance
    steps: int
    rows: list[Row]
    notes: list[str] = field(default_factory=list)
    transfers: list[Transfer] = field(default_factory=list)
    noise: Any = field(default=None, repr=False)  # the Noise the checks allowed for

    @property
    def equivalent(self) -> bool:
        return all(r.passed for r in self.rows) and all(t.passed for t in self.transfers)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "steps": self.steps,
            "tolerance": asdict(self.tolerance),
            "rows": [r.to_dict() for r in self.rows],
            "transfers": [t.to_dict() for t in self.transfers],
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
    update: dict[str, Any] = {"pretrain": None}  # verified from the same weights
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
    batches = [synthetic_batch(program, m, recipe, rng) for _ in range(max(steps, 1))]
    lrs = [
        learning_rate(recipe.optimizer.lr, recipe.schedule, i // STEPS_PER_EPOCH)
        for i in range(steps)
    ]
    return Case(program, model, init_weights(program, model, seed), batches, lrs)


def static_shape(shape: Sequence[int | str]) -> tuple[int, ...]:
    """A per-sample shape with every symbolic dim at the length the harness feeds it."""
    return tuple(d if isinstance(d, int) else SYMBOLIC_LENGTH for d in shape)


def synthetic_batch(
    program: Program, m: Model, recipe: Recipe, rng: np.random.Generator
) -> tuple[list[np.ndarray], np.ndarray]:
    """Standard normal inputs (ids within every embedding's vocabulary) and a target
    fitting the loss: one-hot rows, probabilities, or standard normal values."""
    vocab = _vocab_limits(program, m)
    inputs = []
    for i in m.inputs:
        shape = (BATCH, *static_shape(i.type.shape))
        if i.type.dtype == "int64":
            inputs.append(rng.integers(0, vocab.get(i.name, 2), size=shape).astype(np.int64))
        else:
            inputs.append(rng.normal(size=shape).astype(np.float32))
    if recipe.target == "input":
        return inputs, inputs[0]
    shape = (BATCH, *static_shape(m.output_types[0].shape))
    if isinstance(recipe.loss, CrossEntropy):
        target = np.eye(shape[-1], dtype=np.float32)[rng.integers(0, shape[-1], size=shape[:-1])]
        if recipe.loss.ignore is not None and len(shape) > 2:
            # Padding present: the last position of every other sample is the ignored
            # label, an all-zero row (and the first sample is padded after its start).
            target[1::2, -1] = 0.0
            target[0, 1:] = 0.0
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
        reference = parse_backend("numpy").load()
        return reference.build(program, case.model, case.weights, dtype="float64")
    return parse_backend(backend).load().build(program, case.model, case.weights)


def run(backend: str, case: Case, train: bool = True, record_quiet: bool = False) -> Run:
    """Forward outputs; with ``train``, the gradients on the first batch and one
    training step per learning rate of the case (snapshots taken at the midpoint).

    With ``record_quiet`` (for the reference), the gradients of every step are also
    computed, and every parameter element whose gradient is zero up to rounding at
    some step gets an allowance (:attr:`Run.quiet`): from that step on, ``QUIET_STEP``
    times each learning rate. A float32 backend's gradient there is rounding noise,
    which adaptive optimizers turn into steps of about the learning rate (a sum of
    ``±1/n`` terms of an ``mae`` gradient that cancel exactly in float64, a bias whose
    batchnorm subtracts it). The loss of each step then gets an allowance too
    (:attr:`Run.loss_margins`): to first order, the sum over the quiet elements of
    ``|gradient| * allowance so far``, what their drift moves it by."""
    runtime = build(backend, case)
    result = Run(outputs=outputs(runtime, case.model, case.program, case.inputs), runtime=runtime)
    if not train:
        return result
    x, y = case.inputs[0], case.target
    result.gradients = dict(runtime.gradients(x, y))
    noisy: dict[str, np.ndarray] = {}
    for i, ((inputs, target), lr) in enumerate(zip(case.batches, case.lrs, strict=False)):
        if i == case.midpoint:
            result.weights_mid = dict(runtime.get_weights())
            result.state_mid = dict(runtime.get_optimizer_state())
        if record_quiet:
            gradients = runtime.gradients(inputs[0], target)
            result.loss_margins.append(
                sum(float(np.sum(np.abs(gradients[n]) * b)) for n, b in result.quiet.items())
            )
            _quiet_elements(gradients, noisy)
            for name, mask in noisy.items():
                budget = result.quiet.setdefault(name, np.zeros(mask.shape))
                budget += QUIET_STEP * lr * mask
        result.losses.append(float(runtime.train_step(inputs[0], target, lr)))
    result.weights_after = dict(runtime.get_weights())
    result.state_after = dict(runtime.get_optimizer_state())
    return result


def _quiet_elements(gradients: Mapping[str, np.ndarray], noisy: dict[str, np.ndarray]) -> None:
    """Mark (in ``noisy``, cumulatively) the elements whose gradient is zero up to
    rounding."""
    scale = max((float(np.abs(g).max()) for g in gradients.values() if g.size), default=0.0)
    for name, g in gradients.items():
        quiet = np.abs(g) <= QUIET * scale
        if quiet.any() or name in noisy:
            noisy[name] = noisy[name] | quiet if name in noisy else quiet


def outputs(
    runtime: Runtime, model: str, program: Program, inputs: Sequence[np.ndarray]
) -> dict[str, np.ndarray]:
    """The model's outputs on ``inputs``, by output name."""
    out = runtime.forward(*inputs)
    names = program.models[model].outputs
    values = out if isinstance(out, tuple | list) else (out,)
    return {n: np.asarray(v) for n, v in zip(names, values, strict=True)}


# -- comparing -------------------------------------------------------------------------------
