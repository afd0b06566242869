"""Gradient checks in float64: the generated backpropagation against central finite
differences, for every op of the registry (from its ``example``), for variants of the
ops' attributes, for a model used as a layer, and for every loss.

Relative error (see ``gradcheck``) must stay under 1e-6 for every trainable
parameter and every float input. The ``step`` activation is checked against its
straight-through definition instead: its true derivative is 0 almost everywhere, so
finite differences say 0 where nnc defines 1 (the perceptron rule).
"""

from __future__ import annotations

import numpy as np
import pytest

import nnc
from nnc.ir.ops import OPS
from tests.backends.numpy.gradcheck import check, random_inputs, runtime_for
from tests.backends.spatial_cases import SPATIAL_CASES

TOLERANCE = 1e-6
RECURRENT = {"rnn", "lstm", "gru"}
NOT_BY_EXAMPLE = {"call": "needs a second model: test_model_used_as_a_layer", "step": ""}


def example_source(op: str) -> str:
    """``model T { <example> }`` for a registry op."""
    example = OPS[op].example.replace("{op}", op)
    if not example:
        pytest.fail(f"op '{op}' has no example, so no gradient check covers it")
    return f"model T {{\n    {example}\n}}"


def assert_gradients(source: str, lengths: tuple[int, ...] = (3,), training: bool = True) -> None:
    model = nnc.parse(source).model()
    runtime = runtime_for(source)
    for length in lengths:
        errors = check(runtime, random_inputs(model, length=length), training=training)
        assert errors, "nothing was checked"
        worst = max(errors, key=errors.__getitem__)
        assert errors[worst] < TOLERANCE, f"t={length}: {worst} relative error {errors[worst]:.2e}"


def test_every_op_is_checked() -> None:
    """A new op without an example (or a named special test) fails the suite."""
    for op, cls in OPS.items():
        assert cls.example or op in NOT_BY_EXAMPLE, f"op '{op}' has no example to check"


@pytest.mark.parametrize("op", sorted(set(OPS) - set(NOT_BY_EXAMPLE)))
def test_op_gradients(op: str) -> None:
    # Recurrent layers run over a symbolic t: check two different sequence lengths.
    assert_gradients(example_source(op), lengths=(2, 5) if op in RECURRENT else (3,))


VARIANTS = {
    "attention self, symbolic t, causal": "input x: [t, 4]\n    attention(2, causal = true)",
    "attention cross, other length, key/value dims, no bias": "input x: [3, 4]\n"
    "    input m: [5, 6]\n    output attention(x, m, heads = 3, key_dim = 2, value_dim = 5, "
    "bias = false)",
    "attention q, k, v, causal, key mask": "input x: [4, 4]\n    input k: [6, 3]\n"
    "    input v: [6, 5]\n    input mask: [6]\n"
    "    output attention(x, k, v, mask, heads = 2, causal = true)",
    "dense over a sequence": "input x: [t, 3]\n    dense(2)",
    "layernorm without bias": "input x: [3, 5]\n    layernorm(bias = false)",
    "dense without bias, frozen before": "input x: [4]\n    dense(3, trainable = false) tanh\n"
    "    dense(2, bias = false)",
    "conv2d asymmetric padding, dilation": "input x: [2, 6, 7]\n    conv2d(4, kernel = [2, 3], "
    "stride = [2, 1], padding = [0, 1, 1, 2], dilation = [1, 2])",
    "conv2d groups, no bias": "input x: [4, 5, 5]\n    conv2d(6, 3, groups = 2, bias = false)",
    "conv2d same, stride 2, even size": "input x: [1, 6, 6]\n    conv2d(2, 3, stride = 2, "
    "padding = same)",
    "conv1d stride, dilation, groups": "input x: [4, 11]\n    conv1d(2, 3, stride = 2, "
    "dilation = 2, groups = 2)",
    "conv2d_transpose crop, output_padding": "input x: [2, 3, 3]\n    conv2d_transpose(3, 3, "
    "stride = 2, padding = [1, 0, 0, 1], output_padding = 1)",
    "conv2d_transpose valid": "input x: [2, 3, 4]\n    conv2d_transpose(2, [2, 3])",
    "maxpool 1-d same": "input x: [2, 7]\n    maxpool(2, padding = same)",
    "maxpool 2-d overlapping same": "input x: [2, 5, 5]\n    maxpool(3, stride = 2, "
    "padding = same)",
    "avgpool 1-d same": "input x: [2, 7]\n    avgpool(3, stride = 2, padding = same)",
    "avgpool 2-d valid": "input x: [2, 6, 6]\n    avgpool(2)",
    "sumpool 2-d same": "input x: [2, 5, 5]\n    sumpool(2, padding = same)",
    "global_avg_pool 1-d": "input x: [3, 5]\n    global_avg_pool",
    "resize nearest, per-dim scales": "input x: [2, 3, 2]\n    resize([2, 3])",
    "resize linear 1-d, align corners": "input x: [2, 4]\n    resize(3, mode = bilinear, "
    "align_corners = true)",
    "transpose default, then dense": "input x: [3, 4]\n    transpose\n    dense(2)",
    "squeeze default": "input x: [1, 3, 1]\n    squeeze",
    "slice negative steps": "input x: [5, 6]\n    slice(axes = [1, 0], starts = [-1, 4], "
    "stops = [-100, 0], steps = [-2, -3])",
    "split, both pieces used": "input x: [2, 5]\n    a, b = x |> split(axis = 1, "
    "sizes = [2, 3])\n    output concat(b |> tanh, a, axis = 1)",
    "pad constant with value": "input x: [2, 3]\n    pad([1, 0, 2, 1], value = 0.5) tanh",
    "pad reflect, overlapping mirrors": "input x: [3, 4]\n    pad([2, 3, 2, 3], "
    "mode = reflect) tanh",
    "pad edge, wide": "input x: [2, 3]\n    pad([3, 0, 0, 4], mode = edge) tanh",
    "tile, then a nonlinearity": "input x: [2, 3]\n    tile([2, 2]) tanh",
    "broadcast_to new and stretched axes": "input x: [3, 1]\n    broadcast_to([2, 3, 4]) tanh",
    "batchnorm rank 1": "input x: [5]\n    batchnorm",
    "batchnorm rank 2": "input x: [3, 6]\n    batchnorm(momentum = 0.2, eps = 0.001)",
    "layernorm rank 1": "input x: [6]\n    layernorm",
    "layernorm rank 3": "input x: [2, 3, 4]\n    layernorm",
    "lrn rank 2, even size": "input x: [5, 4]\n    lrn(4, alpha = 0.5, beta = 0.6, bias = 2.0)",
    "concat along axis 1, one input twice": "input x: [2, 3]\n    y = x |> dense(4)\n"
    "    output concat(x, y, y, axis = 1)",
    "softmax along axis 0": "input x: [3, 4]\n    softmax(0)",
    "log_softmax along axis 0": "input x: [3, 4]\n    log_softmax(0)",
    "prelu per channel": "input x: [3, 2, 2]\n    prelu",
    "leaky_relu and elu alphas": "input x: [6]\n    leaky_relu(0.2)\n    elu(0.5)",
    "rnn, last state": "input x: [t, 2]\n    rnn(3)",
    "lstm, every state": "input x: [t, 2]\n    lstm(3, return_sequences = true)",
    "gru, last state": "input x: [t, 2]\n    gru(3)",
    "embedding into a gru": "input tokens: int64[t]\n    embedding(7, 3)\n    gru(4)",
    "two inputs, two outputs": "input a: [3]\n    input b: [3]\n    s = a + b\n"
    "    p = s |> dense(2)\n    output p, s",
    "matmul vector @ matrix, matrix @ vector": "input x: [4]\n    w = param([3, 4])\n"
    "    v = param([4], init = normal(0.0, 0.5))\n    h = w @ x\n"
    "    output (x @ v) |> reshape([1]), h",
    "matmul broadcast leading axes": "input x: [2, 3, 4]\n    w = param([1, 4, 5])\n"
    "    v = param([4, 2])\n    output x @ w, x @ v, matmul(x, x |> reshape([2, 4, 3]))",
    "matmul batched vector @ stack": "input x: [3]\n    s = param([2, 3, 2])\n"
    "    y = x |> dense(3)\n    output matmul(y, s)",
    "residual block": "input x: [2, 4, 4]\n    y = x |> conv2d(2, 3, padding = same) |> batchnorm"
    " |> relu\n    output relu(x + y)",
    **SPATIAL_CASES,
}


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_variant_gradients(name: str) -> None:
    assert_gradients(f"model T {{\n    {VARIANTS[name]}\n}}", lengths=(2, 4))


@pytest.mark.parametrize(
    "body", ["input x: [3, 4, 4]\n    batchnorm", "input x: [6]\n    dropout(0.5)\n    dense(2)"]
)
def test_evaluation_mode_gradients(body: str) -> None:
    """backpropagate also follows an evaluation-mode forward pass (running statistics,
    no dropout)."""
    assert_gradients(f"model T {{\n    {body}\n}}", training=False)


def test_model_used_as_a_layer() -> None:
    """Two calls of one model: each call's parameters (prefixed with its name) get
    their own gradient."""
    source = """
model Inner {
    input a: [4]
    dense(4) tanh
}

model Outer {
    input x: [4]
    Inner
    Inner
    dense(2)
}
"""
    program = nnc.parse(source)
    runtime = runtime_for(source, model="Outer")
    assert "inner_2.dense_1.weight" in runtime.get_weights()
    errors = check(runtime, random_inputs(program.models["Outer"]))
    assert {"inner_1.dense_1.weight", "inner_2.dense_1.bias"} <= set(errors)
    assert max(errors.values()) < TOLERANCE


def test_step_is_straight_through() -> None:
    """Forward: 1 where x > 0 else 0; backward: the output gradient passes unchanged."""
    runtime = runtime_for(example_source("step"))
    x = np.array([[[-1.5, 0.0, 0.25, 3.0, -0.1]] * 2])
    y, cache = runtime.propagate(x)
    np.testing.assert_array_equal(y, (x > 0).astype(float))
    d_y = np.random.default_rng(0).normal(size=y.shape)
    _, d_x = runtime.backpropagate(cache, d_y, input_gradients=True)
    np.testing.assert_array_equal(d_x, d_y)


LOSSES = {
    "mse": ("dense(3)", "mse", "real"),
    "mae": ("dense(3)", "mae", "real"),
    "sse": ("dense(3)", "sse", "real"),
    "cross_entropy from logits": ("dense(3)", "cross_entropy(from_logits = true)", "onehot"),
    "cross_entropy from logits, padding label": (
        "dense(3)",
        "cross_entropy(ignore = -1)",
        "padded",
    ),
    "cross_entropy from probabilities, padding label, summed": (
        "dense(3) softmax",
        "cross_entropy(from_logits = false, ignore = 0, reduction = sum)",
        "padded",
    ),
    "cross_entropy from probabilities": (
        "dense(3) softmax",
        "cross_entropy(from_logits = false)",
        "onehot",
    ),
    "binary_cross_entropy from logits": (
        "dense(3)",
        "binary_cross_entropy(from_logits = true)",
        "unit",
    ),
    "binary_cross_entropy from probabilities": (
        "dense(3) sigmoid",
        "binary_cross_entropy(from_logits = false)",
        "unit",
    ),
}


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_loss_gradients(name: str) -> None:
    """gradients() (loss kernel, then backpropagation) against finite differences of
    loss(), for every loss and both from_logits settings."""
    layers, loss, targets = LOSSES[name]
    source = (
        f"model T {{\n    input x: [4]\n    {layers}\n}}\n\n"
        f'train T {{\n    data "train.csv"\n    loss {loss}\n}}\n'
    )
    runtime = runtime_for(source)
    rng = np.random.default_rng(1)
    x = rng.normal(size=(5, 4))
    y = {
        "real": rng.normal(size=(5, 3)),
        "onehot": np.eye(3)[rng.integers(0, 3, size=5)],
        # samples 1 and 3 carry the padding label: all-zero rows
        "padded": np.eye(3)[rng.integers(0, 3, size=5)] * [[1], [0], [1], [0], [1]],
        "unit": rng.uniform(size=(5, 3)),
    }[targets]
    grads = runtime.gradients(x, y)
    for name_, value in runtime.weights.items():
        numeric = np.zeros_like(value)
        for index in np.ndindex(value.shape):
            saved = value[index]
            value[index] = saved + 1e-6
            plus = runtime.loss(x, y)
            value[index] = saved - 1e-6
            minus = runtime.loss(x, y)
            value[index] = saved
            numeric[index] = (plus - minus) / 2e-6
        error = np.linalg.norm(grads[name_] - numeric) / np.linalg.norm(numeric)
        assert error < TOLERANCE, f"{name_}: relative error {error:.2e}"
