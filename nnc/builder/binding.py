"""Binding Python arguments to IR fields, with the errors the parser gives.

Spec-valued fields (initializers, losses, optimizers...) take a name
(``"he_normal"``) or an IR object; a bad value is an :class:`ArgumentError` that
names the argument and says what it received.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Sequence
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError

from nnc.errors import ArgumentError, NameResolutionError, did_you_mean
from nnc.ir.base import Op
from nnc.ir.ops import OPS, Node

INTERNAL = frozenset({"op", "name", "inputs", "outs", "span"})


def bind_positional(
    cls: type[Op], op: str, positional: Sequence[Any], attrs: dict[str, Any]
) -> dict[str, Any]:
    """Positional values bound to ``cls.positional``, merged with keywords; an unknown
    or repeated argument is an :class:`ArgumentError` with a hint."""
    fields = {k: f for k, f in cls.model_fields.items() if k not in INTERNAL}
    names = cls.positional
    if len(positional) > len(names):
        raise ArgumentError(
            f"{op} takes {len(names)} positional argument(s)"
            + (f" ({', '.join(names)})" if names else "")
            + f". Received: {len(positional)}",
            hint=f"name the argument: {op}(..., key=value)" if fields else None,
        )
    values: dict[str, Any] = dict(zip(names, positional, strict=False))
    for key, value in attrs.items():
        if key not in fields:
            raise ArgumentError(
                f"{op} has no argument '{key}'. Arguments: {', '.join(fields) or 'none'}",
                hint=did_you_mean(key, fields),
            )
        if key in values:
            raise ArgumentError(f"{op}: argument '{key}' is given twice")
        values[key] = value
    return {k: spec_value(v, fields[k].annotation) for k, v in values.items()}


def make_node(op: str, name: str, inputs: Sequence[str], **attrs: Any) -> Node:
    """An IR node of ``op`` from keyword attributes, converted and checked as the
    builder does (``init="he_normal"``; a bad value is an :class:`ArgumentError`).

    >>> make_node("conv2d", "stem", ["image"], filters=8, kernel=3).kernel
    (3, 3)
    """
    cls = OPS.get(op)
    if cls is None:
        raise NameResolutionError(f"unknown op '{op}'", hint=did_you_mean(op, OPS))
    values = bind_positional(cls, op, (), attrs)
    return construct(cls, op, {**values, "name": name, "inputs": tuple(inputs)})


def construct(cls: type[Op], op: str, values: dict[str, Any]) -> Node:
    """``cls(**values)``, with pydantic's complaint as an :class:`ArgumentError`."""
    try:
        return cls(**values)  # type: ignore[return-value]
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = [str(p) for p in err.get("loc", ())]
        key = loc[0] if loc else ""
        if err.get("type") == "missing":
            raise ArgumentError(f"{op}: missing required argument '{key}'") from None
        message = str(err.get("msg", "invalid value")).removeprefix("Value error, ")
        about = f"argument '{key}' " if key else ""
        received = values.get(key, err.get("input"))
        raise ArgumentError(
            f"{op}: {about}{message[:1].lower()}{message[1:]}. Received: "
            f"{key + '=' if key else ''}{received!r}"
        ) from None


def check_arity(node: Node) -> None:
    """The number of inputs the op takes, as shape inference checks it."""
    want = node.expected_inputs()
    n = len(node.inputs)
    bounds = type(node).arity_range
    if bounds is not None:
        if not bounds[0] <= n <= bounds[1]:
            raise ArgumentError(f"{node.op} takes {bounds[0]} to {bounds[1]} inputs. Received: {n}")
        return
    if want is None and n < 2:
        raise ArgumentError(f"{node.op} needs at least 2 inputs. Received: {n}")
    if want is not None and n != want:
        raise ArgumentError(f"{node.op} takes {want} input(s). Received: {n}")


def spec_kinds(annotation: Any) -> dict[str, type[BaseModel]]:
    """The spec classes (initializers, losses...) a field accepts, by kind name."""
    while get_origin(annotation) is typing.Annotated:
        annotation = get_args(annotation)[0]
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        kind = annotation.model_fields.get("kind")
        return {str(kind.default): annotation} if kind is not None else {}
    out: dict[str, type[BaseModel]] = {}
    if get_origin(annotation) in (Union, types.UnionType, tuple):
        for option in get_args(annotation):
            if option is not Ellipsis:
                out.update(spec_kinds(option))
    return out


def spec_value(value: Any, annotation: Any) -> Any:
    """A spec given by name (``"he_normal"``) as its IR object; other values as given."""
    kinds = spec_kinds(annotation)
    if not kinds:
        return value
    if isinstance(value, str) and value in kinds:
        return kinds[value]()
    if isinstance(value, list | tuple):
        return tuple(spec_value(v, annotation) for v in value)
    return value
