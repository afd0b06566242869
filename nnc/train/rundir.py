"""The run directory: everything one training run leaves behind.

::

    runs/Xor-20250101-120000/
        recipe.nn          the resolved recipe and its models (nnc fmt style)
        recipe.json        the same, as IR JSON
        history.csv        one row per epoch: loss, metrics, validation, lr, time
        history.json       the same (rewritten at each checkpoint and at the end)
        loss.png           training and validation loss per epoch
        events.out.tfevents.*  TensorBoard's logs (nnc.train.tracking; with nnc[track])
        checkpoints/       epoch-000010.safetensors ... (see nnc.train.checkpoint)
        weights.safetensors  the final canonical weights (only a finished run has one;
                           a run of an earlier nnc has weights.npz, still read)
        standardize.npz    input statistics (standardize true; Gaussian rbm)
        pretrain/          the run folder of the recipe's pretraining (pretrain NAME)

Every file is written to a temporary name and renamed, so a killed run never leaves
a half-written file behind.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from nnc.errors import TrainingError
from nnc.ir.weights import save_safetensors

CHECKPOINTS = "checkpoints"
WEIGHTS = "weights.safetensors"
OLD_WEIGHTS = "weights.npz"  # the final weights of a run of nnc before safetensors
HISTORY_CSV = "history.csv"
HISTORY_JSON = "history.json"
RECIPE_NN = "recipe.nn"
RECIPE_JSON = "recipe.json"
LOSS_PLOT = "loss.png"
PRETRAIN = "pretrain"  # the pretraining phase's own run folder (nnc.train.pretrain)
_RUN_FILES = (
    CHECKPOINTS,
    WEIGHTS,
    OLD_WEIGHTS,
    HISTORY_CSV,
    HISTORY_JSON,
    RECIPE_NN,
    RECIPE_JSON,
    PRETRAIN,
)
TRIAL_NN = "trial.nn"  # a search trial's sampled spec, written before its run starts


def default_run_dir(model: str, root: Path = Path("runs")) -> Path:
    """``runs/<model>-<timestamp>``, with a numeric suffix if that already exists."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = root / f"{model}-{stamp}"
    n = 2
    while path.exists():
        path = root / f"{model}-{stamp}-{n}"
        n += 1
    return path


def new_run_folder(out: Path | None, model: str, replace: bool = False) -> Path:
    """The folder of a new run: ``out``, made if need be, or ``runs/<model>-<time>``.

    A run never mixes with another: an ``out`` that holds a run is refused unless
    ``replace`` (``--force``), and then its files are removed first; a folder that
    holds anything else is refused either way (but for the ``trial.nn`` that
    ``nnc search`` writes into a trial's folder before its run starts)."""
    if out is None:
        return default_run_dir(model)
    if out.exists() and not out.is_dir():
        raise TrainingError(f"--out {out} is a file; a run is written into a folder")
    held = sorted(p.name for p in out.iterdir() if p.name != TRIAL_NN) if out.is_dir() else []
    if held and not any(name in _RUN_FILES for name in held):
        raise TrainingError(
            f"--out {out} is not empty and holds no run ({', '.join(held[:3])}"
            f"{', ...' if len(held) > 3 else ''}); nnc writes a run into a new or empty "
            "folder",
            hint="name a new folder",
        )
    if held and not replace:
        raise TrainingError(
            f"--out {out} already holds a run; nnc does not overwrite it",
            hint=f"continue it with --resume {out}, replace it with --force, or name a new folder",
        )
    if held:
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    return out


def atomic_write_text(path: Path, text: str) -> None:
    """Write text through a temporary file in the same folder and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class RunDir:
    """Writes the files of one run under ``path``."""

    def __init__(self, path: Path):
        self.path = path
        self._columns: list[str] = []
        path.mkdir(parents=True, exist_ok=True)

    @property
    def checkpoints(self) -> Path:
        return self.path / CHECKPOINTS

    def write_recipe(self, nn_text: str, ir_json: str) -> None:
        atomic_write_text(self.path / RECIPE_NN, nn_text)
        atomic_write_text(self.path / RECIPE_JSON, ir_json)

    def write_history(self, rows: Sequence[Mapping[str, float]]) -> None:
        """Rewrite history.csv and history.json from ``rows`` (at the start of a run,
        at checkpoints and at the end)."""
        self._columns = []
        for row in rows:
            self._columns.extend(k for k in row if k not in self._columns)
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=self._columns, lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: _csv_value(v) for k, v in row.items()})
        atomic_write_text(self.path / HISTORY_CSV, buffer.getvalue() if rows else "")
        atomic_write_text(self.path / HISTORY_JSON, json.dumps(list(rows), indent=1) + "\n")

    def append_history(self, rows: Sequence[Mapping[str, float]]) -> None:
        """Add the newest row to history.csv (cheap: one line per epoch)."""
        row = rows[-1]
        if not self._columns or list(row) != self._columns:
            self.write_history(rows)
            return
        with open(self.path / HISTORY_CSV, "a", encoding="utf-8", newline="") as f:
            f.write(",".join(_csv_value(row[k]) for k in self._columns) + "\n")

    def retire_weights(self) -> None:
        """Remove the final weights (weights.safetensors, or an earlier nnc's
        weights.npz), which a resumed run leaves from its earlier finish, once a newer
        checkpoint is written: only a finished run has them."""
        (self.path / WEIGHTS).unlink(missing_ok=True)
        (self.path / OLD_WEIGHTS).unlink(missing_ok=True)

    def save_weights(
        self, weights: Mapping[str, np.ndarray], metadata: Mapping[str, str] | None = None
    ) -> Path:
        """weights.safetensors: the canonical weights under their canonical names, with
        ``nnc_version`` and the given metadata (the recipe hash, the epoch...)."""
        from nnc._version import __version__

        return save_safetensors(
            self.path / WEIGHTS, weights, {**(metadata or {}), "nnc_version": __version__}
        )


def is_history(rows: object) -> bool:
    """Whether ``rows`` is a history: a list of epochs, each a mapping of names to
    numbers."""
    return isinstance(rows, list) and all(
        isinstance(row, dict)
        and all(
            isinstance(k, str) and isinstance(v, int | float) and not isinstance(v, bool)
            for k, v in row.items()
        )
        for row in rows
    )


def read_history(folder: Path, epochs: int) -> list[dict[str, float]]:
    """The first ``epochs`` rows of a run folder's history.json: how a run resumed at
    that epoch got there (checkpoints do not carry it)."""
    path = folder / HISTORY_JSON
    try:
        rows = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise TrainingError(
            f"cannot resume: {path} is missing; the run's history of {epochs} epochs "
            "lives there, beside its checkpoints"
        ) from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise TrainingError(f"cannot resume: {path} cannot be read ({exc})") from None
    if not is_history(rows):
        raise TrainingError(f"cannot resume: {path} is not a list of epochs and their figures")
    if len(rows) < epochs:
        raise TrainingError(
            f"cannot resume: {path} holds {len(rows)} epochs, and the checkpoint was "
            f"written after epoch {epochs}"
        )
    return rows[:epochs]


def _csv_value(value: float) -> str:
    if isinstance(value, int):
        return str(value)
    return f"{value:.8g}"


# The temporary files nnc's atomic writes make (``tempfile.mkstemp`` adds 8 random
# characters): ``.epoch-000044.npz.k2j_x9qa.tmp``, ``.loss.png.3fz0q1ab.png``.
_LEFTOVER = re.compile(r"\A\.(?:.+\.[a-z0-9_]{8}\.tmp|.+\.png\.[a-z0-9_]{8}\.png)\Z")


def remove_leftovers(folder: Path) -> list[Path]:
    """Delete the temporaries a killed run left in a run folder and its checkpoints
    (only regular files named the way nnc names its own); return them."""
    removed = []
    for where in (folder, folder / CHECKPOINTS):
        if not where.is_dir():
            continue
        for p in where.iterdir():
            if _LEFTOVER.match(p.name) and p.is_file() and not p.is_symlink():
                p.unlink(missing_ok=True)
                removed.append(p)
    return removed
