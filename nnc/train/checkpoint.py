"""Training checkpoints: one safetensors file per save, written atomically, read
without pickle (the ``.npz`` checkpoints of earlier versions are still read).

Layout of ``checkpoints/epoch-000012.safetensors``
(``epoch-000012-batch-000034.safetensors`` when a run was interrupted inside epoch 13).
Its tensors:

- ``weights/<param>``: canonical weights (what ``nnc eval --weights`` reads);
- ``optimizer/<slot>``: canonical optimizer state (``step``, ``<param>.m``, ...);
- ``best/<param>``: the best epoch's weights, when early stopping restores them;
- ``standardize/mean``, ``standardize/std``: the input statistics, when standardising.

Its metadata (the safetensors header's ``__metadata__``, strings; error messages call
each ``meta/<key>``, the name it had in an ``.npz``): ``epoch`` (epochs completed),
``batch`` (batches done in the next epoch), ``step``, ``partial_loss`` and
``partial_count`` (that epoch's running loss), ``rng`` (the batch-order generator's
state at the start of that epoch, as JSON), ``best``, ``best_epoch``, ``wait``
(early-stopping counters), ``recipe`` (the resolved recipe, JSON), ``recipe_hash``,
``backend``, ``workers`` (data-parallel workers; provenance only: a run resumes with any
count), ``nnc_version``, ``format``; for a GAN also ``noise_rng`` (the noise generator's
state, JSON) and ``partial_figures`` (the running sums of an interrupted epoch); for a
contrastive divergence run the same two for its uniforms' generator. Whole numbers are
written in decimal, ``partial_loss`` and ``best`` as Python's shortest round-trip
``repr`` (``nan`` for no best yet), so a resumed run is bitwise the uninterrupted one.

An ``.npz`` checkpoint (nnc before safetensors) holds the same tensors and keeps the
metadata as arrays ``meta/<key>``.

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

import contextlib
import io
import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nnc._version import __version__
from nnc.data import Standardizer
from nnc.errors import WeightsError
from nnc.ir.weights import (
    CHECKPOINT_WEIGHTS_PREFIX,
    SAFETENSORS,
    read_tensor_file,
    safetensors_from_bytes,
    save_safetensors,
)
from nnc.train.rundir import is_history

FORMAT = 2
SUFFIXES = (".npz", SAFETENSORS)  # read both; an older one first where both exist
_NAME = re.compile(r"epoch-(\d+)(?:-batch-(\d+))?(\.npz|\.safetensors)\Z")
_REQUIRED = ("epoch", "batch", "step", "rng", "recipe_hash", "format")
# The metadata that is a number: written as text in a safetensors header.
_WHOLE = ("format", "epoch", "batch", "step", "partial_count", "best_epoch", "wait", "workers")
_REAL = ("partial_loss", "best")


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
        """The tensors of the file: ``weights/...``, ``optimizer/...``, ``best/...``,
        ``standardize/...``."""
        out: dict[str, np.ndarray] = {}
        out.update({f"{CHECKPOINT_WEIGHTS_PREFIX}{k}": v for k, v in self.weights.items()})
        out.update({f"optimizer/{k}": v for k, v in self.optimizer.items()})
        if self.best_weights is not None:
            out.update({f"best/{k}": v for k, v in self.best_weights.items()})
        if self.standardizer is not None:
            out.update(self.standardizer.arrays("standardize/"))
        return out

    def metadata(self) -> dict[str, str]:
        """The file's text metadata (see the module's docstring)."""
        s = self.state
        meta = {
            "format": str(FORMAT),
            "epoch": str(s.epoch),
            "batch": str(s.batch),
            "step": str(s.step),
            "partial_loss": repr(float(s.partial_loss)),
            "partial_count": str(s.partial_count),
            "rng": json.dumps(s.rng_state),
            "best": repr(math.nan if s.best is None else float(s.best)),
            "best_epoch": str(s.best_epoch),
            "wait": str(s.wait),
            "recipe": self.recipe,
            "recipe_hash": self.recipe_hash,
            "backend": self.backend,
            "workers": str(self.workers),
            "nnc_version": __version__,
        }
        if s.noise_state:
            meta["noise_rng"] = json.dumps(s.noise_state)
        if s.partial_figures:
            meta["partial_figures"] = json.dumps(s.partial_figures)
        return meta


def checkpoint_name(epoch: int, batch: int = 0) -> str:
    """``epoch-000012.safetensors``, or ``epoch-000012-batch-000034.safetensors`` inside
    an epoch."""
    stem = f"epoch-{epoch:06d}" if batch == 0 else f"epoch-{epoch:06d}-batch-{batch:06d}"
    return stem + SAFETENSORS


def write_checkpoint(directory: Path, checkpoint: Checkpoint) -> Path:
    """Save atomically (temporary file, fsync, rename) and return the path."""
    for name, value in checkpoint.weights.items():
        if not np.all(np.isfinite(value)):
            raise WeightsError(f"refusing to checkpoint non-finite weights ('{name}')")
    s = checkpoint.state
    path = save_safetensors(
        directory / checkpoint_name(s.epoch, s.batch), checkpoint.arrays(), checkpoint.metadata()
    )
    checkpoint.path = path
    return path


def read_checkpoint(path: Path) -> Checkpoint:
    """Read and verify one checkpoint (safetensors, or an ``.npz`` of an earlier
    version); a damaged one is a WeightsError naming it."""
    found = read_tensor_file(path)
    if found.format == "npz":
        return parse_checkpoint(found.arrays, path)
    return parse_checkpoint(found.arrays, path, found.metadata)


def checkpoint_from_bytes(data: bytes, path: Path) -> Checkpoint:
    """A checkpoint from the bytes of its file (read elsewhere: another worker's)."""
    if data[:4] == b"PK\x03\x04":
        with np.load(io.BytesIO(data), allow_pickle=False) as archive:
            arrays = {k: archive[k] for k in archive.files}
        return parse_checkpoint(arrays, path)
    found = safetensors_from_bytes(data, path)
    return parse_checkpoint(found.arrays, path, found.metadata)


def decode_metadata(metadata: Mapping[str, str]) -> dict[str, np.ndarray]:
    """A safetensors checkpoint's text metadata as the arrays an ``.npz`` held: whole
    numbers as int64, the running loss and best figure as float64, the rest as text.
    A number field that does not parse stays text (or float64), so the checks of
    :func:`parse_checkpoint` report it as they report a wrong ``.npz`` entry."""
    out: dict[str, np.ndarray] = {}
    for key, text in metadata.items():
        value: np.ndarray = np.asarray(np.str_(text))
        if key in _WHOLE and re.fullmatch(r"-?[0-9]{1,18}", text.strip()):
            value = np.asarray(np.int64(int(text)))
        elif key in _WHOLE or key in _REAL:
            with contextlib.suppress(ValueError):
                value = np.asarray(np.float64(float(text)))
        out[key] = value
    return out


def parse_checkpoint(
    arrays: dict[str, np.ndarray], path: Path, metadata: Mapping[str, str] | None = None
) -> Checkpoint:
    """Verify the tensors and metadata of a checkpoint file and unpack them. Without
    ``metadata`` (an ``.npz``), the metadata are the ``meta/...`` arrays."""
    if metadata is None:
        meta = {k[5:]: v for k, v in arrays.items() if k.startswith("meta/")}
    else:
        meta = decode_metadata(metadata)
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
    """Checkpoint files in a folder (safetensors and ``.npz``), oldest first (by epoch,
    then batch; an ``.npz`` before a safetensors file of the same point)."""
    if not directory.is_dir():
        return []
    found = []
    for p in directory.iterdir():
        m = _NAME.match(p.name)
        if m:
            found.append(((int(m.group(1)), int(m.group(2) or 0), SUFFIXES.index(m.group(3))), p))
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
