"""Text -> syntax tree, with compiler-quality syntax errors.

>>> tree = parse_file("model M { input x: [2]  dense(1) }", "m.nn")
>>> tree.items[0].name, len(tree.items[0].body)
('M', 2)
"""

from __future__ import annotations

import math
import threading
from functools import cache
from typing import Any

from lark import Lark, Token, Transformer_NonRecursive, v_args
from lark.exceptions import (
    UnexpectedCharacters,
    UnexpectedEOF,
    UnexpectedInput,
    UnexpectedToken,
    VisitError,
)

from nnc.dsl import ast
from nnc.dsl.tables import GRAMMAR, LARK_OPTIONS, load_tables
from nnc.errors import NncError, ParseError, ResourceError, Span, source_lines

MAX_NESTING = 64
MAX_INT_DIGITS = 30
MAX_SOURCE_BYTES = 4 * 1024 * 1024

# How terminals are named in error messages.
TOKEN_NAMES = {
    "NAME": "a name",
    "INT": "an integer",
    "FLOAT": "a number",
    "STRING": "a string",
    "LPAR": "'('",
    "RPAR": "')'",
    "LSQB": "'['",
    "RSQB": "']'",
    "LBRACE": "'{'",
    "RBRACE": "'}'",
    "COMMA": "','",
    "COLON": "':'",
    "EQUAL": "'='",
    "PLUS": "'+'",
    "MINUS": "'-'",
    "STAR": "'*'",
    "SLASH": "'/'",
    "AT": "'@'",
    "__ANON_0": "'|>'",
    "MODEL": "'model'",
    "BLOCK": "'block'",
    "TRAIN": "'train'",
    "INPUT": "'input'",
    "OUTPUT": "'output'",
    "REPEAT": "'repeat'",
    "TRUE": "'true'",
    "FALSE": "'false'",
    "$END": "the end of the file",
}

# Common mistakes, recognised by where the parser stops (lark's match_examples).
FRIENDLY: dict[str, list[str]] = {
    "a train setting is written 'key value', without '='": [
        "train X { epochs = 10 }",
        "train X { loss = mse }",
    ],
    "an input needs a shape after a colon, such as 'input x: [2]'": [
        "model M { input x [2] }",
        "model M { input x }",
        "model M { input x: 2 }",
    ],
    "layer arguments go in parentheses, such as 'dense(5)'": [
        "model M { input x: [2] dense 5 }",
        "model M { input x: [2] conv2d 8 }",
    ],
    "a model, block or train recipe needs a name before '{'": [
        "model { }",
        "train { }",
        "block { }",
    ],
    "unclosed '{': a model, block or train recipe must end with '}'": [
        "model M { input x: [2]",
        "train M { epochs 3",
    ],
    "a trailing comma needs another argument after it": [
        "model M { input x: [2] dense(5,) }",
        "train M { metrics accuracy, }",
    ],
}


@cache
def _lark() -> Lark:
    grammar = GRAMMAR.read_text(encoding="utf-8")
    callbacks = {"COMMENT": _collect_comment}
    cached = load_tables(grammar)
    if cached is not None:
        return Lark._load_from_dict(cached["data"], cached["memo"], lexer_callbacks=callbacks)
    return Lark(grammar, lexer_callbacks=callbacks, **LARK_OPTIONS)


_comments = threading.local()
_parse_lock = threading.Lock()


def _collect_comment(token: Token) -> Token:
    _comments.items.append(ast.Comment(token.line or 0, token.column or 0, str(token)))
    return token


def parse_file(text: str, filename: str = "<string>") -> ast.File:
    """Parse ``.nn`` source into its syntax tree; raise :class:`ParseError` on bad input."""
    _precheck(text, filename)
    parser = _lark()
    with _parse_lock:
        _comments.items = []
        try:
            tree = parser.parse(text)
        except UnexpectedInput as exc:
            raise _syntax_error(exc, text, filename) from None
        finally:
            comments = tuple(_comments.items)
            _comments.items = []
    try:
        result = _ToAst(filename, text).transform(tree)
    except VisitError as exc:  # show nnc's error, not lark's wrapper
        if isinstance(exc.orig_exc, NncError):
            raise exc.orig_exc.with_source(text) from None
        raise
    return ast.File(items=result.items, comments=comments)


def _precheck(text: str, filename: str) -> None:
    """Refuse input the recursive stages could not take: huge files, absurd nesting."""
    if len(text) > MAX_SOURCE_BYTES:
        raise ResourceError(
            f"{filename} is {len(text)} characters; the limit is {MAX_SOURCE_BYTES}"
        )
    depth = 0
    line, col = 1, 0
    in_string = in_comment = False
    prev = ""
    for ch in text:
        col += 1
        if ch == "\n":
            line, col = line + 1, 0
            in_comment = in_string = False
        elif in_comment:
            pass
        elif in_string:
            if ch == '"' and prev != "\\":
                in_string = False
        elif ch == "#":
            in_comment = True
        elif ch == '"':
            in_string = True
        elif ch in "([{":
            depth += 1
            if depth > MAX_NESTING:
                raise ResourceError(
                    f"brackets nested deeper than {MAX_NESTING} levels",
                    Span(file=filename, line=line, col=col, end_line=line, end_col=col + 1),
                ).with_source(text)
        elif ch in ")]}":
            depth = max(depth - 1, 0)
        prev = ch if prev != "\\" or ch != "\\" else ""


def _syntax_error(exc: UnexpectedInput, text: str, filename: str) -> ParseError:
    line = getattr(exc, "line", 1) or 1
    col = getattr(exc, "column", 1) or 1
    if isinstance(exc, UnexpectedCharacters):
        pos = exc.pos_in_stream or 0
        char = text[pos] if pos < len(text) else ""
        what = f"unexpected character {char!r}"
        width = 1
    elif isinstance(exc, UnexpectedEOF) or (
        isinstance(exc, UnexpectedToken) and exc.token.type == "$END"
    ):
        lines = source_lines(text)
        line, col = len(lines), len(lines[-1]) + 1
        what = "unexpected end of file"
        width = 1
    elif isinstance(exc, UnexpectedToken):
        tok = exc.token
        what = f"unexpected {str(tok)!r}"
        width = max(len(str(tok)), 1)
    else:
        what, width = "syntax error", 1
    expected = _expected(exc)
    message = what + (f"; expected {expected}" if expected else "")
    friendly = _friendly(exc) if isinstance(exc, UnexpectedToken) else None
    span = Span(file=filename, line=line, col=col, end_line=line, end_col=col + width)
    err = ParseError(message, span, hint=friendly)
    return err.with_source(text)  # type: ignore[return-value]


def _error_key(exc: UnexpectedToken) -> tuple[int, str]:
    """Where the parser stopped: its current LALR state and the offending token type.

    (lark's own ``match_examples`` compares whole parser stacks, so an example only
    matches when the mistake is the first thing in the file.)"""
    stack = exc.interactive_parser.parser_state.state_stack
    return stack[-1], exc.token.type


@cache
def _friendly_table() -> dict[tuple[int, str], str]:
    table: dict[tuple[int, str], str] = {}
    for message, examples in FRIENDLY.items():
        for example in examples:
            try:
                _lark().parse(example)
            except UnexpectedToken as exc:
                table.setdefault(_error_key(exc), message)
    return table


def _friendly(exc: UnexpectedToken) -> str | None:
    return _friendly_table().get(_error_key(exc))


def _expected(exc: UnexpectedInput) -> str:
    names: set[str] = set()
    for attr in ("accepts", "expected"):
        names |= set(getattr(exc, attr, None) or ())
    names.discard("COMMENT")
    shown = sorted({TOKEN_NAMES.get(n, n.lower()) for n in names})
    if not shown:
        return ""
    if len(shown) <= 2:
        return " or ".join(shown)
    if len(shown) > 8:
        return "one of " + ", ".join(shown[:8]) + ", ..."
    return "one of " + ", ".join(shown)


def _span(meta: Any, filename: str) -> Span:
    return Span(
        file=filename,
        line=meta.line,
        col=meta.column,
        end_line=meta.end_line,
        end_col=meta.end_column,
    )


def _tok_span(tok: Token, filename: str) -> Span:
    return Span(
        file=filename,
        line=tok.line or 1,
        col=tok.column or 1,
        end_line=tok.end_line or tok.line or 1,
        end_col=tok.end_column or (tok.column or 1) + len(tok),
    )


def _unescape(raw: str) -> str:
    body = raw[1:-1]
    out = []
    i = 0
    while i < len(body):
        ch = body[i]
        if ch == "\\" and i + 1 < len(body):
            nxt = body[i + 1]
            out.append({"n": "\n", "t": "\t"}.get(nxt, nxt))
            i += 2
        else:
            out.append(ch)
            i += 1
    return "".join(out)


@v_args(meta=True)
class _ToAst(Transformer_NonRecursive):
    """Parse tree -> :mod:`nnc.dsl.ast`, one method per grammar rule."""

    def __init__(self, filename: str, text: str = ""):
        super().__init__()
        self.f = filename
        self.lines = text.split("\n")

    def start(self, meta: Any, items: list[Any]) -> ast.File:
        return ast.File(items=tuple(items))

    def model(self, meta: Any, ch: list[Any]) -> ast.ModelDef:
        name, *body = ch
        return ast.ModelDef(
            name=str(name),
            body=tuple(body),
            span=_span(meta, self.f),
            name_span=_tok_span(name, self.f),
        )

    def block(self, meta: Any, ch: list[Any]) -> ast.BlockDef:
        name, params, *body = ch
        return ast.BlockDef(
            name=str(name),
            params=tuple(params or ()),
            body=tuple(body),
            span=_span(meta, self.f),
            name_span=_tok_span(name, self.f),
        )

    def block_params(self, meta: Any, ch: list[Any]) -> tuple[str, ...]:
        return tuple(str(c) for c in ch if c is not None)

    def train(self, meta: Any, ch: list[Any]) -> ast.TrainDef:
        name, *settings = ch
        return ast.TrainDef(
            name=str(name),
            settings=tuple(settings),
            span=_span(meta, self.f),
            name_span=_tok_span(name, self.f),
        )

    def input_decl(self, meta: Any, ch: list[Any]) -> ast.InputDecl:
        name, dtype, shape = ch
        return ast.InputDecl(
            name=str(name),
            dtype=str(dtype) if dtype is not None else None,
            shape=shape,
            span=_span(meta, self.f),
            name_span=_tok_span(name, self.f),
        )

    def output_stmt(self, meta: Any, ch: list[Any]) -> ast.Output:
        return ast.Output(values=tuple(ch), span=_span(meta, self.f))

    def assign(self, meta: Any, ch: list[Any]) -> ast.Assign:
        *targets, value = ch
        return ast.Assign(
            targets=tuple(str(t) for t in targets), value=value, span=_span(meta, self.f)
        )

    def stack(self, meta: Any, ch: list[Any]) -> ast.Stack:
        return ast.Stack(stage=ch[0], span=_span(meta, self.f))

    def repeat(self, meta: Any, ch: list[Any]) -> ast.Repeat:
        count, *body = ch
        return ast.Repeat(count=count, body=tuple(body), span=_span(meta, self.f))

    def setting(self, meta: Any, ch: list[Any]) -> ast.Setting:
        key, *args = ch
        return ast.Setting(
            key=str(key),
            args=tuple(args),
            span=_span(meta, self.f),
            key_span=_tok_span(key, self.f),
        )

    def pipe(self, meta: Any, ch: list[Any]) -> ast.Pipe:
        return ast.Pipe(value=ch[0], stage=ch[1], span=_span(meta, self.f))

    def _binop(self, op: str, meta: Any, ch: list[Any]) -> ast.BinOp:
        span = _span(meta, self.f)
        return ast.BinOp(
            op=op, left=ch[0], right=ch[1], span=span, op_span=self._operator(op, ch[0].span)
        )

    def _operator(self, op: str, left: Span) -> Span | None:
        """Where ``op`` is written after its left operand: past blanks, comments and the
        closing parentheses of a bracketed operand."""
        line, col = left.end_line, left.end_col  # 1-based, exclusive end
        while 1 <= line <= len(self.lines):
            text = self.lines[line - 1]
            i = col - 1
            while i < len(text) and (text[i].isspace() or text[i] == ")"):
                i += 1
            if i < len(text) and text[i] != "#":
                if text[i] != op:
                    return None
                return Span(file=self.f, line=line, col=i + 1, end_line=line, end_col=i + 2)
            line, col = line + 1, 1
        return None

    def add(self, meta: Any, ch: list[Any]) -> ast.BinOp:
        return self._binop("+", meta, ch)

    def sub(self, meta: Any, ch: list[Any]) -> ast.BinOp:
        return self._binop("-", meta, ch)

    def mul(self, meta: Any, ch: list[Any]) -> ast.BinOp:
        return self._binop("*", meta, ch)

    def div(self, meta: Any, ch: list[Any]) -> ast.BinOp:
        return self._binop("/", meta, ch)

    def matmul(self, meta: Any, ch: list[Any]) -> ast.BinOp:
        return self._binop("@", meta, ch)

    def neg(self, meta: Any, ch: list[Any]) -> ast.Expr:
        """``-x``; ``-<literal>`` folds into a negative literal (``reshape([3, -1])``)."""
        value, span = ch[0], _span(meta, self.f)
        if isinstance(value, ast.Int):
            return ast.Int(value=-value.value, span=span)
        if isinstance(value, ast.Float):
            text = value.text[1:] if value.text.startswith("-") else "-" + value.text
            return ast.Float(value=-value.value, text=text, span=span)
        return ast.Neg(value=value, span=span)

    def ref(self, meta: Any, ch: list[Any]) -> ast.Ref:
        return ast.Ref(name=str(ch[0]), span=_span(meta, self.f))

    def call(self, meta: Any, ch: list[Any]) -> ast.Call:
        name, *args = ch
        return ast.Call(
            name=str(name), args=tuple(a for a in args if a is not None), span=_span(meta, self.f)
        )

    def stage(self, meta: Any, ch: list[Any]) -> ast.Stage:
        name, *args = ch
        return ast.Stage(
            name=str(name), args=tuple(a for a in args if a is not None), span=_span(meta, self.f)
        )

    def positional(self, meta: Any, ch: list[Any]) -> ast.Arg:
        return ast.Arg(name=None, value=ch[0], span=_span(meta, self.f))

    def keyword(self, meta: Any, ch: list[Any]) -> ast.Arg:
        return ast.Arg(name=str(ch[0]), value=ch[1], span=_span(meta, self.f))

    def list_expr(self, meta: Any, ch: list[Any]) -> ast.ListExpr:
        return ast.ListExpr(items=tuple(c for c in ch if c is not None), span=_span(meta, self.f))

    def int_lit(self, meta: Any, ch: list[Any]) -> ast.Int:
        text = str(ch[0])
        if len(text.lstrip("+-")) > MAX_INT_DIGITS:
            raise ResourceError(
                f"integer literal with {len(text)} digits; at most {MAX_INT_DIGITS} are allowed",
                _span(meta, self.f),
            )
        return ast.Int(value=int(text), span=_span(meta, self.f))

    def float_lit(self, meta: Any, ch: list[Any]) -> ast.Float:
        value = float(ch[0])
        if not math.isfinite(value):
            raise ResourceError(
                f"number {str(ch[0])!r} is out of the float range", _span(meta, self.f)
            )
        return ast.Float(value=value, text=str(ch[0]), span=_span(meta, self.f))

    def true_lit(self, meta: Any, ch: list[Any]) -> ast.Bool:
        return ast.Bool(value=True, span=_span(meta, self.f))

    def false_lit(self, meta: Any, ch: list[Any]) -> ast.Bool:
        return ast.Bool(value=False, span=_span(meta, self.f))

    def string_lit(self, meta: Any, ch: list[Any]) -> ast.String:
        return ast.String(value=_unescape(str(ch[0])), span=_span(meta, self.f))
