"""The training loop of a GAN recipe, as docs/semantics.md ("GAN") specifies it.

It talks to the model only through :class:`~nnc.backends.runtime.GanRuntime`, so a
GAN trains alike on every backend:

- real samples: the recipe's data, scaled as it says, shaped like the
  discriminator's input; epoch ``e`` visits them in the order
  ``rng.permutation(n)`` of one generator ``default_rng(seed)``, in batches;
- noise: one generator ``default_rng([seed, crc32("noise")])``, created before the
  first epoch; per batch, ``d_steps`` draws (one per discriminator step), then one
  for the generator step, each as many rows as the batch has samples;
- ``runtime.seed(epoch_seed(seed, e))`` at the start of epoch ``e`` (dropout masks);
- per batch: ``d_steps`` discriminator steps on that batch, then one generator
  step, each at its own optimizer's learning rate;
- epoch figures: ``d_loss``, ``d_real``, ``d_fake`` (means over the epoch's
  discriminator steps, weighted by batch size), ``g_loss``, ``g_fake`` (the same over
  its generator steps), then ``fake_mean`` and ``fake_std`` of 64 samples generated
  in evaluation mode from fixed noise (``default_rng([seed, crc32("samples")])``),
  which also make the epoch's sample grid.
"""

from __future__ import annotations

import math
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from nnc.backends.runtime import GanRuntime
from nnc.data.images import ImageGeometry
from nnc.errors import TrainingError
from nnc.ir.training import Noise
from nnc.train.checkpoint import Checkpoint, TrainState, prune_checkpoints, write_checkpoint
from nnc.train.finish import finish_run, last_figures
from nnc.train.images import SAMPLES, epoch_image, save_sample_grid
from nnc.train.loop import Identity, TrainResult, batch_size, epoch_seed
from nnc.train.plot import plot_gan
from nnc.train.progress import QuietReporter, RunInfo
from nnc.train.rundir import LOSS_PLOT, RunDir
from nnc.train.tracking.callbacks import CallbackList

SAMPLE_COUNT = 64
D_FIGURES = ("d_loss", "d_real", "d_fake")
G_FIGURES = ("g_loss", "g_fake")


def noise_generator(seed: int) -> np.random.Generator:
    """The generator of the training noise: ``default_rng([seed, crc32("noise")])``."""
    return np.random.default_rng([seed & 0xFFFFFFFF, zlib.crc32(b"noise")])


def draw_noise(rng: np.random.Generator, noise: Noise, count: int) -> np.ndarray:
    """``count`` rows of noise: N(0, 1) or U(-1, 1), drawn in float64, cast to float32
    (what every generated module's ``draw_noise`` computes).

    >>> draw_noise(noise_generator(0), Noise(dist="uniform", size=3), 2).shape
    (2, 3)
    """
    shape = (count, noise.size)
    if noise.dist == "normal":
        return rng.standard_normal(shape).astype(np.float32)
    return rng.uniform(-1.0, 1.0, shape).astype(np.float32)


def sample_noise(seed: int, noise: Noise, count: int = SAMPLE_COUNT) -> np.ndarray:
    """The fixed noise of the sample grids and of ``fake_mean``/``fake_std``."""
    rng = np.random.default_rng([seed & 0xFFFFFFFF, zlib.crc32(b"samples")])
    return draw_noise(rng, noise, count)


@dataclass(frozen=True)
class GanPlan:
    """The settings of a GAN run, resolved from the recipe and the command line."""

    epochs: int
    batch: int | Literal["all"]
    seed: int
    d_steps: int
    noise: Noise
    generator_lr: float
    discriminator_lr: float
    checkpoint_every: int = 1
    keep: int = 3


@dataclass
class GanTrainer:
    """Runs the epochs of one GAN recipe on one runtime."""

    runtime: GanRuntime
    x: np.ndarray
    plan: GanPlan
    identity: Identity
    geometry: ImageGeometry | None = None
    reporter: QuietReporter = field(default_factory=QuietReporter)
    run_dir: RunDir | None = None
    state: TrainState = field(default_factory=TrainState)
    should_stop: Callable[[], bool] = lambda: False
    resumed_from: Path | None = None
    last_checkpoint: Path | None = None
    warned: bool = False  # about missing matplotlib, once
    callbacks: CallbackList = field(default_factory=CallbackList)

    def run(self) -> TrainResult:
        plan, s = self.plan, self.state
        n = len(self.x)
        size = batch_size(plan.batch, n)
        batches = math.ceil(n / size)
        order_rng = np.random.default_rng(plan.seed)
        if s.rng_state:
            order_rng.bit_generator.state = s.rng_state
        noise_rng = noise_generator(plan.seed)
        if s.noise_state:
            noise_rng.bit_generator.state = s.noise_state
        fixed = sample_noise(plan.seed, plan.noise)
        started = time.perf_counter()
        if self.run_dir is not None:
            self.run_dir.write_history(s.history)  # a resumed run drops later rows
        self.reporter.start(
            RunInfo(
                model=self.identity.model,
                backend=self.identity.backend,
                epochs=plan.epochs,
                first_epoch=s.epoch,
                batches=batches,
                samples=n,
                validation=0,
                batch=plan.batch,
                parameters=self.identity.parameters,
                run_dir=str(self.run_dir.path) if self.run_dir else None,
                resumed_from=str(self.resumed_from) if self.resumed_from else None,
                monitor="",
            )
        )
        stopped = "completed"
        result: TrainResult | None = None
        try:
            self.callbacks.begin()
            while s.epoch < plan.epochs:
                row = self._epoch(order_rng, noise_rng, size, batches, fixed)
                if row is None:
                    stopped = "interrupted"
                    break
                s.history.append(row)
                asked = self.callbacks.epoch(s.epoch, row, self.runtime)
                if asked or self.should_stop():
                    stopped = "interrupted"
                due = s.epoch == plan.epochs or s.epoch % plan.checkpoint_every == 0
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

    def _epoch(
        self,
        order_rng: np.random.Generator,
        noise_rng: np.random.Generator,
        size: int,
        batches: int,
        fixed: np.ndarray,
    ) -> dict[str, float] | None:
        """Train one epoch (or the rest of one) and measure it; None when a stop request
        came inside the epoch (a checkpoint then records where it stopped)."""
        s, plan, runtime = self.state, self.plan, self.runtime
        epoch = s.epoch
        epoch_start = dict(order_rng.bit_generator.state)
        order = order_rng.permutation(len(self.x))
        runtime.seed(epoch_seed(plan.seed, epoch))
        sums = dict.fromkeys((*D_FIGURES, *G_FIGURES, "d_count", "g_count"), 0.0)
        sums.update(s.partial_figures)
        clock = time.perf_counter()
        for b in range(s.batch, batches):
            real = self.x[order[b * size : (b + 1) * size]]
            for _ in range(plan.d_steps):
                z = draw_noise(noise_rng, plan.noise, len(real))
                d = runtime.discriminator_step(real, z, plan.discriminator_lr)
                self._check(d["d_loss"], "discriminator", epoch, b, batches)
                for name in D_FIGURES:
                    sums[name] += d[name] * len(real)
                sums["d_count"] += len(real)
            z = draw_noise(noise_rng, plan.noise, len(real))
            g = runtime.generator_step(z, plan.generator_lr)
            self._check(g["g_loss"], "generator", epoch, b, batches)
            for name in G_FIGURES:
                sums[name] += g[name] * len(real)
            sums["g_count"] += len(real)
            s.step += 1
            self.reporter.batch(epoch, b + 1, batches, g["g_loss"], "g_loss")
            if b + 1 < batches and self.should_stop():
                # Replaying the epoch's permutation from its start state finds the
                # remaining batches; the noise generator goes on from here.
                s.batch, s.rng_state = b + 1, epoch_start
                s.noise_state = dict(noise_rng.bit_generator.state)
                s.partial_figures = sums
                self._checkpoint()
                return None
        row: dict[str, float] = {"epoch": epoch + 1}
        for name in D_FIGURES:
            row[name] = sums[name] / sums["d_count"]
        for name in G_FIGURES:
            row[name] = sums[name] / sums["g_count"]
        samples = runtime.generate(fixed)
        row["fake_mean"] = float(np.mean(samples))
        row["fake_std"] = float(np.std(samples))
        row["time"] = time.perf_counter() - clock
        s.epoch, s.batch, s.rng_state = epoch + 1, 0, dict(order_rng.bit_generator.state)
        s.noise_state = dict(noise_rng.bit_generator.state)
        s.partial_figures = {}
        self._draw(samples, epoch + 1)
        return row

    def _draw(self, samples: np.ndarray, epoch: int) -> None:
        if self.run_dir is None or self.geometry is None:
            return
        title = f"{self.identity.model}: epoch {epoch}"
        drawn = save_sample_grid(
            samples, self.geometry, epoch_image(self.run_dir.path / SAMPLES, epoch), title
        )
        if drawn is None and not self.warned:
            self.warned = True
            self.reporter.warn(
                "matplotlib is not installed; sample grids are not drawn (pip install 'nnc[plot]')"
            )

    def _check(self, loss: float, model: str, epoch: int, batch: int, batches: int) -> None:
        if not math.isfinite(loss):
            rates = f"{self.plan.discriminator_lr:g} / {self.plan.generator_lr:g}"
            self._diverged(
                f"the {model} loss became {loss} at epoch {epoch + 1}, step "
                f"{self.state.step + 1} (batch {batch + 1} of {batches}) with learning rates "
                f"{rates} (discriminator / generator)"
            )

    def _diverged(self, what: str) -> None:
        saved = (
            f"the last good checkpoint is {self.last_checkpoint}"
            if self.last_checkpoint
            else "no checkpoint was written"
        )
        if self.run_dir is not None:
            self.run_dir.write_history(self.state.history)
        raise TrainingError(
            f"{what}; training stopped and {saved}",
            hint="lower the learning rates, or give the discriminator a smaller one",
        )

    def _checkpoint(self) -> Path | None:
        if self.run_dir is None:
            return None
        weights = self.runtime.get_weights()
        bad = [k for k, v in weights.items() if not np.all(np.isfinite(v))]
        if bad:
            self._diverged(
                f"weight '{bad[0]}' became NaN or infinite by epoch {self.state.epoch + 1}"
            )
        checkpoint = Checkpoint(
            weights=weights,
            optimizer=self.runtime.get_optimizer_state(),
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
        final["data_mean"] = float(np.mean(self.x))
        final["data_std"] = float(np.std(self.x))
        files: list[Path] = []
        if self.run_dir is not None:
            if stopped != "interrupted":
                files.append(
                    self.run_dir.save_weights(
                        self.runtime.get_weights(), self.identity.provenance(s.epoch)
                    )
                )
            plotted = plot_gan(
                s.history, self.run_dir.path / LOSS_PLOT, f"{self.identity.model}: per epoch"
            )
            if plotted is None and s.history:
                self.reporter.warn(
                    "matplotlib is not installed; loss.png was not drawn (pip install 'nnc[plot]')"
                )
            elif plotted is not None:
                files.append(plotted)
        return finish_run(
            runtime=self.runtime,
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
