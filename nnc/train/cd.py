"""The training loop of a contrastive divergence recipe (``optimizer cd(...)``), as
docs/semantics.md ("RBM and contrastive divergence") specifies it, in float32 (the
canonical weights' dtype), each step by the backend's CD step (numpy:
:func:`nnc.train.energy.cd_step`; torch and tensorflow: ``nnc.backends.<name>.energy``)
on the uniforms drawn here, while the loop, its state and the figures stay NumPy.

- the samples: the recipe's data (values in [0, 1]), shaped ``[n, visible]``; epoch
  ``e`` visits them in the order ``rng.permutation(n)`` of one generator
  ``default_rng(seed)``, in batches;
- the uniforms: one generator ``default_rng([seed, crc32("cd")])``, created before
  the first epoch, drawn per batch (:func:`~nnc.train.energy.draw_uniforms`);
- a stack of rbm layers (a deep belief network) trains greedily: layer ``l`` (from 0)
  for ``epochs`` epochs, on the up pass ``σ(v W + c)`` of the layers below it, so a
  run has ``epochs × layers`` epochs; the two generators go on across the layers, and
  each layer's velocities start at zero, its persistent chains at its first batch;
- epoch figures: ``layer`` (1-based, for a stack), ``recon_error`` (the mean over the
  epoch's batches, weighted by rows), then, at the epoch's end, ``log_likelihood``
  (exact, by enumeration, when the layer's smaller side has at most 12 units; mean
  over every sample) or else ``pseudo_log_likelihood`` (exact, every visible unit
  flipped in turn; mean over the first :data:`EVAL_ROWS` samples, in the data's order),
  and with ``validation`` the same figure on the held-out samples (``val_...``).

A checkpoint holds the weights, and as its optimizer state each layer's velocities
(``<layer>.<param>.velocity``) and persistent chains (``<layer>.chain``); the uniforms'
generator state rides in ``meta/noise_rng``, so a resumed run is bitwise the one that
was not interrupted.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from nnc.data.images import ImageGeometry
from nnc.errors import TrainingError
from nnc.train.checkpoint import Checkpoint, TrainState, prune_checkpoints, write_checkpoint
from nnc.train.energy import (
    EXACT_UNITS,
    Arrays,
    CdSettings,
    cd_generator,
    cd_step,
    draw_uniforms,
    hidden_probabilities,
    log_likelihood,
    pseudo_log_likelihood,
)
from nnc.train.energy_pictures import save_rbm_pictures
from nnc.train.finish import finish_run, last_figures
from nnc.train.loop import Identity, TrainResult, batch_size
from nnc.train.plot import plot_cd
from nnc.train.progress import QuietReporter, RunInfo
from nnc.train.rundir import LOSS_PLOT, RunDir
from nnc.train.tracking.callbacks import CallbackList

RBM_PARAMS = ("weight", "visible_bias", "hidden_bias")
EVAL_ROWS = 256  # the pseudo-log-likelihood is measured on the first 256 samples


@dataclass(frozen=True)
class CdPlan:
    """The settings of a contrastive divergence run: the rbm layers in order, and
    ``epochs`` per layer."""

    layers: tuple[str, ...]
    epochs: int
    batch: int | str
    seed: int
    cd: CdSettings
    checkpoint_every: int = 1
    keep: int = 3
    visible: tuple[str, ...] = ()  # per layer: bernoulli (the default) or gaussian

    def visible_of(self, layer: int) -> str:
        return self.visible[layer] if self.visible else "bernoulli"

    @property
    def total_epochs(self) -> int:
        return self.epochs * len(self.layers)


def likelihood_name(visible: int, hidden: int, kind: str = "bernoulli") -> str | None:
    """The figure an epoch reports: ``log_likelihood`` when it can be enumerated, else
    ``pseudo_log_likelihood`` (Bernoulli visible units) or none (Gaussian ones, whose
    log Z enumerates the hidden states only)."""
    if kind == "gaussian":
        return "log_likelihood" if hidden <= EXACT_UNITS else None
    return "log_likelihood" if min(visible, hidden) <= EXACT_UNITS else "pseudo_log_likelihood"


@dataclass(frozen=True)
class CdWeights:
    """What a tracking callback sees of a CD run after an epoch: its weights (the
    histograms of TensorBoard; a CD run has no runtime until it ends)."""

    weights: dict[str, np.ndarray]

    def get_weights(self) -> dict[str, np.ndarray]:
        return dict(self.weights)


@dataclass
class CdTrainer:
    """Runs the epochs of one contrastive divergence recipe."""

    weights: dict[str, np.ndarray]  # canonical, float32; updated in place
    x: np.ndarray  # [n, visible], float32, values in [0, 1]
    plan: CdPlan
    identity: Identity
    finish_runtime: Callable[[dict[str, np.ndarray]], object]  # the final up-pass runtime
    x_val: np.ndarray | None = None  # the held-out samples, measured only
    geometry: ImageGeometry | None = None
    reporter: QuietReporter = field(default_factory=QuietReporter)
    run_dir: RunDir | None = None
    state: TrainState = field(default_factory=TrainState)
    optimizer: dict[str, np.ndarray] = field(default_factory=dict)  # velocities, chains
    should_stop: Callable[[], bool] = lambda: False
    step: Callable[..., tuple[Arrays, Arrays, np.ndarray, float]] = cd_step  # a backend's
    resumed_from: Path | None = None
    last_checkpoint: Path | None = None
    callbacks: CallbackList = field(default_factory=CallbackList)  # TensorBoard, MLflow, ...

    def run(self) -> TrainResult:
        plan, s = self.plan, self.state
        n = len(self.x)
        size = batch_size(plan.batch, n)  # type: ignore[arg-type]
        batches = math.ceil(n / size)
        for name in plan.layers:
            for p in RBM_PARAMS:
                key = f"{name}.{p}.velocity"
                self.optimizer.setdefault(key, np.zeros_like(self.weights[f"{name}.{p}"]))
        order_rng = np.random.default_rng(plan.seed)
        if s.rng_state:
            order_rng.bit_generator.state = s.rng_state
        rng = cd_generator(plan.seed)
        if s.noise_state:
            rng.bit_generator.state = s.noise_state
        started = time.perf_counter()
        if self.run_dir is not None:
            self.run_dir.write_history(s.history)  # a resumed run drops later rows
        self.reporter.start(
            RunInfo(
                model=self.identity.model,
                backend=self.identity.backend,
                epochs=plan.total_epochs,
                first_epoch=s.epoch,
                batches=batches,
                samples=n,
                validation=0 if self.x_val is None else len(self.x_val),
                batch=plan.batch,
                parameters=self.identity.parameters,
                run_dir=str(self.run_dir.path) if self.run_dir else None,
                resumed_from=str(self.resumed_from) if self.resumed_from else None,
                monitor="",
            )
        )
        stopped = "completed"
        inputs: tuple[int, np.ndarray, np.ndarray | None] | None = None  # layer, x, x_val
        result: TrainResult | None = None
        try:
            self.callbacks.begin()
            while s.epoch < plan.total_epochs:
                layer = s.epoch // plan.epochs
                if inputs is None or inputs[0] != layer:
                    held = None if self.x_val is None else self._layer_input(layer, self.x_val)
                    inputs = (layer, self._layer_input(layer, self.x), held)
                row = self._epoch(layer, inputs[1], inputs[2], order_rng, rng, size, batches)
                if row is None:
                    stopped = "interrupted"
                    break
                s.history.append(row)
                asked = self.callbacks.epoch(s.epoch, row, CdWeights(self.weights))
                if asked or self.should_stop():
                    stopped = "interrupted"
                due = s.epoch == plan.total_epochs or s.epoch % plan.checkpoint_every == 0
                if self.run_dir is not None:
                    if due or stopped != "completed":
                        self._checkpoint()
                    else:
                        self.run_dir.append_history(s.history)
                self.reporter.epoch(row, False)
                if stopped != "completed":
                    break
            result = self._finish(stopped, time.perf_counter() - started)
            return result
        finally:
            self.callbacks.end(result)
            self.reporter.close()

    def _layer(self, layer: int) -> Arrays:
        name = self.plan.layers[layer]
        return {p: self.weights[f"{name}.{p}"] for p in RBM_PARAMS}

    def _layer_input(self, layer: int, v: np.ndarray) -> np.ndarray:
        """Samples as layer ``layer`` sees them: the up pass of the layers below."""
        for below in range(layer):
            v = hidden_probabilities(self._layer(below), v).astype(np.float32)
        return v

    def _epoch(
        self,
        layer: int,
        x: np.ndarray,
        x_val: np.ndarray | None,
        order_rng: np.random.Generator,
        rng: np.random.Generator,
        size: int,
        batches: int,
    ) -> dict[str, float] | None:
        """Train one epoch (or the rest of one) and measure it; None when a stop request
        came inside the epoch (a checkpoint then records where it stopped)."""
        s, plan = self.state, self.plan
        name, kind = plan.layers[layer], plan.visible_of(layer)
        epoch = s.epoch
        epoch_start = dict(order_rng.bit_generator.state)
        order = order_rng.permutation(len(x))
        w = self._layer(layer)
        velocity = {p: self.optimizer[f"{name}.{p}.velocity"] for p in RBM_PARAMS}
        visible, hidden = w["weight"].shape
        sums = {"error": 0.0, "count": 0.0, **s.partial_figures}
        clock = time.perf_counter()
        for b in range(s.batch, batches):
            v0 = x[order[b * size : (b + 1) * size]]
            chain_key = f"{name}.chain"
            if plan.cd.persistent and chain_key not in self.optimizer:
                self.optimizer[chain_key] = v0.copy()
            chain = self.optimizer.get(chain_key)
            u = draw_uniforms(rng, plan.cd.k, len(v0), visible, hidden, kind)
            start = chain[: len(v0)] if chain is not None else None
            w, velocity, vk, error = self.step(w, velocity, v0, u, plan.cd, start, visible=kind)
            if chain is not None:
                chain[: len(v0)] = vk
            if not math.isfinite(error):
                self._diverged(
                    f"the reconstruction error became {error} at epoch {epoch + 1}, batch "
                    f"{b + 1} of {batches} with lr {plan.cd.lr:g}"
                )
            self._store(name, w, velocity)
            sums["error"] += error * len(v0)
            sums["count"] += len(v0)
            s.step += 1
            self.reporter.batch(epoch, b + 1, batches, error, "recon_error")
            if b + 1 < batches and self.should_stop():
                s.batch, s.rng_state = b + 1, epoch_start
                s.noise_state = dict(rng.bit_generator.state)
                s.partial_figures = sums
                self._checkpoint()
                return None
        row: dict[str, float] = {"epoch": epoch + 1}
        if len(plan.layers) > 1:
            row["layer"] = layer + 1
        row["recon_error"] = sums["error"] / sums["count"]
        figure = likelihood_name(visible, hidden, kind)
        if figure == "log_likelihood":
            row[figure] = log_likelihood(w, x, kind)
            if x_val is not None:
                row[f"val_{figure}"] = log_likelihood(w, x_val, kind)
        elif figure is not None:
            row[figure] = pseudo_log_likelihood(w, x[:EVAL_ROWS])
            if x_val is not None:
                row[f"val_{figure}"] = pseudo_log_likelihood(w, x_val[:EVAL_ROWS])
        row["time"] = time.perf_counter() - clock
        s.epoch, s.batch, s.rng_state = epoch + 1, 0, dict(order_rng.bit_generator.state)
        s.noise_state = dict(rng.bit_generator.state)
        s.partial_figures = {}
        return row

    def _store(self, name: str, w: Arrays, velocity: Arrays) -> None:
        for p in RBM_PARAMS:
            self.weights[f"{name}.{p}"] = w[p]
            self.optimizer[f"{name}.{p}.velocity"] = velocity[p]

    def _diverged(self, what: str) -> None:
        saved = (
            f"the last good checkpoint is {self.last_checkpoint}"
            if self.last_checkpoint
            else "no checkpoint was written"
        )
        if self.run_dir is not None:
            self.run_dir.write_history(self.state.history)
        raise TrainingError(f"{what}; training stopped and {saved}", hint="lower lr")

    def _checkpoint(self) -> Path | None:
        if self.run_dir is None:
            return None
        checkpoint = Checkpoint(
            weights=dict(self.weights),
            optimizer=dict(self.optimizer),
            state=self.state,
            recipe_hash=self.identity.recipe_hash,
            recipe=self.identity.recipe_json,
            backend=self.identity.backend,
        )
        self.run_dir.write_history(self.state.history)  # first: a resume reads it
        path = write_checkpoint(self.run_dir.checkpoints, checkpoint)
        prune_checkpoints(self.run_dir.checkpoints, self.plan.keep)
        self.run_dir.retire_weights()
        self.last_checkpoint = path
        return path

    def _finish(self, stopped: str, seconds: float) -> TrainResult:
        s = self.state
        final = last_figures(s.history)
        files: list[Path] = []
        if self.run_dir is not None:
            if stopped != "interrupted":
                files.append(
                    self.run_dir.save_weights(self.weights, self.identity.provenance(s.epoch))
                )
                if self.geometry is not None:
                    title = f"{self.identity.model} ({self.plan.layers[0]})"
                    drawn = save_rbm_pictures(
                        self._layer(0),
                        self.geometry,
                        self.run_dir.path,
                        title,
                        self.plan.seed,
                        self.plan.visible_of(0),
                    )
                    if not drawn:
                        self.reporter.warn(
                            "matplotlib is not installed; filters.png and samples.png were "
                            "not drawn (pip install 'nnc[plot]')"
                        )
                    files += drawn
            plotted = plot_cd(
                s.history, self.run_dir.path / LOSS_PLOT, f"{self.identity.model}: per epoch"
            )
            if plotted is not None:
                files.append(plotted)
        return finish_run(
            runtime=self.finish_runtime(self.weights),
            model=self.identity.model,
            history=s.history,
            stopped=stopped,
            final=final,
            epochs_run=s.epoch,
            seconds=seconds,
            run_dir=self.run_dir,
            checkpoint=self.last_checkpoint,
            files=files,
            reporter=self.reporter,
        )
