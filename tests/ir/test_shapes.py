"""Shape inference per op, with static and symbolic dims, and exact parameter counts.

Expected values are worked out by hand from the formulas in docs/semantics.md.
"""

from __future__ import annotations

import pytest

import nnc
from nnc.ir.ops import OPS
from nnc.ir.shapes import same_pads, transpose_output, window_output


def out_shape(body: str) -> tuple[object, ...]:
    program = nnc.parse(f"model M {{\n    {body}\n}}\n")
    return program.models["M"].output_types[0].shape


def params(body: str) -> int:
    return nnc.count_params(nnc.parse(f"model M {{\n    {body}\n}}\n"), "M")


# (body, expected output shape, expected parameter count)
STATIC = {
    "dense": ("input x: [6]  dense(4)", (4,), 6 * 4 + 4),
    "dense_no_bias": ("input x: [6]  dense(4, bias = false)", (4,), 24),
    "dense_sequence": ("input x: [5, 6]  dense(4)", (5, 4), 28),
    # weight [6, 4], visible bias [6], hidden bias [4]
    "rbm": ("input x: [6]  rbm(4)", (4,), 6 * 4 + 6 + 4),
    "embedding": ("input x: int64[7]  embedding(100, 8)", (7, 8), 800),
    "conv1d_valid": ("input x: [2, 10]  conv1d(3, 3)", (3, 8), 3 * 2 * 3 + 3),
    "conv1d_same_stride": (
        "input x: [2, 10]  conv1d(3, 3, stride = 2, padding = same)",
        (3, 5),
        21,
    ),
    "conv2d_valid": ("input x: [3, 8, 8]  conv2d(4, 3)", (4, 6, 6), 4 * 3 * 9 + 4),
    "conv2d_same": ("input x: [3, 8, 8]  conv2d(4, 3, padding = same)", (4, 8, 8), 112),
    "conv2d_same_stride2": (
        "input x: [3, 7, 7]  conv2d(4, 3, stride = 2, padding = same)",
        (4, 4, 4),
        112,
    ),
    "conv2d_explicit": ("input x: [3, 8, 8]  conv2d(4, 3, padding = [1, 2])", (4, 8, 10), 112),
    "conv2d_asymmetric": (
        "input x: [3, 8, 8]  conv2d(4, 3, padding = [0, 1, 2, 0])",
        (4, 8, 7),
        112,
    ),
    "conv2d_dilation": ("input x: [3, 9, 9]  conv2d(4, 3, dilation = 2)", (4, 5, 5), 112),
    "conv2d_groups": ("input x: [4, 8, 8]  conv2d(6, 3, groups = 2)", (6, 6, 6), 6 * 2 * 9 + 6),
    "conv2d_rect_kernel": ("input x: [1, 8, 8]  conv2d(2, [3, 1])", (2, 6, 8), 2 * 3 + 2),
    "conv2d_transpose_valid": (
        "input x: [3, 4, 4]  conv2d_transpose(2, 3, stride = 2)",
        (2, 9, 9),
        3 * 2 * 9 + 2,
    ),
    "conv2d_transpose_same": (
        "input x: [3, 4, 4]  conv2d_transpose(2, 3, stride = 2, padding = same)",
        (2, 8, 8),
        56,
    ),
    "conv2d_transpose_outpad": (
        "input x: [3, 4, 4]  conv2d_transpose(2, 3, stride = 2, padding = 1, output_padding = 1)",
        (2, 8, 8),
        56,
    ),
    "maxpool": ("input x: [2, 6, 6]  maxpool(2)", (2, 3, 3), 0),
    "maxpool_floor": ("input x: [2, 7, 7]  maxpool(2)", (2, 3, 3), 0),
    "maxpool_stride": ("input x: [2, 7, 7]  maxpool(3, stride = 2)", (2, 3, 3), 0),
    "avgpool_same": ("input x: [2, 5, 5]  avgpool(2, padding = same)", (2, 3, 3), 0),
    "sumpool_1d": ("input x: [2, 9]  sumpool(3, stride = 2)", (2, 4), 0),
    "global_avg_pool": ("input x: [3, 4, 5]  global_avg_pool", (3,), 0),
    "global_max_pool_3d": ("input x: [3, 2, 4, 5]  global_max_pool", (3,), 0),
    "mean_keepdims": ("input x: [3, 4, 5]  mean(axis = [0, -1], keepdims = true)", (1, 4, 1), 0),
    "sum_all": ("input x: [3, 4, 5]  sum", (), 0),
    "max_one_axis": ("input x: [3, 4, 5]  max(axis = 1)", (3, 5), 0),
    "min_negative_axis": ("input x: [3, 4, 5]  min(-2, true)", (3, 1, 5), 0),
    "matmul": ("input x: [2, 3, 4]\n    w = param([4, 5])\n    output x @ w", (2, 3, 5), 20),
    "param": ("input x: [3]\n    s = param([2, 3, 2])\n    output x @ s", (2, 2), 12),
    # q, k, v weights [8, 8] + biases [8], output [8, 8] + [8]: torch's 4·(E² + E)
    "attention": ("input x: [5, 8]  attention(2)", (5, 8), 4 * (64 + 8)),
    # key_dim 2, value_dim 3, 2 heads: q [4, 6], k [4, 3], v [6, 5], out [6, 6], no bias
    "attention_cross": (
        "input x: [4, 6]  input k: [7, 3]  input v: [7, 5]\n"
        "    output attention(x, k, v, heads = 2, key_dim = 2, value_dim = 3, bias = false)",
        (4, 6),
        24 + 12 + 30 + 36,
    ),
    # a [max_len, d] table; the sinusoidal encoding has no parameters
    "learned_positions": ("input x: [5, 8]  learned_positions(12)", (5, 8), 12 * 8),
    "sinusoidal_positions": ("input x: [5, 7]  sinusoidal_positions(base = 100)", (5, 7), 0),
    "resize": ("input x: [2, 3, 4]  resize([2, 3], mode = bilinear)", (2, 6, 12), 0),
    "resize_1d": ("input x: [2, 5]  resize(3)", (2, 15), 0),
    "depth_to_space": ("input x: [12, 2, 3]  depth_to_space(2)", (3, 4, 6), 0),
    "space_to_depth": ("input x: [3, 4, 6]  space_to_depth(2)", (12, 2, 3), 0),
    "flatten": ("input x: [2, 3, 4]  flatten", (24,), 0),
    "reshape": ("input x: [12]  reshape([3, -1])", (3, 4), 0),
    "dropout": ("input x: [6]  dropout(0.5)", (6,), 0),
    "batchnorm": ("input x: [3, 4, 4]  batchnorm", (3, 4, 4), 2 * 3),
    "layernorm": ("input x: [5, 7]  layernorm", (5, 7), 2 * 7),
    "lrn": ("input x: [4, 3, 3]  lrn(3)", (4, 3, 3), 0),
    "rnn": ("input x: [5, 3]  rnn(4)", (4,), 4 * 3 + 4 * 4 + 4),
    "rnn_sequences": ("input x: [5, 3]  rnn(4, return_sequences = true)", (5, 4), 32),
    "lstm": ("input x: [5, 3]  lstm(4)", (4,), 4 * (4 * 3 + 4 * 4 + 4)),
    "gru": (
        "input x: [5, 3]  gru(4, return_sequences = true)",
        (5, 4),
        3 * (4 * 3 + 4 * 4 + 2 * 4),
    ),
    "prelu": ("input x: [3, 5]  prelu", (3, 5), 3),
    "softmax_axis": ("input x: [3, 5]  softmax(0)", (3, 5), 0),
    "concat": (
        "input x: [2, 3]\n    y = x |> conv1d(4, 1)\n    output concat(x, y)",
        (6, 3),
        4 * 2 + 4,
    ),
    "concat_axis1": ("input x: [2, 3]\n    output concat(x, x, axis = 1)", (2, 6), 0),
    "add": ("input x: [4]\n    y = x |> dense(4)\n    output x + y", (4,), 20),
    "transpose": ("input x: [2, 3, 4]  transpose([2, 0, 1])", (4, 2, 3), 0),
    "transpose_default": ("input x: [2, 3, 4]  transpose", (4, 3, 2), 0),
    "squeeze": ("input x: [1, 3, 1, 4]  squeeze([-2])", (1, 3, 4), 0),
    "squeeze_all": ("input x: [1, 3, 1, 4]  squeeze", (3, 4), 0),
    "unsqueeze": ("input x: [3, 4]  unsqueeze([0, -1])", (1, 3, 4, 1), 0),
    # range(6)[-1:-7:-2] = [5, 3, 1]; range(4)[1:100] = [1, 2, 3]
    "slice": (
        "input x: [4, 6]  slice(axes = [1, 0], starts = [-1, 1], stops = [-7, 100], "
        "steps = [-2, 1])",
        (3, 3),
        0,
    ),
    "split": (
        "input x: [5, 3]\n    a, b = x |> split(axis = 0, sizes = [2, 3])\n    output b",
        (3, 3),
        0,
    ),
    "pad": ("input x: [2, 3]  pad([1, 0, 2, 3])", (5, 6), 0),
    "tile": ("input x: [2, 3]  tile([3, 1])", (6, 3), 0),
    "broadcast_to": ("input x: [3, 1]  broadcast_to([2, 3, 4])", (2, 3, 4), 0),
    # broadcasting: [3, 1] with [4] is [3, 4]; [2, 1, 5] with [3, 1] is [2, 3, 5]
    "add_broadcast": ("input x: [3, 1]\n    y = x |> dense(4)\n    output x + y", (3, 4), 8),
    "sub_broadcast": ("input x: [3, 1]\n    input y: [4]\n    output x - y", (3, 4), 0),
    "mul_rank": ("input x: [2, 1, 5]\n    input y: [3, 1]\n    output x * y", (2, 3, 5), 0),
    "div_scalar": ("input x: [2, 3]\n    output 1 / x", (2, 3), 0),
    "pow_scalar": ("input x: [2, 3]\n    output pow(x, 2)", (2, 3), 0),
    "maximum_rank0": ("input x: [2, 3]\n    s = x |> sum\n    output maximum(s, x)", (2, 3), 0),
    "minimum_same": ("input x: [1, 3]\n    input y: [2, 1]\n    output minimum(x, y)", (2, 3), 0),
    "constant": (
        "input x: [2]\n    c = constant([[1, 2], [3, 4], [5, 6]])\n    output x * c",
        (3, 2),
        0,
    ),
    "constant_scalar": ("input x: [2]\n    output x * constant(0.5)", (2,), 0),
    # more 3-D cases, pooling's pads, dilation and ceil mode: tests/ir/test_spatial3d.py
    "conv3d": ("input x: [2, 4, 5, 6]  conv3d(3, 3)", (3, 2, 3, 4), 3 * 2 * 27 + 3),
    "maxpool3d": ("input x: [2, 4, 6, 7]  maxpool3d(2, ceil_mode = true)", (2, 2, 3, 4), 0),
    "avgpool3d": ("input x: [2, 4, 6, 6]  avgpool3d(2, padding = same)", (2, 2, 3, 3), 0),
    "instancenorm": ("input x: [3, 4, 4]  instancenorm", (3, 4, 4), 2 * 3),
    "groupnorm": ("input x: [6, 4]  groupnorm(3)", (6, 4), 2 * 6),
}


@pytest.mark.parametrize("name", list(STATIC))
def test_static_shape_and_params(name: str) -> None:
    body, shape, count = STATIC[name]
    assert out_shape(body) == shape
    assert params(body) == count


# (body, expected output shape) with symbolic dims
SYMBOLIC = {
    "rnn_over_t": ("input x: [t, 3]  rnn(4, return_sequences = true)", ("t", 4)),
    "lstm_last": ("input x: [t, 3]  lstm(4)", (4,)),
    "dense_per_step": ("input x: [t, 3]  dense(2)", ("t", 2)),
    "learned_positions_over_t": ("input x: [t, 4]  learned_positions(9)", ("t", 4)),
    "conv1d_same_keeps_t": ("input x: [2, t]  conv1d(3, 5, padding = same)", (3, "t")),
    "conv1d_valid_shrinks": ("input x: [2, t]  conv1d(3, 5)", (3, "t-4")),
    "conv2d_strided_valid": (
        "input x: [1, h, w]  conv2d(2, 3, stride = 2)",
        (2, "floor((h-3)/2)+1", "floor((w-3)/2)+1"),
    ),
    "pool_then_global": ("input x: [2, h, w]  maxpool(2)  global_avg_pool", (2,)),
    "embedding_t": ("input x: int64[t]  embedding(10, 4)", ("t", 4)),
    "flatten_symbolic": ("input x: [2, t]  flatten", ("2*t",)),
    "transpose_symbolic": (
        "input x: [1, h, w]  conv2d_transpose(1, 2, stride = 2)",
        (1, "2*(h-1)+2", "2*(w-1)+2"),
    ),
    "concat_symbolic": ("input x: [t, 2]\n    output concat(x, x, axis = 0)", ("t+t", 2)),
    "transpose_t": ("input x: [t, 3]  transpose", (3, "t")),
    "pad_t": ("input x: [t, 3]  pad([2, 0, 1, 1])", ("t+3", 4)),
    "tile_t": ("input x: [t, 3]  tile([2, 1])", ("2*t", 3)),
    "slice_static_axis_of_t": (
        "input x: [t, 6]  slice(axes = [1], starts = [1], stops = [5])",
        ("t", 4),
    ),
}


@pytest.mark.parametrize("name", list(SYMBOLIC))
def test_symbolic_shape(name: str) -> None:
    body, shape = SYMBOLIC[name]
    assert out_shape(body) == shape


def test_every_registry_op_is_shape_tested() -> None:
    """A new op must come with a shape test here (Call is tested with models below)."""
    covered = {name.split("_")[0] for name in STATIC} | {"call"}
    tested_ops = set()
    for body, _, _ in STATIC.values():
        program = nnc.parse(f"model M {{\n    {body}\n}}\n")
        tested_ops |= {n.op for n in program.models["M"].nodes}
    activations = {n for n, c in OPS.items() if c.category == "activation"}
    missing = set(OPS) - tested_ops - activations - {"call"}
    assert not missing, f"ops without a shape test: {sorted(missing)} ({covered})"


@pytest.mark.parametrize("op", sorted(OPS))
def test_every_op_example_checks(op: str) -> None:
    """Each op's registry example (used by the gradient and equivalence tests) checks."""
    cls = OPS[op]
    if op == "call":
        return
    assert cls.example, f"{op} has no example"
    body = cls.example.format(op=op)
    program = nnc.parse(f"model T {{\n    {body}\n}}\n")
    assert any(n.op == op for n in program.models["T"].nodes)


def test_call_types_and_params() -> None:
    program = nnc.parse(
        """
        model Enc { input x: [t, 3]  lstm(4) }
        model Outer { input s: [9, 3]  e = Enc(s)  output e |> dense(2) }
        """
    )
    outer = program.models["Outer"]
    assert outer.node("e").type.shape == (4,)
    assert nnc.count_params(program, "Outer") == 4 * (4 * 3 + 4 * 4 + 4) + 4 * 2 + 2
    names = [p.name for p in nnc.model_params(program, "Outer")]
    assert names[:3] == ["e.lstm_1.weight_ih", "e.lstm_1.weight_hh", "e.lstm_1.bias"]


def test_multi_output_model_call() -> None:
    program = nnc.parse(
        """
        model Two { input x: [4]  a = x |> dense(2)  b = x |> dense(3)  output a, b }
        model User { input x: [4]  p, q = Two(x)  output concat(p, p), q }
        """
    )
    assert [t.shape for t in program.models["User"].output_types] == [(4,), (3,)]


def test_famous_parameter_counts() -> None:
    assert nnc.count_params(nnc.load("examples/mlp_4_5_5_3.nn"), "Mlp") == 73
    assert nnc.count_params(nnc.load("examples/lenet5.nn"), "LeNet5") == 61_706
    assert nnc.count_params(nnc.load("examples/xor.nn"), "Xor") == 2 * 5 + 5 + 5 + 1


def test_mlp_per_layer_counts() -> None:
    from nnc.ir.summary import summarize

    rows = summarize(nnc.load("examples/mlp_4_5_5_3.nn"), "Mlp").rows
    assert [r.params for r in rows if r.params] == [25, 30, 18]


def test_frozen_layers_count_as_non_trainable() -> None:
    program = nnc.parse("model M { input x: [4]  dense(3, trainable = false)  dense(2) }")
    assert nnc.count_params(program, "M") == 15 + 8
    assert nnc.count_params(program, "M", trainable_only=True) == 8


def test_shape_arithmetic() -> None:
    # TF SAME: out = ceil(8/2) = 4, total pad = (4-1)*2 + 3 - 8 = 1 -> (0, 1)
    assert same_pads(8, 3, 2) == (0, 1)
    assert same_pads(7, 3, 2) == (1, 1)
    assert same_pads(5, 4, 1) == (1, 2)
    assert window_output(8, 3, 2, (0, 1)) == 4
    assert window_output(10, 3, 1, (0, 0), dilation=2) == 6
    assert transpose_output(4, 3, 2, (0, 0), 0) == 9
    assert transpose_output(4, 4, 2, (1, 1), 0) == 8


@pytest.mark.parametrize(
    ("stage", "message", "column"),
    [
        ("mean(axis = [3])", "axis 3 is out of range for [3, 4, 5]", 5),
        ("sum(axis = [0, -3])", "axis -3 is named twice in [0, -3]", 5),
        ("max(axis = -4)", "the batch axis cannot be reduced", 5),
        ("global_max_pool", "at least one spatial axis", 5),
    ],
)
def test_bad_reduction_axes_are_errors_with_line_and_column(
    stage: str, message: str, column: int
) -> None:
    shape = "[3]" if stage == "global_max_pool" else "[3, 4, 5]"
    with pytest.raises(nnc.errors.ShapeError) as info:
        nnc.parse(f"model M {{\n    input x: {shape}\n    {stage}\n}}\n")
    assert message in str(info.value)
    assert f":3:{column}:" in str(info.value)
