"""``train``: one call from a checked program to a trained runtime and a run folder.

It resolves the recipe, prepares the data, builds the backend's runtime (through
:func:`nnc.backends.get_backend` only), restores a checkpoint when resuming, and runs
the :class:`~nnc.train.loop.Trainer`.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

import numpy as np

from nnc.backends import backend_name, get_backend, require_framework
from nnc.backends.runtime import Runtime
from nnc.data import prepare
from nnc.data.standardize import FILENAME as STANDARDIZE
from nnc.dsl import format_program
from nnc.errors import BackendError, RecipeError, TrainingError, WeightsError, did_you_mean
from nnc.ir.passes.params import count_params
from nnc.ir.program import Program
from nnc.ir.training import Recipe
from nnc.ir.weights import check_weights, init_weights
from nnc.train.checkpoint import Checkpoint, latest_checkpoint
from nnc.train.diagnose import first_non_finite
from nnc.train.loop import Identity, Plan, Trainer, TrainResult
from nnc.train.metrics import Metrics
from nnc.train.progress import QuietReporter
from nnc.train.recipes import (
    describe_changes,
    fingerprint,
    recipe_document,
    recipe_program,
    resolve_recipe,
    select_recipe,
)
from nnc.train.rundir import RunDir, default_run_dir

TRAINING_BACKENDS = ("numpy", "torch", "tensorflow")
CPU_ONLY = ("numpy", "tensorflow")

BuildFn = Callable[..., Runtime]


def default_checkpoint_every(epochs: int) -> int:
    """Every epoch for runs of up to 40 epochs; about 20 checkpoints for longer ones."""
    return 1 if epochs <= 40 else epochs // 20


def build_runtime(
    program: Program,
    model: str,
    backend: str,
    weights: dict[str, np.ndarray],
    seed: int,
    device: str | None = None,
    build: BuildFn | None = None,
) -> Runtime:
    """A runtime from the backend registry (or from ``build``, for tests)."""
    options: dict[str, Any] = {}
    if device is not None:
        if device not in ("cpu", "cuda"):
            raise BackendError(f"unknown device '{device}'; expected cpu or cuda")
        if backend in CPU_ONLY and device != "cpu":
            raise BackendError(
                f"the {backend} backend runs on the CPU only. Received: --device {device}"
            )
        if backend not in CPU_ONLY:
            options["device"] = device
    if build is None:
        require_framework(backend)
        build = get_backend(backend).build
    return build(program, model, weights=weights, seed=seed, **options)


def monitor_of(recipe: Recipe, metrics: Metrics, has_validation: bool) -> str:
    """The figure that picks the best epoch; an unknown one is a RecipeError."""
    measured = ["loss", *metrics.names]
    if has_validation:
        measured += [f"val_{n}" for n in measured]
    es = recipe.early_stopping
    if es is None:
        return "val_loss" if has_validation else "loss"
    if es.monitor not in measured:
        needs_val = es.monitor.startswith("val_") and not has_validation
        raise RecipeError(
            f"early_stopping monitors '{es.monitor}', "
            + (
                "which needs a validation set (add 'validation 0.2')"
                if needs_val
                else f"which this recipe does not measure. Measured: {', '.join(measured)}"
            ),
            recipe.span_of("early_stopping"),
            hint=None if needs_val else did_you_mean(es.monitor, measured),
        )
    return es.monitor


@contextmanager
def sigint_requests_stop() -> Iterator[Callable[[], bool]]:
    """While active, the first Ctrl-C asks the loop to stop cleanly (the returned
    callable turns true); a second one interrupts at once."""
    if threading.current_thread() is not threading.main_thread():
        yield lambda: False
        return
    requested = [False]

    def handler(signum: int, frame: object) -> None:
        if requested[0]:
            raise KeyboardInterrupt
        requested[0] = True
        print(
            "\nstopping after this batch and writing a checkpoint (Ctrl-C again to abort)",
            file=sys.stderr,
        )

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield lambda: requested[0]
    finally:
        signal.signal(signal.SIGINT, previous)


def train(
    program: Program,
    recipe: str | Recipe | None = None,
    *,
    backend: str = "numpy",
    epochs: int | None = None,
    batch: int | Literal["all"] | None = None,
    seed: int | None = None,
    out: str | Path | None = None,
    save: bool = True,
    resume: str | Path | None = None,
    force: bool = False,
    checkpoint_every: int | None = None,
    keep: int = 3,
    device: str | None = None,
    base: Path | None = None,
    reporter: QuietReporter | None = None,
    should_stop: Callable[[], bool] | None = None,
    build: BuildFn | None = None,
) -> TrainResult:
    """Train a recipe of a checked program; return the runtime, history and figures.

    ``base`` is the folder that relative data paths start from (the .nn file's);
    ``save=False`` writes no run folder. ``build`` replaces the backend's ``build``.
    """
    reporter = reporter or QuietReporter()
    backend = backend_name(backend)
    if backend not in TRAINING_BACKENDS and build is None:
        raise BackendError(
            f"the {backend} backend cannot train; train with {', '.join(TRAINING_BACKENDS)}"
        )
    if keep < 1:
        raise TrainingError(f"--keep must be at least 1. Received: {keep}")
    chosen = recipe if isinstance(recipe, Recipe) else select_recipe(program, recipe)
    resolved = resolve_recipe(chosen, epochs=epochs, batch=batch, seed=seed, base=base)
    model = program.models[resolved.model]
    document = recipe_document(program, resolved)
    digest = fingerprint(document)

    run_dir: RunDir | None = None
    checkpoint: Checkpoint | None = None
    if resume is not None:
        resume_path = Path(resume)
        if out is not None and Path(out).resolve() != resume_path.resolve():
            raise TrainingError(
                f"--out {out} and --resume {resume} name different folders; a resumed run "
                "continues in its own folder"
            )
        checkpoint = _checkpoint_to_resume(resume_path, document, digest, force, reporter)
        run_dir = RunDir(resume_path)
    elif save:
        run_dir = RunDir(Path(out) if out is not None else default_run_dir(model.name))

    data = prepare(
        program, resolved, base, standardizer=checkpoint.standardizer if checkpoint else None
    )
    metrics = Metrics(resolved.metrics, data.task, resolved.span_of("metrics"))
    monitor = monitor_of(resolved, metrics, data.validation is not None)
    weights = (
        check_weights(program, model, checkpoint.weights, source=str(checkpoint.path))
        if checkpoint
        else init_weights(program, model, resolved.seed)
    )
    best = None
    if checkpoint is not None and checkpoint.best_weights is not None:
        source = f"{checkpoint.path} (best epoch's weights)"
        best = check_weights(program, model, checkpoint.best_weights, source=source)
    runtime = build_runtime(program, model.name, backend, weights, resolved.seed, device, build)
    if checkpoint is not None and checkpoint.optimizer:
        _restore_optimizer(runtime, checkpoint, document, reporter, force)

    if run_dir is not None:
        single = recipe_program(program, resolved)
        run_dir.write_recipe(format_program(single), single.to_json())
        if data.standardizer is not None:
            data.standardizer.save(run_dir.path / STANDARDIZE)

    plan = Plan(
        epochs=resolved.epochs,
        batch=resolved.batch,
        seed=resolved.seed,
        lr=resolved.optimizer.lr,
        schedule=resolved.schedule,
        summed_loss=resolved.loss.kind == "sse",
        loss_name=resolved.loss.kind,
        early_stopping=resolved.early_stopping,
        monitor=monitor,
        checkpoint_every=checkpoint_every or default_checkpoint_every(resolved.epochs),
        keep=keep,
    )
    identity = Identity(
        model=model.name,
        backend=backend,
        parameters=count_params(program, model),
        recipe_hash=digest,
        recipe_json=json.dumps(document, sort_keys=True),
    )
    trainer = Trainer(
        runtime,
        data,
        plan,
        metrics,
        identity,
        reporter=reporter,
        run_dir=run_dir,
        state=checkpoint.state if checkpoint else None,
        best_weights=best,
        should_stop=should_stop or (lambda: False),
        resumed_from=checkpoint.path if checkpoint else None,
        diagnose=lambda weights, x: first_non_finite(program, model, weights, [x]),
    )
    return trainer.run()


def _checkpoint_to_resume(
    folder: Path, document: dict[str, Any], digest: str, force: bool, reporter: QuietReporter
) -> Checkpoint:
    if not folder.is_dir():
        raise TrainingError(f"cannot resume: {folder} is not a run folder")
    checkpoint = latest_checkpoint(RunDir(folder).checkpoints, reporter.warn)
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
    return checkpoint


def _restore_optimizer(
    runtime: Runtime,
    checkpoint: Checkpoint,
    document: dict[str, Any],
    reporter: QuietReporter,
    force: bool,
) -> None:
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
