"""``cross_entropy(ignore = L)``: cross-entropy at every time step of [t, classes]
against [t] labels with a padding label. On every backend the loss equals torch's
``F.cross_entropy(..., ignore_index=L)`` (mean and sum, a label outside the classes
and one inside), the padding positions get zero gradient, the gradients agree with
NumPy's, 20 training steps with padding in every batch match the float64 reference,
the driver turns the label into all-zero rows, and accuracy leaves padding out."""

from __future__ import annotations

import numpy as np
import pytest

import nnc
from nnc.backends.registry import parse_backend
from nnc.data import Task
from nnc.ir.weights import init_weights
from nnc.train.metrics import accuracy
from nnc.verify import verify
from tests.conftest import require
from tests.equivalence.matrix import INFERENCE, TRAINING, explain, need

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SOURCE = """
model Tagger {{
    input x: [t, 3]
    rnn(6, return_sequences = true)
    dense(5)
}}

train Tagger {{
    data      "tags.npz"
    loss      cross_entropy(ignore = {ignore}{extra})
    optimizer adam(lr = 0.01)
}}
"""
T = 6


def program(ignore: int, summed: bool = False) -> nnc.Program:
    return nnc.parse(SOURCE.format(ignore=ignore, extra=", reduction = sum" if summed else ""))


def batch(ignore: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Inputs, labels [4, t] with the padding label at the ends of three sequences
    (one of them all padding after its first step), and the rows the driver passes."""
    rng = np.random.default_rng(7)
    x = rng.normal(size=(4, T, 3)).astype(np.float32)
    labels = rng.integers(1, 5, size=(4, T))
    labels[0, 2:] = ignore
    labels[1, 1:] = ignore
    labels[2, -1] = ignore
    rows = np.eye(5, dtype=np.float32)[np.where(labels == ignore, 0, labels)]
    rows[labels == ignore] = 0.0
    return x, labels, rows


def torch_loss(logits: np.ndarray, labels: np.ndarray, ignore: int, summed: bool) -> float:
    import torch
    import torch.nn.functional as F

    value = F.cross_entropy(
        torch.tensor(logits, dtype=torch.float64).reshape(-1, 5),
        torch.tensor(labels).reshape(-1),
        ignore_index=ignore,
        reduction="sum" if summed else "mean",
    )
    return float(value)


@pytest.mark.parametrize("backend", TRAINING + INFERENCE)
@pytest.mark.parametrize(
    "ignore, summed", [(-1, False), (0, True)], ids=["outside-mean", "inside-sum"]
)
def test_loss_equals_torch_ignore_index(backend: str, ignore: int, summed: bool) -> None:
    need(backend)
    require("torch")
    p = program(ignore, summed)
    runtime = parse_backend(backend).load().build(p, "Tagger", init_weights(p, "Tagger", seed=1))
    x, labels, rows = batch(ignore)
    want = torch_loss(np.asarray(runtime.forward(x), np.float64), labels, ignore, summed)
    got = runtime.loss(x, rows)
    print(f"{backend}, ignore = {ignore}, {'sum' if summed else 'mean'}: {got:.7f} vs {want:.7f}")
    assert got == pytest.approx(want, rel=2e-6)


def test_numpy_takes_integer_labels_with_the_padding_label() -> None:
    p = program(-1)
    runtime = parse_backend("numpy").load().build(p, "Tagger", init_weights(p, "Tagger", seed=1))
    x, labels, rows = batch(-1)
    assert runtime.loss(x, labels) == runtime.loss(x, rows)


def test_all_padding_costs_zero() -> None:
    p = program(-1)
    runtime = parse_backend("numpy").load().build(p, "Tagger", init_weights(p, "Tagger", seed=1))
    x, _, rows = batch(-1)
    assert runtime.loss(x, np.zeros_like(rows)) == 0.0


@pytest.mark.parametrize("backend", ["torch", "tensorflow"])
def test_gradients_agree_with_numpy_and_padding_has_none(backend: str) -> None:
    need(backend)
    p = program(0)
    weights = init_weights(p, "Tagger", seed=2)
    x, _, rows = batch(0)
    reference = parse_backend("numpy").load().build(p, "Tagger", weights).gradients(x, rows)
    got = parse_backend(backend).load().build(p, "Tagger", weights).gradients(x, rows)
    worst = max(float(np.abs(got[k] - g).max() / np.abs(g).max()) for k, g in reference.items())
    print(f"{backend}: worst relative gradient deviation {worst:.2e}")
    assert worst < 1e-5
    # Padding ignored: changing the inputs only where every later position is padding
    # (sample 1 after step 0) changes no gradient.
    moved = x.copy()
    moved[1, 1:] += 3.0
    shifted = parse_backend("numpy").load().build(p, "Tagger", weights).gradients(moved, rows)
    for k, g in reference.items():
        np.testing.assert_allclose(shifted[k], g, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("backend", TRAINING + INFERENCE)
def test_twenty_steps_with_padding_match_the_reference(backend: str) -> None:
    """verify's synthetic batches carry padding rows when the loss has ``ignore``."""
    need(backend)
    report = verify(program(-1), backends=[backend], steps=20, transfer=False)
    assert report.equivalent, explain(report)


def test_the_driver_makes_the_padding_label_an_all_zero_row() -> None:
    from nnc.data.preparation import prepare_targets

    p = program(-1)
    recipe = p.recipes["Tagger"]
    output = p.models["Tagger"].output_types[0]

    class Samples:
        source = "tags.npz"
        y = np.array([[3, 1, -1, -1]], dtype=np.float32)

        def where(self, i: int) -> str:
            return f"sample {i}"

    got = prepare_targets(Samples(), np.zeros((1, 4, 3)), recipe, output)  # type: ignore[arg-type]
    np.testing.assert_array_equal(got[0], [[0, 0, 0, 1, 0], [0, 1, 0, 0, 0], [0] * 5, [0] * 5])


def test_accuracy_leaves_padding_out() -> None:
    outputs = np.eye(3)[[[0, 1, 2, 2]]]  # predicts 0, 1, 2, 2
    targets = np.eye(3)[[[0, 1, 0, 0]]]
    targets[0, 2:] = 0.0  # the last two positions are padding
    assert accuracy(outputs, targets, Task("categorical", 3)) == 1.0


def test_a_fractional_padding_label_is_refused_with_its_place() -> None:
    from nnc.errors import NncError

    with pytest.raises(
        NncError, match=r"10:38: .*'ignore' expects an integer. Received: ignore=1.5"
    ):
        nnc.parse(SOURCE.format(ignore=1.5, extra=""))
