"""Binding call arguments to typed IR fields, with errors that say what was expected.

Conversion is driven by each field's annotation: an ``int`` field takes an integer
literal (never ``true``), a ``float`` field takes any number, a ``Literal`` takes one
of its names, and a union of specs (initializers, losses, optimizers, ...) takes a
spec's name with optional arguments, such as ``normal(0, 0.01)``.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Literal, TypeGuard, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo

from nnc.dsl import ast
from nnc.dsl.printer import expr_text
from nnc.errors import ArgumentError, Span, did_you_mean
from nnc.ir.space import DISTRIBUTIONS
from nnc.ir.training import TEXT
from nnc.ir.types import FLOAT32_MAX

# Fields that the DSL never sets through arguments.
OP_INTERNAL = frozenset({"op", "name", "inputs", "outs", "span"})
SPEC_INTERNAL = frozenset({"kind", "span", "setting_spans"})

Resolver = Callable[[ast.Ref], ast.Expr | None]

# Given a search distribution written where a value goes (its call, the annotation of
# the field it fills, a phrase for that field, and its label such as
# ``dense_1.units``), the expression that stands for it this time: a sampled value, or
# the value ``nnc check`` tries (see nnc.dsl.space).
Chooser = Callable[[ast.Call, Any, str, str], ast.Expr]


class Binder:
    """Converts AST argument values for one call site.

    ``resolve`` maps a bare name to the value of a block parameter (or None), so that
    ``conv2d(c, 3)`` inside ``block residual(c)`` binds ``filters`` to the argument of
    the block instance. ``choose`` stands in for the search distributions met on the
    way; without it, a distribution is an error (only ``nnc search`` and ``nnc check``
    take them). ``path`` names the value being bound (``dense_1``, ``units``), which
    labels the distributions.
    """

    def __init__(
        self,
        resolve: Resolver | None = None,
        choose: Chooser | None = None,
        float32: bool = False,
    ):
        self.resolve = resolve or (lambda ref: None)
        self.choose = choose
        # A model's numbers become float32 values: larger ones are refused. A recipe's
        # (learning rates, schedules) are float64 in the training driver.
        self.float32 = float32
        self.path: list[str] = []

    # -- public ------------------------------------------------------------------

    def bind(
        self,
        cls: type[BaseModel],
        args: Sequence[ast.Arg],
        what: str,
        span: Span,
        fixed: dict[str, Any] | None = None,
        sugar: Sequence[str] = (),
    ) -> Any:
        """Construct ``cls`` from positional and keyword arguments. ``sugar`` names
        the arguments the caller takes itself (``activation``, ``name``): an unknown
        argument's error lists them too, and may suggest them."""
        internal = OP_INTERNAL if "op" in cls.model_fields else SPEC_INTERNAL
        fields = {k: f for k, f in cls.model_fields.items() if k not in internal}
        positional: tuple[str, ...] = getattr(cls, "positional", ())
        values: dict[str, Any] = {}
        arg_spans: dict[str, Span] = {}
        n_pos = 0
        for arg in args:
            if arg.name is None:
                if n_pos >= len(positional):
                    raise ArgumentError(
                        f"{what} takes {_count(len(positional), 'positional argument')}"
                        + (f" ({', '.join(positional)})" if positional else "")
                        + f". Received: {_count(n_pos + 1, 'positional argument')}",
                        arg.span,
                        hint=f"name the argument: {what}(..., key = value)"
                        if fields and positional != tuple(fields)
                        else None,
                    )
                key = positional[n_pos]
                n_pos += 1
            else:
                key = arg.name
                if key not in fields:
                    known = [*fields, *sugar]
                    raise ArgumentError(
                        f"{what} has no argument '{key}'. Arguments: {', '.join(known) or 'none'}",
                        arg.span,
                        hint=did_you_mean(key, known),
                    )
            if key in values:
                raise ArgumentError(f"{what}: argument '{key}' is given twice", arg.span)
            with self.at(key):
                values[key] = self.convert(
                    arg.value, field_annotation(fields[key]), f"{what}: argument '{key}'", key
                )
            arg_spans[key] = arg.span
        return construct(cls, {**values, **(fixed or {})}, what, span, arg_spans)

    @contextmanager
    def at(self, label: str) -> Iterator[None]:
        """Bind what follows as part of ``label`` (a node's name, a field, a setting)."""
        self.path.append(label)
        try:
            yield
        finally:
            self.path.pop()

    def sample(self, expr: ast.Expr, annotation: Any, where: str) -> ast.Expr:
        """``expr``, or the expression that stands for it when it is a search
        distribution (``choice(64, 128)``) in a place that takes a value of
        ``annotation``. A spec that shares a distribution's name is no distribution
        where the spec fits: ``init = uniform(-0.1, 0.1)`` is an initializer."""
        if not is_distribution(expr, annotation):
            return expr
        if self.choose is None:
            raise DistributionRefused(
                f"{where}: {render(expr)} is a search distribution; this command takes "
                "plain values",
                expr.span,
                hint="sample the space with 'nnc search FILE' ('nnc check FILE' checks it)",
            )
        return self.choose(expr, annotation, where, ".".join(self.path))

    def fits(self, expr: ast.Expr, annotation: Any) -> bool:
        """Whether a plain value converts to ``annotation`` (no distributions)."""
        try:
            self._convert(expr, annotation)
        except _Mismatch:
            return False
        return True

    def convert(self, expr: ast.Expr, annotation: Any, where: str, key: str = "") -> Any:
        """An AST value as the Python value a field of type ``annotation`` takes."""
        expr = self._deref(self.sample(self._deref(expr), annotation, where))
        try:
            return self._convert(expr, annotation)
        except _Mismatch:
            raise ArgumentError(
                f"{where} expects {describe(annotation)}. Received: "
                f"{key + '=' if key else ''}{render(expr)}",
                expr.span,
                hint=_suggest(expr, annotation),
            ) from None

    # -- conversion ----------------------------------------------------------------

    def _convert(self, expr: ast.Expr, ann: Any) -> Any:
        text = _takes_text(ann)
        ann = _strip(ann)
        origin = get_origin(ann)
        if origin in (Union, types.UnionType):
            options = [o for o in get_args(ann) if o is not type(None)]
            specs = [o for o in options if _is_spec_union(o) or _is_spec(o)]
            if specs and isinstance(expr, ast.Ref | ast.Call):
                kinds = _kinds(ann)
                if expr.name in kinds:
                    return self._spec(expr, kinds[expr.name])
            for option in options:
                try:
                    return self._convert(expr, option)
                except _Mismatch:
                    continue
            raise _Mismatch
        if _is_spec_union(ann) or _is_spec(ann):
            kinds = _kinds(ann)
            if not isinstance(expr, ast.Ref | ast.Call) or expr.name not in kinds:
                raise _Mismatch
            return self._spec(expr, kinds[expr.name])
        if origin is Literal:
            choices = get_args(ann)
            value: Any
            # A choice is written as a name (padding = same), never as a string.
            if isinstance(expr, ast.Ref):
                value = expr.name
            elif isinstance(expr, ast.Int):
                value = expr.value
            else:
                raise _Mismatch
            if value not in choices:
                raise _Mismatch
            return value
        if origin is tuple:
            item_types = get_args(ann)
            element = item_types[0] if item_types else Any
            if isinstance(expr, ast.Int) and element is not Any:
                return self._convert(expr, element)
            if not isinstance(expr, ast.ListExpr):
                raise _Mismatch
            if len(item_types) == 2 and item_types[1] is Ellipsis:
                return tuple(self._item(i, element) for i in expr.items)
            if len(expr.items) != len(item_types):
                raise _Mismatch
            return tuple(self._item(i, t) for i, t in zip(expr.items, item_types, strict=True))
        if ann is bool:
            if isinstance(expr, ast.Bool):
                return expr.value
            raise _Mismatch
        if ann is int:
            if isinstance(expr, ast.Int):
                return expr.value
            raise _Mismatch
        if ann is float:
            if isinstance(expr, ast.Int | ast.Float):
                value = float(expr.value)
                if self.float32 and abs(value) > FLOAT32_MAX:
                    # Every model runs in float32: the value would become infinite.
                    raise ArgumentError(
                        f"{render(expr)} does not fit float32 (largest finite value "
                        f"{FLOAT32_MAX:.8g})",
                        expr.span,
                    )
                return value
            raise _Mismatch
        if ann is str:
            if isinstance(expr, ast.Ref):
                return expr.name
            if isinstance(expr, ast.String) and text:
                return expr.value
            raise _Mismatch
        raise _Mismatch

    def _item(self, expr: ast.Expr, annotation: Any) -> Any:
        """A list item (``kernel = [choice(3, 5), 3]``): its own value, or a draw."""
        where = f"{'.'.join(self.path) or 'a list'}: an item"
        chosen = self.sample(self._deref(expr), annotation, where)
        return self._convert(self._deref(chosen), annotation)

    def _deref(self, expr: ast.Expr) -> ast.Expr:
        if isinstance(expr, ast.Ref):
            bound = self.resolve(expr)
            if bound is not None:
                return bound
        return expr

    def _spec(self, expr: ast.Ref | ast.Call, cls: type[BaseModel]) -> Any:
        args = expr.args if isinstance(expr, ast.Call) else ()
        return self.bind(cls, args, _kind_of(cls), expr.span)


def is_distribution(expr: ast.Expr, annotation: Any = Any) -> TypeGuard[ast.Call]:
    """Whether ``expr`` is a search distribution where a value of ``annotation`` goes."""
    return (
        isinstance(expr, ast.Call)
        and expr.name in DISTRIBUTIONS
        and expr.name not in _kinds(annotation)
    )


class DistributionRefused(ArgumentError):
    """A search distribution where only plain values go (lowering without a chooser)."""


class _Mismatch(Exception):
    """Internal: this value does not fit this annotation."""


def construct(
    cls: type[BaseModel],
    values: dict[str, Any],
    what: str,
    span: Span,
    arg_spans: dict[str, Span] | None = None,
) -> Any:
    """``cls(**values)``, turning pydantic's complaints into an :class:`ArgumentError`."""
    try:
        return cls(**values)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = [str(p) for p in err.get("loc", ())]
        field = loc[0] if loc else ""
        where = (arg_spans or {}).get(field, span)
        if err.get("type") == "missing":
            raise ArgumentError(f"{what}: missing required argument '{field}'", span) from None
        message = err.get("msg", "invalid value")
        message = message.removeprefix("Value error, ").removeprefix("Input ")
        if not field:  # a rule over several arguments: show the arguments given
            given = ", ".join(
                f"{k}={_show(v)}"
                for k, v in values.items()
                if k not in OP_INTERNAL and k not in SPEC_INTERNAL
            )
            raise ArgumentError(
                f"{what}: {_lower_first(message)}. Received: {given}", span
            ) from None
        received = values.get(field, err.get("input"))
        about = f"argument '{field}' " if field else ""
        raise ArgumentError(
            f"{what}: {about}{_lower_first(message)}. Received: "
            f"{field + '=' if field else ''}{_show(received)}",
            where,
        ) from None


def describe(annotation: Any) -> str:
    """A phrase for what an annotation accepts, for error messages."""
    ann = _strip(annotation)
    origin = get_origin(ann)
    if _is_spec_union(ann) or _is_spec(ann):
        names = sorted(_kinds(ann))
        shown = ", ".join(names[:6]) + (", ..." if len(names) > 6 else "")
        return f"one of {shown}"
    if origin in (Union, types.UnionType):
        parts = [describe(o) for o in get_args(ann) if o is not type(None)]
        return " or ".join(dict.fromkeys(parts))
    if origin is Literal:
        return "one of " + ", ".join(str(c) for c in get_args(ann))
    if origin is tuple:
        args = get_args(ann)
        if len(args) == 2 and args[1] is Ellipsis:
            return "an integer or a list of integers" if _strip(args[0]) is int else "a list"
        return f"a list of {len(args)} values"
    if ann is str:
        return "a name or a string" if _takes_text(annotation) else "a name"
    return {
        bool: "true or false",
        int: "an integer",
        float: "a number",
    }.get(ann, str(ann))


def render(expr: ast.Expr) -> str:
    """Source-like text of an AST value (for "Received: ...")."""
    return expr_text(expr)


def _suggest(expr: ast.Expr, annotation: Any) -> str | None:
    name = _name_of(expr) if isinstance(expr, ast.Ref | ast.Call) else None
    if name is None and isinstance(expr, ast.String):
        name = expr.value
    if name is None:
        return None
    ann = _strip(annotation)
    choices: list[str] = []
    if _is_spec_union(ann) or _is_spec(ann) or get_origin(ann) in (Union, types.UnionType):
        choices = list(_kinds(ann))
    for option in get_args(ann) if get_origin(ann) in (Union, types.UnionType) else (ann,):
        if get_origin(_strip(option)) is Literal:
            choices += [str(c) for c in get_args(_strip(option))]
    return did_you_mean(name, choices) if choices else None


def field_annotation(info: FieldInfo) -> Any:
    """A field's annotation as written: pydantic moves a top-level ``Annotated``
    marker into the field's metadata, where the binder would not see it."""
    if TEXT in info.metadata:
        return typing.Annotated[info.annotation, TEXT]
    return info.annotation


def _takes_text(ann: Any) -> bool:
    """Whether a ``str`` field takes a string literal (a file path, a CSV column):
    ``Annotated[str, TEXT]``. Other ``str`` fields take names only."""
    return get_origin(ann) is typing.Annotated and TEXT in get_args(ann)[1:]


def _strip(ann: Any) -> Any:
    while get_origin(ann) is typing.Annotated:
        ann = get_args(ann)[0]
    return ann


def _is_spec(ann: Any) -> bool:
    return isinstance(ann, type) and issubclass(ann, BaseModel) and "kind" in ann.model_fields


def _is_spec_union(ann: Any) -> bool:
    ann = _strip(ann)
    if get_origin(ann) not in (Union, types.UnionType):
        return False
    members = [_strip(o) for o in get_args(ann) if o is not type(None)]
    return bool(members) and all(_is_spec(m) or _is_spec_union(m) for m in members)


def _kinds(ann: Any) -> dict[str, type[BaseModel]]:
    ann = _strip(ann)
    if _is_spec(ann):
        return {_kind_of(ann): ann}
    out: dict[str, type[BaseModel]] = {}
    for option in get_args(ann):
        option = _strip(option)
        if option is type(None):
            continue
        if _is_spec(option) or _is_spec_union(option):
            out.update(_kinds(option))
    return out


def _kind_of(cls: type[BaseModel]) -> str:
    return str(cls.model_fields["kind"].default)


def _name_of(expr: ast.Expr) -> str | None:
    if isinstance(expr, ast.Ref | ast.Call):
        return expr.name
    return None


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:]


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple | list):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    return str(value)
