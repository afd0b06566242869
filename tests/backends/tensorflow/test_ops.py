"""Every op of the registry, and the corners of each op family, against the float64
reference: outputs in evaluation and training mode, parameter gradients (through
``Runtime.gradients``, so canonical conversions included), input gradients, and
batchnorm statistics after a train step. Tolerances in helpers.py.

These one-shot checks run eagerly (tracing would triple their time); the compiled
graphs are checked for every op by the equivalence matrix (tests/equivalence), for
every example by test_examples.py, and across sequence lengths below."""

from __future__ import annotations

import zlib
from typing import Any

import numpy as np
import pytest

import nnc
from nnc.backends import tensorflow as backend
from nnc.backends.tensorflow.graph import uses_training
from nnc.ir.ops import OPS
from nnc.ir.training import Recipe
from tests.backends.spatial_cases import SPATIAL_CASES
from tests.backends.tensorflow import reference as ref
from tests.backends.tensorflow.helpers import (
    GRADIENT_RTOL,
    OUTPUT_RTOL,
    compare_gradients,
    deviation,
    gradient_scale,
    sample_inputs,
    without_dropout,
)

RECIPE = 'train T {\n    data "unused.npz"\n    loss mse\n    optimizer sgd(lr = 0.1)\n}\n'

# A model used as a layer, with two outputs, one of them consumed inside.
CALL_PROGRAM = """
model Two {
    input x: [4]
    a = x |> dense(3)
    b = x |> dense(2) |> tanh
    output a, b
}
model T {
    input x: [4]
    p, q = Two(x)
    y = q |> dense(3)
    output p + y
}
"""


def op_source(op: str) -> str:
    if op == "call":
        return CALL_PROGRAM + RECIPE
    example = OPS[op].example.replace("{op}", op)
    assert example, f"op '{op}' has no example: the registry-wide tests need one"
    return f"model T {{\n    {example}\n}}\n" + RECIPE


def random_weights(runtime: Any, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Random canonical weights (initial ones are often too regular: ones, zeros)."""
    out = {}
    for name, value in runtime.get_weights().items():
        if name.endswith("running_var"):
            out[name] = rng.uniform(0.5, 1.5, size=value.shape).astype(np.float32)
        else:
            out[name] = rng.normal(0.0, 0.5, size=value.shape).astype(np.float32)
    return out


def check_against_reference(source: str, runtimes: Any, key: str, t: int = 5) -> None:
    """Build (once), then compare everything the runtime computes with the reference."""
    import tensorflow as tf

    program = without_dropout(nnc.parse(source))
    recipe = program.recipes["T"]
    assert isinstance(recipe, Recipe)
    rt = runtimes(key, lambda: backend.build(program, "T"))
    rng = np.random.default_rng(zlib.crc32(key.encode()))
    rt.set_weights(random_weights(rt, rng))
    weights = rt.get_weights()
    xs = sample_inputs(program, "T", 3, rng, t=t)

    (expected,) = ref.run(program, "T", weights, xs)
    assert deviation(rt.forward(*xs), expected) < OUTPUT_RTOL
    mode = ref.Pass(training=True, step_offsets={})
    (expected_training,) = ref.run(program, "T", weights, xs, mode)
    if uses_training(program, program.models["T"]):  # otherwise the same graph as above
        assert deviation(rt.forward(*xs, training=True), expected_training) < OUTPUT_RTOL

    y = rng.normal(size=expected.shape).astype(np.float32)
    worst, where = compare_gradients(program, "T", recipe, rt, xs[0], y, rng, probes=12)
    assert worst < GRADIENT_RTOL, f"gradient of {where} deviates by {worst:.2e}"

    # The gradient with respect to the input, through the model class itself.
    if program.models["T"].inputs[0].type.dtype == "float32":
        r = rng.normal(size=expected.shape)
        x = tf.constant(xs[0])
        with tf.GradientTape() as tape:
            tape.watch(x)
            value = tf.reduce_sum(rt.model(x, training=True) * tf.constant(r, tf.float32))
        got = tape.gradient(value, x).numpy()

        def f(x_: np.ndarray) -> float:
            m = ref.Pass(training=True, step_offsets=mode.step_offsets)
            (out,) = ref.run(program, "T", weights, [x_], m)
            return float(np.sum(out * r))

        coords = ref.probe_coords(xs[0].shape, rng, 24)
        numeric = ref.numeric_gradient(f, xs[0].astype(np.float64), coords)
        picked = np.array([numeric[c] for c in coords])
        mine = np.array([got[c] for c in coords])
        scale = gradient_scale(got, float(np.max(np.abs(got))))
        assert float(np.max(np.abs(mine - picked))) / scale < GRADIENT_RTOL

    # A train step moves batchnorm statistics exactly as the reference says. (Calling
    # the model class in training mode above moved them too, as Keras layers do.)
    if mode.updates:
        rt.set_weights(weights)
        rt.train_step(xs[0], y, 0.1)
        after = rt.get_weights()
        for name, value in mode.updates.items():
            assert deviation(after[name], value) < OUTPUT_RTOL, name


@pytest.fixture
def eager(tf: Any) -> Any:
    """Run tf.functions eagerly for one test: no tracing, several times faster for
    these one-shot checks. The compiled graphs of every op are checked by the
    equivalence matrix (tests/equivalence), and of every example in
    test_examples.py."""
    tf.config.run_functions_eagerly(True)
    yield
    tf.config.run_functions_eagerly(False)


@pytest.mark.parametrize("op", sorted(OPS))
def test_registry_op(op: str, runtimes: Any, eager: Any) -> None:
    """Every op in nnc.ir.ops.OPS, from its own `example`: a new op without a TensorFlow
    lowering (or without an example) fails here."""
    check_against_reference(op_source(op), runtimes, f"op-{op}")


# Corners of each family: layouts, padding, strides, dilation, groups, windows, axes.
CASES = {
    "conv2d_same_asymmetric": "input x: [2, 8, 8]\n    conv2d(3, 3, stride = 2, padding = same)",
    "conv2d_same_even_kernel": "input x: [2, 5, 5]\n    conv2d(2, 4, padding = same)",
    "conv2d_explicit_pads": "input x: [2, 5, 6]\n    conv2d(2, 3, padding = [1, 0, 2, 1])",
    "conv2d_dilation_stride": "input x: [2, 9, 9]\n    conv2d(2, 3, stride = 2, dilation = 2)",
    "conv2d_groups": "input x: [4, 5, 5]\n    conv2d(6, 3, groups = 2, bias = false)",
    "conv1d_stride_dilation": (
        "input x: [3, 11]\n    conv1d(2, 3, stride = 2, dilation = 2, padding = same)"
    ),
    "conv1d_symbolic_length": "input x: [2, t]\n    conv1d(3, 3, padding = same) relu",
    "conv_transpose_valid": "input x: [2, 3, 3]\n    conv2d_transpose(3, 3, stride = 2)",
    "conv_transpose_crop": (
        "input x: [2, 4, 3]\n    conv2d_transpose(2, 3, stride = 2, padding = [1, 0, 0, 2])"
    ),
    "conv_transpose_output_padding": (
        "input x: [2, 3, 3]\n"
        "    conv2d_transpose(2, 3, stride = 2, padding = 1, output_padding = 1)"
    ),
    "conv_transpose_same_even": (
        "input x: [2, 3, 3]\n    conv2d_transpose(2, 4, stride = 2, padding = same)"
    ),
    # Padding must never win a max, even when every real value is negative.
    "maxpool_same_negative": (
        "input x: [2, 5, 5]\n    log_softmax(axis = 0) maxpool(2, padding = same)"
    ),
    "maxpool_1d": "input x: [2, 7]\n    maxpool(3, stride = 2, padding = same)",
    "avgpool_1d_same": "input x: [2, 7]\n    avgpool(2, padding = same)",
    "sumpool_2d_same": "input x: [2, 5, 5]\n    sumpool(2, padding = same)",
    "avgpool_stride": "input x: [2, 7, 7]\n    avgpool(3, stride = 2)",
    "global_avg_pool_1d": "input x: [3, 6]\n    global_avg_pool",
    "lrn_even_size": "input x: [5, 3, 3]\n    lrn(4, alpha = 0.5, beta = 0.6, bias = 2.0)",
    "lrn_1d": "input x: [6, 4]\n    lrn(5, alpha = 1.0)",
    "softmax_channels_of_conv": "input x: [2, 4, 4]\n    conv2d(3, 1) softmax(axis = 0)",
    "log_softmax_height_of_conv": "input x: [2, 4, 4]\n    conv2d(3, 1) log_softmax(axis = 1)",
    "concat_channels_of_conv": (
        "input x: [2, 4, 4]\n    y = x |> conv2d(3, 3, padding = same)\n"
        "    output concat(y, x, axis = 0)"
    ),
    "concat_width_of_conv": (
        "input x: [2, 4, 4]\n    y = x |> conv2d(2, 3, padding = same)\n"
        "    output concat(y, x, axis = 2)"
    ),
    "add_conv_and_input": (
        "input x: [2, 4, 4]\n    y = x |> conv2d(2, 3, padding = same)\n    output x + y"
    ),
    "batchnorm_vector": "input x: [5]\n    dense(4) batchnorm(momentum = 0.3, eps = 0.01)",
    "batchnorm_1d": "input x: [3, 6]\n    conv1d(2, 3) batchnorm",
    "prelu_of_conv": "input x: [2, 4, 4]\n    conv2d(3, 3) prelu",
    "layernorm_of_conv_width": "input x: [2, 4, 5]\n    conv2d(3, 1) layernorm",
    "reshape_after_conv": "input x: [2, 4, 4]\n    conv2d(3, 3) reshape([6, -1])",
    "flatten_after_conv1d": "input x: [2, 6]\n    conv1d(3, 3) flatten dense(2)",
    "dense_on_sequence": "input x: [t, 3]\n    dense(4) tanh",
    "rnn_last_state": "input x: [t, 2]\n    rnn(3)",
    "lstm_sequences": "input x: [t, 2]\n    lstm(3, return_sequences = true)",
    "gru_last_state": "input x: [t, 2]\n    gru(3)",
    "embedding_lstm": "input ids: int64[t]\n    embedding(4, 3) lstm(2)",
    "elu_alpha": "input x: [6]\n    elu(0.5)",
    "leaky_relu_alpha": "input x: [6]\n    leaky_relu(0.2)",
    "frozen_dense": "input x: [4]\n    dense(3, trainable = false) tanh dense(2)",
    # oneDNN computed these wrongly (one input channel, a larger stride across than
    # down; the differential fuzzer found the first): the Conv layer transposes them.
    "one_channel_wide_stride_same": (
        "input x: [1, 2, 1]\n    conv2d(2, 2, stride = [1, 2], padding = same)"
    ),
    "one_channel_wide_stride_valid": "input x: [1, 2, 5]\n    conv2d(3, [1, 3], stride = [1, 3])",
    "one_channel_wide_stride_pads": (
        "input x: [1, 3, 2]\n    conv2d(2, 3, stride = [1, 2], padding = 1) relu"
    ),
    **SPATIAL_CASES,
    # The same with one input channel per group (soak seed 3885297172 of --seed 20).
    "grouped_one_channel_wide_stride_same": (
        "input x: [2, 3, 2]\n    conv2d(4, 3, stride = [1, 2], padding = same, groups = 2)"
    ),
    "depthwise_wide_stride_valid": (
        "input x: [4, 2, 5]\n    conv2d(4, [1, 3], stride = [1, 3], groups = 4)"
    ),
    # Depthwise convolutions run as one tf.nn.depthwise_conv2d (the DepthwiseConv layer).
    "depthwise_multiplier_stride_same": (
        "input x: [3, 7, 7]\n    conv2d(6, 3, stride = 2, padding = same, groups = 3)"
    ),
    "depthwise_pads_no_bias": (
        "input x: [4, 5, 6]\n"
        "    conv2d(4, [3, 2], padding = [1, 0, 2, 1], groups = 4, bias = false)"
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_case(case: str, runtimes: Any, eager: Any) -> None:
    check_against_reference(
        f"model T {{\n    {CASES[case]}\n}}\n" + RECIPE, runtimes, f"case-{case}"
    )


@pytest.mark.parametrize("t", [3, 8])
def test_recurrent_lengths(t: int, runtimes: Any) -> None:
    """Symbolic sequence length: one runtime, one compiled graph, several lengths."""
    source = (
        "model T {\n    input x: [t, 2]\n    gru(3, return_sequences = true) lstm(2)\n}\n" + RECIPE
    )
    check_against_reference(source, runtimes, "recurrent-lengths", t=t)
