"""Syntax tree -> canonical ``.nn`` text, keeping comments.

The canonical layout: four-space indents, one statement per line (an activation
joins the layer it follows: ``dense(5) sigmoid``), train settings aligned in a
column, one blank line between items.
"""

from __future__ import annotations

from collections.abc import Sequence

from nnc.dsl import ast
from nnc.errors import Span
from nnc.ir.ops import ACTIVATIONS

INDENT = "    "
COMMENT_COLUMN = 39  # trailing comments line up here (0-based) when the code is shorter


def expr_text(e: ast.Expr | ast.Stage) -> str:
    """Source text of an expression.

    >>> from nnc.errors import Span
    >>> s = Span(line=1, col=1, end_line=1, end_col=1)
    >>> expr_text(ast.Pipe(value=ast.Ref(name="x", span=s),
    ...                    stage=ast.Stage(name="relu", args=(), span=s), span=s))
    'x |> relu'
    """
    if isinstance(e, ast.Int):
        return str(e.value)
    if isinstance(e, ast.Float):
        return e.text or float_text(e.value)
    if isinstance(e, ast.Bool):
        return "true" if e.value else "false"
    if isinstance(e, ast.String):
        return string_text(e.value)
    if isinstance(e, ast.Ref):
        return e.name
    if isinstance(e, ast.ListExpr):
        return "[" + ", ".join(expr_text(i) for i in e.items) + "]"
    if isinstance(e, ast.Call):
        return f"{e.name}({args_text(e.args)})"
    if isinstance(e, ast.Stage):
        return f"{e.name}({args_text(e.args)})" if e.args else e.name
    if isinstance(e, ast.BinOp | ast.Neg | ast.Pipe):
        return _infix_text(e)
    raise TypeError(f"not an expression: {e!r}")


# How tightly each construct binds (docs/language.md): a higher level binds tighter.
_PIPE, _SUM, _PRODUCT, _UNARY, _ATOM = range(5)
_LEVEL = {"+": _SUM, "-": _SUM, "*": _PRODUCT, "/": _PRODUCT, "@": _PRODUCT}


def _level(e: ast.Expr) -> int:
    if isinstance(e, ast.Pipe):
        return _PIPE
    if isinstance(e, ast.BinOp):
        return _LEVEL[e.op]
    if isinstance(e, ast.Neg):
        return _UNARY
    return _ATOM


def _infix_text(root: ast.Expr) -> str:
    """Pipes and infix operators with the fewest parentheses that parse back the same.

    Chains nest to the left and may have thousands of links, so this walks an explicit
    stack of (expression, tightest level it may have unparenthesised) or text, never
    recursing into an operand."""
    out: list[str] = []
    todo: list[tuple[ast.Expr, int] | str] = [(root, _PIPE)]
    while todo:
        item = todo.pop()
        if isinstance(item, str):
            out.append(item)
            continue
        e, need = item
        level = _level(e)
        if level < need:
            todo += [")", (e, _PIPE), "("]
        elif isinstance(e, ast.Pipe):
            todo += [" |> " + expr_text(e.stage), (e.value, _PIPE)]
        elif isinstance(e, ast.BinOp):  # left-associative: the right operand binds tighter
            todo += [(e.right, level + 1), f" {e.op} ", (e.left, level)]
        elif isinstance(e, ast.Neg):
            todo += [(e.value, _UNARY), "-"]
        else:
            out.append(expr_text(e))
    return "".join(out)


def args_text(args: Sequence[ast.Arg]) -> str:
    return ", ".join(
        expr_text(a.value) if a.name is None else f"{a.name} = {expr_text(a.value)}" for a in args
    )


def float_text(value: float) -> str:
    """Shortest text that reads back as the same float, always with a '.' or exponent."""
    text = repr(float(value))
    if "inf" in text or "nan" in text:
        raise ValueError(f"{value} cannot be written in .nn")
    return text


def string_text(value: str) -> str:
    escaped = (
        value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t")
    )
    return f'"{escaped}"'


class _Writer:
    def __init__(self, comments: Sequence[ast.Comment]):
        self.lines: list[str] = []
        self.trailing: dict[int, str] = {}  # line index -> its trailing comment
        self.comments = sorted(comments, key=lambda c: (c.line, c.col))
        self.next = 0

    def leading(self, before_line: int, indent: str) -> None:
        while self.next < len(self.comments) and self.comments[self.next].line < before_line:
            self.lines.append(indent + self.comments[self.next].text)
            self.next += 1

    def line(self, text: str, indent: str, last_line: int | None) -> None:
        trailing = []
        if last_line is not None:
            while self.next < len(self.comments) and self.comments[self.next].line <= last_line:
                trailing.append(self.comments[self.next].text)
                self.next += 1
        if trailing:
            self.trailing[len(self.lines)] = " ".join(trailing)
        self.lines.append(indent + text)

    def render(self) -> str:
        """Lines, with trailing comments of consecutive lines aligned in one column
        (at least COMMENT_COLUMN, else two spaces past the longest line of the run)."""
        out = list(self.lines)
        runs: list[list[int]] = []
        for i in sorted(self.trailing):
            if runs and runs[-1][-1] == i - 1:
                runs[-1].append(i)
            else:
                runs.append([i])
        for run in runs:
            column = max(COMMENT_COLUMN, *(len(out[i]) + 2 for i in run))
            for i in run:
                out[i] = out[i].ljust(column) + self.trailing[i]
        return "\n".join(out) + "\n"


def format_file(tree: ast.File) -> str:
    """Canonical text of a whole file."""
    w = _Writer(tree.comments)
    for i, item in enumerate(tree.items):
        if i:
            w.lines.append("")
        w.leading(item.span.line, "")
        if isinstance(item, ast.TrainDef):
            _train(w, item)
        else:
            _graph(w, item)
    w.leading(10**9, "")
    return w.render()


def _header(item: ast.ModelDef | ast.BlockDef) -> str:
    if isinstance(item, ast.BlockDef):
        params = f"({', '.join(item.params)})" if item.params else ""
        return f"block {item.name}{params} {{"
    return f"model {item.name} {{"


def _graph(w: _Writer, item: ast.ModelDef | ast.BlockDef) -> None:
    _braced(w, _header(item), item.span, item.body, "", closing_owns=True)


def _braced(
    w: _Writer,
    header: str,
    span: Span,
    body: Sequence[ast.Stmt],
    indent: str,
    closing_owns: bool,
) -> None:
    """``header``, the statements of ``body`` one level deeper, and ``}``; a
    ``repeat`` inside is printed the same way, nested."""
    groups = _group(body)
    # A trailing comment belongs to the last construct that ends on its line.
    starts = [g[0].span.line for g in groups] + [span.end_line + 1]
    header_owns = not groups or starts[0] > span.line
    w.line(header, indent, span.line if header_owns else None)
    inner = indent + INDENT
    for i, group in enumerate(groups):
        w.leading(group[0].span.line, inner)
        end = max(s.span.end_line for s in group)
        owns = starts[i + 1] > end and end != span.end_line
        first = group[0]
        if isinstance(first, ast.Repeat):
            _braced(w, f"repeat {expr_text(first.count)} {{", first.span, first.body, inner, owns)
            continue
        text = " ".join(_stmt_text(s) for s in group)
        w.line(text, inner, end if owns else None)
    w.leading(span.end_line, inner)
    w.line("}", indent, span.end_line if closing_owns else None)


def _group(body: Sequence[ast.Stmt]) -> list[list[ast.Stmt]]:
    """One line per statement, except that an activation joins the layer before it."""
    groups: list[list[ast.Stmt]] = []
    for stmt in body:
        if (
            groups
            and isinstance(stmt, ast.Stack)
            and stmt.stage.name in ACTIVATIONS
            and len(groups[-1]) == 1
            and isinstance(groups[-1][0], ast.Stack)
            and groups[-1][0].stage.name not in ACTIVATIONS
        ):
            groups[-1].append(stmt)
        else:
            groups.append([stmt])
    return groups


def _stmt_text(s: ast.Stmt) -> str:
    if isinstance(s, ast.InputDecl):
        dtype = s.dtype if s.dtype and s.dtype != "float32" else ""
        return f"input {s.name}: {dtype}{expr_text(s.shape)}"
    if isinstance(s, ast.Stack):
        return expr_text(s.stage)
    if isinstance(s, ast.Assign):
        return f"{', '.join(s.targets)} = {expr_text(s.value)}"
    if isinstance(s, ast.Repeat):  # printed by _braced; never joins a line
        raise TypeError("a repeat statement is printed as a braced body")
    return "output " + ", ".join(expr_text(v) for v in s.values)


def _train(w: _Writer, item: ast.TrainDef) -> None:
    starts = [s.span.line for s in item.settings] + [item.span.end_line + 1]
    header_owns = not item.settings or starts[0] > item.span.line
    w.line(f"train {item.name} {{", "", item.span.line if header_owns else None)
    width = max((len(s.key) for s in item.settings), default=0) + 1
    for i, s in enumerate(item.settings):
        w.leading(s.span.line, INDENT)
        owns = starts[i + 1] > s.span.end_line and s.span.end_line != item.span.end_line
        w.line(
            f"{s.key.ljust(width)}{args_text(s.args)}", INDENT, s.span.end_line if owns else None
        )
    w.leading(item.span.end_line, INDENT)
    w.line("}", "", item.span.end_line)
