"""The parts of one training run that every way of training shares: resolving the
recipe, building the backend's runtime (through the registry only), the run folder's
files, resuming from a checkpoint, the loop's plan and a clean stop on Ctrl-C.

:mod:`nnc.train.session` (one process), :mod:`nnc.train.cd_session` (contrastive
divergence) and the data-parallel launcher and workers
(:mod:`nnc.train.distributed`) build on this module; it imports none of them.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from nnc.backends.registry import BackendSpec, parse_backend
from nnc.backends.runtime import GanRuntime, Runtime
from nnc.data import PreparedData
from nnc.data.standardize import FILENAME as STANDARDIZE
from nnc.dsl import format_program
from nnc.errors import (
    RecipeError,
    TrainingError,
    WeightsError,
)
from nnc.ir.passes.params import count_params
from nnc.ir.passes.validate import check_monitor
from nnc.ir.program import Model, Program
from nnc.ir.training import CdRecipe, GanRecipe, Recipe
from nnc.ir.weights import check_gan_weights, check_weights
from nnc.train.checkpoint import (
    Checkpoint,
    latest_checkpoint,
    set_aside_folders,
)
from nnc.train.environment import write_environment
from nnc.train.loop import Identity, Plan
from nnc.train.metrics import Metrics
from nnc.train.progress import QuietReporter
from nnc.train.recipes import (
    describe_changes,
    fingerprint,
    recipe_document,
    recipe_program,
    resolve_recipe,
    select_any_recipe,
)
from nnc.train.rundir import (
    RunDir,
    read_history,
    remove_leftovers,
)

BuildFn = Callable[..., Runtime]


def default_checkpoint_every(epochs: int) -> int:
    """Every epoch for runs of up to 40 epochs; about 20 checkpoints for longer ones."""
    return 1 if epochs <= 40 else epochs // 20


def build_runtime(
    program: Program,
    model: str,
    backend: str | BackendSpec,
    weights: dict[str, np.ndarray],
    seed: int,
    device: str | None = None,
    build: BuildFn | None = None,
    precision: str = "float32",
) -> Runtime:
    """A runtime from the backend registry (or from ``build``, for tests); the seed,
    the device and the precision go to the backends whose ``build`` takes them."""
    spec = parse_backend(backend)
    options = spec.device_options(device) | spec.precision_options(precision)
    if build is None:
        build = spec.build
        options |= spec.options({"seed": seed})
    else:
        options["seed"] = seed
    return build(program, model, weights=weights, **options)


def build_gan_runtime(
    program: Program,
    recipe: GanRecipe,
    backend: str | BackendSpec,
    weights: dict[str, np.ndarray],
    seed: int,
    device: str | None = None,
    build: Callable[..., GanRuntime] | None = None,
) -> GanRuntime:
    """A GAN runtime from the backend registry (or from ``build``, for tests)."""
    spec = parse_backend(backend)
    options = spec.device_options(device)
    if build is None:
        build = spec.build_gan
    return build(program, recipe, weights=weights, seed=seed, **options)


def monitor_of(recipe: Recipe, metrics: Metrics, has_validation: bool) -> str:
    """The figure that picks the best epoch; an unknown one is a RecipeError (found
    by ``nnc check`` already: :func:`nnc.ir.passes.validate.check_monitor`)."""
    return check_monitor(recipe, metrics.names, has_validation)


@contextmanager
def sigint_requests_stop(announce: bool = True) -> Iterator[Callable[[], bool]]:
    """While active, the first Ctrl-C asks the loop to stop cleanly (the returned
    callable turns true), saying so unless not ``announce``; a second one interrupts
    at once."""
    if threading.current_thread() is not threading.main_thread():
        yield lambda: False
        return
    requested = [False]

    def handler(signum: int, frame: object) -> None:
        if requested[0]:
            raise KeyboardInterrupt
        requested[0] = True
        if announce:
            print(
                "\nstopping after this batch and writing a checkpoint (Ctrl-C again to abort)",
                file=sys.stderr,
            )

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield lambda: requested[0]
    finally:
        signal.signal(signal.SIGINT, previous)


@dataclass(frozen=True)
class RunSpec:
    """A supervised recipe resolved for one run: overrides applied, data paths
    absolute, and the fingerprint checkpoints carry."""

    program: Program
    recipe: Recipe
    model: Model
    document: dict[str, Any]
    digest: str


def resolve_run(
    program: Program,
    recipe: str | Recipe | None,
    *,
    epochs: int | None = None,
    batch: int | Literal["all"] | None = None,
    seed: int | None = None,
    base: Path | None = None,
    parallel: bool = False,
) -> RunSpec:
    """The supervised recipe to train, resolved (see
    :func:`nnc.train.recipes.resolve_recipe`); a GAN or contrastive divergence recipe
    is refused, as data-parallel training (the other caller) does not run them, and
    with ``parallel`` (that caller) a recipe that pretrains."""
    chosen = recipe if isinstance(recipe, Recipe) else select_any_recipe(program, recipe)
    if isinstance(chosen, GanRecipe | CdRecipe):
        what = "a GAN" if isinstance(chosen, GanRecipe) else "an RBM by contrastive divergence"
        raise RecipeError(
            f"recipe '{chosen.name}' trains {what}; data-parallel training (--nproc) runs "
            "supervised and autoencoder recipes",
            chosen.span,
            hint=f"train the {'GAN' if isinstance(chosen, GanRecipe) else 'RBM'} in one "
            "process (drop --nproc)",
        )
    if parallel and chosen.pretrain is not None:
        raise RecipeError(
            f"recipe '{chosen.name}' pretrains with '{chosen.pretrain}' (contrastive "
            "divergence, in one process); data-parallel training (--nproc) does not run "
            "that phase",
            chosen.span_of("pretrain"),
            hint="train it in one process (drop --nproc)",
        )
    resolved = resolve_recipe(chosen, epochs=epochs, batch=batch, seed=seed, base=base)
    document = recipe_document(program, resolved)
    return RunSpec(
        program, resolved, program.models[resolved.model], document, fingerprint(document)
    )


def check_resume_folders(out: str | Path | None, resume: str | Path | None) -> None:
    if resume is not None and out is not None and Path(out).resolve() != Path(resume).resolve():
        raise TrainingError(
            f"--out {out} and --resume {resume} name different folders; a resumed run "
            "continues in its own folder"
        )


def make_plan(
    run: RunSpec,
    monitor: str,
    checkpoint_every: int | None,
    keep: int,
    backend: str,
    workers: int = 1,
) -> tuple[Plan, Identity]:
    """The loop's settings and what checkpoints record about the run."""
    resolved = run.recipe
    plan = Plan(
        epochs=resolved.epochs,
        batch=resolved.batch,
        seed=resolved.seed,
        lr=resolved.optimizer.lr,
        schedule=resolved.schedule,
        summed_loss=resolved.loss.summed,
        loss_name=resolved.loss.kind,
        early_stopping=resolved.early_stopping,
        monitor=monitor,
        checkpoint_every=checkpoint_every or default_checkpoint_every(resolved.epochs),
        keep=keep,
    )
    identity = Identity(
        model=run.model.name,
        backend=backend,
        parameters=count_params(run.program, run.model),
        recipe_hash=run.digest,
        recipe_json=json.dumps(run.document, sort_keys=True),
        workers=workers,
    )
    return plan, identity


def write_run_files(
    run_dir: RunDir,
    run: RunSpec,
    data: PreparedData,
    backend: str,
    device: str | None = None,
    workers: int = 1,
    precision: str = "float32",
) -> str:
    """The resolved recipe (``recipe.nn`` with every setting written, ``recipe.json``),
    the environment (``environment.json``) and the input statistics; returns the text
    of ``recipe.nn``."""
    single = recipe_program(run.program, run.recipe)
    text = format_program(single, resolved=True)
    run_dir.write_recipe(text, single.to_json())
    write_environment(run_dir.path, backend, device, workers, precision)
    if data.standardizer is not None:
        data.standardizer.save(run_dir.path / STANDARDIZE)
    return text


def resume_checkpoint(
    folder: Path,
    document: dict[str, Any],
    digest: str,
    force: bool,
    reporter: QuietReporter,
    fits: Callable[[Checkpoint], None] | None = None,
) -> Checkpoint:
    """The newest readable checkpoint of a run folder that ``fits`` the model, checked
    against the recipe; older ones stand in for damaged newer ones."""
    if not folder.is_dir():
        raise TrainingError(f"cannot resume: {folder} is not a run folder")
    remove_leftovers(folder)
    set_aside_folders(RunDir(folder).checkpoints, reporter.warn)
    checkpoint = latest_checkpoint(RunDir(folder).checkpoints, reporter.warn, fits)
    if checkpoint is None:
        raise TrainingError(
            f"cannot resume: {folder / 'checkpoints'} holds no readable checkpoint",
            hint="start a new run without --resume",
        )
    if checkpoint.recipe_hash != digest:
        try:
            changes = describe_changes(json.loads(checkpoint.recipe), document)
        except ValueError:
            changes = []
        what = "; ".join(changes) or "the model or recipe differs"
        if not force:
            raise TrainingError(
                f"cannot resume from {checkpoint.path}: the recipe changed since it was "
                f"written ({what})",
                hint="undo the change, start a new run, or pass --force to continue anyway",
            )
        reporter.warn(f"the recipe changed since {checkpoint.path} ({what}); continuing (--force)")
    if len(checkpoint.state.history) < checkpoint.state.epoch:  # format 2: in the folder
        checkpoint.state.history = read_history(folder, checkpoint.state.epoch)
    return checkpoint


def fits_model(program: Program, model: Model, checkpoint: Checkpoint) -> None:
    """A WeightsError when the checkpoint's weights, best weights or optimizer state
    do not fit the model (a damaged or edited file: resuming falls back past it)."""
    source = str(checkpoint.path)
    weights = check_weights(program, model, checkpoint.weights, source=source)
    if checkpoint.best_weights is not None:
        check_weights(
            program, model, checkpoint.best_weights, source=f"{source} (best epoch's weights)"
        )
    _slots_fit(checkpoint, weights)


def fits_gan(program: Program, recipe: GanRecipe, checkpoint: Checkpoint) -> None:
    _slots_fit(
        checkpoint, check_gan_weights(program, recipe, checkpoint.weights, str(checkpoint.path))
    )


def _slots_fit(checkpoint: Checkpoint, weights: Mapping[str, np.ndarray]) -> None:
    """Each optimizer slot ``<param>.<slot>`` has its parameter's shape, and each
    ``step`` is one number."""
    for key, value in checkpoint.optimizer.items():
        owner = key.rpartition(".")[0]
        if key == "step" or key.endswith("/step"):
            expected: tuple[int, ...] | None = ()
        else:
            expected = weights[owner].shape if owner in weights else None
        if expected is not None and np.shape(value) != expected:
            raise WeightsError(
                f"{checkpoint.path}: optimizer state '{key}' has shape {list(np.shape(value))}; "
                f"the model expects {list(expected)}"
            )


def restore_optimizer(
    runtime: Runtime,
    checkpoint: Checkpoint,
    document: dict[str, Any],
    reporter: QuietReporter,
    force: bool,
) -> None:
    """Load the checkpoint's optimizer state, unless the optimizer changed (--force)."""
    try:
        old = json.loads(checkpoint.recipe)["recipe"]["optimizer"]["kind"]
    except (ValueError, KeyError, TypeError):
        old = None
    new = document["recipe"]["optimizer"]["kind"]
    if old is not None and old != new:
        reporter.warn(f"the optimizer changed from {old} to {new}; its state starts afresh")
        return
    problem = _state_misfit(runtime.get_optimizer_state(), checkpoint.optimizer)
    if problem is None:
        runtime.set_optimizer_state(checkpoint.optimizer)
    elif force:
        # The model changed (--force): the old state cannot carry over.
        reporter.warn(
            f"the optimizer state of {checkpoint.path} does not fit ({problem}); it starts afresh"
        )
    else:
        # Same recipe, yet the state does not fit: the file was damaged or edited.
        raise WeightsError(f"{checkpoint.path}: {problem}")


def _state_misfit(fresh: dict[str, np.ndarray], saved: dict[str, np.ndarray]) -> str | None:
    """Why a saved optimizer state does not fit the runtime's own (freshly built)
    state, by tensor name; None when every tensor has the expected name and shape."""
    missing = sorted(set(fresh) - set(saved))
    unknown = sorted(set(saved) - set(fresh))
    if missing or unknown:
        return (
            f"the optimizer state should hold {', '.join(sorted(fresh))}"
            + (f"; missing {', '.join(missing)}" if missing else "")
            + (f"; unknown {', '.join(unknown)}" if unknown else "")
        )
    for name, value in fresh.items():
        if np.shape(saved[name]) != np.shape(value):
            return (
                f"optimizer state '{name}' has shape {list(np.shape(saved[name]))}; the model "
                f"expects {list(np.shape(value))}"
            )
    return None
