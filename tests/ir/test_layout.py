"""The layout ops' shape errors (typed, with line:column and the shapes), split's
lowering to slices, the formatter round trip and builder == parser for every layout
op. Expected texts are written by hand from docs/semantics.md (Layout)."""

from __future__ import annotations

import pytest

import nnc
from nnc.dsl import format_program, format_source
from nnc.errors import GraphError, NncError, ShapeError


def _parse(body: str) -> nnc.Program:
    return nnc.parse(f"model M {{\n    {body}\n}}\n", "layout.nn")


# (statement after `input x: [...]` on line 2, error type, "line:col: message")
ERRORS = {
    "transpose length": (
        "[2, 3, 4]",
        "transpose([1, 0])",
        ShapeError,
        "3:5: transpose: perm [1, 0] has 2 entries for the 3 per-sample axes of [2, 3, 4]",
    ),
    "transpose names the batch": (
        "[2, 3]",
        "y = x |> transpose([2, 0])",
        ShapeError,
        "3:14: transpose: axis 2 is out of range for [2, 3]: per-sample axes are 0 to 1 (or -2 "
        "to -1); the batch axis cannot be named",
    ),
    "transpose repeats an axis": (
        "[2, 3]",
        "transpose([1, -1])",
        ShapeError,
        "3:5: transpose: axis -1 is named twice in [1, -1] (for [2, 3])",
    ),
    "squeeze a non-1 axis": (
        "[3, 2]",
        "squeeze([1])",
        ShapeError,
        "3:5: squeeze: axis 1 of [3, 2] has size 2; only size-1 axes can be squeezed",
    ),
    "unsqueeze out of range": (
        "[3]",
        "unsqueeze([2])",
        ShapeError,
        "3:5: unsqueeze: axis 2 is out of range for [1, 1]",
    ),
    "slice selects nothing": (
        "[4]",
        "slice(axes = [0], starts = [3], stops = [1])",
        ShapeError,
        "3:5: slice: selects nothing along axis 0 of [4] (starts [3], stops [1])",
    ),
    "slice step 0": (
        "[4]",
        "slice(starts = [0], stops = [2], steps = [0])",
        ShapeError,
        "3:5: slice: steps [0] contain 0; a step must be non-zero",
    ),
    "slice lengths differ": (
        "[4, 4]",
        "slice(axes = [0, 1], starts = [0], stops = [2])",
        ShapeError,
        "3:5: slice: axes, starts, stops and steps need one entry per sliced axis. "
        "Received: starts 1, stops 1, axes 2",
    ),
    "slice a symbolic axis": (
        "[t, 4]",
        "slice(starts = [0], stops = [2])",
        ShapeError,
        "3:5: slice: axis 0 of [t, 4] is symbolic; slice needs a static size",
    ),
    "split sizes do not add up": (
        "[5, 3]",
        "a, b = x |> split(axis = 0, sizes = [2, 2])",
        ShapeError,
        "3:17: split: sizes [2, 2] add up to 4, but axis 0 of [5, 3] has size 5",
    ),
    "split names and sizes differ": (
        "[5, 3]",
        "a, b, c = x |> split(axis = 0, sizes = [2, 3])",
        GraphError,
        "3:20: split makes 2 outputs (one per size in [2, 3]); 3 names are assigned",
    ),
    "split in a stack": (
        "[5, 3]",
        "split(axis = 0, sizes = [2, 3])",
        GraphError,
        "3:5: split makes 2 outputs; assign them: a, b = x |> split(...)",
    ),
    "pad length": (
        "[2, 3]",
        "pad([1, 1])",
        ShapeError,
        "3:5: pad: pads [1, 1] need 4 values for [2, 3]: the begins of every per-sample axis, "
        "then the ends (ONNX order)",
    ),
    "pad reflect too wide": (
        "[2, 3]",
        "pad([0, 3, 0, 0], mode = reflect)",
        ShapeError,
        "3:5: pad: reflect pads must be smaller than the axis: axis 1 of [2, 3] has size 3, "
        "pads (3, 0)",
    ),
    "pad value with edge": (
        "[2, 3]",
        "pad([0, 1, 0, 0], mode = edge, value = 1.0)",
        ShapeError,
        "3:5: pad: value = 1.0 applies to mode = constant only",
    ),
    "tile length": (
        "[2, 3]",
        "tile([2])",
        ShapeError,
        "3:5: tile: repeats [2] need one value per per-sample axis of [2, 3] (2)",
    ),
    "broadcast_to a misfit": (
        "[3, 2]",
        "broadcast_to([3, 4])",
        ShapeError,
        "3:5: broadcast_to: cannot broadcast [3, 2] with [3, 4]: dim -1 is 2 against 4",
    ),
    "broadcast_to a lower rank": (
        "[3, 2]",
        "broadcast_to([2])",
        ShapeError,
        "3:5: broadcast_to: cannot broadcast [3, 2] to the lower-rank [2]",
    ),
}


@pytest.mark.parametrize("name", list(ERRORS))
def test_shape_errors_name_line_column_and_shapes(name: str) -> None:
    shape, statement, kind, message = ERRORS[name]
    with pytest.raises(NncError) as err:
        _parse(f"input x: {shape}\n    {statement}")
    assert type(err.value) is kind
    assert f"layout.nn:{message}" in str(err.value)


def test_split_lowers_to_one_slice_per_assigned_name() -> None:
    program = _parse(
        "input x: [3, 7]\n    left, mid, right = x |> split(axis = -1, sizes = [2, 4, 1])\n"
        "    output concat(right, left, mid, axis = 1)"
    )
    nodes = program.models["M"].nodes
    got = [(n.name, n.op, n.starts, n.stops, n.type.shape) for n in nodes[:3]]
    assert got == [
        ("left", "slice", (0,), (2,), (3, 2)),
        ("mid", "slice", (2,), (6,), (3, 4)),
        ("right", "slice", (6,), (7,), (3, 1)),
    ]


LAYOUT_BODIES = [
    "input x: [2, 3, 4]\n    transpose([2, 0, 1])",
    "input x: [2, 3, 4]\n    transpose",
    "input x: [1, 3, 1]\n    squeeze",
    "input x: [1, 3, 1]\n    squeeze([0])",
    "input x: [3]\n    unsqueeze([0, 2])",
    "input x: [4, 6]\n    slice(axes = [1], starts = [5], stops = [-7], steps = [-2])",
    "input x: [4, 6]\n    slice(starts = [1, 0], stops = [3, 4])",
    "input x: [5, 3]\n    a, b = x |> split(axis = 0, sizes = [2, 3])\n    output concat(b, a)",
    "input x: [2, 3]\n    pad([0, 1, 2, 0], value = -1.5)",
    "input x: [2, 3]\n    pad([1, 1, 2, 2], mode = edge)",
    "input x: [2, 3]\n    pad([1, 0, 0, 2], mode = reflect)",
    "input x: [2, 3]\n    tile([1, 4])",
    "input x: [3, 1]\n    broadcast_to([3, 5])",
]


@pytest.mark.parametrize("body", LAYOUT_BODIES)
def test_format_round_trips(body: str) -> None:
    program = _parse(body)
    text = format_program(program)
    assert nnc.parse(text) == program
    assert format_program(nnc.parse(text)) == text


def test_builder_equals_parser() -> None:
    b = nnc.Builder("M")
    x = b.input("x", [1, 6, 4])
    t = b.transpose(x, [2, 0, 1])
    s = b.squeeze(t, [1])
    u = b.unsqueeze(s, 0, name="u")
    c = b.slice(u, axes=[1], starts=[3], stops=[-5], steps=[-1], name="c")
    left, right = b.split(c, axis=2, sizes=[2, 4], names=["left", "right"])
    r = b.tile(right, [1, 1, 2])
    p = b.pad(left, [0, 1, 0, 0, 1, 0], mode="reflect")
    q = b.broadcast_to(b.slice(p, axes=[0], starts=[0], stops=[1]), [3, 6, 2])
    b.output(r, q)
    parsed = nnc.parse(
        """model M {
    input x: [1, 6, 4]
    u = x |> transpose([2, 0, 1]) |> squeeze([1]) |> unsqueeze([0])
    c = u |> slice(axes = [1], starts = [3], stops = [-5], steps = [-1])
    left, right = c |> split(axis = 2, sizes = [2, 4])
    output right |> tile([1, 1, 2]), left |> pad([0, 1, 0, 0, 1, 0], mode = reflect)
        |> slice(axes = [0], starts = [0], stops = [1]) |> broadcast_to([3, 6, 2])
}"""
    )
    assert b.build() == parsed


def test_builder_split_checks_the_sizes() -> None:
    b = nnc.Builder("M")
    x = b.input("x", [5, 3])
    with pytest.raises(
        ShapeError,
        match=r"split: sizes \[4, 2\] add up to 6, but axis 0 of "
        r"\[5, 3\] has size 5",
    ):
        b.split(x, axis=0, sizes=[4, 2])
    with pytest.raises(GraphError, match="split makes 2 outputs"):
        b.split(x, axis=0, sizes=[2, 3], names=["a"])


def test_nnc_fmt_keeps_split_as_written() -> None:
    source = (
        "model T {\n    input x: [5, 3]   # rows\n"
        "    left,right=x|>split(axis=0,sizes=[2,3])\n    output concat(right, left)\n}\n"
    )
    formatted = format_source(source)
    assert "    left, right = x |> split(axis = 0, sizes = [2, 3])\n" in formatted
    assert format_source(formatted) == formatted
    assert nnc.parse(formatted) == nnc.parse(source)
