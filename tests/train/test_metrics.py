"""Metrics on cases small enough to check by hand."""

from __future__ import annotations

import numpy as np
import pytest

from nnc.data import Task
from nnc.errors import RecipeError
from nnc.ir.training import Accuracy, MaeMetric, MseMetric, TopK
from nnc.train.evaluate import set_loss
from nnc.train.metrics import (
    Metrics,
    accuracy,
    confusion_matrix,
    higher_is_better,
    mae,
    metric_name,
    mse,
    top_k_accuracy,
)

CATEGORICAL = Task("categorical", classes=4)
# Four samples over four classes; true classes 0, 1, 2, 3.
OUTPUTS = np.array(
    [
        [0.70, 0.10, 0.10, 0.10],  # predicts 0: right
        [0.50, 0.30, 0.15, 0.05],  # predicts 0; the truth (1) is 2nd
        [0.10, 0.20, 0.30, 0.40],  # predicts 3; the truth (2) is 2nd
        [0.25, 0.25, 0.25, 0.25],  # a four-way tie: predicts 0; the truth (3) ranks 4th
    ]
)
TARGETS = np.eye(4)


def test_accuracy_by_hand() -> None:
    assert accuracy(OUTPUTS, TARGETS, CATEGORICAL) == 0.25


def test_top_k_by_hand_with_ties_to_the_lower_class() -> None:
    assert top_k_accuracy(OUTPUTS, TARGETS, 1) == 0.25
    assert top_k_accuracy(OUTPUTS, TARGETS, 2) == 0.75
    assert top_k_accuracy(OUTPUTS, TARGETS, 3) == 0.75
    assert top_k_accuracy(OUTPUTS, TARGETS, 4) == 1.0


def test_confusion_matrix_by_hand() -> None:
    matrix = confusion_matrix(OUTPUTS, TARGETS, CATEGORICAL)
    expected = np.zeros((4, 4), dtype=int)
    expected[0, 0] = expected[1, 0] = expected[2, 3] = expected[3, 0] = 1
    assert matrix.tolist() == expected.tolist()
    assert matrix.sum() == 4 and np.trace(matrix) == 1


def test_binary_accuracy_with_probabilities_and_logits() -> None:
    targets = np.array([[0.0], [1.0], [1.0], [0.0]])
    probs = np.array([[0.2], [0.7], [0.4], [0.6]])
    assert accuracy(probs, targets, Task("binary", 2, threshold=0.5)) == 0.5
    logits = np.array([[-1.0], [2.0], [0.5], [-0.1]])
    assert accuracy(logits, targets, Task("binary", 2, threshold=0.0)) == 1.0
    matrix = confusion_matrix(probs, targets, Task("binary", 2, threshold=0.5))
    assert matrix.tolist() == [[1, 1], [1, 1]]


def test_sequence_outputs_count_every_position() -> None:
    out = np.array([[[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]]])  # one sample, three steps
    targets = np.eye(2)[[[0, 1, 1]]]
    assert accuracy(out, targets, Task("categorical", 2)) == pytest.approx(2 / 3)


def test_mse_and_mae_by_hand() -> None:
    out = np.array([[1.0, 2.0], [3.0, 5.0]])
    t = np.array([[1.0, 0.0], [4.0, 5.0]])
    assert mse(out, t) == pytest.approx((0 + 4 + 1 + 0) / 4)
    assert mae(out, t) == pytest.approx((0 + 2 + 1 + 0) / 4)


def test_metric_names_and_directions() -> None:
    assert [metric_name(m) for m in (Accuracy(), TopK(k=3), MseMetric(), MaeMetric())] == [
        "accuracy",
        "top_3_accuracy",
        "mse",
        "mae",
    ]
    assert higher_is_better("val_top_3_accuracy") and higher_is_better("accuracy")
    assert not higher_is_better("val_loss") and not higher_is_better("mae")


def test_metrics_compute_in_order() -> None:
    metrics = Metrics([Accuracy(), TopK(k=2), MseMetric()], CATEGORICAL)
    figures = metrics.compute(OUTPUTS, TARGETS)
    assert list(figures) == ["accuracy", "top_2_accuracy", "mse"]
    assert figures["accuracy"] == 0.25 and figures["top_2_accuracy"] == 0.75


def test_accuracy_on_a_regression_is_refused() -> None:
    with pytest.raises(RecipeError, match="metric 'accuracy' needs class targets"):
        Metrics([Accuracy()], Task("regression"))
    with pytest.raises(RecipeError, match=r"metric 'top_k\(5\)' needs a categorical output"):
        Metrics([TopK(k=5)], Task("binary", 2))


class ChunkedLoss:
    """loss() of a batch: the mean (or the sum) of per-sample values."""

    def __init__(self, summed: bool):
        self.summed = summed

    def loss(self, x: np.ndarray, y: np.ndarray) -> float:
        return float(x.sum() if self.summed else x.mean())


def test_set_loss_is_independent_of_the_chunk_size() -> None:
    x = np.arange(10, dtype=np.float64)[:, None]
    for summed, expected in ((False, 4.5), (True, 45.0)):
        for chunk in (1, 3, 4, 10, 100):
            runtime = ChunkedLoss(summed)
            assert set_loss(runtime, x, x, summed, chunk) == pytest.approx(expected)  # type: ignore[arg-type]
