"""The first phase of a supervised recipe with ``pretrain``: its contrastive divergence
recipe, run (or resumed, or read back when done) in the run folder's ``pretrain/``,
and the supervised model's initial weights with the pretrained stack in place.

A deep belief network is two phases in one run folder::

    runs/Dbn/            the supervised phase (fine-tuning): its usual files
        pretrain/        the contrastive divergence phase: a run folder of its own

``--resume`` continues whichever phase was cut off: a run folder whose supervised
phase has no checkpoint yet finishes (or reads back) its pretraining first.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from nnc.ir.program import Model, Program
from nnc.ir.training import CdRecipe
from nnc.ir.weights import call_prefixes, init_weights, read_tensor_file
from nnc.train.cd_session import train_cd
from nnc.train.checkpoint import list_checkpoints
from nnc.train.loop import TrainResult
from nnc.train.options import RunOptions
from nnc.train.progress import QuietReporter
from nnc.train.recipes import resolve_recipe
from nnc.train.rundir import CHECKPOINTS, OLD_WEIGHTS, WEIGHTS


def pretrained_weights(
    program: Program,
    model: Model,
    seed: int,
    first: CdRecipe,
    folder: Path | None,
    *,
    base: Path | None,
    backend: str,
    reporter: QuietReporter,
    should_stop: Callable[[], bool] | None,
    checkpoint_every: int | None = None,
    keep: int = 3,
) -> tuple[TrainResult | None, dict[str, np.ndarray] | None]:
    """``(None, weights)``: ``model``'s initial weights (from ``seed``) with every use
    of the pretrained stack set to the weights of ``first``; ``(result, None)`` when a
    stop request came during the pretraining (its checkpoint then lets ``--resume`` go
    on). ``folder`` is the pretraining's run folder (None: no run folder)."""
    resolved = resolve_recipe(first, base=base)
    done = folder / WEIGHTS if folder is not None else None
    if done is not None and not done.is_file() and (done.parent / OLD_WEIGHTS).is_file():
        done = done.parent / OLD_WEIGHTS  # a pretraining finished by an earlier nnc
    if done is not None and done.is_file():
        stack = read_tensor_file(done).arrays
        reporter.note(f"pretraining '{first.name}' is done; its weights are {done}")
    else:
        resume = folder if folder is not None and list_checkpoints(folder / CHECKPOINTS) else None
        options = RunOptions(
            backend=backend,
            out=folder if resume is None else None,
            save=folder is not None,
            resume=resume,
            checkpoint_every=checkpoint_every,
            keep=keep,
            base=base,
        )
        result = train_cd(program, resolved, options, reporter=reporter, should_stop=should_stop)
        if result.stopped == "interrupted":
            return result, None
        stack = result.runtime.get_weights()
    weights = init_weights(program, model, seed)
    for prefix in call_prefixes(program, model.name, first.model):
        for name, value in stack.items():
            weights[prefix + name] = np.asarray(value, dtype=np.float32)
    return None, weights
