"""The end of a GAN or contrastive divergence run: its last epoch's figures, the
:class:`~nnc.train.loop.TrainResult` and the closing summary. These runs have no
monitor, no best epoch and no confusion matrix (supervised runs end in
:meth:`nnc.train.loop.Trainer.run`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nnc.train.loop import TrainResult
from nnc.train.progress import QuietReporter, Summary
from nnc.train.rundir import RunDir


def last_figures(history: list[dict[str, float]]) -> dict[str, float]:
    """The last history row without its ``epoch`` and ``time`` (empty before any).

    >>> last_figures([{"epoch": 1, "d_loss": 0.7, "time": 0.2}])
    {'d_loss': 0.7}
    """
    if not history:
        return {}
    return {k: v for k, v in history[-1].items() if k not in ("epoch", "time")}


def finish_run(
    *,
    runtime: Any,
    model: str,
    history: list[dict[str, float]],
    stopped: str,
    final: dict[str, float],
    epochs_run: int,
    seconds: float,
    run_dir: RunDir | None,
    checkpoint: Path | None,
    files: list[Path],
    reporter: QuietReporter,
) -> TrainResult:
    """The run's result, told to ``reporter`` as its summary."""
    result = TrainResult(
        runtime=runtime,
        history=history,
        stopped=stopped,
        best_epoch=None,
        best=None,
        final=final,
        confusion=None,
        run_dir=run_dir.path if run_dir else None,
        checkpoint=checkpoint,
        files=files,
    )
    reporter.finish(
        Summary(
            model=model,
            epochs_run=epochs_run,
            stopped=stopped,
            monitor="",
            best_epoch=None,
            best=None,
            final=final,
            seconds=seconds,
            run_dir=str(result.run_dir) if result.run_dir else None,
            final_on="",
            files=[str(f) for f in files],
        )
    )
    return result
