"""The matrix catches a wrong backend mapping and points at the layer it breaks.

Each test breaks one conversion the way a real bug would (a reshape where a transpose
belongs, gate blocks in the wrong order, pads in the wrong order, two biases swapped,
a wrong straight-through gradient, Keras' epsilon placement) and checks that the
report fails and names the layer, parameter or optimizer concerned.
"""

from __future__ import annotations

import dataclasses
import importlib
from typing import Any

import pytest

import nnc
from nnc.backends.tensorflow import library as tf_library
from nnc.backends.torch import layers as torch_layers
from nnc.verify import Report, verify
from tests.equivalence.matrix import explain, need

# The package exports the function emit, which hides the module of the same name.
tf_emit = importlib.import_module("nnc.backends.tensorflow.emit")


def _verify(source: str, backend: str, steps: int = 4) -> Report:
    need(backend)
    report = verify(nnc.parse(source, "<broken>"), backends=[backend], steps=steps)
    assert not report.equivalent, "the broken mapping went unnoticed:\n" + explain(report)
    return report


def _row(report: Report, backend: str) -> Any:
    (row,) = [r for r in report.rows if r.backend == backend and r.against == "reference"]
    assert not row.passed
    return row


def _replace(text: str, old: str, new: str) -> str:
    assert old in text, f"the code to break has changed; update this test: {old!r}"
    return text.replace(old, new)


def _break_tf_library(monkeypatch: pytest.MonkeyPatch, entry: str, old: str, new: str) -> None:
    broken = _replace(tf_library._SOURCES[entry], old, new)
    monkeypatch.setitem(tf_library._SOURCES, entry, broken)


def _break_tf_module(monkeypatch: pytest.MonkeyPatch, old: str, new: str) -> None:
    """Edit the generated TensorFlow module itself (for code emitted inline), as the
    runtime builds it (``lower_module``: the source it imports)."""
    original = tf_emit.lower_module

    def lower_module(*args: Any, **kwargs: Any) -> Any:
        lowered = original(*args, **kwargs)
        return dataclasses.replace(lowered, source=_replace(lowered.source, old, new))

    monkeypatch.setattr(tf_emit, "lower_module", lower_module)


def test_tf_dense_kernel_reshaped_instead_of_transposed(monkeypatch: pytest.MonkeyPatch) -> None:
    # [out, in] -> [in, out] by a reshape keeps the shape and scrambles the values.
    _break_tf_library(
        monkeypatch,
        "Dense",
        'return value.T if param == "weight" else value',
        'return value.reshape(value.shape[::-1]) if param == "weight" else value',
    )
    report = _verify(
        "model M {\n input x: [2, 5, 5]\n conv2d(3, 3) relu\n flatten\n dense(6) tanh\n"
        " dense(2)\n}",
        "tensorflow",
    )
    row = _row(report, "tensorflow")
    assert row.first_bad_layer.startswith("dense_1 (dense): max abs"), explain(report)
    assert "forward: first deviating layer: dense_1 (dense)" in explain(report)


def test_tf_conv_kernel_with_height_and_width_swapped(monkeypatch: pytest.MonkeyPatch) -> None:
    _break_tf_library(
        monkeypatch,
        "Conv",
        "np.transpose(value, (*range(2, value.ndim), 1, 0))",
        "np.transpose(value, (*reversed(range(2, value.ndim)), 1, 0))",
    )
    report = _verify(
        "model M {\n input x: [2, 6, 6]\n maxpool(2, stride = 1)\n conv2d(3, 3) relu\n"
        " global_avg_pool\n dense(2)\n}",
        "tensorflow",
    )
    assert _row(report, "tensorflow").first_bad_layer.startswith("conv2d_1 (conv2d)")


def test_tf_lstm_gates_in_the_wrong_order(monkeypatch: pytest.MonkeyPatch) -> None:
    # As if Keras ordered its gates i, f, o, c (it orders them i, f, c, o).
    _break_tf_library(
        monkeypatch,
        "LSTM",
        '        return value if param == "bias" else value.T\n\n    to_canonical = to_native',
        "        i, f, g, o = np.split(value, 4, axis=0)\n"
        "        value = np.concatenate([i, f, o, g], axis=0)\n"
        '        return value if param == "bias" else value.T\n\n'
        "    @staticmethod\n"
        "    def to_canonical(param, value):\n"
        '        value = value if param == "bias" else value.T\n'
        "        i, f, o, g = np.split(value, 4, axis=0)\n"
        "        return np.concatenate([i, f, g, o], axis=0)",
    )
    report = _verify(
        "model M {\n input x: [t, 3]\n dense(4) tanh\n lstm(5)\n dense(2)\n}", "tensorflow"
    )
    assert _row(report, "tensorflow").first_bad_layer.startswith("lstm_1 (lstm)")


def test_torch_asymmetric_pads_in_the_wrong_dim_order(monkeypatch: pytest.MonkeyPatch) -> None:
    # F.pad takes the last dim first; forgetting that pads height as width.
    def pads_not_reversed(pads: Any) -> tuple[int, ...]:
        return tuple(p for begin_end in pads for p in begin_end)

    monkeypatch.setattr(torch_layers, "torch_pads", pads_not_reversed)
    report = _verify(
        "model M {\n input x: [2, 6, 6]\n conv2d(4, 3, padding = same) relu\n"
        " conv2d(3, 3, padding = [0, 1, 1, 0])\n flatten\n dense(2)\n}",
        "torch",
    )
    # conv2d_1's pads are symmetric (torch's own padding), conv2d_2's are not.
    assert _row(report, "torch").first_bad_layer.startswith("conv2d_2 (conv2d)")


def test_torch_gru_biases_swapped(monkeypatch: pytest.MonkeyPatch) -> None:
    # b_hn sits inside r ⊙ (U_n h + b_hn): the two biases are not interchangeable.
    original = torch_layers.LAYERS["gru"]

    def swapped(node: Any, site: Any) -> Any:
        layer = original(node, site)
        renames = {**layer.renames, "bias_ih": "bias_hh_l0", "bias_hh": "bias_ih_l0"}
        return dataclasses.replace(layer, renames=renames)

    monkeypatch.setitem(torch_layers.LAYERS, "gru", swapped)
    report = _verify(
        "model M {\n input x: [6, 3]\n gru(4, return_sequences = true)\n flatten\n dense(2)\n}",
        "torch",
    )
    assert _row(report, "torch").first_bad_layer.startswith("gru_1 (gru)")


def test_gradient_conversion_names_the_parameter_and_layer(monkeypatch: pytest.MonkeyPatch) -> None:
    # Loading is right, so the forward pass agrees; reading back (weights, gradients,
    # optimizer state) reshapes instead of transposing.
    _break_tf_library(
        monkeypatch,
        "Dense",
        "    to_canonical = to_native  # a transpose is its own inverse",
        "    @staticmethod\n"
        "    def to_canonical(param, value):\n"
        '        return value.reshape(value.shape[::-1]) if param == "weight" else value',
    )
    report = _verify("model M {\n input x: [5]\n dense(3) tanh\n dense(2)\n}", "tensorflow")
    row = _row(report, "tensorflow")
    assert row.forward.max_rel < report.tolerance.forward
    message = explain(report)
    assert "gradients: worst dense_" in message
    assert "(parameter 'weight' of layer dense_" in message
    assert "first layer whose backward pass deviates: dense_1 (dense)" in message
    # Reading the state back is wrong too, so moving it to another backend fails.
    assert any(not t.passed and t.source == "tensorflow" for t in report.transfers)


def test_wrong_gradient_of_a_layer_without_parameters(monkeypatch: pytest.MonkeyPatch) -> None:
    # The step's gradient is straight-through (1); masking it like relu's is a bug that
    # only the parameters before the step see.
    _break_tf_library(
        monkeypatch,
        "step",
        "        return upstream\n",
        "        return upstream * tf.cast(x > 0, x.dtype)\n",
    )
    report = _verify("model M {\n input x: [4]\n dense(5) step\n dense(2)\n}", "tensorflow")
    message = explain(report)
    assert (
        "first layer whose backward pass deviates: step_1 (step): gradient of dense_1." in message
    )


def test_optimizer_formula_is_blamed_when_forward_and_gradients_agree(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Keras' RMSprop puts epsilon inside the root; nnc's (PyTorch's) outside.
    _break_tf_module(monkeypatch, "(tf.sqrt(v) + self.eps)", "tf.sqrt(v + self.eps)")
    source = (
        "model M {\n input x: [5]\n dense(4) relu\n dense(2)\n}\n"
        'train M {\n data "d.npz"\n loss mse\n optimizer rmsprop(lr = 0.01, eps = 1e-4)\n}'
    )
    report = _verify(source, "tensorflow", steps=6)
    row = _row(report, "tensorflow")
    assert row.gradients is not None and row.gradients.max_rel < report.tolerance.gradient
    message = explain(report)
    assert "the optimizer (rmsprop) update or its state deviates" in message
    assert "of layer dense_" in message
