"""``train``: one call from a checked program to a trained runtime and a run folder.

It resolves the recipe, prepares the data, builds the backend's runtime (through
:func:`nnc.backends.get_backend` only), restores a checkpoint when resuming, and runs
the :class:`~nnc.train.loop.Trainer`.
"""

from __future__ import annotations

import functools
import json
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np

from nnc.backends.gancode import optimizers
from nnc.backends.registry import BackendSpec, parse_backend
from nnc.backends.runtime import GanRuntime, Runtime
from nnc.data import PreparedData, prepare
from nnc.data.images import image_geometry
from nnc.data.preparation import prepare_gan
from nnc.data.standardize import FILENAME as STANDARDIZE
from nnc.dsl import format_program
from nnc.errors import (
    NncError,
    RecipeError,
    TrainingError,
    WeightsError,
)
from nnc.ir.passes.params import count_params
from nnc.ir.passes.validate import check_monitor
from nnc.ir.program import Model, Program
from nnc.ir.training import CdRecipe, GanRecipe, Recipe
from nnc.ir.weights import check_gan_weights, check_weights, init_gan_weights, init_weights
from nnc.train.checkpoint import (
    Checkpoint,
    latest_checkpoint,
    list_checkpoints,
    set_aside_folders,
)
from nnc.train.diagnose import first_non_finite
from nnc.train.environment import write_environment
from nnc.train.gan import GanPlan, GanTrainer
from nnc.train.loop import Identity, Plan, Trainer, TrainResult
from nnc.train.metrics import Metrics
from nnc.train.progress import QuietReporter
from nnc.train.recipes import (
    describe_changes,
    fingerprint,
    pretrain_recipe,
    recipe_document,
    recipe_program,
    resolve_recipe,
    select_any_recipe,
)
from nnc.train.reconstructions import reconstruction_drawer
from nnc.train.rundir import (
    CHECKPOINTS,
    PRETRAIN,
    RunDir,
    new_run_folder,
    read_history,
    remove_leftovers,
)
from nnc.train.tracking import Tracking, gan_context, supervised_context

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
) -> Runtime:
    """A runtime from the backend registry (or from ``build``, for tests); the seed
    and the device go to the backends whose ``build`` takes them."""
    spec = parse_backend(backend)
    options = spec.device_options(device)
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
) -> str:
    """The resolved recipe (``recipe.nn`` with every setting written, ``recipe.json``),
    the environment (``environment.json``) and the input statistics; returns the text
    of ``recipe.nn``."""
    single = recipe_program(run.program, run.recipe)
    text = format_program(single, resolved=True)
    run_dir.write_recipe(text, single.to_json())
    write_environment(run_dir.path, backend, device, workers)
    if data.standardizer is not None:
        data.standardizer.save(run_dir.path / STANDARDIZE)
    return text


def default_reporter() -> QuietReporter:
    """Quiet, except in a Jupyter kernel: there one progress display that updates in
    place (:class:`nnc.notebook.NotebookReporter`)."""
    if "IPython" in sys.modules:  # never import IPython (or nnc.notebook) to find out
        from nnc.notebook.progress import NotebookReporter, in_notebook

        if in_notebook():
            return NotebookReporter()
    return QuietReporter()


def train(
    program: Program,
    recipe: str | Recipe | GanRecipe | CdRecipe | None = None,
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
    nproc: int = 1,
    timeout: float = 300.0,
    tracking: Tracking | None = None,
) -> TrainResult:
    """Train a recipe of a checked program; return the runtime, history and figures.

    ``reporter`` is told of the run's progress; left out, nothing is printed, except
    in a notebook, where one display shows the run (:func:`default_reporter`).
    ``base`` is the folder that relative data paths start from (the .nn file's);
    ``save=False`` writes no run folder. ``build`` replaces the backend's ``build``
    (``build_gan`` for a GAN recipe, which trains through :func:`train_gan`).
    ``nproc > 1`` trains data-parallel in that many worker processes on this machine
    (torch: DDP through torchrun; tensorflow: MultiWorkerMirroredStrategy), see
    docs/distributed.md; the runtime returned is then rebuilt here from the final
    weights, and ``timeout`` bounds, in seconds, every wait of a worker for the others.
    ``tracking`` says what the run logs besides its run folder (default: TensorBoard
    event files in it; see :mod:`nnc.train.tracking`).
    """
    reporter = reporter or default_reporter()
    spec = parse_backend(backend)
    if build is None:
        spec.require_training()
    backend = spec.name
    if keep < 1:
        raise TrainingError(f"--keep must be at least 1. Received: {keep}")
    if nproc < 1:
        raise TrainingError(f"nproc must be at least 1. Received: {nproc}")
    chosen = (
        recipe
        if isinstance(recipe, Recipe | GanRecipe | CdRecipe)
        else select_any_recipe(program, recipe)
    )
    if isinstance(chosen, CdRecipe):
        from nnc.train.cd_session import train_cd

        tracked = tracking is not None and (tracking.mlflow or tracking.callbacks)
        if nproc > 1 or build is not None or tracked:
            raise TrainingError(
                f"recipe '{chosen.name}' trains by contrastive divergence, in this process "
                "on the numpy backend, logging to its run folder; nproc, build, MLflow and "
                "callbacks apply to supervised and GAN recipes"
            )
        return train_cd(
            program,
            resolve_recipe(chosen, epochs=epochs, batch=batch, seed=seed, base=base),
            backend=backend,
            out=out,
            save=save,
            resume=resume,
            force=force,
            checkpoint_every=checkpoint_every,
            keep=keep,
            device=device,
            base=base,
            reporter=reporter,
            should_stop=should_stop,
        )
    if nproc > 1:
        from nnc.train.distributed.launch import Launch, train_parallel

        if tracking is not None and (tracking.mlflow or tracking.callbacks):
            raise TrainingError(
                "tracking (MLflow, callbacks) applies to training in this process; "
                "data-parallel runs (nproc > 1) log their history to the run folder only"
            )
        if build is not None or should_stop is not None:
            raise TrainingError(
                "build and should_stop apply to training in this process; data-parallel "
                "workers (nproc > 1) build their own runtimes and stop on Ctrl-C"
            )
        return train_parallel(
            program,
            chosen.name,
            backend=backend,
            epochs=epochs,
            batch=batch,
            seed=seed,
            out=out,
            save=save,
            resume=resume,
            force=force,
            checkpoint_every=checkpoint_every,
            keep=keep,
            device=device,
            base=base,
            reporter=reporter,
            launch=Launch(nproc=nproc, timeout=timeout),
        )
    if isinstance(chosen, GanRecipe):
        return train_gan(
            program,
            resolve_recipe(chosen, epochs=epochs, batch=batch, seed=seed, base=base),
            backend=backend,
            out=out,
            save=save,
            resume=resume,
            force=force,
            checkpoint_every=checkpoint_every,
            keep=keep,
            device=device,
            base=base,
            reporter=reporter,
            should_stop=should_stop,
            build=build,  # type: ignore[arg-type]  # a GAN's builder: build_gan
            tracking=tracking,
        )
    run = resolve_run(program, chosen, epochs=epochs, batch=batch, seed=seed, base=base)
    check_resume_folders(out, resume)

    run_dir: RunDir | None = None
    checkpoint: Checkpoint | None = None
    first = pretrain_recipe(program, run.recipe)
    if resume is not None:
        resume_path = Path(resume)
        if first is None or list_checkpoints(resume_path / CHECKPOINTS):
            checkpoint = resume_checkpoint(
                resume_path,
                run.document,
                run.digest,
                force,
                reporter,
                fits=None if force else functools.partial(_fits_model, program, run.model),
            )
        elif not resume_path.is_dir():
            raise TrainingError(f"cannot resume: {resume_path} is not a run folder")
        run_dir = RunDir(resume_path)
    elif save:
        run_dir = RunDir(new_run_folder(Path(out) if out else None, run.model.name, force))

    resolved, model = run.recipe, run.model
    start: dict[str, np.ndarray] | None = None
    if first is not None and checkpoint is None:
        from nnc.train.pretrain import pretrained_weights

        stopped, start = pretrained_weights(
            program,
            model,
            resolved.seed,
            first,
            run_dir.path / PRETRAIN if run_dir is not None else None,
            base=base,
            backend=backend,
            reporter=reporter,
            should_stop=should_stop,
            checkpoint_every=checkpoint_every,
            keep=keep,
        )
        if stopped is not None:  # a stop request inside the pretraining
            return replace(stopped, run_dir=run_dir.path if run_dir is not None else None)
    data = prepare(
        program, resolved, base, standardizer=checkpoint.standardizer if checkpoint else None
    )
    metrics = Metrics(resolved.metrics, data.task, resolved.span_of("metrics"))
    monitor = monitor_of(resolved, metrics, data.validation is not None)
    weights = (
        check_weights(program, model, checkpoint.weights, source=str(checkpoint.path))
        if checkpoint
        else start or init_weights(program, model, resolved.seed)
    )
    best = None
    if checkpoint is not None and checkpoint.best_weights is not None:
        source = f"{checkpoint.path} (best epoch's weights)"
        best = check_weights(program, model, checkpoint.best_weights, source=source)
    runtime = build_runtime(program, model.name, backend, weights, resolved.seed, device, build)
    if checkpoint is not None and checkpoint.optimizer:
        restore_optimizer(runtime, checkpoint, run.document, reporter, force)

    recipe_text = ""
    if run_dir is not None:
        recipe_text = write_run_files(run_dir, run, data, backend, device)
    context = supervised_context(
        program,
        run,
        data,
        backend,
        run_dir,
        checkpoint.state.epoch if checkpoint else 0,
        recipe_text,
    )
    callbacks = (tracking or Tracking()).start(context, reporter.warn)

    plan, identity = make_plan(run, monitor, checkpoint_every, keep, backend)
    drawer = (
        reconstruction_drawer(resolved, data, model.inputs[0].type, run_dir.path, model.name)
        if run_dir is not None
        else None
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
        after_epoch=drawer,
        diagnose=lambda weights, x: first_non_finite(program, model, weights, [x]),
        callbacks=callbacks,
    )
    return trainer.run()


def train_gan(
    program: Program,
    recipe: GanRecipe,
    *,
    backend: str,
    out: str | Path | None = None,
    save: bool = True,
    resume: str | Path | None = None,
    force: bool = False,
    checkpoint_every: int | None = None,
    keep: int = 3,
    device: str | None = None,
    base: Path | None = None,
    reporter: QuietReporter,
    should_stop: Callable[[], bool] | None = None,
    build: Callable[..., GanRuntime] | None = None,
    tracking: Tracking | None = None,
) -> TrainResult:
    """Train a resolved GAN recipe (see :mod:`nnc.train.gan`); as :func:`train`."""
    document = recipe_document(program, recipe)
    digest = fingerprint(document)
    run_dir: RunDir | None = None
    checkpoint: Checkpoint | None = None
    check_resume_folders(out, resume)
    if resume is not None:
        resume_path = Path(resume)
        checkpoint = resume_checkpoint(
            resume_path,
            document,
            digest,
            force,
            reporter,
            fits=None if force else functools.partial(_fits_gan, program, recipe),
        )
        run_dir = RunDir(resume_path)
    elif save:
        run_dir = RunDir(new_run_folder(Path(out) if out else None, recipe.name, force))

    samples = prepare_gan(program, recipe, base)
    d_input = program.models[recipe.discriminator].inputs[0].type
    geometry = image_geometry(recipe.data, d_input.shape, samples.x)
    weights = (
        check_gan_weights(program, recipe, checkpoint.weights, source=str(checkpoint.path))
        if checkpoint
        else init_gan_weights(program, recipe)
    )
    runtime = build_gan_runtime(program, recipe, backend, weights, recipe.seed, device, build)
    if checkpoint is not None and checkpoint.optimizer:
        try:
            runtime.set_optimizer_state(checkpoint.optimizer)
        except (NncError, KeyError, ValueError) as exc:
            # Only reachable with --force after a change to a model or an optimizer.
            reporter.warn(
                f"the optimizer state of {checkpoint.path} does not fit ({exc}); it starts afresh"
            )
    recipe_text = ""
    if run_dir is not None:
        single = recipe_program(program, recipe)
        recipe_text = format_program(single, resolved=True)
        run_dir.write_recipe(recipe_text, single.to_json())
        write_environment(run_dir.path, backend, device)
        if geometry is None:
            reporter.warn(
                f"the samples of {samples.source} are not images; no sample grids are drawn"
            )

    lrs = optimizers(recipe)
    plan = GanPlan(
        epochs=recipe.epochs,
        batch=recipe.batch,
        seed=recipe.seed,
        d_steps=recipe.d_steps,
        noise=recipe.noise,
        generator_lr=lrs["generator"].lr,
        discriminator_lr=lrs["discriminator"].lr,
        checkpoint_every=checkpoint_every or default_checkpoint_every(recipe.epochs),
        keep=keep,
    )
    parameters = sum(count_params(program, m) for m in recipe.models)
    identity = Identity(
        model=f"{recipe.name} ({recipe.generator} against {recipe.discriminator})",
        backend=backend,
        parameters=parameters,
        recipe_hash=digest,
        recipe_json=json.dumps(document, sort_keys=True),
    )
    trainer = GanTrainer(
        runtime,
        samples.x,
        plan,
        identity,
        geometry=geometry,
        reporter=reporter,
        run_dir=run_dir,
        should_stop=should_stop or (lambda: False),
        resumed_from=checkpoint.path if checkpoint else None,
        callbacks=(tracking or Tracking()).start(
            gan_context(
                program,
                recipe,
                document,
                backend,
                run_dir,
                checkpoint.state.epoch if checkpoint else 0,
                geometry,
                recipe_text,
            ),
            reporter.warn,
        ),
    )
    if checkpoint is not None:
        trainer.state = checkpoint.state
    return trainer.run()


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


def _fits_model(program: Program, model: Model, checkpoint: Checkpoint) -> None:
    """A WeightsError when the checkpoint's weights, best weights or optimizer state
    do not fit the model (a damaged or edited file: resuming falls back past it)."""
    source = str(checkpoint.path)
    weights = check_weights(program, model, checkpoint.weights, source=source)
    if checkpoint.best_weights is not None:
        check_weights(
            program, model, checkpoint.best_weights, source=f"{source} (best epoch's weights)"
        )
    _slots_fit(checkpoint, weights)


def _fits_gan(program: Program, recipe: GanRecipe, checkpoint: Checkpoint) -> None:
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
