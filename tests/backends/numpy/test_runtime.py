"""Behaviour of generated runtimes: hand-computed values, training vs evaluation,
dropout and batchnorm, the perceptron rule, clear errors, several inputs and outputs,
and the float32 run against the float64 reference."""

from __future__ import annotations

import math

import numpy as np
import pytest

import nnc
from nnc.backends.numpy import build, emit
from nnc.backends.numpy.module import LOWERINGS
from nnc.backends.numpy.walk import Walk
from nnc.backends.runtime import Runtime
from nnc.errors import BackendError, UnsupportedOpError, WeightsError
from nnc.ir.ops import OPS
from nnc.ir.passes import inline_calls
from tests.conftest import EXAMPLES

DATA = 'data "train.csv"'


def runtime(body: str, train: str = "", dtype: str = "float64"):  # type: ignore[no-untyped-def]
    source = f"model T {{\n    {body}\n}}\n"
    if train:
        source += f"\ntrain T {{\n    {DATA}\n    {train}\n}}\n"
    return build(nnc.parse(source), dtype=dtype)


def test_every_registry_op_has_a_lowering() -> None:
    assert set(OPS) - {"call"} == set(LOWERINGS)


def test_runtime_implements_the_interface() -> None:
    rt = build(nnc.load(EXAMPLES / "xor.nn"))
    assert isinstance(rt, Runtime) and rt.backend == "numpy"
    no_recipe = runtime("input x: [2]\n    dense(1)")
    assert isinstance(no_recipe, Runtime)


def test_conv2d_same_padding_stride_2() -> None:
    """4x4 input 1..16, a 3x3 kernel of ones, stride 2, same: pads (0, 1) per dim."""
    rt = runtime("input x: [1, 4, 4]\n    conv2d(1, 3, stride = 2, padding = same)")
    rt.set_weights({"conv2d_1.weight": np.ones((1, 1, 3, 3)), "conv2d_1.bias": np.zeros(1)})
    y = rt.forward(np.arange(1.0, 17.0).reshape(1, 1, 4, 4))
    np.testing.assert_array_equal(y[0, 0], [[54, 45], [72, 54]])


@pytest.mark.parametrize(
    "pool, expected",
    [
        ("avgpool", [[3, 4.5], [7.5, 9]]),  # padding is not counted
        ("sumpool", [[12, 9], [15, 9]]),
        ("maxpool", [[5, 6], [8, 9]]),
    ],
)
def test_pooling_with_same_padding(pool: str, expected: list[list[float]]) -> None:
    """3x3 input 1..9, window 2, same: one row and column of padding at the end."""
    rt = runtime(f"input x: [1, 3, 3]\n    {pool}(2, padding = same)")
    y = rt.forward(np.arange(1.0, 10.0).reshape(1, 1, 3, 3))
    np.testing.assert_array_equal(y[0, 0], expected)


@pytest.mark.parametrize("p_dog, cost", [(0.3, 1.20), (0.5, 0.69)])
def test_cross_entropy_worked_example(p_dog: float, cost: float) -> None:
    """The seeds' example, natural log: -ln 0.3 = 1.20, -ln 0.5 = 0.69."""
    rt = runtime("input p: [2]\n    softmax", "loss cross_entropy")  # from probabilities
    logits = np.log([[p_dog, 1 - p_dog]])
    assert rt.loss(logits, np.array([[1.0, 0.0]])) == pytest.approx(cost, abs=0.005)
    assert rt.loss(logits, np.array([0])) == pytest.approx(-math.log(p_dog))  # class index


def test_cross_entropy_from_logits_is_finite_for_huge_logits() -> None:
    rt = runtime("input x: [3]\n    linear", "loss cross_entropy")
    x = np.array([[1000.0, -1000.0, 0.0], [-1000.0, 1000.0, 0.0]])
    assert rt.loss(x, np.array([[1.0, 0, 0], [1.0, 0, 0]])) == pytest.approx(1000.0)
    assert np.isfinite(rt.gradients(x, np.array([[0.0, 0, 1], [1.0, 0, 0]])) == {}).all()


def test_perceptron_rule() -> None:
    """step + sse + sgd on one sample is w += lr (target - output) x."""
    rt = build(nnc.load(EXAMPLES / "perceptron.nn"))
    x, target = np.array([[1.0, 1.0]]), np.array([[1.0]])
    assert rt.forward(x)[0, 0] == 0.0  # zero weights: step(0) = 0
    rt.train_step(x, target, 0.1)
    weights = rt.get_weights()
    np.testing.assert_allclose(weights["dense_1.weight"], [[0.1, 0.1]])
    np.testing.assert_allclose(weights["dense_1.bias"], [0.1])
    assert rt.forward(x)[0, 0] == 1.0


def test_dropout_training_and_evaluation() -> None:
    rt = runtime("input x: [1000]\n    dropout(0.3)")
    x = np.ones((4, 1000))
    np.testing.assert_array_equal(rt.forward(x), x)  # evaluation: identity
    rt.seed(1)
    y = rt.forward(x, training=True)
    kept = y != 0
    assert 0.65 < kept.mean() < 0.75
    np.testing.assert_allclose(y[kept], 1 / 0.7)
    rt.seed(1)
    np.testing.assert_array_equal(rt.forward(x, training=True), y)  # reseeded: same mask
    assert (rt.forward(x, training=True) != y).any()


def test_batchnorm_running_statistics() -> None:
    rt = runtime("input x: [2]\n    batchnorm(momentum = 0.2)\n    dense(1)", "loss mse")
    x = np.array([[1.0, 2.0], [3.0, 6.0], [5.0, 4.0]])
    rt.gradients(x, np.zeros((3, 1)))
    assert rt.get_weights()["batchnorm_1.running_mean"].tolist() == [0.0, 0.0]  # no update
    rt.train_step(x, np.zeros((3, 1)), 0.0)
    w = rt.get_weights()
    np.testing.assert_allclose(w["batchnorm_1.running_mean"], 0.2 * x.mean(axis=0))
    np.testing.assert_allclose(w["batchnorm_1.running_var"], 0.8 + 0.2 * x.var(axis=0, ddof=1))
    # Evaluation normalises with the running statistics.
    hidden = rt.propagate(x)[1]["batchnorm_1"]
    expected = (x - w["batchnorm_1.running_mean"]) / np.sqrt(w["batchnorm_1.running_var"] + 1e-5)
    np.testing.assert_allclose(hidden, expected)


def test_several_inputs_and_outputs() -> None:
    rt = runtime(
        "input a: [3]\n    input b: [3]\n    s = a + b\n    p = s |> relu\n    output p, s"
    )
    a, b = np.array([[1.0, -2.0, 3.0]]), np.array([[1.0, 1.0, -5.0]])
    p, s = rt.forward(a, b)
    np.testing.assert_array_equal(s, a + b)
    np.testing.assert_array_equal(p, np.maximum(a + b, 0))


def test_symbolic_sequence_length() -> None:
    rt = build(nnc.load(EXAMPLES / "sequence_lstm.nn"))
    for steps in (5, 20):
        y = rt.forward(np.zeros((3, steps, 1), dtype=np.float32))
        assert y.shape == (3, 1) and y.dtype == np.float32


def test_float32_runtime_tracks_the_float64_reference() -> None:
    program = nnc.load(EXAMPLES / "digits_cnn.nn")
    rng = np.random.default_rng(0)
    x, d_y = rng.uniform(size=(16, 1, 8, 8)), rng.normal(size=(16, 10))
    single, double = build(program), build(program, dtype="float64")
    (y32, cache32), (y64, cache64) = single.propagate(x), double.propagate(x)
    assert np.abs(y32 - y64).max() < 1e-5
    # Evaluation mode: dropout masks come from each dtype's own random stream.
    g32 = single.backpropagate(cache32, d_y.astype(np.float32))[0]
    g64 = double.backpropagate(cache64, d_y)[0]
    for name in g64:
        assert g32[name].dtype == np.float32
        assert np.abs(g32[name] - g64[name]).max() < 1e-5 * max(1.0, np.abs(g64[name]).max())


def test_model_without_recipe_runs_forward_only() -> None:
    rt = runtime("input x: [2]\n    dense(3)")
    assert rt.forward(np.ones((1, 2))).shape == (1, 3)
    for call in (
        lambda: rt.train_step(np.ones((1, 2)), np.ones((1, 3)), 0.1),
        lambda: rt.loss(np.ones((1, 2)), np.ones((1, 3))),
        lambda: rt.gradients(np.ones((1, 2)), np.ones((1, 3))),
    ):
        with pytest.raises(RuntimeError, match="model T has no train recipe"):
            call()


def test_gan_models() -> None:
    program = nnc.load(EXAMPLES / "gan.nn")
    generator = build(program, "Generator")
    with pytest.raises(RuntimeError, match="generator of GAN recipe DigitsGAN"):
        generator.train_step(np.zeros((2, 16)), np.zeros((2, 64)), 0.1)
    fake = generator.forward(np.random.default_rng(0).normal(size=(4, 16)))
    discriminator = build(program, "Discriminator")
    before = discriminator.loss(fake, np.zeros((4, 1)))
    for _ in range(20):
        discriminator.train_step(fake, np.zeros((4, 1)), 0.01)
    assert discriminator.loss(fake, np.zeros((4, 1))) < before / 2
    # The generator learns through the discriminator's input gradient.
    output, cache = discriminator.propagate(fake, training=True)
    _, d_fake = discriminator.backpropagate(cache, np.ones_like(output), input_gradients=True)
    assert d_fake.shape == fake.shape


def test_clear_errors() -> None:
    rt = runtime("input x: [2]\n    dense(1)", "loss mse")
    with pytest.raises(ValueError, match=r"input x expects \[batch, 2\]. Received: \[4, 3\]"):
        rt.forward(np.ones((4, 3)))
    with pytest.raises(ValueError, match=r"targets must be shaped like the output \[4, 1\]"):
        rt.loss(np.ones((4, 2)), np.ones(4))
    with pytest.raises(ValueError, match=r"weight dense_1.bias must have shape \[1\]"):
        rt.set_weights({**rt.get_weights(), "dense_1.bias": np.zeros(2)})
    tokens = runtime("input t: int64[3]\n    embedding(5, 2)")
    with pytest.raises(ValueError, match=r"embedding indices must lie in \[0, 5\)"):
        tokens.forward(np.array([[0, 5, 1]]))
    with pytest.raises(ValueError, match="input t takes integer indices"):
        tokens.forward(np.array([[0.5, 1, 1]]))
    program = nnc.parse("model T {\n    input x: [2]\n    dense(1)\n}")
    with pytest.raises(WeightsError, match="missing"):
        build(program, weights={})
    with pytest.raises(BackendError, match="float32 or float64"):
        build(program, dtype="int32")


def test_unsupported_op_is_reported() -> None:
    program = nnc.parse("model T {\n    input x: [2]\n    dense(1)\n}")
    with pytest.raises(UnsupportedOpError, match="op 'dense' is not supported by the numpy"):
        Walk(inline_calls(program, "T"), {}, frozenset())


def test_value_names_never_shadow_kernels() -> None:
    """A node named like a kernel or a method local gets another Python name."""
    source = (
        "model T {\n    input x: [2]\n    sigmoid = x |> dense(2)\n"
        "    grads = sigmoid |> sigmoid\n    output grads\n}"
    )
    code = emit(nnc.parse(source))
    assert 'sigmoid_2 = x @ w["sigmoid.weight"].T' in code
    assert "grads_2 = sigmoid(sigmoid_2)" in code
    rt = build(nnc.parse(source))
    assert rt.forward(np.zeros((1, 2))).tolist() == [[0.5, 0.5]]
