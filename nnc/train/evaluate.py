"""Evaluation through the runtime interface: outputs, the loss of a whole set, metrics.

Sets are fed in chunks of :data:`CHUNK` samples so memory stays bounded. The loss of
a set is defined as if the set were one batch: the sum of the chunk losses for
``sse`` (a sum), their sample-weighted mean for every other loss (a mean), so the
figure does not depend on the chunk size.

In data-parallel training (``group``) each worker evaluates its slice of the set and
the figures are summed over the workers: sums of losses, and of the metrics weighted
by their slice's sample count (every metric is a mean over samples).
"""

from __future__ import annotations

import numpy as np

from nnc.backends.runtime import Runtime
from nnc.data import Split, Task
from nnc.train.distributed.group import DataParallel
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
    group: DataParallel | None = None,
) -> tuple[dict[str, float], np.ndarray | None]:
    """``{prefix}loss`` (unless not ``with_loss``) and ``{prefix}<metric>`` on a split,
    and the outputs if the metrics needed them (None across workers)."""
    if group is not None and group.size > 1:
        return _evaluate_shared(runtime, split, metrics, summed, prefix, with_loss, group), None
    figures = {f"{prefix}loss": set_loss(runtime, split.x, split.y, summed)} if with_loss else {}
    outputs = None
    if metrics:
        outputs = predict(runtime, split.x)
        figures.update({f"{prefix}{k}": v for k, v in metrics.compute(outputs, split.y).items()})
    return figures, outputs


def _evaluate_shared(
    runtime: Runtime,
    split: Split,
    metrics: Metrics,
    summed: bool,
    prefix: str,
    with_loss: bool,
    group: DataParallel,
) -> dict[str, float]:
    part = group.shard(np.arange(len(split)))
    x, y, n = split.x[part], split.y[part], len(part)
    sums: list[float] = []
    if with_loss:
        loss = set_loss(runtime, x, y, summed) if n else 0.0
        sums.append(loss if summed else loss * n)
    if metrics:
        values = metrics.compute(predict(runtime, x), y) if n else {}
        sums.extend(values.get(name, 0.0) * n for name in metrics.names)
    if not sums:
        return {}
    totals = group.sum(sums)
    names = (["loss"] if with_loss else []) + list(metrics.names if metrics else ())
    count = len(split)
    figures = {}
    for k, (name, total) in enumerate(zip(names, totals, strict=True)):
        is_sum = with_loss and k == 0 and summed
        figures[f"{prefix}{name}"] = float(total if is_sum else total / count)
    return figures


def confusion(
    runtime: Runtime, split: Split, task: Task, group: DataParallel | None = None
) -> np.ndarray | None:
    """The confusion matrix of a classifier on a split; None for a regression."""
    if not task.is_classifier:
        return None
    if group is None or group.size == 1:
        return confusion_matrix(predict(runtime, split.x), split.y, task)
    part = group.shard(np.arange(len(split)))
    classes = task.classes if task.kind == "categorical" else 2
    counts = np.zeros((classes, classes), dtype=np.int64)
    if len(part):
        counts = confusion_matrix(predict(runtime, split.x[part]), split.y[part], task)
    return np.rint(group.sum(counts.reshape(-1))).astype(np.int64).reshape(classes, classes)
