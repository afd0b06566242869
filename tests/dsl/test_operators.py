"""Infix operators: precedence, associativity, negative literals and minimal parentheses."""

from __future__ import annotations

import pytest

import nnc
from nnc.dsl import ast
from nnc.dsl.parser import parse_file
from nnc.dsl.printer import format_file


def _output(expr: str) -> ast.Expr:
    tree = parse_file(f"model M {{ input a: [2] output {expr} }}")
    model = tree.items[0]
    assert isinstance(model, ast.ModelDef)
    out = model.body[-1]
    assert isinstance(out, ast.Output)
    return out.values[0]


def _shape(e: ast.Expr) -> str:
    """A fully parenthesised rendering, to read the parse tree at a glance."""
    if isinstance(e, ast.BinOp):
        return f"({_shape(e.left)} {e.op} {_shape(e.right)})"
    if isinstance(e, ast.Neg):
        return f"(-{_shape(e.value)})"
    if isinstance(e, ast.Pipe):
        return f"({_shape(e.value)} |> {e.stage.name})"
    if isinstance(e, ast.Ref):
        return e.name
    if isinstance(e, ast.Int | ast.Float):
        return repr(e.value)
    raise TypeError(e)


@pytest.mark.parametrize(
    ("source", "tree"),
    [
        ("a + b * c", "(a + (b * c))"),
        ("a * b + c", "((a * b) + c)"),
        ("a - b - c", "((a - b) - c)"),
        ("a / b * c", "((a / b) * c)"),
        ("a @ b @ c", "((a @ b) @ c)"),
        ("-a * b", "((-a) * b)"),
        ("a - -b", "(a - (-b))"),
        ("a + b |> relu", "((a + b) |> relu)"),
        ("a + (b |> relu)", "(a + (b |> relu))"),
        ("x * 0.5", "(x * 0.5)"),
        ("1 - g", "(1 - g)"),
        ("a - -1", "(a - -1)"),
        ("-2.5e-3 * a", "(-0.0025 * a)"),
    ],
)
def test_precedence_and_associativity(source: str, tree: str) -> None:
    assert _shape(_output(source)) == tree


@pytest.mark.parametrize(
    ("source", "printed"),
    [
        ("(a * b) + c", "a * b + c"),
        ("a - (b - c)", "a - (b - c)"),
        ("a * (b + c)", "a * (b + c)"),
        ("-(a * b)", "-(a * b)"),
        ("(a + b) |> relu", "a + b |> relu"),
        ("a + (b |> relu)", "a + (b |> relu)"),
        ("((a))", "a"),
        ("a / (b / c)", "a / (b / c)"),
        ("(-a) @ b", "-a @ b"),
    ],
)
def test_fmt_prints_minimal_parentheses_and_round_trips(source: str, printed: str) -> None:
    tree = parse_file(f"model M {{ input a: [2] output {source} }}")
    text = format_file(tree)
    assert f"output {printed}\n" in text
    assert parse_file(text) == tree


def test_negative_literals_fold_so_existing_specs_keep_their_ir() -> None:
    prog = nnc.parse("model M { input x: [2, 3]\n reshape([3, -1]) leaky_relu(-0.1) }", "m.nn")
    nodes = prog.model().nodes
    assert nodes[0].attributes()["shape"] == (3, -1)
    assert nodes[1].attributes()["alpha"] == -0.1


def test_long_left_chains_of_mixed_operators_print_without_recursion() -> None:
    expr = " - ".join(["a * a"] * 5000)
    text = format_file(parse_file(f"model M {{ input a: [2] output {expr} }}"))
    assert f"output {expr}\n" in text
    assert format_file(parse_file(text)) == text
