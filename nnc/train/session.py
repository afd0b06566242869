"""``train``: one call from a checked program to a trained runtime and a run folder.

It resolves the recipe, prepares the data, builds the backend's runtime (through
:func:`nnc.backends.get_backend` only), restores a checkpoint when resuming, and runs
the :class:`~nnc.train.loop.Trainer`.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np

from nnc.backends.gancode import optimizers
from nnc.backends.registry import parse_backend
from nnc.backends.runtime import GanRuntime
from nnc.data import prepare
from nnc.data.images import image_geometry
from nnc.data.preparation import prepare_gan
from nnc.dsl import format_program
from nnc.errors import NncError, RecipeError, TrainingError
from nnc.ir.passes.params import count_params
from nnc.ir.program import Program
from nnc.ir.training import CdRecipe, GanRecipe, Recipe
from nnc.ir.weights import check_gan_weights, check_weights, init_gan_weights, init_weights
from nnc.train.checkpoint import (
    Checkpoint,
    list_checkpoints,
)
from nnc.train.diagnose import first_non_finite
from nnc.train.environment import write_environment
from nnc.train.gan import GanPlan, GanTrainer
from nnc.train.loop import Identity, Trainer, TrainResult
from nnc.train.metrics import Metrics
from nnc.train.options import RunOptions
from nnc.train.progress import QuietReporter
from nnc.train.recipes import (
    fingerprint,
    pretrain_recipe,
    recipe_document,
    recipe_program,
    resolve_recipe,
    select_any_recipe,
)
from nnc.train.reconstructions import reconstruction_drawer
from nnc.train.run import (
    BuildFn,
    build_gan_runtime,
    build_runtime,
    check_resume_folders,
    default_checkpoint_every,
    fits_gan,
    fits_model,
    make_plan,
    monitor_of,
    resolve_run,
    restore_optimizer,
    resume_checkpoint,
    write_run_files,
)
from nnc.train.rundir import (
    CHECKPOINTS,
    PRETRAIN,
    RunDir,
    new_run_folder,
)
from nnc.train.tracking import Tracking, gan_context, supervised_context


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
    options: RunOptions | None = None,
    *,
    reporter: QuietReporter | None = None,
    should_stop: Callable[[], bool] | None = None,
    build: BuildFn | None = None,
    tracking: Tracking | None = None,
) -> TrainResult:
    """Train a recipe of a checked program; return the runtime, history and figures.

    ``options`` say how (:class:`~nnc.train.options.RunOptions`: the backend, the
    overrides of the recipe, the run folder, resuming, data-parallel workers; default:
    the recipe as written, on numpy, into a new run folder); :func:`nnc.fit` takes
    them as keywords. ``options.nproc > 1`` trains data-parallel in that many worker
    processes on this machine (torch: DDP through torchrun; tensorflow:
    MultiWorkerMirroredStrategy), see docs/distributed.md; the runtime returned is
    then rebuilt here from the final weights.

    The keywords are what only this process has: ``reporter`` is told of the run's
    progress (left out, nothing is printed, except in a notebook, where one display
    shows the run: :func:`default_reporter`); ``should_stop`` asks for a clean stop;
    ``build`` replaces the backend's ``build`` (``build_gan`` for a GAN recipe, which
    trains through :func:`train_gan`); ``tracking`` says what the run logs besides
    its run folder (default: TensorBoard event files in it; see
    :mod:`nnc.train.tracking`).
    """
    o = options or RunOptions()
    reporter = reporter or default_reporter()
    spec = parse_backend(o.backend)
    if build is None:
        spec.require_training()
    chosen = (
        recipe
        if isinstance(recipe, Recipe | GanRecipe | CdRecipe)
        else select_any_recipe(program, recipe)
    )
    if o.precision != "float32" and not isinstance(chosen, Recipe):
        raise TrainingError(
            f"recipe '{chosen.name}' is a {chosen.kind} recipe; --precision {o.precision} "
            "applies to supervised and autoencoder recipes",
            hint="train it in float32 (drop --precision)",
        )
    if o.weights is not None and not isinstance(chosen, Recipe):
        raise TrainingError(
            f"recipe '{chosen.name}' is a {chosen.kind} recipe; starting from given "
            "weights (--weights) applies to supervised and autoencoder recipes"
        )
    if isinstance(chosen, CdRecipe):
        from nnc.train.cd_session import train_cd

        if o.nproc > 1:
            raise RecipeError(
                f"recipe '{chosen.name}' trains an RBM by contrastive divergence, in one "
                f"process; data-parallel training (nproc = {o.nproc}) runs supervised and "
                "autoencoder recipes",
                chosen.span,
                hint="train the RBM in one process (drop --nproc)",
            )
        if build is not None:
            raise TrainingError(
                f"recipe '{chosen.name}' trains by contrastive divergence, with the CD step "
                "of its backend; build applies to supervised and GAN recipes"
            )
        resolved_cd = resolve_recipe(
            chosen, epochs=o.epochs, batch=o.batch, seed=o.seed, base=o.base
        )
        return train_cd(
            program, resolved_cd, o, reporter=reporter, should_stop=should_stop, tracking=tracking
        )
    if o.nproc > 1:
        from nnc.train.distributed.launch import train_parallel

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
        return train_parallel(program, chosen.name, o, reporter=reporter)
    if isinstance(chosen, GanRecipe):
        return train_gan(
            program,
            resolve_recipe(chosen, epochs=o.epochs, batch=o.batch, seed=o.seed, base=o.base),
            o,
            reporter=reporter,
            should_stop=should_stop,
            build=build,  # type: ignore[arg-type]  # a GAN's builder: build_gan
            tracking=tracking,
        )
    backend, out, resume, force = o.backend, o.out, o.resume, o.force
    base, device, keep, checkpoint_every = o.base, o.device, o.keep, o.checkpoint_every
    run = resolve_run(program, chosen, epochs=o.epochs, batch=o.batch, seed=o.seed, base=base)
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
                fits=None if force else functools.partial(fits_model, program, run.model),
            )
        elif not resume_path.is_dir():
            raise TrainingError(f"cannot resume: {resume_path} is not a run folder")
        run_dir = RunDir(resume_path)
    elif o.save:
        run_dir = RunDir(new_run_folder(Path(out) if out else None, run.model.name, force))

    resolved, model = run.recipe, run.model
    start: dict[str, np.ndarray] | None = None
    if o.weights is not None and checkpoint is None:
        if first is not None:
            raise TrainingError(
                f"recipe '{resolved.name}' starts from its pretraining "
                f"'{resolved.pretrain}'; it cannot also start from --weights {o.weights}"
            )
        from nnc.train.inference import starting_weights

        start = starting_weights(program, model.name, o.weights, reporter.warn)
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
    runtime = build_runtime(
        program, model.name, backend, weights, resolved.seed, device, build, o.precision
    )
    if checkpoint is not None and checkpoint.optimizer:
        restore_optimizer(runtime, checkpoint, run.document, reporter, force)

    recipe_text = ""
    if run_dir is not None:
        recipe_text = write_run_files(run_dir, run, data, backend, device, precision=o.precision)
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
    options: RunOptions,
    *,
    reporter: QuietReporter,
    should_stop: Callable[[], bool] | None = None,
    build: Callable[..., GanRuntime] | None = None,
    tracking: Tracking | None = None,
) -> TrainResult:
    """Train a resolved GAN recipe (see :mod:`nnc.train.gan`); as :func:`train`."""
    backend, out, resume, force = options.backend, options.out, options.resume, options.force
    device, keep, checkpoint_every = options.device, options.keep, options.checkpoint_every
    base = options.base
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
            fits=None if force else functools.partial(fits_gan, program, recipe),
        )
        run_dir = RunDir(resume_path)
    elif options.save:
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
