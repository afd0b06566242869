"""Evaluation through the runtime interface: outputs, the loss of a whole set, metrics.

Sets are fed in chunks of :data:`CHUNK` samples so memory stays bounded. The loss of
a set is defined as if the set were one batch: the sum of the chunk losses for
``sse`` (a sum), their sample-weighted mean for every other loss (a mean), so the
figure does not depend on the chunk size.
"""

from __future__ import annotations

import numpy as np

from nnc.backends.runtime import Runtime
from nnc.data import Split, Task
from nnc.train.metrics import Metrics, confusion_matrix

CHUNK = 1024


def predict(runtime: Runtime, x: np.ndarray, chunk: int = CHUNK) -> np.ndarray:
    """Model outputs in evaluation mode for every sample of ``x``."""
    parts = [np.asarray(runtime.forward(x[i : i + chunk])) for i in range(0, len(x), chunk)]
    return np.concatenate(parts) if parts else np.empty((0,), dtype=np.float32)


def set_loss(
    runtime: Runtime, x: np.ndarray, y: np.ndarray, summed: bool, chunk: int = CHUNK
) -> float:
    """The evaluation-mode loss of the whole set (see the module docstring)."""
    total = 0.0
    for i in range(0, len(x), chunk):
        part = float(runtime.loss(x[i : i + chunk], y[i : i + chunk]))
        total += part if summed else part * len(x[i : i + chunk])
    return total if summed else total / len(x)


def evaluate(
    runtime: Runtime,
    split: Split,
    metrics: Metrics,
    summed: bool,
    prefix: str = "",
    with_loss: bool = True,
) -> tuple[dict[str, float], np.ndarray | None]:
    """``{prefix}loss`` (unless not ``with_loss``) and ``{prefix}<metric>`` on a split,
    and the outputs if the metrics needed them."""
    figures = {f"{prefix}loss": set_loss(runtime, split.x, split.y, summed)} if with_loss else {}
    outputs = None
    if metrics:
        outputs = predict(runtime, split.x)
        figures.update({f"{prefix}{k}": v for k, v in metrics.compute(outputs, split.y).items()})
    return figures, outputs


def confusion(runtime: Runtime, split: Split, task: Task) -> np.ndarray | None:
    """The confusion matrix of a classifier on a split; None for a regression."""
    if not task.is_classifier:
        return None
    return confusion_matrix(predict(runtime, split.x), split.y, task)
