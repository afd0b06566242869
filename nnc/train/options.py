"""``RunOptions``: the settings of one training run, declared once.

:func:`nnc.train.train` takes them, the data-parallel launcher passes them to its
workers (inside ``job.json``), and ``nnc train``'s options and :func:`nnc.fit`'s
keywords fill them in. What only makes sense inside this process (a reporter, a stop
request, a replacement ``build``, tracking) stays a keyword of ``train`` instead.

>>> RunOptions(backend="PyTorch", epochs=2).backend
'torch'
>>> run_options(epoch=2)
Traceback (most recent call last):
...
TypeError: unknown training option 'epoch' (did you mean 'epochs'?). Options: backend, ...
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Literal

from nnc.backends.registry import parse_backend
from nnc.errors import TrainingError, did_you_mean


@dataclass(frozen=True)
class RunOptions:
    """How a recipe trains this time, over what the recipe itself says.

    - ``backend``: a backend's name or alias, normalised here, once;
    - ``epochs``, ``batch``, ``seed``: override the recipe's;
    - ``out``: the run folder (default: ``runs/<model>-<n>``); ``save=False`` writes
      none; ``resume``: a run folder to continue (``force``: even though the recipe
      changed); ``checkpoint_every`` epochs, the last ``keep`` checkpoints kept;
    - ``weights``: the weights a supervised run starts from (a weights file,
      checkpoint or run folder, such as an imported model's; default: drawn from the
      seed), for fine-tuning; a resumed run starts from its checkpoint instead;
    - ``device``: where the model runs (backends that place it); ``precision``: how
      a supervised run's forward passes compute, ``"float32"`` or ``"mixed"``
      (torch only; docs/training.md#precision);
    - ``base``: the folder relative data paths start from (the ``.nn`` file's);
    - ``nproc``: data-parallel workers on this machine (1: this process), each
      waiting at most ``timeout`` seconds for the others.
    """

    backend: str = "numpy"
    epochs: int | None = None
    batch: int | Literal["all"] | None = None
    seed: int | None = None
    out: str | Path | None = None
    save: bool = True
    resume: str | Path | None = None
    force: bool = False
    checkpoint_every: int | None = None
    keep: int = 3
    weights: str | Path | None = None
    device: str | None = None
    precision: str = "float32"
    base: Path | None = None
    nproc: int = 1
    timeout: float = 300.0

    def __post_init__(self) -> None:
        spec = parse_backend(self.backend)
        object.__setattr__(self, "backend", spec.name)
        spec.precision_options(self.precision)  # a precision the backend lacks: an error
        if self.base is not None:
            object.__setattr__(self, "base", Path(self.base))
        if self.keep < 1:
            raise TrainingError(f"--keep must be at least 1. Received: {self.keep}")
        if self.nproc < 1:
            raise TrainingError(f"nproc must be at least 1. Received: {self.nproc}")

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (paths as text), as ``job.json`` carries it."""
        return {k: str(v) if isinstance(v, Path) else v for k, v in asdict(self).items()}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunOptions:
        base = data.get("base")
        return cls(**{**data, "base": Path(base) if base is not None else None})


OPTION_NAMES = tuple(f.name for f in fields(RunOptions))


def run_options(defaults: RunOptions | None = None, /, **given: Any) -> RunOptions:
    """``defaults`` (default: RunOptions()) with the ``given`` settings, by keyword;
    an unknown keyword is a TypeError naming the options (with a did-you-mean)."""
    for key in given:
        if key not in OPTION_NAMES:
            close = did_you_mean(key, OPTION_NAMES)
            hint = f" ({close})" if close else ""
            raise TypeError(
                f"unknown training option '{key}'{hint}. Options: {', '.join(OPTION_NAMES)}"
            )
    merged = {**(asdict(defaults) if defaults is not None else {}), **given}
    return RunOptions(**merged)


__all__ = ["OPTION_NAMES", "RunOptions", "run_options"]
