"""Bugs the differential fuzzer found, each reduced to a small program: the fix is in
the backend concerned, and these keep it fixed."""

from __future__ import annotations

import numpy as np
import pytest

import nnc
from nnc.backends import get_backend
from nnc.verify import verify
from tests.equivalence.matrix import explain, need


def test_prelu_at_exactly_zero_has_slope_alpha_on_tensorflow() -> None:
    # The padded positions of the conv hold its bias, 0 at first: prelu sits on its
    # kink. TensorFlow wrote prelu as max(x, 0) + alpha * min(x, 0), whose gradient
    # at 0 is 1 + alpha (TensorFlow sends the gradient of both max and min to x).
    need("tensorflow")
    program = nnc.parse("model M {\n input x: [3, 4]\n conv1d(2, 1, padding = 1)\n prelu\n}")
    report = verify(program, backends=["tensorflow"], steps=2)
    assert report.equivalent, explain(report)
    row = report.rows[0]
    assert row.gradients is not None and row.gradients.max_rel < 1e-5


@pytest.mark.parametrize("activation", ["elu", "elu(0.5)", "selu"])
def test_exponential_units_keep_their_digits_near_zero_on_tensorflow(activation: str) -> None:
    # tf.nn.elu and tf.nn.selu compute exp(x) - 1: elu(-1e-8) came out as 0.
    need("tensorflow")
    program = nnc.parse(f"model M {{\n input x: [6]\n {activation}\n}}")
    runtime = get_backend("tensorflow").build(program)
    x = -np.logspace(-9, -1, 6, dtype=np.float32)[None, :]
    alpha = 0.5 if "0.5" in activation else 1.0
    scale = 1.0
    if activation == "selu":
        alpha, scale = 1.6732632423543772, 1.0507009873554805
    exact = scale * alpha * np.expm1(x.astype(np.float64))
    relative = np.abs(runtime.forward(x) - exact) / np.abs(exact)
    assert relative.max() < 1e-6, relative


def test_numpy_dropout_gradient_adds_to_a_skip_connection() -> None:
    # The generated backward pass wrote `d_v = d_v + d_y if mask is None else d_y *
    # mask`, which Python reads as `(d_v + d_y) if ... else d_y * mask`: in training,
    # the gradient reaching v through the skip connection was dropped.
    from tests.backends.numpy.gradcheck import check, random_inputs, runtime_for

    source = (
        "model M {\n input x: [4]\n v = x |> dense(4)\n y = v |> dropout(0.5)\n output y + v\n}"
    )
    runtime = runtime_for(source)
    errors = check(runtime, random_inputs(nnc.parse(source).model()), training=True)
    assert max(errors.values()) < 1e-6, errors


def test_drift_of_a_quiet_element_moves_the_loss_within_its_margin() -> None:
    # Soak finding (seed 2893832251): the mae gradient of an embedding row cancels
    # exactly in float64; torch and TensorFlow get 2^-31 of noise there, and adagrad
    # with a zero accumulator makes it a 0.82 lr step. Their losses were 1.9e-3 from
    # the reference (and 2.2e-7 from each other): the loss had no allowance for the
    # drift the quiet weight is allowed.
    need("torch")
    need("tensorflow")
    program = nnc.parse(
        "model Fuzz {\n input x: int64[t]\n v1 = x |> embedding(3, 4)\n output v1 |> elu(0.7)\n}\n"
        'train Fuzz {\n data "unused.npz"\n loss mae\n'
        " optimizer adagrad(lr = 0.05, initial_accumulator = 0)\n}\n"
    )
    report = verify(program, steps=6)
    assert report.equivalent, explain(report)
    margins = report.noise.loss_margins
    assert margins[0] == 0.0 and 0.0 < margins[-1] < 0.1, margins  # no drift before step 1
    for row in report.rows:
        if row.training is not None:
            assert row.training.max_rel < 1e-6, explain(report)


# Soak findings (seeds 3048946468 and 3003011010 of `fuzz_equivalence.py --seed 13`):
# a bias reaching a batchnorm through a softplus gets a gradient the normalisation
# nearly cancels. TensorFlow's float32 result there was 4 to 25 times as far from
# float64 as NumPy's, step by step (its forward pass and every other gradient agree
# to 1e-7), beyond the 10-fold float32 slack the harness allowed then; it allows 30.
NEARLY_CANCELLED_BIAS = {
    "conv_softplus_batchnorm_lrn": """
model Part1 {
    input a: [3, 6, 6]
    v1 = a |> batchnorm(momentum = 0.9)
    output v1
}

model Fuzz {
    input x: [1, 5, 5]
    v1 = x |> conv2d(1, [1, 1], padding = same, init = he_normal)
    v2 = v1 |> conv2d(3, [3, 2], stride = 1, padding = [1, 2, 2, 0]) |> softplus
    v3 = v2 |> Part1
    v4 = v3 |> lrn(5, alpha = 0.1, beta = 1.0)
    v5 = v4 |> flatten
    v6 = v5 |> dense(5)
    output v6
}

train Fuzz {
    data      "unused.npz"
    loss      mae
    optimizer adagrad(lr = 0.01, initial_accumulator = 0.1)
    l2        0.01
}
""",
    "conv_transpose_softplus_lrn_batchnorm": """
model Fuzz {
    input x: [1, 4, 6]
    v1 = x |> conv2d_transpose(3, 1, stride = 2, padding = 1, init = he_normal) |> softplus
    v2 = v1 |> lrn(4, alpha = 1.0, beta = 0.75) |> elu(0.7)
    v3 = v2 |> batchnorm(momentum = 0.05)
    v4 = v3 |> flatten
    v5 = v4 |> dense(3)
    v6 = v5 |> sigmoid
    output v6
}

train Fuzz {
    data      "unused.npz"
    loss      binary_cross_entropy
    optimizer rmsprop(lr = 0.001, rho = 0.5)
    l2        0.001
}
""",
}


@pytest.mark.parametrize("case", sorted(NEARLY_CANCELLED_BIAS))
def test_nearly_cancelled_bias_gradient_is_within_its_float32_allowance(case: str) -> None:
    need("torch")
    need("tensorflow")
    report = verify(nnc.parse(NEARLY_CANCELLED_BIAS[case]), steps=6)
    assert report.equivalent, explain(report)
    assert any("ill-conditioned" in note for note in report.notes), report.notes


@pytest.mark.parametrize(
    "conv",
    [
        "input x: [2, 3, 2]\n conv2d(4, 3, stride = [1, 2], padding = same, groups = 2)",
        "input x: [4, 2, 5]\n conv2d(4, [1, 3], stride = [1, 3], groups = 4)",
        "input x: [6, 3, 4]\n conv2d(3, [2, 3], stride = [1, 2], padding = [1, 0], groups = 3)",
    ],
)
def test_grouped_conv_of_one_channel_per_group_with_a_wide_stride_on_tensorflow(
    conv: str,
) -> None:
    # Soak finding (seed 3885297172 of `fuzz_equivalence.py --seed 20`): oneDNN's wrong
    # results for one input channel and a larger stride across than down (the Conv
    # layer's swap) also hit each group of a grouped conv with one channel per group:
    # TensorFlow's forward was 1.66 (relative) from the reference, the others 1e-7.
    need("tensorflow")
    report = verify(nnc.parse(f"model M {{\n {conv}\n}}"), backends=["tensorflow"], steps=2)
    assert report.equivalent, explain(report)
    row = report.rows[0]
    assert row.forward.max_rel < 1e-6 and row.gradients is not None, explain(report)
    assert row.gradients.max_rel < 1e-5, explain(report)


# -- findings of the soak once the generator drew the 3-D ops, the new norms and attention


def test_torch_avgpool3d_of_a_window_wider_than_its_input() -> None:
    # torch's avg_pool3d refuses an input narrower than the window before padding it
    # ("input image (T: 2 H: 2 W: 2) smaller than kernel size (kT: 3 ...)"); avg_pool2d
    # pads first. The lowering uses the WindowPool helper then.
    need("torch")
    for pool in ("avgpool3d(3, padding = 1)", "avgpool3d([3, 2, 2], padding = [1, 0, 0, 1, 0, 0])"):
        program = nnc.parse(f"model M {{\n input x: [2, 2, 2, 3]\n {pool}\n}}")
        report = verify(program, backends=["torch"], steps=2)
        assert report.equivalent, explain(report)
        assert report.rows[0].forward.max_rel < 1e-6, explain(report)


@pytest.mark.parametrize(
    ("pool", "taps"),
    [
        ("input x: [1, 1, 1]\n avgpool(2, dilation = 3, padding = 2)", "[-2, 1]"),
        ("input x: [1, 1]\n maxpool(2, dilation = 3, padding = [2, 2])", "[-2, 1]"),
        ("input x: [2, 1, 3, 3]\n maxpool3d(2, dilation = 3, padding = 2)", "[-2, 1]"),
    ],
)
def test_a_dilated_window_reading_only_padding_is_a_shape_error(pool: str, taps: str) -> None:
    # Each pad is smaller than the window's span (3 + 1), yet the two taps of the first
    # window straddle the one real position: a max of nothing (-inf), a mean of nothing
    # (0 / 0). nnc check refuses it at the pool's line and column.
    from nnc.errors import ShapeError

    with pytest.raises(ShapeError) as caught:
        nnc.parse(f"model M {{\n {pool}\n}}", "m.nn")
    message = str(caught.value)
    assert message.startswith("m.nn:3:2: "), message
    assert f"window 0 of spatial dim 0 reads only padding (taps at {taps}" in message


@pytest.mark.parametrize(
    "pool",
    ["maxpool([2, 2], stride = [2, 2])", "avgpool([3, 3], stride = [1, 1], dilation = [2, 2])"],
)
def test_a_pool_stores_an_equal_list_as_one_value_so_fmt_round_trips(pool: str) -> None:
    # `nnc fmt` writes size = [2, 2] as 2, which read back as a different node (size (2,)
    # against (2, 2)): the formatted program was not the same IR.
    program = nnc.parse(f"model M {{\n input x: [2, 7, 7]\n {pool}\n}}")
    node = program.model().nodes[-1]
    assert len(node.size) == 1 and len(node.stride) == 1, node
    assert nnc.parse(nnc.format(program)) == program


def test_locating_a_deviation_skips_param_nodes() -> None:
    # locate.py cut the model after every node, a `param` too: a model whose output is
    # a param alone, which nnc check refuses ("does not depend on any input"), so the
    # diagnosis of a mismatching program with a param crashed instead of naming a layer.
    from nnc.verify.harness import make_case
    from nnc.verify.locate import first_deviating_backward, first_deviating_layer
    from nnc.verify.tolerance import Tolerance

    program = nnc.parse(
        "model M {\n input x: [3, 4]\n w = param([4, 2])\n c = constant([1.0, 2.0]) * 2\n"
        " y = x @ w + c\n output y |> tanh\n}\n"
        'train M {\n data "unused.npz"\n loss mse\n optimizer sgd(lr = 0.1)\n}\n'
    )
    case = make_case(program, "M", steps=1)
    strict = Tolerance(reduction=1, forward=-1.0, gradient=-1.0, training=-1.0)  # all deviate
    assert first_deviating_layer("numpy", case, strict).startswith("matmul")
    assert first_deviating_backward("numpy", case, strict).startswith("matmul")


@pytest.mark.parametrize(
    "pool",
    [
        "input x: [2, 5, 5]\n avgpool([1, 3], stride = 2, padding = [0, 1, 0, 1])",
        "input x: [2, 5, 5]\n maxpool(1, stride = 2, ceil_mode = true)",
        "input x: [2, 3, 4, 5]\n avgpool3d([1, 2, 1], stride = 3, padding = [0, 1, 0, 0, 0, 0])",
    ],
)
def test_tensorflow_pools_with_a_stride_wider_than_the_window(pool: str) -> None:
    # tf.nn.pool (the window_pool helper, for explicit pads and ceil mode) refuses
    # "`strides` > `window_shape` ... due to inconsistency between CPU and GPU
    # implementations"; nnc defines that pool (windows that skip elements), so the
    # helper pools at stride 1 and keeps every stride-th window, as for a dilation.
    need("tensorflow")
    report = verify(nnc.parse(f"model M {{\n {pool}\n}}"), backends=["tensorflow"], steps=2)
    assert report.equivalent, explain(report)
    assert report.rows[0].forward.max_rel < 1e-6, explain(report)


def test_onnx_causal_attention_to_keys_of_a_param() -> None:
    # Soak finding (seed 735737618 of `fuzz_equivalence.py --seed 3`): the key positions
    # were Range(0, Gather(Shape(k), 1), 1); with k a param (an initializer)
    # onnxruntime folded the length into a 1-element vector and refused to load the
    # model ("Input to 'Range' op should be scalars"). A static length is a constant.
    need("onnx")
    program = nnc.parse(
        "model M {\n input x: [3, 5]\n output attention(x, param([1, 4]), param([1, 4]),"
        " heads = 5, key_dim = 3, value_dim = 4, causal = true)\n}"
    )
    report = verify(program, backends=["onnx"], steps=2)
    assert report.equivalent, explain(report)
    assert report.rows[0].forward.max_rel < 1e-6, explain(report)


def test_onnx_dilated_sum_pool_over_symbolic_channels_is_a_backend_error() -> None:
    # Soak finding (seed 2870549473 of `fuzz_equivalence.py --seed 4`): sumpool(2,
    # dilation = 2) of x: [t, 3] before opset 19 built its depthwise kernel of ones with
    # t channels: a TypeError. It is refused as a symbolic spatial size is, naming the
    # op and the opset it needs; the fuzzer no longer pools a symbolic channel axis.
    from nnc.errors import BackendError

    program = nnc.parse(
        "model M {\n input x: [t, 3]\n sumpool(2, dilation = 2, padding = [1, 0])\n}"
    )
    with pytest.raises(BackendError, match=r"sumpool with a dilation over the symbolic size"):
        get_backend("onnx").emit(program, source="<m>")


@pytest.mark.parametrize(
    ("norm", "after"),
    [
        ("batchnorm", "max(axis = [-3, 2])"),  # soak seed 2582752678 (stop 35)
        ("batchnorm", "transpose([2, 1, 0])"),
        ("batchnorm", "depth_to_space(2)"),  # soak seed 661905556
        ("instancenorm", "transpose([2, 1, 0])"),
    ],
)
def test_torch_norms_over_a_size_one_axis_with_a_permuted_gradient(norm: str, after: str) -> None:
    # torch 2.13's CPU batch and instance norm (4-D and 5-D) read a gradient whose
    # strides also fit channels-last (a permute next to a size-1 axis, or a batch of
    # one) as channels-last: the bias gradient was off by 1.43 (relative). The
    # lowering hands them contiguous tensors both ways (the contiguous_norm helper).
    need("torch")
    source = (
        f"model M {{\n input x: [4, 3, 1]\n {norm}\n {after}\n flatten\n dense(2)\n}}\n"
        'train M {\n data "d.npz"\n loss mse\n optimizer sgd(lr = 0.1)\n}\n'
    )
    program = nnc.parse(source)
    rng = np.random.default_rng(0)
    for batch in (8, 1):
        x = rng.normal(size=(batch, 4, 3, 1)).astype(np.float32)
        y = rng.normal(size=(batch, 2)).astype(np.float32)
        numpy, torch = (nnc.runtime(program, backend=b) for b in ("numpy", "torch"))
        torch.set_weights(numpy.get_weights())
        expected, got = numpy.gradients(x, y), torch.gradients(x, y)
        for name, value in expected.items():
            scale = max(float(np.abs(value).max()), 1e-3)
            assert np.abs(got[name] - value).max() < 1e-5 * scale, (batch, name)


def test_tensorflow_attention_to_keys_of_a_param_trains_without_corrupting_memory() -> None:
    # Soak seed 3380525465 (stop 35) killed the process ("corrupted size vs. prev_size",
    # "free(): invalid pointer", SIGSEGV in 2 runs of 3): keys and values of a param have
    # batch 1, and the gradient of TF 2.21's broadcasting BatchMatMulV2 on oneDNN
    # corrupts memory for [N, h, t, d] @ [1, h, d, s]. The attention layer broadcasts
    # them to the queries' batch first. A crash here takes the test process down.
    need("tensorflow")
    program = nnc.parse(
        "model M {\n input x: [5, 4]\n output attention(x, param([2, 4]), heads = 1)\n}\n"
    )
    report = verify(program, backends=["tensorflow"], steps=4)
    assert report.equivalent, explain(report)
    assert report.rows[0].gradients is not None and report.rows[0].gradients.max_rel < 1e-5


@pytest.mark.parametrize("opset", [17, 20])
@pytest.mark.parametrize(
    "pool",
    [
        "maxpool(3, stride = 3, dilation = 2, padding = [1, 2, 1, 2], ceil_mode = true)",
        "maxpool(2, dilation = 2, padding = [0, 2, 1, 1])",
        "avgpool(3, stride = 2, dilation = 2, padding = 3)",
        "sumpool(2, dilation = 3, padding = [2, 2])",
    ],
)
def test_onnx_pools_with_a_pad_as_wide_as_the_kernel(pool: str, opset: int) -> None:
    # Soak seed 1500080449 (stop 35): nnc allows a pad up to a dilated window's span,
    # onnxruntime refuses any pad >= the kernel ("Pad should be smaller than kernel")
    # and could not load the model. The export pads explicitly first then (from
    # opset 19 the dilated average and sum pools are AveragePools too).
    need("onnx")
    import onnxruntime as ort

    program = nnc.parse(f"model M {{\n input x: [3, 4, 7]\n {pool}\n}}")
    model = get_backend("onnx").emit(program, source="<m>", opset=opset)
    session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).normal(size=(2, 3, 4, 7)).astype(np.float32)
    (got,) = session.run(None, {session.get_inputs()[0].name: x})
    expected = nnc.runtime(program, backend="numpy").forward(x)
    assert got.shape == expected.shape
    assert np.abs(got - expected).max() < 1e-6 * np.abs(expected).max()
