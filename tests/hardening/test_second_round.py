"""Issue 26, hardening second round: long chains, deep and doubled model calls, line
separators, strings where a name belongs, and file names nnc prints."""

from __future__ import annotations

from pathlib import Path

import pytest

import nnc
from nnc.cli.main import main
from nnc.dsl.printer import expr_text


def run_nnc(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err and "internal error" not in captured.err
    return code, captured.out, captured.err


def _chain(op: str, links: int) -> str:
    link = " |> relu" if op == "|>" else " + x"
    return "model M {\n    input x: [4]\n    y = x" + link * links + "\n    output y\n}\n"


@pytest.mark.parametrize("links", [500, 5000])
@pytest.mark.parametrize("op", ["|>", "+"])
def test_long_chains_check_format_and_compile(
    op: str, links: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A chain of thousands of links (it raised RecursionError past about 480)."""
    spec = tmp_path / "m.nn"
    spec.write_text(_chain(op, links))
    assert run_nnc(capsys, "check", str(spec))[0] == 0
    code, out, _ = run_nnc(capsys, "fmt", str(spec), "--check")
    assert code == 0, out
    assert run_nnc(capsys, "compile", str(spec), "-o", str(tmp_path / "m.py"))[0] == 0
    program = nnc.load(spec)
    nodes = program.models["M"].nodes
    assert len(nodes) == (links if op == "|>" else 1)
    if op == "+":
        assert len(nodes[0].inputs) == links + 1


def test_chain_printing_keeps_the_parentheses() -> None:
    from nnc.dsl.parser import parse_file

    for text in ["x |> relu |> dense(3)", "(x |> relu) + y + (z |> tanh) |> relu", "x + y + z"]:
        tree = parse_file("model M { input x: [2]  y = " + text + " }")
        assert expr_text(tree.items[0].body[1].value) == text


def test_the_regenerate_comment_is_shell_quoted(tmp_path: Path) -> None:
    from nnc.backends.codegen import header

    program = nnc.parse("model M { input x: [4]  dense(3) }")
    lines = header("x;touch PWNED;.nn", program.models["M"], "numpy")
    assert lines[-1] == "#     nnc compile 'x;touch PWNED;.nn' --backend numpy --model M"
