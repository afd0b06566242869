"""``train`` for a contrastive divergence recipe: the run folder, checkpoints and
resume of :mod:`nnc.train.session`, around the loop of :mod:`nnc.train.cd`."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from nnc.backends.registry import BackendSpec, backends, parse_backend
from nnc.data.images import image_geometry
from nnc.data.preparation import prepare_cd
from nnc.data.standardize import FILENAME as STANDARDIZE
from nnc.dsl import format_program
from nnc.errors import TrainingError, WeightsError
from nnc.ir.passes.params import count_params
from nnc.ir.program import Program
from nnc.ir.training import CdRecipe
from nnc.ir.weights import check_weights, init_weights
from nnc.train.cd import RBM_PARAMS, CdPlan, CdTrainer
from nnc.train.checkpoint import Checkpoint, TrainState
from nnc.train.energy import CdSettings
from nnc.train.environment import write_environment
from nnc.train.loop import Identity, TrainResult
from nnc.train.options import RunOptions
from nnc.train.progress import QuietReporter
from nnc.train.recipes import fingerprint, recipe_document, recipe_program
from nnc.train.run import (
    build_runtime,
    check_resume_folders,
    default_checkpoint_every,
    resume_checkpoint,
)
from nnc.train.rundir import RunDir, new_run_folder
from nnc.train.tracking import Tracking, cd_context


def backend_step(backend: str | BackendSpec, device: str | None) -> Callable[..., Any]:
    """The CD step of a backend (all take the uniforms nnc draws; those that place
    their model take the device too)."""
    spec = parse_backend(backend)
    return partial(spec.load_cd_step(), **spec.device_options(device))


def cd_settings(recipe: CdRecipe) -> CdSettings:
    o = recipe.optimizer
    return CdSettings(
        k=o.k, lr=o.lr, momentum=o.momentum, weight_decay=o.weight_decay, persistent=o.persistent
    )


def train_cd(
    program: Program,
    recipe: CdRecipe,
    options: RunOptions,
    *,
    reporter: QuietReporter,
    should_stop: Callable[[], bool] | None = None,
    tracking: Tracking | None = None,
) -> TrainResult:
    """Train a resolved contrastive divergence recipe; as :func:`nnc.train.session.train`
    (``tracking``: TensorBoard event files in the run folder by default, MLflow and
    callbacks on request, each epoch's history row as its figures)."""

    backend, out, resume, force = options.backend, options.out, options.resume, options.force
    device, keep, checkpoint_every = options.device, options.keep, options.checkpoint_every
    save, base = options.save, options.base

    if parse_backend(backend).cd_step is None:
        raise TrainingError(
            f"recipe '{recipe.name}' trains by contrastive divergence, which runs on the "
            f"{', '.join(b.name for b in backends(cd=True))} backends; the {backend} "
            "backend has no CD step",
            hint="train with --backend numpy; the trained rbm then runs on every backend",
        )
    document = recipe_document(program, recipe)
    digest = fingerprint(document)
    model = program.models[recipe.model]
    check_resume_folders(out, resume)
    run_dir: RunDir | None = None
    checkpoint: Checkpoint | None = None
    if resume is not None:
        checkpoint = resume_checkpoint(Path(resume), document, digest, force, reporter)
        run_dir = RunDir(Path(resume))
    elif save:
        run_dir = RunDir(new_run_folder(Path(out) if out else None, model.name, force))

    samples, held_out, standardizer = prepare_cd(program, recipe, base)
    if run_dir is not None and standardizer is not None:
        standardizer.save(run_dir.path / STANDARDIZE)
    weights = (
        check_weights(program, model, checkpoint.weights, source=str(checkpoint.path))
        if checkpoint
        else init_weights(program, model, recipe.seed)
    )
    layers = tuple(n.name for n in model.nodes)
    optimizer: dict[str, np.ndarray] = {}
    if checkpoint is not None:
        optimizer = _cd_state(checkpoint, weights, layers, recipe.optimizer.persistent)
    recipe_text = ""
    if run_dir is not None:
        single = recipe_program(program, recipe)
        recipe_text = format_program(single, resolved=True)
        run_dir.write_recipe(recipe_text, single.to_json())
        write_environment(run_dir.path, backend, device)
    plan = CdPlan(
        layers=layers,
        epochs=recipe.epochs,
        batch=recipe.batch,
        seed=recipe.seed,
        cd=cd_settings(recipe),
        checkpoint_every=checkpoint_every or default_checkpoint_every(recipe.epochs),
        keep=keep,
        visible=tuple(getattr(n, "visible", "bernoulli") for n in model.nodes),
    )
    identity = Identity(
        model=model.name,
        backend=backend,
        parameters=count_params(program, model),
        recipe_hash=digest,
        recipe_json=json.dumps(document, sort_keys=True),
    )
    spec = parse_backend(backend)
    spec.require()
    placed = spec.device_options(device)  # refuses a device the backend cannot use
    geometry = image_geometry(recipe.data, model.inputs[0].type.shape, samples.x)
    state = checkpoint.state if checkpoint else TrainState()
    context = cd_context(
        program,
        recipe,
        document,
        backend,
        run_dir,
        state.epoch,
        plan.total_epochs,
        geometry,
        recipe_text,
    )
    trainer = CdTrainer(
        weights=weights,
        x=samples.x,
        x_val=held_out,
        plan=plan,
        identity=identity,
        step=backend_step(backend, placed.get("device")),
        finish_runtime=lambda w: build_runtime(
            program, model.name, backend, dict(w), recipe.seed, device
        ),
        geometry=geometry,
        reporter=reporter,
        run_dir=run_dir,
        state=state,
        optimizer=optimizer,
        should_stop=should_stop or (lambda: False),
        resumed_from=checkpoint.path if checkpoint else None,
        callbacks=(tracking or Tracking()).start(context, reporter.warn),
    )
    return trainer.run()


def _cd_state(
    checkpoint: Checkpoint, weights: dict[str, np.ndarray], layers: tuple[str, ...], pcd: bool
) -> dict[str, np.ndarray]:
    """A checkpoint's velocities and persistent chains, checked against the model."""
    state = checkpoint.optimizer
    expected = {f"{n}.{p}.velocity": weights[f"{n}.{p}"].shape for n in layers for p in RBM_PARAMS}
    chains = {f"{n}.chain" for n in layers} if pcd else set()
    unknown = sorted(set(state) - set(expected) - chains)
    missing = sorted(set(expected) - set(state))
    if unknown or missing:
        raise WeightsError(
            f"{checkpoint.path}: the contrastive divergence state should hold the "
            "velocities <layer>.<param>.velocity"
            + (" and the chains <layer>.chain" if pcd else "")
            + (f"; missing {', '.join(missing)}" if missing else "")
            + (f"; unknown {', '.join(unknown)}" if unknown else "")
        )
    out: dict[str, np.ndarray] = {}
    for name, value in state.items():
        shape = expected.get(name)
        if shape is not None and value.shape != shape:
            raise WeightsError(
                f"{checkpoint.path}: '{name}' has shape {list(value.shape)}; the model "
                f"expects {list(shape)}"
            )
        if name in chains:
            visible = weights[f"{name.rsplit('.', 1)[0]}.weight"].shape[0]
            if value.ndim != 2 or value.shape[1] != visible:
                raise WeightsError(
                    f"{checkpoint.path}: '{name}' has shape {list(value.shape)}; the chains "
                    f"of that layer have {visible} visible units"
                )
        out[name] = np.array(value, dtype=np.float32)
    return out
