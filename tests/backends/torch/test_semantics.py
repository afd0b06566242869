"""Constructs where torch's defaults differ from nnc's semantics, each compared with
the float64 reference (tolerances in :mod:`tests.backends.torch.support`), and the
losses against docs/semantics.md's formulas and worked example."""

from __future__ import annotations

import numpy as np
import pytest

import nnc
from nnc.backends import torch as backend
from tests.backends.spatial_cases import SPATIAL_CASES
from tests.backends.torch import reference, support

pytestmark = pytest.mark.usefixtures("needs_torch")

# Model bodies whose lowering goes beyond the op's registry example. Each comment
# says what the case exercises.
CASES = {
    # TF-style 'same' with an odd total pad: the extra row/column at the end (F.pad)
    "conv2d_same_stride2_even": "input x: [2, 8, 8]\n conv2d(3, 3, stride = 2, padding = same)",
    "conv1d_same_even_kernel": "input x: [2, 7]\n conv1d(2, 2, padding = same)",
    "conv2d_explicit_asymmetric": "input x: [2, 5, 5]\n conv2d(2, 3, padding = [0, 1, 2, 1])",
    "conv2d_dilation_groups": "input x: [4, 9, 9]\n"
    " conv2d(6, 3, dilation = 2, groups = 2, bias = false)",
    "conv2d_rectangular": "input x: [2, 7, 6]\n conv2d(3, [3, 2], stride = [2, 1])",
    # torch crops both ends equally; nnc's uneven crop slices the rest off the end
    "deconv_valid": "input x: [2, 3, 3]\n conv2d_transpose(2, 3, stride = 2)",
    "deconv_explicit_crop": "input x: [2, 3, 3]\n"
    " conv2d_transpose(2, 3, stride = 2, padding = [1, 0, 2, 1])",
    "deconv_output_padding": "input x: [2, 3, 3]\n"
    " conv2d_transpose(2, 3, stride = 2, padding = 1, output_padding = 1)",
    "deconv_same_odd": "input x: [2, 3, 4]\n"
    " conv2d_transpose(2, 4, stride = [1, 2], padding = same)",
    # maxpool: -inf padding, at the end only (F.pad) or symmetric (torch's own)
    "maxpool_same_asymmetric": "input x: [2, 5, 5]\n maxpool(2, padding = same)",
    "maxpool_same_symmetric": "input x: [2, 6, 6]\n maxpool(3, stride = 1, padding = same)",
    "maxpool_1d_strided": "input x: [2, 9]\n maxpool(3, stride = 2)",
    "avgpool_same_symmetric": "input x: [2, 6, 6]\n avgpool(3, stride = 1, padding = same)",
    "avgpool_1d_same": "input x: [2, 7]\n avgpool(2, padding = same)",
    "sumpool_2d_same": "input x: [2, 5, 5]\n sumpool(2, padding = same)",
    "global_avg_pool_1d": "input x: [3, 7]\n global_avg_pool",
    # nn.LocalResponseNorm's even window starts one channel earlier than nnc's
    "lrn_even": "input x: [6, 2, 2]\n lrn(4, alpha = 0.5, beta = 0.6, bias = 1.5)",
    "lrn_1d": "input x: [5, 3]\n lrn(5, alpha = 0.3)",
    "batchnorm_vector": "input x: [5]\n batchnorm(momentum = 0.3, eps = 0.001)",
    "batchnorm_sequence": "input x: [3, 6]\n batchnorm",
    "dense_sequence": "input x: [t, 3]\n dense(4) leaky_relu(0.2)",
    "rnn_last_state": "input x: [t, 3]\n rnn(4)",
    "lstm_sequences": "input x: [t, 2]\n lstm(3, return_sequences = true)",
    "gru_last_state": "input x: [t, 2]\n gru(3)",
    "softmax_axis0": "input x: [3, 4]\n softmax(0)",
    "log_softmax_axis0": "input x: [3, 4]\n log_softmax(axis = 0)",
    "concat_last_axis": "input x: [2, 3]\n y = x |> conv1d(2, 1)\n output concat(x, y, axis = -1)",
    "elu_alpha": "input x: [6]\n elu(0.5)",
    "frozen_dense": "input x: [4]\n dense(3, trainable = false) relu\n dense(2)",
    **SPATIAL_CASES,
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_case_matches_reference(case: str) -> None:
    program = nnc.parse("model T {\n " + CASES[case] + "\n}\n")
    support.assert_close(support.reference_check(program, "T", length=4))


def test_torch_native_lrn_differs_for_even_sizes() -> None:
    """Why LocalResponseNormEven exists: torch's own layer gives other numbers."""
    import torch

    x = np.random.default_rng(0).normal(size=(2, 6, 2, 2)).astype(np.float32)
    program = nnc.parse("model T {\n " + CASES["lrn_even"] + "\n}\n")
    nnc_lrn = backend.build(program).forward(x)
    native = torch.nn.LocalResponseNorm(4, alpha=0.5, beta=0.6, k=1.5)(torch.from_numpy(x))
    assert np.max(np.abs(native.numpy() - nnc_lrn)) > 1e-2


LOSS_CASES = [
    ("mse", "dense(3)"),
    ("mae", "dense(3)"),
    ("sse", "dense(3)"),
    ("cross_entropy(from_logits = true)", "dense(3)"),
    ("cross_entropy(from_logits = false)", "dense(3) softmax"),
    ("binary_cross_entropy(from_logits = true)", "dense(3)"),
    ("binary_cross_entropy(from_logits = false)", "dense(3) sigmoid"),
]


def recipe_program(body: str, loss: str, extra: str = "") -> nnc.Program:
    return nnc.parse(
        f"model M {{\n {body}\n}}\n"
        f'train M {{\n data "train.csv"\n loss {loss}\n optimizer sgd(lr = 0.1)\n{extra}}}\n'
    )


def targets_for(loss: str, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    if loss.startswith("cross_entropy"):
        return np.eye(shape[-1], dtype=np.float32)[rng.integers(0, shape[-1], shape[:-1])]
    if loss.startswith("binary"):
        return rng.integers(0, 2, size=shape).astype(np.float32)
    return rng.normal(size=shape).astype(np.float32)


@pytest.mark.parametrize(("loss", "layers"), LOSS_CASES, ids=[c[0] for c in LOSS_CASES])
def test_loss_and_its_gradients_match_reference(loss: str, layers: str) -> None:
    program = recipe_program(f"input x: [4]\n {layers}", loss)
    model = program.models["M"]
    rng = np.random.default_rng(1)
    weights = support.random_weights(program, model, rng)
    x = rng.normal(size=(6, 4)).astype(np.float32)
    t = targets_for(loss, (6, 3), rng)
    runtime = backend.build(program, weights=weights)
    spec = program.recipes["M"].loss

    def reference_loss(w: dict[str, np.ndarray]) -> float:
        return reference.loss_value(spec, reference.run(program, "M", w, [x])[0], t)

    expected = reference_loss(weights)
    assert abs(runtime.loss(x, t) - expected) <= 1e-5 * max(1.0, abs(expected))
    grads = runtime.gradients(x, t)
    numeric = reference.numeric_gradient(reference_loss, weights, list(grads))
    support.assert_close(
        [
            support.deviation(name, grads[name].reshape(-1)[i], d, support.GRADIENT_RTOL, 1e-2)
            for name, (i, d) in numeric.items()
        ]
    )


def test_cross_entropy_from_logits_takes_soft_and_partial_rows() -> None:
    """Soft rows, one-hot rows, and rows that are not distributions at all."""
    program = recipe_program("input x: [4]\n dense(3)", "cross_entropy")
    rng = np.random.default_rng(3)
    weights = support.random_weights(program, program.models["M"], rng)
    x = rng.normal(size=(5, 4)).astype(np.float32)
    runtime = backend.build(program, weights=weights)
    spec = program.recipes["M"].loss
    logits = reference.run(program, "M", weights, [x])[0]
    soft = rng.dirichlet(np.ones(3), size=5).astype(np.float32)
    hard = np.eye(3, dtype=np.float32)[[0, 2, 1, 1, 0]]
    partial = hard.copy()
    partial[2] = 0.0  # a row of zeros costs nothing
    for t in (soft, hard, partial):
        expected = reference.loss_value(spec, logits, t)
        assert runtime.loss(x, t) == pytest.approx(expected, rel=1e-5)


def test_cross_entropy_worked_example() -> None:
    """docs/semantics.md: p(dog) = 0.3 costs -ln 0.3 = 1.20, p(dog) = 0.5 costs 0.69."""
    program = recipe_program("input x: [2]\n linear", "cross_entropy(from_logits = false)")
    runtime = backend.build(program)
    dog = np.array([[0.0, 1.0]], dtype=np.float32)
    assert runtime.loss(np.array([[0.7, 0.3]], np.float32), dog) == pytest.approx(1.20, abs=5e-3)
    assert runtime.loss(np.array([[0.5, 0.5]], np.float32), dog) == pytest.approx(0.69, abs=5e-3)


def test_cross_entropy_from_logits_is_finite_at_1000() -> None:
    program = recipe_program("input x: [3]\n linear", "cross_entropy")
    runtime = backend.build(program)
    logits = np.array([[1000.0, -1000.0, 0.0]], np.float32)
    assert runtime.loss(logits, np.array([[0, 1, 0]], np.float32)) == pytest.approx(2000.0)


def test_cross_entropy_over_a_sequence_means_over_batch_and_time() -> None:
    program = recipe_program("input x: [t, 3]\n dense(4)", "cross_entropy")
    rng = np.random.default_rng(2)
    weights = support.random_weights(program, program.models["M"], rng)
    x = rng.normal(size=(2, 5, 3)).astype(np.float32)
    t = targets_for("cross_entropy", (2, 5, 4), rng)
    expected = reference.loss_value(
        program.recipes["M"].loss, reference.run(program, "M", weights, [x])[0], t
    )
    assert backend.build(program, weights=weights).loss(x, t) == pytest.approx(expected, rel=1e-5)
