"""The epoch loop: batch order, schedules, metrics, early stopping, checkpoints.

It talks to the model only through :class:`~nnc.backends.runtime.Runtime`, so it
trains on every backend alike. The procedure (``docs/semantics.md``, Training):

- one batch-order generator ``numpy.random.default_rng(seed)``; epoch ``e`` visits
  the training samples in the order ``rng.permutation(n)``, in batches of ``batch``
  (the last batch may be smaller); ``runtime.seed(epoch_seed(seed, e))`` first;
- the learning rate of epoch ``e`` is ``learning_rate(lr, schedule, e)``;
- the epoch's loss is the sample-weighted mean of its batch losses; metrics and
  validation figures are measured after the epoch, in evaluation mode;
- the monitored figure (early stopping's ``monitor``; else ``val_loss`` with a
  validation set, else ``loss``) picks the best epoch.

In data-parallel training (``group``) every worker runs this loop on the same
global batch order; each trains on its slice of every batch (see
:mod:`nnc.train.distributed.group`), and the batch losses, the stop requests and the
epoch figures are summed over the workers, so every worker takes the same decisions.
Only rank 0 has a run folder and a reporter.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, NoReturn

import numpy as np

from nnc.backends.runtime import GanRuntime, Runtime
from nnc.data import PreparedData
from nnc.errors import TrainingError
from nnc.ir.training import EarlyStopping, Schedule, learning_rate
from nnc.train.checkpoint import Checkpoint, TrainState, prune_checkpoints, write_checkpoint
from nnc.train.distributed.group import DataParallel, share
from nnc.train.evaluate import confusion, evaluate
from nnc.train.metrics import Metrics, higher_is_better
from nnc.train.plot import plot_confusion, plot_loss
from nnc.train.progress import QuietReporter, RunInfo, Summary
from nnc.train.rundir import LOSS_PLOT, RunDir, atomic_write_text
from nnc.train.tracking.callbacks import CallbackList

# A finite batch loss above EXPLOSION times the reference loss (the run's first batch
# loss, or its first epoch loss when resuming; at least 1) stops the run as a
# divergence: with learning rates such as sgd(lr = 1e6) the loss stays finite at 1e20
# to 1e30 while the model falls to chance (docs/semantics.md, "Divergence").
EXPLOSION = 1e6


def _explosion_finding(finding: object) -> object:
    """The locator's report for an exploded (still finite) step: with every value
    finite, the largest one and its layer."""
    if getattr(finding, "kind", None) == "loss":
        return f"every layer's output is finite; {getattr(finding, 'detail', '')}"
    return finding


def epoch_seed(seed: int, epoch: int) -> int:
    """The value passed to ``runtime.seed`` at the start of 0-based ``epoch``.

    >>> epoch_seed(7, 0) == epoch_seed(7, 0) != epoch_seed(7, 1)
    True
    """
    return int(np.random.SeedSequence([seed, epoch]).generate_state(1)[0])


def batch_size(batch: int | Literal["all"], n: int) -> int:
    return n if batch == "all" else min(int(batch), n)


@dataclass(frozen=True)
class Plan:
    """The settings of the loop, resolved from the recipe and the command line."""

    epochs: int
    batch: int | Literal["all"]
    seed: int
    lr: float
    schedule: Schedule
    summed_loss: bool
    loss_name: str
    early_stopping: EarlyStopping | None
    monitor: str
    checkpoint_every: int = 1
    keep: int = 3


@dataclass
class Identity:
    """What a checkpoint records about the run it belongs to."""

    model: str
    backend: str
    parameters: int
    recipe_hash: str = ""
    recipe_json: str = ""
    workers: int = 1

    def provenance(self, epoch: int) -> dict[str, str]:
        """The metadata of the run's final weights file: the model, the recipe hash,
        the backend and the epochs trained."""
        return {
            "model": self.model,
            "recipe_hash": self.recipe_hash,
            "backend": self.backend,
            "epoch": str(epoch),
        }


# Given the canonical weights a diverged step started from and its batch of inputs,
# say which value went non-finite first (nnc.train.diagnose.first_non_finite).
Diagnose = Callable[[dict[str, np.ndarray], np.ndarray], object]


@dataclass
class _Anchor:
    """A state a diverged step can be replayed from: the run's start, or its last
    checkpoint. ``rng_state`` is the batch-order generator at the start of ``epoch``,
    of which ``batch`` batches were done."""

    weights: dict[str, np.ndarray]
    optimizer: dict[str, np.ndarray]
    epoch: int
    batch: int
    rng_state: dict[str, Any]


CONFUSION_CSV = "confusion.csv"
CONFUSION_PLOT = "confusion.png"


def save_confusion(folder: Path, matrix: np.ndarray, model: str, on: str) -> list[Path]:
    """``confusion.csv`` (a header of predicted classes, then one row per true class)
    and ``confusion.png`` (without matplotlib, the CSV only)."""
    n = matrix.shape[0]
    lines = ["true\\predicted," + ",".join(str(c) for c in range(n))]
    lines += [f"{r}," + ",".join(str(int(v)) for v in matrix[r]) for r in range(n)]
    atomic_write_text(folder / CONFUSION_CSV, "\n".join(lines) + "\n")
    files = [folder / CONFUSION_CSV]
    picture = plot_confusion(matrix, folder / CONFUSION_PLOT, f"{model}: confusion on the {on}")
    return files + ([picture] if picture is not None else [])


@dataclass
class TrainResult:
    runtime: Runtime | GanRuntime  # a GanRuntime for a GAN recipe
    history: list[dict[str, float]]
    stopped: str
    best_epoch: int | None
    best: float | None
    final: dict[str, float]
    confusion: np.ndarray | None
    run_dir: Path | None
    checkpoint: Path | None
    restored_best: bool = False
    files: list[Path] = field(default_factory=list)


class Trainer:
    """Runs the epochs of one recipe on one runtime."""

    def __init__(
        self,
        runtime: Runtime,
        data: PreparedData,
        plan: Plan,
        metrics: Metrics,
        identity: Identity,
        *,
        reporter: QuietReporter | None = None,
        run_dir: RunDir | None = None,
        state: TrainState | None = None,
        best_weights: dict[str, np.ndarray] | None = None,
        should_stop: Callable[[], bool] = lambda: False,
        resumed_from: Path | None = None,
        after_epoch: Callable[[int, Runtime], object] | None = None,
        group: DataParallel | None = None,
        diagnose: Diagnose | None = None,
        callbacks: CallbackList | None = None,
    ):
        self.runtime = runtime
        self.data = data
        self.plan = plan
        self.metrics = metrics
        self.identity = identity
        self.reporter = reporter or QuietReporter()
        self.run_dir = run_dir
        self.state = state or TrainState()
        self.best_weights = best_weights
        self.should_stop = should_stop
        self.resumed_from = resumed_from
        # called with each finished epoch (1-based) and the runtime: pictures, say
        self.after_epoch = after_epoch
        self.group = group
        self.agreed_stop = False  # a stop request every worker knows of (data-parallel)
        self.diagnose = diagnose
        # what watches the run (TensorBoard, MLflow, a search's pruner); it may ask
        # the run to stop after an epoch
        self.callbacks = callbacks or CallbackList()
        self.callbacks_stop = False
        self.anchor: _Anchor | None = None
        # The loss an exploding one is measured against (see EXPLOSION): the run's
        # first epoch loss when resuming, else its first batch loss.
        history = self.state.history
        self.reference: float | None = (
            float(history[0]["loss"]) if history and "loss" in history[0] else None
        )
        # A resumed run's last good checkpoint is the one it resumed from, until it
        # writes its own.
        self.last_checkpoint: Path | None = resumed_from
        es = plan.early_stopping
        self.restore_best = es is not None and es.restore_best

    # -- the loop ---------------------------------------------------------------

    # Overflow is detected where it matters (a non-finite loss, weight or figure) and
    # reported with a location; NumPy's own warnings would only repeat it.
    @np.errstate(over="ignore", invalid="ignore", divide="ignore")
    def run(self) -> TrainResult:
        plan, s = self.plan, self.state
        n = len(self.data.train)
        size = batch_size(plan.batch, n)
        batches = math.ceil(n / size)
        rng = np.random.default_rng(plan.seed)
        if s.rng_state:
            rng.bit_generator.state = s.rng_state
        if s.batch >= batches:
            raise TrainingError(
                f"cannot resume: the checkpoint has {s.batch} batches of epoch {s.epoch + 1} "
                f"done, but an epoch now has {batches} (the data or the batch size changed)"
            )
        self._set_anchor(self.runtime.get_weights(), rng)
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
                validation=len(self.data.validation) if self.data.validation else 0,
                batch=plan.batch,
                parameters=self.identity.parameters,
                run_dir=str(self.run_dir.path) if self.run_dir else None,
                resumed_from=str(self.resumed_from) if self.resumed_from else None,
                monitor=plan.monitor,
                parallel=self._parallel_text(),
            )
        )
        stopped = "completed"
        result: TrainResult | None = None
        try:
            self.callbacks.begin()
            if self._patience_spent():
                stopped = "stopped early"  # a resumed run that had already stopped
            while s.epoch < plan.epochs and stopped == "completed":
                row = self._epoch(rng, size, batches)
                if row is None:
                    stopped = "interrupted"
                    break
                improved = self._track(row)
                s.history.append(row)
                if self.after_epoch is not None:
                    self.after_epoch(s.epoch, self.runtime)
                self.callbacks_stop = self.callbacks.epoch(s.epoch, row, self.runtime)
                if self._patience_spent():
                    stopped = "stopped early"
                elif self._stop_requested():
                    stopped = "interrupted"
                due = s.epoch == plan.epochs or s.epoch % plan.checkpoint_every == 0
                if due or stopped != "completed":
                    self._checkpoint()
                elif self.run_dir is not None:
                    self.run_dir.append_history(s.history)
                if self.run_dir is None and due:
                    self._set_anchor(self.runtime.get_weights(), rng)
                self.reporter.epoch(row, improved)
            result = self._finish(stopped, time.perf_counter() - started)
            return result
        finally:
            self.callbacks.end(result)
            self.reporter.close()

    def _epoch(self, rng: np.random.Generator, size: int, batches: int) -> dict[str, float] | None:
        """Train one epoch (or the rest of one) and measure it; None when a stop request
        came inside the epoch (a checkpoint then records where it stopped)."""
        s, plan, train = self.state, self.plan, self.data.train
        epoch = s.epoch
        epoch_start = dict(rng.bit_generator.state)
        order = rng.permutation(len(train))
        self.runtime.seed(epoch_seed(plan.seed, epoch))
        lr = learning_rate(plan.lr, plan.schedule, epoch)
        if not math.isfinite(lr):
            raise TrainingError(
                f"the learning rate of epoch {epoch + 1} is {lr:g}: the {plan.schedule.kind} "
                f"schedule overflowed from lr = {plan.lr:g}",
                hint="use a schedule gamma of at most 1",
            )
        total, count = s.partial_loss, s.partial_count
        clock = time.perf_counter()
        for b in range(s.batch, batches):
            index = order[b * size : (b + 1) * size]
            loss = self._step(index, lr)
            if not math.isfinite(loss):
                self._diverged(
                    f"the loss became {loss}",
                    f"at epoch {epoch + 1}, step {s.step + 1} (batch {b + 1} of {batches})",
                    lr,
                    self._locate(epoch, b, size, batches),
                )
            if self.reference is None:
                self.reference = loss
            elif loss > EXPLOSION * max(self.reference, 1.0):
                self._diverged(
                    f"the loss exploded to {loss:.3g}, more than {EXPLOSION:g} times the "
                    f"first step's {self.reference:.3g}",
                    f"at epoch {epoch + 1}, step {s.step + 1} (batch {b + 1} of {batches})",
                    lr,
                    _explosion_finding(self._locate(epoch, b, size, batches)),
                )
            s.step += 1
            total += loss * len(index)
            count += len(index)
            self.reporter.batch(epoch, b + 1, batches, loss)
            if b + 1 < batches and self._stop_requested():
                # Replaying this epoch's permutation from its start state finds the
                # remaining batches again.
                s.batch, s.rng_state = b + 1, epoch_start
                s.partial_loss, s.partial_count = total, count
                self._checkpoint()
                return None
        row: dict[str, float] = {"epoch": epoch + 1, "loss": total / count}
        row.update(self._epoch_figures())
        for name, value in row.items():
            if not math.isfinite(value):
                # Every batch loss was finite; the model overflows on other samples.
                self._diverged(f"{name} became {value}", f"after epoch {epoch + 1}", lr)
        row["lr"] = lr
        row["time"] = time.perf_counter() - clock
        s.epoch, s.batch, s.rng_state = epoch + 1, 0, dict(rng.bit_generator.state)
        s.partial_loss, s.partial_count = 0.0, 0
        return row

    def _step(self, index: np.ndarray, lr: float) -> float:
        """One update on the global batch ``index``; its loss before the update."""
        train, group = self.data.train, self.group
        if group is None:
            return float(self.runtime.train_step(train.x[index], train.y[index], lr))
        part = group.shard(index)
        weight = share(len(part), len(index), self.plan.summed_loss)
        loss = float(group.runtime.train_step(train.x[part], train.y[part], lr, weight))
        # An empty slice (a last batch smaller than the worker count) adds nothing.
        mine = weight * loss if len(part) else 0.0
        total, stops = group.sum([mine, float(self.should_stop())])
        self.agreed_stop = self.agreed_stop or stops > 0
        return float(total)

    def _stop_requested(self) -> bool:
        """Whether to stop now; across workers, only a request all of them have seen
        (summed with the last batch's loss) counts, so they stop at the same batch."""
        if self.group is not None:
            return self.agreed_stop
        return self.callbacks_stop or self.should_stop()

    def _parallel_text(self) -> str:
        group = self.group
        if group is None or group.size == 1:
            return ""
        how = f" ({group.description})" if group.description else ""
        return f"{group.size} data-parallel workers{how}"

    # -- divergence ---------------------------------------------------------------

    def _set_anchor(self, weights: dict[str, np.ndarray], rng: np.random.Generator) -> None:
        """Remember where to replay from (only when a diagnosis is wanted): the
        current weights and optimizer state, and the batch order at this point."""
        if self.diagnose is None or self.group is not None:
            return
        s = self.state
        # Mid-epoch (a stop request) the state keeps the epoch's starting batch order;
        # else the generator stands at the start of epoch s.epoch.
        rng_state = s.rng_state if s.batch else dict(rng.bit_generator.state)
        optimizer = self.runtime.get_optimizer_state()
        self.anchor = _Anchor(weights, optimizer, s.epoch, s.batch, copy.deepcopy(rng_state))

    def _locate(self, epoch: int, failed: int, size: int, batches: int) -> object:
        """Which value went non-finite first in batch ``failed`` of ``epoch``.

        The steps since the anchor are replayed on the same runtime (the same batches,
        learning rates and dropout seeds: deterministic), which gives back the weights
        the failed step started from; ``diagnose`` runs that step's batch through them.
        """
        a, plan, train = self.anchor, self.plan, self.data.train
        if self.diagnose is None or a is None or self.group is not None:
            return None
        try:
            self.runtime.set_weights(a.weights)
            if a.optimizer:
                self.runtime.set_optimizer_state(a.optimizer)
            rng = np.random.default_rng(plan.seed)
            rng.bit_generator.state = a.rng_state
            for e in range(a.epoch, epoch + 1):
                order = rng.permutation(len(train))
                self.runtime.seed(epoch_seed(plan.seed, e))
                lr = learning_rate(plan.lr, plan.schedule, e)
                for b in range(a.batch if e == a.epoch else 0, failed if e == epoch else batches):
                    index = order[b * size : (b + 1) * size]
                    loss = self.runtime.train_step(train.x[index], train.y[index], lr)
                    if not math.isfinite(loss):
                        return (
                            "the first non-finite layer is unknown: replaying the earlier "
                            f"steps diverged sooner (epoch {e + 1}, batch {b + 1})"
                        )
            index = order[failed * size : (failed + 1) * size]
            return self.diagnose(self.runtime.get_weights(), train.x[index])
        except Exception as exc:  # the diagnosis must never hide the divergence itself
            return f"the first non-finite layer could not be found ({type(exc).__name__}: {exc})"

    def _epoch_figures(self) -> dict[str, float]:
        figures: dict[str, float] = {}
        group = self.group
        if self.metrics:
            # The epoch's training loss is the running one; only the metrics are measured.
            train, _ = evaluate(
                self.runtime,
                self.data.train,
                self.metrics,
                self.plan.summed_loss,
                with_loss=False,
                group=group,
            )
            figures.update(train)
        if self.data.validation is not None:
            val, _ = evaluate(
                self.runtime,
                self.data.validation,
                self.metrics,
                self.plan.summed_loss,
                "val_",
                group=group,
            )
            figures.update(val)
        return figures

    # -- best epoch and early stopping ------------------------------------------

    def _track(self, row: dict[str, float]) -> bool:
        s, monitor = self.state, self.plan.monitor
        value = row[monitor]
        delta = self.plan.early_stopping.min_delta if self.plan.early_stopping else 0.0
        if s.best is None:
            better = True
        elif higher_is_better(monitor):
            better = value > s.best + delta
        else:
            better = value < s.best - delta
        if better:
            s.best, s.best_epoch, s.wait = value, int(row["epoch"]), 0
            if self.restore_best:
                self.best_weights = copy.deepcopy(self.runtime.get_weights())
        else:
            s.wait += 1
        return better

    def _patience_spent(self) -> bool:
        es = self.plan.early_stopping
        return es is not None and self.state.wait >= es.patience

    # -- checkpoints and the end ------------------------------------------------

    def _checkpoint(self) -> Path | None:
        # Workers hold the same weights and all check them, so all stop together;
        # only rank 0 (the one with a run folder) writes.
        if self.run_dir is None and self.group is None:
            return None
        weights = self.runtime.get_weights()
        bad = [k for k, v in weights.items() if not np.all(np.isfinite(v))]
        if bad:
            # The last step's loss was finite, but its update was not.
            s = self.state
            epoch = s.epoch if s.batch else s.epoch - 1
            self._diverged(
                f"weight '{bad[0]}' became NaN or infinite",
                f"in the update of epoch {epoch + 1}, step {s.step}",
            )
        if self.run_dir is None:
            return None
        optimizer = self.runtime.get_optimizer_state()
        checkpoint = Checkpoint(
            weights=weights,
            optimizer=optimizer,
            state=self.state,
            recipe_hash=self.identity.recipe_hash,
            recipe=self.identity.recipe_json,
            backend=self.identity.backend,
            best_weights=self.best_weights if self.restore_best else None,
            standardizer=self.data.standardizer,
            workers=self.identity.workers,
        )
        self.run_dir.write_history(self.state.history)  # first: a resume reads it
        path = write_checkpoint(self.run_dir.checkpoints, checkpoint)
        prune_checkpoints(self.run_dir.checkpoints, self.plan.keep)
        self.run_dir.retire_weights()
        self.last_checkpoint = path
        if self.diagnose is not None:
            s = self.state
            self.anchor = _Anchor(weights, optimizer, s.epoch, s.batch, dict(s.rng_state))
        return path

    def _diverged(
        self, what: str, where: str, lr: float | None = None, finding: object = None
    ) -> NoReturn:
        """Stop: ``what`` happened ``where``; say which value went non-finite first
        (``finding``), where the last good checkpoint is, and what to try."""
        rate = f" with learning rate {lr:g}" if lr is not None else ""
        found = f": {finding}" if finding is not None else ""
        saved = (
            f"the last good checkpoint is {self.last_checkpoint}"
            if self.last_checkpoint
            else "no checkpoint was written"
        )
        suggestion = f"lr = {lr / 10:g}" if lr is not None else "a lower learning rate"
        if self.run_dir is not None:
            self.run_dir.write_history(self.state.history)
        raise TrainingError(
            f"{what} {where}{rate}{found}; training stopped and {saved}",
            hint=f"lower the learning rate (try {suggestion}) or standardise the inputs",
        )

    def _finish(self, stopped: str, seconds: float) -> TrainResult:
        s = self.state
        restored = False
        if (
            stopped != "interrupted"
            and self.restore_best
            and self.best_weights is not None
            and s.best_epoch != s.epoch
        ):
            self.runtime.set_weights(self.best_weights)
            restored = True
        group = self.group
        summed = self.plan.summed_loss
        final, _ = evaluate(self.runtime, self.data.train, self.metrics, summed, group=group)
        on = "training set"
        split = self.data.train
        if self.data.validation is not None:
            val, _ = evaluate(
                self.runtime, self.data.validation, self.metrics, summed, "val_", group=group
            )
            final.update(val)
            on, split = "validation set", self.data.validation
        matrix = confusion(self.runtime, split, self.data.task, group)
        files: list[Path] = []
        if self.run_dir is not None:
            if stopped != "interrupted":
                files.append(
                    self.run_dir.save_weights(
                        self.runtime.get_weights(), self.identity.provenance(s.epoch)
                    )
                )
            plotted = plot_loss(
                s.history,
                self.run_dir.path / LOSS_PLOT,
                f"{self.identity.model}: loss per epoch",
                self.plan.loss_name,
                s.best_epoch or None,
            )
            if plotted is None and s.history:
                self.reporter.warn(
                    "matplotlib is not installed; loss.png was not drawn (pip install 'nnc[plot]')"
                )
            elif plotted is not None:
                files.append(plotted)
            if matrix is not None and stopped != "interrupted":
                files += save_confusion(self.run_dir.path, matrix, self.identity.model, on)
        result = TrainResult(
            runtime=self.runtime,
            history=s.history,
            stopped=stopped,
            best_epoch=s.best_epoch or None,
            best=s.best,
            final=final,
            confusion=matrix,
            run_dir=self.run_dir.path if self.run_dir else None,
            checkpoint=self.last_checkpoint,
            restored_best=restored,
            files=files,
        )
        self.reporter.finish(
            Summary(
                model=self.identity.model,
                epochs_run=s.epoch,
                stopped=stopped,
                monitor=self.plan.monitor,
                best_epoch=result.best_epoch,
                best=s.best,
                final=final,
                seconds=seconds,
                run_dir=str(result.run_dir) if result.run_dir else None,
                restored_best=restored,
                confusion=matrix,
                confusion_on=on,
            )
        )
        return result
