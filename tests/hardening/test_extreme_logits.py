"""Extreme logits: softmax, cross-entropy from logits, sigmoid and binary
cross-entropy from logits stay finite at ±1000 on every backend, forward and
gradients (docs/semantics.md, Losses: log-sum-exp and the stable BCE form; the
probability forms clip to [1e-7, 1 - 1e-7])."""

from __future__ import annotations

import math

import numpy as np
import pytest

import nnc
from tests.conftest import require

SPEC = """
model Classes {{
    input x: [3]
    dense(3) {classes}
}}
train Classes {{
    data      "unused.csv"
    loss      cross_entropy
    optimizer sgd(lr = 0.1)
}}

model Binary {{
    input x: [3]
    dense(1) {binary}
}}
train Binary {{
    data      "unused.csv"
    loss      binary_cross_entropy
    optimizer sgd(lr = 0.1)
}}
"""

# Identity weights: the logits are the inputs. Rows: a confidently wrong class, a
# confidently right one, and two ties (one against a -1000 logit).
X = np.array([[1000, -1000, 0], [-1000, 1000, 0], [0, 0, -1000], [1000, 1000, -1000]], np.float32)
CLASSES = np.eye(3, dtype=np.float32)[[1, 1, 0, 0]]
# Binary logit x0 + x2: +1000 (target 0), -1000 (target 0), 0 and 0 (target 1).
X_BINARY = np.array([[1000, 0, 0], [-1000, 0, 0], [0, 0, 0], [1000, 0, -1000]], np.float32)
TARGETS = np.array([[0], [0], [1], [1]], np.float32)
WEIGHTS = {
    "Classes": {"dense_1.weight": np.eye(3, dtype=np.float32), "dense_1.bias": np.zeros(3)},
    "Binary": {"dense_1.weight": np.array([[1, 0, 1]], np.float32), "dense_1.bias": np.zeros(1)},
}
DATA = {"Classes": (X, CLASSES), "Binary": (X_BINARY, TARGETS)}
LOG2 = math.log(2)
# The mean losses with logits, by hand: 2000, 0, ln 2, ln 2 and 1000, 0, ln 2, ln 2.
FROM_LOGITS = {"Classes": (2000 + 2 * LOG2) / 4, "Binary": (1000 + 2 * LOG2) / 4}


def program(logits: bool) -> nnc.Program:
    if logits:
        return nnc.parse(SPEC.format(classes="", binary=""))
    return nnc.parse(SPEC.format(classes="softmax", binary="sigmoid"))


def measure(backend: str, prog: nnc.Program, model: str, **options: object):  # type: ignore[no-untyped-def]
    rt = nnc.runtime(prog, backend, model, weights=WEIGHTS[model], **options)  # type: ignore[arg-type]
    x, y = DATA[model]
    return rt.forward(x), rt.loss(x, y), rt.gradients(x, y)


@pytest.mark.parametrize("backend", ["numpy", "torch", "tensorflow"])
@pytest.mark.parametrize("logits", [True, False], ids=["from_logits", "probabilities"])
def test_losses_and_gradients_stay_finite_at_1000(backend: str, logits: bool) -> None:
    """Forward, loss and gradients are finite and agree with the float64 NumPy
    reference; with logits the losses equal the hand-computed values."""
    if backend != "numpy":
        require(backend)
    prog = program(logits)
    for model in ("Classes", "Binary"):
        out, loss, grads = measure(backend, prog, model)
        ref_out, ref_loss, ref_grads = measure("numpy", prog, model, dtype="float64")
        assert np.isfinite(out).all() and math.isfinite(loss), (model, out, loss)
        assert all(np.isfinite(g).all() for g in grads.values()), (model, grads)
        np.testing.assert_allclose(out, ref_out, atol=1e-6, err_msg=model)
        if logits:
            assert loss == pytest.approx(FROM_LOGITS[model], rel=1e-6)
            assert ref_loss == pytest.approx(FROM_LOGITS[model], rel=1e-12)
        else:
            # The clip at 1 - 1e-7 rounds differently in float32 and float64.
            assert loss == pytest.approx(ref_loss, rel=2e-2)
        for name, ref in ref_grads.items():
            np.testing.assert_allclose(grads[name], ref, rtol=1e-5, atol=1e-4, err_msg=name)
        # The gradient is not trivially zero: the tied rows pull the weights.
        assert max(float(np.abs(g).max()) for g in grads.values()) > 0.05


def test_saturated_outputs_are_exact() -> None:
    out, *_ = measure("numpy", program(False), "Classes")
    np.testing.assert_array_equal(out[:2], [[1, 0, 0], [0, 1, 0]])
    out, *_ = measure("numpy", program(False), "Binary")
    np.testing.assert_array_equal(out[:2, 0], [1, 0])


def test_onnx_forward_stays_finite_at_1000() -> None:
    require("onnx")
    require("onnxruntime")
    prog = program(False)
    for model in ("Classes", "Binary"):
        rt = nnc.runtime(prog, "onnx", model, weights=WEIGHTS[model], threads=1)
        x, _ = DATA[model]
        out = rt.forward(x)
        ref = nnc.runtime(prog, "numpy", model, weights=WEIGHTS[model], dtype="float64")
        assert np.isfinite(out).all()
        np.testing.assert_allclose(out, ref.forward(x), atol=1e-6, err_msg=model)
