"""Experiment tracking: what a run reports beyond its run folder's CSV and JSON.

:class:`Tracking` says what to write (TensorBoard event files by default, MLflow on
request, and any callbacks of the caller's own, such as a search's pruner); the
training loops call the resulting callbacks (:mod:`nnc.train.tracking.callbacks`).
TensorBoard and MLflow are the ``track`` extra: without TensorBoard a run warns once
and writes no event files.

>>> Tracking().tensorboard, Tracking().mlflow
(True, False)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nnc.train.tracking.callbacks import Callback, CallbackList, Pictures, RunContext
from nnc.train.tracking.events import tensorboard_available


@dataclass(frozen=True)
class Tracking:
    """What a run logs, and where.

    ``histogram_every``: weight and gradient histograms (and pictures) every N epochs
    (default: about ten per run). ``mlflow_uri``/``mlflow_experiment``: the MLflow
    server and experiment (default: MLflow's own, and the recipe's name).
    ``mlflow_params``: extra parameters (a search trial's sampled values).
    ``callbacks``: more callbacks, called after the trackers.
    """

    tensorboard: bool = True
    histogram_every: int | None = None
    mlflow: bool = False
    mlflow_uri: str | None = None
    mlflow_experiment: str | None = None
    mlflow_params: Mapping[str, object] = field(default_factory=dict)
    callbacks: tuple[Callback, ...] = ()

    def start(self, context: RunContext, warn: Callable[[str], None]) -> CallbackList:
        """The callbacks for one run (MLflow missing, when asked for, is an error)."""
        found: list[Callback] = []
        if self.tensorboard and context.run_dir is not None:
            if tensorboard_available():
                from nnc.train.tracking.tensorboard import TensorBoardCallback

                found.append(TensorBoardCallback(self.histogram_every))
            else:
                warn(
                    "tensorboard is not installed; no TensorBoard event files were written "
                    "(pip install 'nnc[track]')"
                )
        if self.mlflow:
            from nnc.train.tracking.mlflow import MlflowCallback

            found.append(
                MlflowCallback(self.mlflow_uri, self.mlflow_experiment, self.mlflow_params)
            )
        return CallbackList([*found, *self.callbacks], context)


def gan_pictures(geometry: Any, noise: np.ndarray) -> Pictures:
    """A GAN's samples from fixed noise, as the 8 x 8 grid its run folder draws."""
    from nnc.train.images import GRID, mosaic

    def pictures(runtime: Any) -> dict[str, np.ndarray]:
        pixels = geometry.to_pixels(np.asarray(runtime.generate(noise))[: GRID * GRID])
        rows = -(-len(pixels) // GRID)
        return {"samples": mosaic(pixels, rows, GRID)}

    return pictures


def reconstruction_pictures(source: Any) -> Pictures:
    """An autoencoder's held-out inputs (top row) above its outputs for them."""
    from nnc.train.images import mosaic

    def pictures(runtime: Any) -> dict[str, np.ndarray]:
        top, bottom = source.pixels(runtime)
        return {"reconstructions": mosaic(np.concatenate([top, bottom]), 2, len(top))}

    return pictures


def rbm_pictures(geometry: Any, layer: str) -> Pictures:
    """The first rbm's filters (each hidden unit's weights as an image), as
    ``filters.png`` draws them."""
    from nnc.train.energy_pictures import filter_pixels
    from nnc.train.images import mosaic

    def pictures(runtime: Any) -> dict[str, np.ndarray]:
        pixels = filter_pixels(runtime.get_weights()[f"{layer}.weight"], geometry)
        cols = -(-len(pixels) // max(1, int(len(pixels) ** 0.5)))
        rows = -(-len(pixels) // cols)
        return {"filters": mosaic(pixels, rows, cols)}

    return pictures


def cd_context(
    program: Any,
    recipe: Any,
    document: dict[str, Any],
    backend: str,
    run_dir: Any,
    first_epoch: int,
    epochs: int,
    geometry: Any,
    recipe_text: str,
) -> RunContext:
    """The context of a contrastive divergence run: its rbm model (``epochs`` over
    every layer of a stack), and its first rbm's filters when the samples are images."""
    model = program.models[recipe.model]
    return RunContext(
        program=program,
        models={"": model.name},
        recipe=recipe,
        document=document,
        backend=backend,
        epochs=epochs,
        first_epoch=first_epoch,
        run_dir=run_dir.path if run_dir is not None else None,
        pictures=rbm_pictures(geometry, model.nodes[0].name) if geometry is not None else None,
        recipe_text=recipe_text,
    )


def supervised_context(
    program: Any,
    run: Any,
    data: Any,
    backend: str,
    run_dir: Any,
    first_epoch: int,
    recipe_text: str,
) -> RunContext:
    """The context of a supervised (or autoencoder) run of :func:`nnc.train.train`."""
    from nnc.train.reconstructions import reconstructions_of

    model = run.model
    source = reconstructions_of(run.recipe, data, model.inputs[0].type)
    return RunContext(
        program=program,
        models={"": model.name},
        recipe=run.recipe,
        document=run.document,
        backend=backend,
        epochs=run.recipe.epochs,
        first_epoch=first_epoch,
        run_dir=run_dir.path if run_dir is not None else None,
        data=data,
        pictures=reconstruction_pictures(source) if source is not None else None,
        recipe_text=recipe_text,
    )


def gan_context(
    program: Any,
    recipe: Any,
    document: dict[str, Any],
    backend: str,
    run_dir: Any,
    first_epoch: int,
    geometry: Any,
    recipe_text: str,
) -> RunContext:
    """The context of a GAN run: both models, and its samples when they are images."""
    from nnc.train.gan import sample_noise

    noise = sample_noise(recipe.seed, recipe.noise)
    return RunContext(
        program=program,
        models={"generator": recipe.generator, "discriminator": recipe.discriminator},
        recipe=recipe,
        document=document,
        backend=backend,
        epochs=recipe.epochs,
        first_epoch=first_epoch,
        run_dir=run_dir.path if run_dir is not None else None,
        pictures=gan_pictures(geometry, noise) if geometry is not None else None,
        recipe_text=recipe_text,
    )


__all__ = [
    "Callback",
    "CallbackList",
    "RunContext",
    "Tracking",
    "cd_context",
    "gan_context",
    "gan_pictures",
    "rbm_pictures",
    "reconstruction_pictures",
    "supervised_context",
]
