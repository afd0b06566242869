"""The 3-D ops, pooling with explicit pads, dilation and ceil mode, instancenorm and
groupnorm: shape rules and parameter counts worked out by hand, errors with their
line and column, counts against torch's own layers, ``nnc fmt`` round trips and the
builder making what the parser makes."""

from __future__ import annotations

import itertools

import pytest

import nnc
from nnc.errors import ArgumentError, NncError, ShapeError
from nnc.ir.shapes import ceil_mode_extra
from tests.backends.spatial_cases import SPATIAL_CASES
from tests.conftest import require


def parse(body: str) -> nnc.Program:
    return nnc.parse(f"model M {{\n    {body}\n}}\n", "t.nn")


def out_shape(body: str) -> tuple[object, ...]:
    return parse(body).models["M"].output_types[0].shape


# (body, output shape, parameter count), by hand from docs/semantics.md
STATIC = {
    # [F, C/groups, kd, kh, kw] + bias [F]
    "conv3d_valid": ("input x: [2, 4, 5, 6]  conv3d(3, 3)", (3, 2, 3, 4), 3 * 2 * 27 + 3),
    # same: out = ceil(in / stride) = (2, 3, 3)
    "conv3d_same_stride": (
        "input x: [2, 4, 5, 6]  conv3d(3, [3, 2, 3], stride = 2, padding = same)",
        (3, 2, 3, 3),
        3 * 2 * 18 + 3,
    ),
    # (4 + 1 + 0 - 2*1 - 1) + 1 = 3, (5 + 0 + 2 - 3) + 1 = 5, (6 - 1*2 - 1)/1 + 1 = 4
    "conv3d_pads_dilation_groups": (
        "input x: [4, 4, 5, 6]  conv3d(6, [2, 3, 2], dilation = [2, 1, 2], groups = 2, "
        "padding = [1, 0, 0, 0, 2, 0], bias = false)",
        (6, 3, 5, 4),
        6 * 2 * 12,
    ),
    "conv3d_depthwise": ("input x: [3, 4, 4, 4]  conv3d(3, 3, groups = 3)", (3, 2, 2, 2), 84),
    "maxpool3d": ("input x: [2, 4, 6, 7]  maxpool3d(2)", (2, 2, 3, 3), 0),
    # ceil: (7 - 2) / 2 -> 2.5 -> 3 windows, the last starting at 6 < 7
    "maxpool3d_ceil": ("input x: [2, 4, 6, 7]  maxpool3d(2, ceil_mode = true)", (2, 2, 3, 4), 0),
    # pads (begin, end): D (1, 0), H (0, 1), W (0, 1); out = in + pads - 2 + 1
    "avgpool3d_pads": (
        "input x: [2, 3, 4, 5]  avgpool3d(2, stride = 1, padding = [1, 0, 0, 0, 1, 1])",
        (2, 3, 4, 5),
        0,
    ),
    # dilation 2: the window spans 3; (7 + 1 + 0 - 3) // 2 + 1 = 3 and (8 + 1 + 1 - 3)//2 + 1 = 4
    "maxpool_dilation_pads": (
        "input x: [2, 7, 8]  maxpool(2, stride = 2, dilation = 2, padding = [1, 1, 0, 1])",
        (2, 3, 4),
        0,
    ),
    "avgpool_1d_ceil": ("input x: [2, 8]  avgpool(3, stride = 2, ceil_mode = true)", (2, 4), 0),
    "sumpool_1d_asymmetric": ("input x: [2, 8]  sumpool(3, padding = [2, 0])", (2, 3), 0),
    "global_avg_pool_3d": ("input x: [3, 2, 4, 5]  global_avg_pool", (3,), 0),
    "batchnorm_3d": ("input x: [3, 2, 4, 4]  batchnorm", (3, 2, 4, 4), 2 * 3),
    "instancenorm_3d": ("input x: [3, 2, 4, 4]  instancenorm", (3, 2, 4, 4), 2 * 3),
    "groupnorm_3d": ("input x: [6, 2, 4, 4]  groupnorm(3)", (6, 2, 4, 4), 2 * 6),
    "groupnorm_vector": ("input x: [6]  groupnorm(2, eps = 0.01)", (6,), 2 * 6),
}


@pytest.mark.parametrize("name", list(STATIC))
def test_static_shape_and_params(name: str) -> None:
    body, shape, count = STATIC[name]
    assert out_shape(body) == shape
    assert nnc.count_params(parse(body), "M") == count


def test_ceil_mode_extra_by_hand() -> None:
    assert ceil_mode_extra(5, kernel=2, stride=2) == 1
    assert ceil_mode_extra(6, kernel=2, stride=2) == 0
    # the third window would start at 6, in the end pad: dropped, no extra pad
    assert ceil_mode_extra(5, kernel=3, stride=3, pads=(1, 1)) == 0
    assert ceil_mode_extra(8, kernel=2, stride=2, dilation=2) == 1


def test_ceil_mode_sizes_match_torch() -> None:
    """torch states the rule nnc follows (a window must start inside the input or the
    begin padding); its pooling sizes agree with nnc's on a sweep."""
    require("torch")
    import torch

    for n, k, s, p, d in itertools.product(range(3, 10), (1, 2, 3), (1, 2, 3), (0, 1), (1, 2)):
        if p > k // 2 or (k - 1) * d + 1 > n + 2 * p:
            continue
        want = torch.nn.functional.max_pool1d(
            torch.zeros(1, 1, n), k, s, padding=p, dilation=d, ceil_mode=True
        ).shape[-1]
        body = f"input x: [1, {n}]  maxpool({k}, stride = {s}, padding = {p}, "
        body += f"dilation = {d}, ceil_mode = true)"
        assert out_shape(body) == (1, want), body


# name: (body, error class, message fragment, hint fragment or None); every error is at
# the layer's call, line 3 column 5
ERRORS = {
    "conv3d_rank": (
        "input x: [2, 5, 5]\n    conv3d(3, 3)",
        ShapeError,
        "conv3d: expects a rank-4 input [channels, depth, height, width]. Received: [2, 5, 5]",
        None,
    ),
    "conv3d_kernel_length": (
        "input x: [2, 4, 5, 5]\n    conv3d(3, [3, 3])",
        ArgumentError,
        "'kernel' needs 3 value(s), got (3, 3)",
        None,
    ),
    "conv3d_padding_length": (
        "input x: [2, 4, 5, 5]\n    conv3d(3, 3, padding = [1, 1, 1, 1])",
        ArgumentError,
        "explicit 'padding' needs 3 or 6 non-negative ints, got [1, 1, 1, 1]",
        None,
    ),
    "conv3d_groups": (
        "input x: [5, 2, 2, 2]\n    conv3d(4, 1, groups = 2)",
        ShapeError,
        "input channels 5 are not divisible by groups=2",
        None,
    ),
    "maxpool_on_a_volume": (
        "input x: [2, 4, 5, 5]\n    maxpool(2)",
        ShapeError,
        "maxpool: expects [channels, length] or [channels, height, width]. Received: [2, 4, 5, 5]",
        "use maxpool3d",
    ),
    "maxpool3d_on_an_image": (
        "input x: [2, 5, 5]\n    maxpool3d(2)",
        ShapeError,
        "maxpool3d: expects [channels, depth, height, width]. Received: [2, 5, 5]",
        "use maxpool to pool over 1 or 2 spatial dims",
    ),
    "pool_pad_as_large_as_the_window": (
        "input x: [2, 6, 6]\n    maxpool(2, padding = [2, 0])",
        ShapeError,
        "maxpool: a pad must be smaller than the window (2), so that no window lies wholly "
        "in the padding. Received: padding = [2, 0, 2, 0]",
        None,
    ),
    "pool_padding_length": (
        "input x: [2, 6, 6]\n    avgpool(2, padding = [1, 0, 0])",
        ShapeError,
        "avgpool: explicit 'padding' needs 1, 2 or 4 values for 2 spatial dim(s)",
        None,
    ),
    "pool_dilation_length": (
        "input x: [2, 4, 6, 6]\n    avgpool3d(2, dilation = [1, 2])",
        ShapeError,
        "avgpool3d: 'dilation' has 2 values for 3 spatial dims",
        None,
    ),
    "ceil_mode_symbolic": (
        "input x: [2, t]\n    maxpool(2, ceil_mode = true)",
        ShapeError,
        "maxpool: 'ceil_mode' needs a static size. Received: symbolic dim t",
        None,
    ),
    "dilated_window_too_large": (
        "input x: [2, 3, 5, 5]\n    maxpool3d(2, dilation = [3, 1, 1])",
        ShapeError,
        "maxpool3d: window of size 4 does not fit input of size 3",
        None,
    ),
    "groupnorm_groups": (
        "input x: [6, 3, 3]\n    groupnorm(4)",
        ShapeError,
        "groupnorm: 6 channels are not divisible by groups=4",
        None,
    ),
    "instancenorm_rank": (
        "input x: [6]\n    instancenorm",
        ShapeError,
        "instancenorm: expects a rank-2 or 3 or 4 input (batch dim excluded). Received: [6]",
        None,
    ),
}


@pytest.mark.parametrize("name", list(ERRORS))
def test_error(name: str) -> None:
    body, cls, fragment, hint = ERRORS[name]
    with pytest.raises(NncError) as info:
        parse(body)
    err = info.value
    assert type(err) is cls, err.render()
    assert fragment in err.message, err.message
    assert err.span is not None and (err.span.line, err.span.col) == (3, 5), err.render()
    assert err.render().startswith("t.nn:3:5: error: ")
    if hint is not None:
        assert err.hint is not None and hint in err.hint


def test_parameter_counts_match_torch() -> None:
    require("torch")
    from torch import nn

    cases = {
        "input x: [4, 5, 6, 6]  conv3d(6, [2, 3, 3], groups = 2)": nn.Conv3d(
            4, 6, (2, 3, 3), groups=2
        ),
        "input x: [3, 4, 4, 4]  conv3d(3, 3, groups = 3, bias = false)": nn.Conv3d(
            3, 3, 3, groups=3, bias=False
        ),
        "input x: [6, 2, 3, 3]  groupnorm(3)": nn.GroupNorm(3, 6),
        "input x: [3, 2, 3, 3]  instancenorm": nn.InstanceNorm3d(3, affine=True),
        "input x: [3, 5]  instancenorm": nn.InstanceNorm1d(3, affine=True),
        "input x: [3, 2, 3, 3]  batchnorm": nn.BatchNorm3d(3),
    }
    for body, module in cases.items():
        program = parse(body)
        model = program.models["M"]
        (node,) = model.nodes
        shapes = {s.name: s.shape for s in node.param_specs([model.inputs[0].type]) if not s.buffer}
        torch_shapes = {k: tuple(v.shape) for k, v in module.named_parameters()}
        assert shapes == torch_shapes, body
        assert nnc.count_params(program, "M") == sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize("case", sorted(SPATIAL_CASES))
def test_fmt_round_trip(case: str) -> None:
    program = nnc.parse("model M {\n " + SPATIAL_CASES[case] + "\n}\n")
    text = nnc.format(program)
    assert nnc.parse(text) == program
    assert nnc.format(nnc.parse(text)) == text


def test_fmt_writes_pool_options_shortest() -> None:
    program = parse("input x: [2, 6, 7]  maxpool(3, stride = 2, padding = [1, 1, 1, 1], "
                    "dilation = [2, 2], ceil_mode = true)")  # fmt: skip
    assert "maxpool(3, 2, padding = 1, dilation = 2, ceil_mode = true)" in nnc.format(program)


def test_builder_matches_parser() -> None:
    b = nnc.Builder("Volume")
    x = b.input("x", [2, 6, 8, 8])
    h = b.conv3d(x, 4, kernel=3, padding="same", groups=2, activation="relu")
    h = b.groupnorm(h, 2)
    h = b.maxpool3d(h, 2, ceil_mode=True)
    h = b.instancenorm(h, eps=0.001)
    h = b.avgpool3d(h, [1, 2, 2], padding=[0, 1, 0, 0, 0, 1])
    b.output(b.dense(b.flatten(h), 2))
    parsed = nnc.parse(
        "model Volume {\n"
        "    input x: [2, 6, 8, 8]\n"
        "    conv3d(4, 3, padding = same, groups = 2) relu\n"
        "    groupnorm(2)\n"
        "    maxpool3d(2, ceil_mode = true)\n"
        "    instancenorm(eps = 0.001)\n"
        "    avgpool3d([1, 2, 2], padding = [0, 1, 0, 0, 0, 1])\n"
        "    flatten\n"
        "    dense(2)\n"
        "}\n"
    )
    assert b.build() == parsed
