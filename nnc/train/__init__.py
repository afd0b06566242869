"""The framework-agnostic training driver.

It owns the data, the seeded batch order, epochs, learning-rate schedules, metrics,
validation, early stopping, progress, history, checkpoints and the run folder, and
it reaches a model only through :class:`nnc.backends.runtime.Runtime`, so the same
recipe trains alike on every backend. A GAN recipe trains through its own loop
(:mod:`nnc.train.gan`) on a :class:`nnc.backends.runtime.GanRuntime`; ``train``
dispatches to it. See ``docs/training.md``.
"""

from __future__ import annotations

from nnc.train.inference import Trained, evaluate_trained, load_trained, predict_file
from nnc.train.loop import Plan, Trainer, TrainResult, epoch_seed
from nnc.train.options import RunOptions
from nnc.train.session import train

__all__ = [
    "Plan",
    "RunOptions",
    "TrainResult",
    "Trained",
    "Trainer",
    "epoch_seed",
    "evaluate_trained",
    "load_trained",
    "predict_file",
    "train",
]
