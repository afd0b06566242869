"""The runtime interface that every backend's generated code implements.

``nnc.build(program, backend=...)`` and ``nnc train`` work through this interface
only, so the training driver never knows which framework runs underneath.

Conventions, shared by all backends:

- Arrays crossing the interface are NumPy, float32 (int64 for index inputs), batch
  first, in nnc's canonical channels-first layout.
- Weights are canonical: ``{"<node>.<param>": array}`` in the layouts of
  ``docs/semantics.md``, including buffers such as ``running_mean``.
- Targets: for ``cross_entropy`` the driver passes one-hot (or probability) rows
  shaped like the output; for every other loss, an array shaped like the output.
- ``train_step`` runs forward in training mode (dropout on, batchnorm batch
  statistics), computes the loss, its gradients, adds ``l2 * p`` to the gradient of
  every parameter with ``decay``, and applies nnc's optimizer formula with the given
  learning rate; it returns the loss before the update (L2 term excluded).
- Batchnorm running statistics change only in ``train_step`` (also for a frozen
  layer); ``forward(training=True)``, ``loss`` and ``gradients`` leave them alone.
- ``seed(n)`` reseeds the backend's own random generator (dropout masks). The driver
  calls it at the start of every epoch with a value derived from the recipe's seed
  and the epoch, so a run resumed at an epoch boundary replays exactly.
- Optimizer state is canonical too, so it moves between backends:
  ``"step"`` (a 0-d int64 array, updates so far) and per trainable parameter
  ``"<param>.velocity"`` (sgd with momentum), ``"<param>.accumulator"`` (adagrad),
  ``"<param>.square_avg"`` (rmsprop), ``"<param>.m"`` and ``"<param>.v"`` (adam).
- The framework's own object, which ``nnc.build`` returns, is an attribute of the
  runtime: ``model`` (the ``torch.nn.Module``; the Keras model or ``tf.Module``),
  ``session`` (the onnxruntime ``InferenceSession``); the NumPy runtime is itself
  the NumPy model object. ``nnc.backends.registry`` records which (``BackendSpec.native``).

A GAN recipe trains two models against each other; its runtime is a
:class:`GanRuntime` (``build_gan`` of the numpy, torch and tensorflow backends), with
the same conventions plus:

- weights and optimizer state hold both models under their roles:
  ``generator/<param>`` and ``discriminator/<param>``, ``generator/step``,
  ``discriminator/<param>.m``, ... (the part after the slash is the model's own
  canonical name);
- the noise comes in as arrays (``[N, noise size]``, float32) drawn by the caller
  from nnc's seeded generator, never from the framework's;
- ``discriminator_step`` and ``generator_step`` compute docs/semantics.md's GAN
  losses and update one model each; they return their figures, measured before the
  update, with D's outputs as probabilities.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol, runtime_checkable

import numpy as np

Arrays = dict[str, np.ndarray]

OPTIMIZER_STATE_SLOTS: dict[str, tuple[str, ...]] = {
    "sgd": ("velocity",),  # only when momentum > 0
    "adagrad": ("accumulator",),
    "rmsprop": ("square_avg",),
    "adam": ("m", "v"),
}


@runtime_checkable
class Runtime(Protocol):
    """A model ready to run on one backend, with its loss and optimizer."""

    backend: str

    def forward(self, *inputs: np.ndarray, training: bool = False) -> np.ndarray:
        """Outputs for a batch (a tuple of arrays for a multi-output model)."""
        ...

    def train_step(self, x: np.ndarray, y: np.ndarray, lr: float) -> float:
        """One update on one batch; returns the batch loss before the update."""
        ...

    def loss(self, x: np.ndarray, y: np.ndarray) -> float:
        """The loss in evaluation mode (no dropout, running batchnorm statistics)."""
        ...

    def gradients(self, x: np.ndarray, y: np.ndarray) -> Arrays:
        """d(loss)/d(param) for every trainable parameter, in training mode, canonical
        layout; no update is made."""
        ...

    def seed(self, seed: int) -> None:
        """Reseed the backend's random generator (used for dropout masks)."""
        ...

    def get_weights(self) -> Arrays: ...

    def set_weights(self, weights: Mapping[str, np.ndarray]) -> None: ...

    def get_optimizer_state(self) -> Arrays: ...

    def set_optimizer_state(self, state: Mapping[str, np.ndarray]) -> None: ...


@runtime_checkable
class DataParallelRuntime(Runtime, Protocol):
    """A runtime that trains one worker's slice of each global batch in data-parallel
    training (``nnc train --nproc N``; docs/distributed.md).

    ``train_step(x, y, lr, share)`` takes this worker's slice of the global batch and
    the weight of the slice's loss in the global batch's loss (the slice's fraction
    of the samples for a mean-reduced loss, 1 for ``sse``); it updates every worker
    with the gradient of the global batch's loss and returns the slice's own loss
    (NaN for an empty slice of a mean-reduced loss). Every worker calls each
    collective method, in the same order.
    """

    rank: int
    world_size: int

    def train_step(self, x: np.ndarray, y: np.ndarray, lr: float, share: float = 1.0) -> float:
        """One update of every worker with the global batch's gradient."""
        ...

    def all_reduce(self, values: np.ndarray) -> np.ndarray:
        """The element-wise sum of a float64 vector over the workers."""
        ...


GAN_STEP_FIGURES: dict[str, tuple[str, ...]] = {
    "discriminator": ("d_loss", "d_real", "d_fake"),
    "generator": ("g_loss", "g_fake"),
}


@runtime_checkable
class GanRuntime(Protocol):
    """A GAN recipe ready to train on one backend: the generator G and the
    discriminator D, each with its optimizer."""

    backend: str

    def generate(self, z: np.ndarray, training: bool = False) -> np.ndarray:
        """G(z) for a batch of noise."""
        ...

    def discriminate(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        """D's output for a batch of samples, as the model computes it (a logit or a
        probability, ``[N, 1]``)."""
        ...

    def discriminator_step(self, x: np.ndarray, z: np.ndarray, lr: float) -> dict[str, float]:
        """One update of D on real samples ``x`` and generated ones ``G(z)``;
        returns ``d_loss``, ``d_real`` (mean D(x)) and ``d_fake`` (mean D(G(z)))."""
        ...

    def generator_step(self, z: np.ndarray, lr: float) -> dict[str, float]:
        """One update of G through D (D unchanged); returns ``g_loss`` and ``g_fake``
        (mean D(G(z)))."""
        ...

    def seed(self, seed: int) -> None:
        """Reseed the backend's random generator (dropout masks of both models)."""
        ...

    def get_weights(self) -> Arrays: ...

    def set_weights(self, weights: Mapping[str, np.ndarray]) -> None: ...

    def get_optimizer_state(self) -> Arrays: ...

    def set_optimizer_state(self, state: Mapping[str, np.ndarray]) -> None: ...
