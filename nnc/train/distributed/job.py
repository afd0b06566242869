"""What the launcher tells its workers, and what they tell it back, through files in a
private job folder (``nnc-workers-*`` in the temporary directory, on each machine).

- ``job.json`` (:class:`Job`): the program as IR JSON and every setting of the run;
- ``rank-<r>.error.json`` (:class:`WorkerReport`): why worker ``r`` stopped, when it
  stopped on an error: an nnc error (its type, message, hint and source span), a
  lost peer, or an internal error with its traceback;
- ``outcome.json`` and ``weights.safetensors`` (:class:`Outcome`): how the run ended, from
  rank 0, so that the launching process can report it and rebuild a runtime.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from nnc import errors
from nnc.errors import NncError, Span, TrainingError
from nnc.ir.weights import read_tensor_file, save_safetensors
from nnc.train.options import RunOptions
from nnc.train.rundir import atomic_write_text

JOB = "job.json"
READY = "rank-{rank}.ready"  # a worker writes it once it has joined the others
OUTCOME = "outcome.json"
WEIGHTS = "weights.safetensors"


@dataclass
class Job:
    """One data-parallel run: the program and the settings of ``nnc.train.train``
    (``options.out`` the run folder rank 0 writes, None: none; the paths absolute)."""

    program: str  # IR JSON
    options: RunOptions
    recipe: str | None = None
    quiet: bool = False

    def write(self, folder: Path) -> Path:
        path = folder / JOB
        document = {**asdict(self), "options": self.options.to_json()}
        atomic_write_text(path, json.dumps(document))
        return path

    @staticmethod
    def read(path: Path) -> Job:
        document = json.loads(path.read_text(encoding="utf-8"))
        return Job(**{**document, "options": RunOptions.from_json(document["options"])})


ReportKind = Literal["nnc", "peer", "internal"]


@dataclass
class WorkerReport:
    """Why a worker stopped on an error."""

    rank: int
    kind: ReportKind  # an nnc error, a lost peer, or a bug
    error: str  # the NncError class name, or the exception's
    message: str
    hint: str | None = None
    span: dict[str, Any] | None = None
    traceback: str = ""

    def write(self, folder: Path) -> None:
        atomic_write_text(folder / f"rank-{self.rank}.error.json", json.dumps(asdict(self)))

    @staticmethod
    def read(folder: Path, rank: int) -> WorkerReport | None:
        path = folder / f"rank-{rank}.error.json"
        try:
            return WorkerReport(**json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError, TypeError):
            return None

    @staticmethod
    def of(rank: int, err: NncError) -> WorkerReport:
        span = asdict(err.span) if err.span is not None else None
        return WorkerReport(rank, "nnc", type(err).__name__, err.message, err.hint, span)

    def nnc_error(self) -> NncError:
        """The worker's nnc error, raised again here with its type, hint and span."""
        cls = getattr(errors, self.error, None)
        if not (isinstance(cls, type) and issubclass(cls, NncError)) or cls.__init__ is not (
            NncError.__init__
        ):
            cls = TrainingError
        span = Span(**self.span) if self.span else None
        return cls(self.message, span, hint=self.hint)


@dataclass
class Outcome:
    """How a data-parallel run ended, as rank 0 saw it (``TrainResult`` without the
    runtime: the final weights are saved beside it)."""

    history: list[dict[str, float]]
    stopped: str
    best_epoch: int | None
    best: float | None
    final: dict[str, float]
    confusion: list[list[int]] | None
    run_dir: str | None
    checkpoint: str | None
    restored_best: bool = False
    files: list[str] = field(default_factory=list)

    def write(self, folder: Path, weights: dict[str, np.ndarray]) -> None:
        save_safetensors(folder / WEIGHTS, weights)
        atomic_write_text(folder / OUTCOME, json.dumps(asdict(self)))

    @staticmethod
    def read(folder: Path) -> tuple[Outcome, dict[str, np.ndarray]] | None:
        """Rank 0's outcome, or None where rank 0 did not run (another machine)."""
        path = folder / OUTCOME
        if not path.exists():
            return None
        outcome = Outcome(**json.loads(path.read_text(encoding="utf-8")))
        return outcome, read_tensor_file(folder / WEIGHTS).arrays


def make_job_folder() -> Path:
    return Path(tempfile.mkdtemp(prefix="nnc-workers-"))


def remove_job_folder(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)
