"""Metrics: accuracy, top-k accuracy, MSE, MAE, and the confusion matrix.

Outputs and targets are arrays as the runtime sees them: for a categorical task the
targets are one-hot rows over the last axis and the prediction is the arg-max of the
output; for a binary task the targets are 0/1 and an output above the task's
threshold (0.5 for probabilities, 0 for logits) predicts 1. Positions of sequence
outputs count as samples.

>>> import numpy as np
>>> from nnc.data import Task
>>> out = np.array([[0.1, 0.7, 0.2], [0.5, 0.3, 0.2], [0.2, 0.3, 0.5]])
>>> onehot = np.eye(3)[[1, 2, 2]]
>>> accuracy(out, onehot, Task("categorical", 3)), top_k_accuracy(out, onehot, 2)
(0.6666666666666666, 0.6666666666666666)
>>> confusion_matrix(out, onehot, Task("categorical", 3)).tolist()
[[0, 0, 0], [0, 1, 0], [1, 0, 1]]
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from nnc.data import Task
from nnc.errors import RecipeError, Span
from nnc.ir.training import Accuracy, MaeMetric, MseMetric, TopK, metric_name

MetricSpec = Accuracy | TopK | MseMetric | MaeMetric


def higher_is_better(name: str) -> bool:
    """Whether a figure (``loss``, ``val_accuracy``, ...) improves upwards."""
    return name.removeprefix("val_").endswith("accuracy")


def predicted_labels(outputs: np.ndarray, task: Task) -> np.ndarray:
    """Class predictions, flattened over samples and positions."""
    if task.kind == "categorical":
        return outputs.reshape(-1, outputs.shape[-1]).argmax(axis=1)
    return (outputs.reshape(-1) > task.threshold).astype(np.int64)


def true_labels(targets: np.ndarray, task: Task) -> np.ndarray:
    if task.kind == "categorical":
        return targets.reshape(-1, targets.shape[-1]).argmax(axis=1)
    return (targets.reshape(-1) > 0.5).astype(np.int64)


def counted(targets: np.ndarray, task: Task) -> np.ndarray:
    """Which positions count: for a categorical task, those with a target (an all-zero
    row is a padding position, ``cross_entropy(ignore = L)``); otherwise all."""
    if task.kind == "categorical":
        return np.asarray(targets.reshape(-1, targets.shape[-1]).any(axis=1))
    return np.ones(targets.size, dtype=bool)


def accuracy(outputs: np.ndarray, targets: np.ndarray, task: Task) -> float:
    """The fraction of predictions equal to the true class (padding positions left out)."""
    hit = predicted_labels(outputs, task) == true_labels(targets, task)
    keep = counted(targets, task)
    if keep.all():
        return float(np.mean(hit))
    return float(np.mean(hit[keep])) if keep.any() else 0.0


def top_k_accuracy(outputs: np.ndarray, targets: np.ndarray, k: int) -> float:
    """The fraction of samples whose true class is among the ``k`` largest outputs
    (ties broken towards the lower class index)."""
    scores = outputs.reshape(-1, outputs.shape[-1])
    truth = targets.reshape(-1, targets.shape[-1]).argmax(axis=1)
    # Rank of the true class: how many classes score higher, or equal with a lower index.
    true_score = scores[np.arange(len(scores)), truth][:, None]
    index = np.arange(scores.shape[1])[None, :]
    ahead = (scores > true_score) | ((scores == true_score) & (index < truth[:, None]))
    hit = ahead.sum(axis=1) < k
    keep = targets.reshape(-1, targets.shape[-1]).any(axis=1)  # padding left out
    if keep.all():
        return float(np.mean(hit))
    return float(np.mean(hit[keep])) if keep.any() else 0.0


def mse(outputs: np.ndarray, targets: np.ndarray) -> float:
    diff = outputs.astype(np.float64) - targets
    return float(np.mean(diff * diff))


def mae(outputs: np.ndarray, targets: np.ndarray) -> float:
    return float(np.mean(np.abs(outputs.astype(np.float64) - targets)))


def confusion_matrix(outputs: np.ndarray, targets: np.ndarray, task: Task) -> np.ndarray:
    """Counts ``[true class, predicted class]``."""
    classes = task.classes if task.kind == "categorical" else 2
    keep = counted(targets, task)  # padding positions left out
    truth, predicted = true_labels(targets, task)[keep], predicted_labels(outputs, task)[keep]
    matrix = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(matrix, (truth, predicted), 1)
    return matrix


class Metrics:
    """The metrics a recipe asks for, checked against its task."""

    def __init__(self, specs: Sequence[MetricSpec], task: Task, span: Span | None = None):
        for spec in specs:
            if isinstance(spec, Accuracy) and not task.is_classifier:
                raise RecipeError(
                    "metric 'accuracy' needs class targets (cross_entropy, "
                    "binary_cross_entropy, or 0/1 targets); these targets are real values",
                    span,
                    hint="use mse or mae for a regression",
                )
            if isinstance(spec, TopK) and task.kind != "categorical":
                raise RecipeError(
                    f"metric 'top_k({spec.k})' needs a categorical output (cross_entropy)", span
                )
        self.specs = tuple(specs)
        self.task = task
        self.names = tuple(metric_name(s) for s in specs)

    def __bool__(self) -> bool:
        return bool(self.specs)

    def compute(self, outputs: np.ndarray, targets: np.ndarray) -> dict[str, float]:
        out: dict[str, float] = {}
        for spec, name in zip(self.specs, self.names, strict=True):
            if isinstance(spec, Accuracy):
                out[name] = accuracy(outputs, targets, self.task)
            elif isinstance(spec, TopK):
                out[name] = top_k_accuracy(outputs, targets, spec.k)
            elif isinstance(spec, MseMetric):
                out[name] = mse(outputs, targets)
            else:
                out[name] = mae(outputs, targets)
        return out
