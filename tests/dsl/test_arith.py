"""The arithmetic constructs in the language (issue 19): what each lowers to, numbers
as the op's ``scalar``, ``constant``, the round trips (text -> fmt -> text, IR ->
.nn -> IR, IR -> JSON -> IR), builder == parser, and the errors with line:column."""

from __future__ import annotations

import pytest

import nnc
from nnc.dsl.parser import parse_file
from nnc.dsl.printer import format_file
from nnc.errors import ArgumentError, GraphError, NncError, ShapeError
from nnc.ir.serialize import loads_json

HEAD = "model M {\n    input x: [3, 4]\n    input y: [4]\n"


def _nodes(body: str) -> list[tuple[str, tuple[str, ...], float | None, str | None]]:
    program = nnc.parse(HEAD + body + "\n}\n")
    return [
        (n.op, n.inputs, getattr(n, "scalar", None), getattr(n, "scalar_side", None))
        for n in program.model().nodes
    ]


@pytest.mark.parametrize(
    ("body", "nodes"),
    [
        ("    output x * 0.5", [("mul", ("x",), 0.5, "right")]),
        ("    output 1 - y", [("sub", ("y",), 1.0, "left")]),
        ("    output x / 2", [("div", ("x",), 2.0, "right")]),
        ("    output 2 * x", [("mul", ("x",), 2.0, "left")]),
        ("    output x + 1", [("add", ("x",), 1.0, "right")]),
        ("    output pow(x, 2)", [("pow", ("x",), 2.0, "right")]),
        ("    output pow(2, x)", [("pow", ("x",), 2.0, "left")]),
        ("    output maximum(0, x)", [("maximum", ("x",), 0.0, "left")]),
        ("    output x |> minimum(y)", [("minimum", ("x", "y"), None, "right")]),
        ("    output x |> pow(3)", [("pow", ("x",), 3.0, "right")]),
        ("    output x * -0.5", [("mul", ("x",), -0.5, "right")]),
        ("    output x - y", [("sub", ("x", "y"), None, "right")]),
        ("    output x + y + x", [("add", ("x", "y", "x"), None, "right")]),
        ("    output -x", [("neg", ("x",), None, None)]),
    ],
)
def test_lowering(body: str, nodes: list[tuple[object, ...]]) -> None:
    assert _nodes(body) == nodes


def test_block_parameter_is_a_number() -> None:
    program = nnc.parse(
        "block scale(s) {\n    input a: [4]\n    output a * s\n}\n"
        "model M {\n    input x: [4]\n    scale(0.25)\n}\n"
    )
    (node,) = program.model().nodes
    assert (node.op, node.scalar) == ("mul", 0.25)


def test_constant_value_and_type() -> None:
    program = nnc.parse(HEAD + "    c = constant([[1, 0.5, 2, 3]])\n    output x * c\n}\n")
    c = program.model().node("c")
    assert (c.op, c.inputs, c.value, c.shape) == ("constant", (), (1.0, 0.5, 2.0, 3.0), (1, 4))
    assert c.type.shape == (1, 4) and c.type.dtype == "float32"
    scalar = nnc.parse(HEAD + "    output x * constant(0.5)\n}\n").model().nodes[0]
    assert (scalar.value, scalar.shape) == ((0.5,), ())
    assert nnc.count_params(program, "M") == 0


ROUND_TRIP = """model M {
    input x: [3, 4]
    input y: [4]
    a = x * 0.5
    b = 1 - y
    c = x / 2 + a * b - 2 * x
    d = pow(x, 2) - pow(2.5, y)
    e = maximum(0, x) - minimum(x, y)
    k = constant([[1, 0.5, -2, 3]])
    output -e * k + c / (d + 1) + constant(0.25)
}
"""


def test_fmt_round_trips_every_construct_exactly() -> None:
    tree = parse_file(ROUND_TRIP)
    text = format_file(tree)
    assert text == ROUND_TRIP  # `1 - g` stays `1 - g`, `2 * x` stays `2 * x`
    assert parse_file(text) == tree


def test_ir_to_text_and_json_round_trip() -> None:
    program = nnc.parse(ROUND_TRIP)
    text = nnc.format(program)
    assert "b = 1.0 - y\n" in text and "k = constant([[1.0, 0.5, -2.0, 3.0]])\n" in text
    assert nnc.parse(text) == program
    assert loads_json(program.to_json()) == program


def test_long_chains_lower_without_recursion() -> None:
    expr = " - ".join(["x * y"] * 3000)
    program = nnc.parse(HEAD + f"    output {expr}\n}}\n")
    assert len(program.model().nodes) == 3000 + 2999


def _error(body: str, file: str = "t.nn") -> NncError:
    with pytest.raises(NncError) as info:
        nnc.parse(HEAD + body + "\n}\n", file)
    return info.value


@pytest.mark.parametrize(
    ("body", "kind", "where", "message"),
    [
        (
            "    z = x |> dense(5)\n    output x *   z",
            ShapeError,
            (5, 14),
            "'*' cannot broadcast [3, 4] with [3, 5]: dim -1 is 4 against 5",
        ),
        (
            "    output (x\n        ) -\n    (y |> dense(3))",
            ShapeError,
            (5, 11),
            "'-' cannot broadcast [3, 4] with [3]: dim -1 is 4 against 3",
        ),
        (
            "    output maximum(x, y |> dense(3))",
            ShapeError,
            (4, 12),
            "maximum cannot broadcast [3, 4] with [3]: dim -1 is 4 against 3",
        ),
        (
            "    output x * (2 * 3)",
            GraphError,
            (4, 19),
            "2 * 3 computes a number, not a tensor: write the number itself, or "
            "constant(...) for a constant tensor",
        ),
        (
            "    output x * 1e39",
            ArgumentError,
            (4, 16),
            "the number 1e+39 does not fit float32 (largest magnitude 3.402823e+38)",
        ),
        (
            "    c = constant([1, 1e39])\n    output x + c",
            ArgumentError,
            (4, 22),
            "the constant value 1e+39 does not fit float32 (largest magnitude 3.402823e+38)",
        ),
        (
            "    c = constant([[1, 2], [3]])\n    output x",
            ArgumentError,
            (4, 18),
            "constant: a constant must be rectangular: its rows have different shapes "
            "([2] and [1])",
        ),
        (
            "    c = constant([1, true])\n    output x",
            ArgumentError,
            (4, 22),
            "a constant holds numbers. Received: true",
        ),
        (
            "    constant(1.0)",
            ArgumentError,
            (4, 5),
            "constant takes no tensor input: bind it, e.g. c = constant([1, 0.5])",
        ),
        ("    output pow(x)", ArgumentError, (4, 12), "pow takes 2 inputs. Received: 1"),
    ],
)
def test_errors(body: str, kind: type, where: tuple[int, int], message: str) -> None:
    err = _error(body)
    assert type(err) is kind, f"{type(err).__name__}: {err}"
    assert err.message == message
    assert err.span is not None and (err.span.file, err.span.line, err.span.col) == ("t.nn", *where)


def test_mixed_dtypes_are_refused() -> None:
    with pytest.raises(ShapeError) as info:
        nnc.parse("model M {\n    input t: int64[4]\n    output t * 2\n}\n", "t.nn")
    assert info.value.message == "'*': expects float32 operands. Received: int64[4]"
    assert info.value.span is not None and (info.value.span.line, info.value.span.col) == (3, 14)
