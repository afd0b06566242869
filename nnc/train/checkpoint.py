"""Training checkpoints: one ``.npz`` per save, written atomically, read without pickle.

Layout of ``checkpoints/epoch-000012.npz`` (``epoch-000012-batch-000034.npz`` when a
run was interrupted inside epoch 13):

- ``weights/<param>``: canonical weights (what ``nnc eval --weights`` reads);
- ``optimizer/<slot>``: canonical optimizer state (``step``, ``<param>.m``, ...);
- ``best/<param>``: the best epoch's weights, when early stopping restores them;
- ``standardize/mean``, ``standardize/std``: the input statistics, when standardising;
- ``meta/...``: ``epoch`` (epochs completed), ``batch`` (batches done in the next
  epoch), ``step``, ``partial_loss`` and ``partial_count`` (that epoch's running
  loss), ``rng`` (the batch-order generator's state at the start of that epoch, as
  JSON), ``best``, ``best_epoch``, ``wait`` (early-stopping counters), ``recipe``
  (the resolved recipe, JSON), ``recipe_hash``, ``backend``, ``workers``
  (data-parallel workers; provenance only: a run resumes with any count),
  ``nnc_version``, ``format``; for a GAN also ``noise_rng`` (the noise generator's
  state, JSON) and ``partial_figures`` (the running sums of an interrupted epoch);
  for a contrastive divergence run the same two for its uniforms' generator.

A GAN's weights and optimizer state hold both models under their roles
(``weights/generator/dense_1.weight``, ``optimizer/discriminator/step``). A
contrastive divergence run's optimizer state is each rbm layer's velocities
(``optimizer/rbm_1.weight.velocity``) and persistent chains (``optimizer/rbm_1.chain``).

The history of the epochs so far is not in a checkpoint (so its size does not grow
with the epochs): it is the run folder's ``history.json``, written just before each
checkpoint, whose first ``epoch`` rows a resumed run takes. Checkpoints of format 1
carried it as ``meta/history`` and are still read.
"""

from __future__ import annotations

import io
import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nnc._version import __version__
from nnc.data import Standardizer
from nnc.errors import WeightsError
from nnc.ir.weights import CHECKPOINT_WEIGHTS_PREFIX, load_npz, save_npz
from nnc.train.rundir import is_history

FORMAT = 2
_NAME = re.compile(r"epoch-(\d+)(?:-batch-(\d+))?\.npz\Z")
_REQUIRED = ("epoch", "batch", "step", "rng", "recipe_hash", "format")


@dataclass
class TrainState:
    """Where a run stands, besides its weights and optimizer state."""

    epoch: int = 0
    batch: int = 0
    step: int = 0
    rng_state: dict[str, Any] = field(default_factory=dict)
    partial_loss: float = 0.0
    partial_count: int = 0
    best: float | None = None
    best_epoch: int = 0
    wait: int = 0
    history: list[dict[str, float]] = field(default_factory=list)
    # GAN runs: the noise generator's state, and an interrupted epoch's figure sums
    noise_state: dict[str, Any] = field(default_factory=dict)
    partial_figures: dict[str, float] = field(default_factory=dict)


@dataclass
class Checkpoint:
    """The contents of one checkpoint file."""

    weights: dict[str, np.ndarray]
    optimizer: dict[str, np.ndarray]
    state: TrainState
    recipe_hash: str
    recipe: str
    backend: str
    best_weights: dict[str, np.ndarray] | None = None
    standardizer: Standardizer | None = None
    path: Path | None = None
    workers: int = 1

    def arrays(self) -> dict[str, np.ndarray]:
        """The flat ``name -> array`` mapping stored in the ``.npz``."""
        s = self.state
        out: dict[str, np.ndarray] = {}
        out.update({f"{CHECKPOINT_WEIGHTS_PREFIX}{k}": v for k, v in self.weights.items()})
        out.update({f"optimizer/{k}": v for k, v in self.optimizer.items()})
        if self.best_weights is not None:
            out.update({f"best/{k}": v for k, v in self.best_weights.items()})
        if self.standardizer is not None:
            out.update(self.standardizer.arrays("standardize/"))
        meta: dict[str, Any] = {
            "format": np.int64(FORMAT),
            "epoch": np.int64(s.epoch),
            "batch": np.int64(s.batch),
            "step": np.int64(s.step),
            "partial_loss": np.float64(s.partial_loss),
            "partial_count": np.int64(s.partial_count),
            "rng": np.str_(json.dumps(s.rng_state)),
            "best": np.float64(math.nan if s.best is None else s.best),
            "best_epoch": np.int64(s.best_epoch),
            "wait": np.int64(s.wait),
            "recipe": np.str_(self.recipe),
            "recipe_hash": np.str_(self.recipe_hash),
            "backend": np.str_(self.backend),
            "workers": np.int64(self.workers),
            "nnc_version": np.str_(__version__),
        }
        if s.noise_state:
            meta["noise_rng"] = np.str_(json.dumps(s.noise_state))
        if s.partial_figures:
            meta["partial_figures"] = np.str_(json.dumps(s.partial_figures))
        out.update({f"meta/{k}": np.asarray(v) for k, v in meta.items()})
        return out


def checkpoint_name(epoch: int, batch: int = 0) -> str:
    """``epoch-000012.npz``, or ``epoch-000012-batch-000034.npz`` inside an epoch."""
    return f"epoch-{epoch:06d}.npz" if batch == 0 else f"epoch-{epoch:06d}-batch-{batch:06d}.npz"


def write_checkpoint(directory: Path, checkpoint: Checkpoint) -> Path:
    """Save atomically (temporary file, fsync, rename) and return the path."""
    for name, value in checkpoint.weights.items():
        if not np.all(np.isfinite(value)):
            raise WeightsError(f"refusing to checkpoint non-finite weights ('{name}')")
    s = checkpoint.state
    path = save_npz(directory / checkpoint_name(s.epoch, s.batch), checkpoint.arrays())
    checkpoint.path = path
    return path


def read_checkpoint(path: Path) -> Checkpoint:
    """Read and verify one checkpoint; a damaged one is a WeightsError naming it."""
    return parse_checkpoint(load_npz(path), path)


def checkpoint_from_bytes(data: bytes, path: Path) -> Checkpoint:
    """A checkpoint from the bytes of its file (read elsewhere: another worker's)."""
    with np.load(io.BytesIO(data), allow_pickle=False) as archive:
        arrays = {k: archive[k] for k in archive.files}
    return parse_checkpoint(arrays, path)


def parse_checkpoint(arrays: dict[str, np.ndarray], path: Path) -> Checkpoint:
    """Verify the arrays of a checkpoint file and unpack them."""
    meta = {k[5:]: v for k, v in arrays.items() if k.startswith("meta/")}
    missing = [k for k in _REQUIRED if k not in meta]
    if missing:
        raise WeightsError(f"{path} is not an nnc checkpoint (no meta/{missing[0]})")
    weights = _group(arrays, CHECKPOINT_WEIGHTS_PREFIX)
    if not weights:
        raise WeightsError(f"{path} holds no weights")
    best = _group(arrays, "best/")
    optimizer = _group(arrays, "optimizer/")
    for group, tensors in (("weight", weights), ("best weight", best)):
        for name, value in tensors.items():
            if not np.issubdtype(value.dtype, np.floating):
                raise WeightsError(f"{path}: {group} '{name}' has dtype {value.dtype}")
            if not np.all(np.isfinite(value)):
                raise WeightsError(f"{path}: {group} '{name}' holds NaN or infinite values")
    for name, value in optimizer.items():
        if not np.issubdtype(value.dtype, np.number) or not np.all(np.isfinite(value)):
            raise WeightsError(
                f"{path}: optimizer state '{name}' is not a finite number array "
                f"(dtype {value.dtype})"
            )
    try:
        state = _state(meta)
        _consistent(state, str(meta.get("recipe", "")))
    except (ValueError, TypeError, KeyError) as exc:
        raise WeightsError(f"{path}: damaged metadata ({exc})") from None
    return Checkpoint(
        weights=weights,
        optimizer=optimizer,
        state=state,
        recipe_hash=str(meta["recipe_hash"]),
        recipe=str(meta.get("recipe", "")),
        backend=str(meta.get("backend", "")),
        best_weights=best or None,
        standardizer=Standardizer.from_arrays(arrays, "standardize/", source=str(path)),
        path=path,
        workers=int(meta.get("workers", 1)),
    )


def _state(meta: dict[str, np.ndarray]) -> TrainState:
    """The TrainState of a checkpoint's metadata; anything out of range is a ValueError
    (a checkpoint is a file someone may have edited, so nothing is taken on trust)."""
    version = _count(meta, "format")
    if version > FORMAT:
        raise ValueError(f"format {version} is newer than this nnc reads ({FORMAT})")
    best = float(meta["best"]) if "best" in meta else math.nan
    partial_loss = float(meta.get("partial_loss", 0.0))
    if not math.isfinite(partial_loss) or math.isinf(best):
        raise ValueError("a running loss is not finite")
    rng_state = json.loads(str(meta["rng"]))
    try:
        # Restoring it checks it: the generator refuses a state of the wrong form.
        if rng_state:
            np.random.default_rng().bit_generator.state = rng_state
    except (ValueError, TypeError, KeyError) as exc:
        raise ValueError(f"meta/rng is not a state of the batch-order generator ({exc})") from None
    history = json.loads(str(meta["history"])) if "history" in meta else []  # format 1
    if not is_history(history):
        raise ValueError("the history is not a list of epochs and their figures")
    noise_state = json.loads(str(meta["noise_rng"])) if "noise_rng" in meta else {}
    if noise_state:
        try:
            np.random.default_rng().bit_generator.state = noise_state
        except (ValueError, TypeError, KeyError) as exc:
            raise ValueError(
                f"meta/noise_rng is not a state of the noise generator ({exc})"
            ) from None
    figures = json.loads(str(meta["partial_figures"])) if "partial_figures" in meta else {}
    if not is_history([figures]):
        raise ValueError("meta/partial_figures is not a mapping of figures")
    return TrainState(
        epoch=_count(meta, "epoch"),
        batch=_count(meta, "batch"),
        step=_count(meta, "step"),
        rng_state=rng_state,
        partial_loss=partial_loss,
        partial_count=_count(meta, "partial_count"),
        best=None if math.isnan(best) else best,
        best_epoch=_count(meta, "best_epoch"),
        wait=_count(meta, "wait"),
        history=history,
        noise_state=noise_state,
        partial_figures=figures,
    )


def _consistent(state: TrainState, recipe: str) -> None:
    """Counters that cannot belong together are a ValueError: every epoch and every
    batch done took a step, and no run goes past its recipe's epochs."""
    if state.batch > state.step or state.epoch > state.step:
        raise ValueError(
            f"meta/epoch {state.epoch} and meta/batch {state.batch} do not fit meta/step "
            f"{state.step} (each epoch and batch done is at least one step)"
        )
    epochs = None
    if recipe:
        try:
            epochs = json.loads(recipe)["recipe"]["epochs"]
        except (ValueError, KeyError, TypeError):
            epochs = None
    if isinstance(epochs, int) and state.epoch > epochs:
        raise ValueError(
            f"meta/epoch {state.epoch} is past the {epochs} epochs of the recipe it was written for"
        )


def _count(meta: dict[str, np.ndarray], key: str) -> int:
    """A non-negative whole number from the metadata (absent optional ones are 0)."""
    value = meta.get(key, np.int64(0))
    if not np.issubdtype(value.dtype, np.integer) or value.ndim != 0 or int(value) < 0:
        shown = value.item() if value.ndim == 0 else f"an array of shape {list(value.shape)}"
        raise ValueError(f"meta/{key} must be a non-negative integer. Received: {shown!r}")
    return int(value)


def _group(arrays: dict[str, np.ndarray], prefix: str) -> dict[str, np.ndarray]:
    return {k[len(prefix) :]: v for k, v in arrays.items() if k.startswith(prefix)}


def list_checkpoints(directory: Path) -> list[Path]:
    """Checkpoint files in a folder, oldest first (by epoch, then batch)."""
    if not directory.is_dir():
        return []
    found = []
    for p in directory.iterdir():
        m = _NAME.match(p.name)
        if m:
            found.append(((int(m.group(1)), int(m.group(2) or 0)), p))
    return [p for _, p in sorted(found)]


def latest_checkpoint(
    directory: Path,
    warn: Callable[[str], None],
    fits: Callable[[Checkpoint], None] | None = None,
) -> Checkpoint | None:
    """The newest readable checkpoint; each damaged newer one is reported via ``warn``.
    ``fits`` checks a readable one against the model (tensor shapes): a WeightsError
    from it counts as damage too, so resuming falls back past it."""
    candidates = list_checkpoints(directory)
    for path in reversed(candidates):
        try:
            checkpoint = read_checkpoint(path)
            if fits is not None:
                fits(checkpoint)
            return checkpoint
        except WeightsError as err:
            older = candidates.index(path)
            fallback = candidates[older - 1].name if older > 0 else "none left"
            warn(
                f"checkpoint {path} is damaged and was skipped: {err.message}; trying the "
                f"previous one ({fallback})"
            )
    return None


def set_aside_folders(directory: Path, warn: Callable[[str], None]) -> None:
    """Rename each folder that sits where a checkpoint file belongs to ``<name>.damaged``
    (its contents are kept), so the run can write that checkpoint again."""
    for path in list_checkpoints(directory):
        if path.is_dir() and not path.is_symlink():
            target = path.with_name(path.name + ".damaged")
            k = 1
            while target.exists() or target.is_symlink():
                k += 1
                target = path.with_name(f"{path.name}.damaged-{k}")
            path.rename(target)
            warn(f"{path} is a folder, not a checkpoint; it was moved to {target.name}")


def prune_checkpoints(directory: Path, keep: int) -> list[Path]:
    """Delete all but the newest ``keep`` checkpoints; return the deleted paths."""
    files = list_checkpoints(directory)
    doomed = files[: max(len(files) - keep, 0)]
    for p in doomed:
        p.unlink(missing_ok=True)
    return doomed
