"""The syntax tree of a ``.nn`` file: what was written, before any name is resolved.

The formatter prints this tree, so ``nnc fmt`` keeps blocks, sugar and comments;
:mod:`nnc.dsl.lower` turns it into the IR.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from nnc.errors import Span


@dataclass(frozen=True)
class Node:
    span: Span = field(compare=False, kw_only=True)


# -- expressions ------------------------------------------------------------------


@dataclass(frozen=True)
class Int(Node):
    value: int


@dataclass(frozen=True)
class Float(Node):
    value: float
    text: str = field(default="", compare=False)


@dataclass(frozen=True)
class Bool(Node):
    value: bool


@dataclass(frozen=True)
class String(Node):
    value: str


@dataclass(frozen=True)
class Ref(Node):
    """A bare name: a tensor, a block parameter, or an identifier value (``same``)."""

    name: str


@dataclass(frozen=True)
class ListExpr(Node):
    items: tuple[Expr, ...]


@dataclass(frozen=True)
class Arg(Node):
    """A call argument; ``name`` is None for a positional one."""

    name: str | None
    value: Expr


@dataclass(frozen=True)
class Call(Node):
    """``name(args)`` in value position: its tensor arguments are its inputs."""

    name: str
    args: tuple[Arg, ...]


@dataclass(frozen=True)
class Stage(Node):
    """A layer applied to a piped or current value: ``dense(5)``, ``relu``."""

    name: str
    args: tuple[Arg, ...]
    parens: bool = False


@dataclass(frozen=True)
class BinOp(Node):
    """An infix operation ``left op right``; ``op`` is one of ``+ - * / @``.
    ``op_span`` is where the operator itself is written (for error messages)."""

    op: str
    left: Expr
    right: Expr
    op_span: Span | None = field(default=None, compare=False, kw_only=True)


@dataclass(frozen=True)
class Neg(Node):
    """``-value`` for a tensor (a negated literal is folded into the literal)."""

    value: Expr


@dataclass(frozen=True)
class Pipe(Node):
    value: Expr
    stage: Stage


Expr = Int | Float | Bool | String | Ref | ListExpr | Call | BinOp | Neg | Pipe


# -- statements ---------------------------------------------------------------------


@dataclass(frozen=True)
class InputDecl(Node):
    name: str
    dtype: str | None
    shape: ListExpr
    name_span: Span = field(compare=False, kw_only=True)


@dataclass(frozen=True)
class Output(Node):
    values: tuple[Expr, ...]


@dataclass(frozen=True)
class Assign(Node):
    targets: tuple[str, ...]
    value: Expr


@dataclass(frozen=True)
class Stack(Node):
    stage: Stage


@dataclass(frozen=True)
class Repeat(Node):
    """``repeat N { ... }``: the body's statements, ``count`` times in a row."""

    count: Expr
    body: tuple[Stmt, ...]


Stmt = InputDecl | Output | Assign | Stack | Repeat


# -- items --------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelDef(Node):
    name: str
    body: tuple[Stmt, ...]
    name_span: Span = field(compare=False, kw_only=True)


@dataclass(frozen=True)
class BlockDef(Node):
    name: str
    params: tuple[str, ...]
    body: tuple[Stmt, ...]
    name_span: Span = field(compare=False, kw_only=True)


@dataclass(frozen=True)
class Setting(Node):
    key: str
    args: tuple[Arg, ...]
    key_span: Span = field(compare=False, kw_only=True)


@dataclass(frozen=True)
class TrainDef(Node):
    name: str
    settings: tuple[Setting, ...]
    name_span: Span = field(compare=False, kw_only=True)


Item = ModelDef | BlockDef | TrainDef


@dataclass(frozen=True)
class Comment:
    line: int
    col: int
    text: str


@dataclass(frozen=True)
class File:
    items: tuple[Item, ...]
    comments: tuple[Comment, ...] = field(default=(), compare=False)
