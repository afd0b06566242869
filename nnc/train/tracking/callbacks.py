"""The training loops' one hook for what watches a run: a list of callbacks.

The loops (:class:`nnc.train.loop.Trainer`, :class:`nnc.train.gan.GanTrainer`,
:class:`nnc.train.cd.CdTrainer`) call
each callback when the run starts, after every epoch (with the epoch's history row,
the row ``history.csv`` gets), and when it ends, also when it fails. A callback may
ask the run to stop after the epoch (:attr:`Callback.stop`): the run then ends as an
interrupted one, with its checkpoint written, which is how a search prunes a trial.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from nnc.backends.runtime import GanRuntime, Runtime
    from nnc.data import PreparedData
    from nnc.ir.program import Program
    from nnc.train.cd import CdWeights
    from nnc.train.loop import TrainResult

# Named pictures of the run at this point (pixels in [0, 1], [H, W] or [H, W, 3]): a
# GAN's samples, an autoencoder's reconstructions.
Pictures = Callable[[Any], dict[str, np.ndarray]]


@dataclass(frozen=True)
class RunContext:
    """What a callback may know about the run it watches."""

    program: Program
    models: dict[str, str]  # scope -> model name: {"": "DigitsMLP"}, or a GAN's two roles
    recipe: Any  # the resolved Recipe, GanRecipe or CdRecipe
    document: dict[str, Any]  # the recipe and its models as plain data (checkpoints keep it)
    backend: str
    epochs: int
    first_epoch: int  # 0, or the epochs a resumed run had done
    run_dir: Path | None
    data: PreparedData | None = None  # supervised runs: a gradient batch comes from it
    pictures: Pictures | None = None
    recipe_text: str = ""


class Callback:
    """Does nothing; subclasses override what they need."""

    stop: bool = False  # set in on_epoch_end: stop the run after this epoch

    def on_train_begin(self, context: RunContext) -> None:
        pass

    def on_epoch_end(self, epoch: int, row: Mapping[str, float], runtime: Any) -> None:
        pass

    def on_train_end(self, result: TrainResult | None) -> None:
        """``result`` is None when training raised."""


@dataclass
class CallbackList:
    """The callbacks of one run, called in order."""

    callbacks: Sequence[Callback] = ()
    context: RunContext | None = None
    ended: bool = field(default=False, init=False)

    def begin(self) -> None:
        if self.context is None:
            return
        for c in self.callbacks:
            c.on_train_begin(self.context)

    def epoch(
        self, epoch: int, row: Mapping[str, float], runtime: Runtime | GanRuntime | CdWeights
    ) -> bool:
        """Call every callback; whether one asks the run to stop."""
        for c in self.callbacks:
            c.on_epoch_end(epoch, row, runtime)
        return any(c.stop for c in self.callbacks)

    def end(self, result: TrainResult | None) -> None:
        if self.ended:
            return
        self.ended = True
        for c in self.callbacks:
            c.on_train_end(result)
