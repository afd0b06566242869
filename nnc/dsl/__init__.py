"""The .nn language: text -> syntax tree -> IR, and IR -> text.

>>> p = parse("model M { input x: [4]  dense(3) relu }")
>>> [n.name for n in p.models["M"].nodes]
['dense_1', 'relu_1']
>>> print(format_program(p), end="")
model M {
    input x: [4]
    dense(3) relu
}
"""

from __future__ import annotations

from pathlib import Path

from nnc.collector import fewer_collections
from nnc.dsl import ast
from nnc.dsl.bind import Chooser
from nnc.dsl.lower import BlockCheck, lower
from nnc.dsl.lower_graph import SplitCheck
from nnc.dsl.parser import parse_file
from nnc.dsl.printer import format_file
from nnc.errors import NncError, ParseError, ShapeError, Span
from nnc.ir.ops.layout import check_split
from nnc.ir.passes import check as check_program
from nnc.ir.passes import infer_shapes, validate
from nnc.ir.passes.resources import check_resources
from nnc.ir.passes.resources import memory_budget as budget_limit
from nnc.ir.program import Program
from nnc.ir.types import Dim, format_shape, unify


def parse(
    text: str,
    filename: str = "<string>",
    *,
    check: bool = True,
    memory_budget: int | None = None,
) -> Program:
    """Parse ``.nn`` text to IR; with ``check`` (the default), also type and validate it
    and refuse specs over the memory budget (see :mod:`nnc.ir.passes.resources`)."""
    try:
        with fewer_collections():
            return program_of(parse_file(text, filename), check=check, memory_budget=memory_budget)
    except NncError as err:
        raise err.with_source(text) from None


def program_of(
    tree: ast.File,
    *,
    check: bool = True,
    memory_budget: int | None = None,
    choose: Chooser | None = None,
) -> Program:
    """The IR of a syntax tree; with ``check``, typed, validated and held to the
    memory budget (the part of :func:`parse` after the parser); ``choose`` stands in
    for search distributions."""
    lowered = lower(tree, choose)
    if not check:
        return lowered.program
    typed = infer_shapes(lowered.program)
    _check_blocks(typed, lowered.block_checks)
    check_splits(typed, lowered.split_checks)
    checked = check_resources(validate(typed), memory_budget)
    checked.mark_checked(budget_limit(memory_budget))  # nnc.ir.passes.check's work, done
    return checked


def load(path: str | Path, *, check: bool = True, memory_budget: int | None = None) -> Program:
    """Read and parse a ``.nn`` file."""
    return parse(read_spec(path), str(path), check=check, memory_budget=memory_budget)


def read_spec(path: str | Path) -> str:
    """The text of a ``.nn`` file (UTF-8), or an NncError saying why it cannot be read."""
    from nnc.dsl.parser import MAX_SOURCE_BYTES
    from nnc.userfiles import read_regular

    # A UTF-8 character takes at most 4 bytes; the parser then counts characters.
    data = read_regular(path, 4 * MAX_SOURCE_BYTES)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _decode_error(data, exc, str(path)) from None
    return text


def _decode_error(data: bytes, exc: UnicodeDecodeError, filename: str) -> ParseError:
    """Point at the first byte that is not UTF-8."""
    line_start = data.rfind(b"\n", 0, exc.start) + 1
    line = data.count(b"\n", 0, exc.start) + 1
    col = len(data[line_start : exc.start].decode("utf-8", errors="replace")) + 1
    span = Span(file=filename, line=line, col=col, end_line=line, end_col=col + 1)
    bad = data[exc.start : exc.start + 1].hex()
    err = ParseError(f"the file is not UTF-8 text: byte 0x{bad} ({exc.reason})", span)
    err.with_source(data.decode("utf-8", errors="replace"))
    return err


def format_program(program: Program, resolved: bool = False) -> str:
    """The IR as canonical ``.nn`` text; ``parse(format_program(p)) == p``. With
    ``resolved``, every recipe setting is written, defaults included."""
    from nnc.dsl.unparse import program_to_ast  # only the formatter needs it

    return format_file(program_to_ast(program, resolved))


def format_source(text: str, filename: str = "<string>") -> str:
    """Reformat ``.nn`` source canonically, keeping its comments and blocks."""
    try:
        return format_file(parse_file(text, filename))
    except NncError as err:
        raise err.with_source(text) from None


def _check_blocks(program: Program, checks: list[BlockCheck]) -> None:
    for c in checks:
        model = program.models[c.model]
        bindings: dict[str, Dim] = {}
        for declared, actual, pattern in c.inputs:
            t = model.value_type(actual)
            reason = unify(pattern, t.shape, bindings)
            if reason:
                raise ShapeError(
                    f"block '{c.block}' input '{declared}' is declared {format_shape(pattern)} "
                    f"but receives {format_shape(t.shape)} ({reason})",
                    c.span,
                )


def check_splits(program: Program, checks: list[SplitCheck]) -> None:
    """Each split's sizes against its input's axis (known after shape inference)."""
    for c in checks:
        check_split(c.axis, c.sizes, program.models[c.model].value_type(c.source), c.span)


__all__ = [
    "check_program",
    "format_program",
    "format_source",
    "load",
    "parse",
    "parse_file",
    "program_of",
    "read_spec",
]
