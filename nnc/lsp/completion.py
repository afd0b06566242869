"""Completion from the text before the cursor, so it works while the file does not
parse (which, while typing, is most of the time).

A small scanner skips comments and strings and tracks the open braces (which
``model``, ``block`` or ``train`` the cursor is in) and parentheses (whose call's
arguments are being written). What is offered follows from that:

- at the top level: ``model``, ``block``, ``train``;
- in a model or block body: layer names, the file's blocks and models, ``input`` and
  ``output``;
- inside a layer's parentheses: its argument names, and after ``key =`` the values
  that argument takes (``same``, ``he_normal``, an activation);
- in a train body: the recipe keys at the start of a line, the values a key takes
  after it (``adam``, ``cross_entropy``, a data set, a model), and argument names
  inside ``adam(...)``.

>>> [c.label for c in complete("model M {\\n    input x: [4]\\n    den", 3, 8)]
['dense']
"""

from __future__ import annotations

import re
import types
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel

from nnc.dsl.bind import OP_INTERNAL, SPEC_INTERNAL
from nnc.ir.ops import OPS
from nnc.ir.training import CdRecipe, GanRecipe, Recipe

_WORD_END = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_HEADER = re.compile(r"\b(model|block|train)\s+([A-Za-z_][A-Za-z0-9_]*)[^{}]*\Z")
_DEFINITION = re.compile(
    r"^\s*(model|block)\s+([A-Za-z_][A-Za-z0-9_]*)\s*(?:\(([^)]*)\))?", re.MULTILINE
)
_RECIPE_INTERNAL = frozenset({"kind", "name", "span", "setting_spans"})
LAYER_SUGAR = ("activation", "name")


@dataclass(frozen=True)
class Completion:
    label: str
    kind: str  # "layer", "model", "block", "keyword", "argument", "value", "setting"
    detail: str = ""


@dataclass
class _Open:
    char: str  # "{" or "("
    name: str  # the item kind for "{" (model, block, train), the callee for "("
    title: str = ""  # the item's name for "{"


def _scan(before: str) -> list[_Open]:
    """The brackets still open at the end of ``before``, comments and strings skipped."""
    stack: list[_Open] = []
    i, n = 0, len(before)
    clean: list[str] = []  # the text without comments or strings, for the headers
    while i < n:
        ch = before[i]
        if ch == "#":
            end = before.find("\n", i)
            i = n if end < 0 else end
            continue
        if ch == '"':
            end = i + 1
            while end < n and before[end] != '"':
                end += 2 if before[end] == "\\" else 1
            clean.append('""')
            i = end + 1
            continue
        if ch == "{":
            head = _HEADER.search("".join(clean))
            stack.append(_Open("{", head.group(1), head.group(2)) if head else _Open("{", ""))
        elif ch == "(":
            callee = _WORD_END.search("".join(clean).rstrip())
            stack.append(_Open("(", callee.group() if callee else ""))
        elif ch in "})" and stack:
            stack.pop()
        clean.append(ch)
        i += 1
    return stack


def _choices(annotation: Any) -> list[str]:
    """The words an annotation accepts: its literals and the ``kind`` of each spec."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _choices(get_args(annotation)[0])
    if origin is Literal:
        return [a for a in get_args(annotation) if isinstance(a, str)]
    if origin in (Union, types.UnionType):
        return [c for a in get_args(annotation) for c in _choices(a)]
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        kind = annotation.model_fields.get("kind")
        if kind is not None and isinstance(kind.default, str):
            return [kind.default]
    return []


def _specs(annotation: Any) -> dict[str, type[BaseModel]]:
    """The spec classes of an annotation by their ``kind``."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _specs(get_args(annotation)[0])
    if origin in (Union, types.UnionType):
        return {k: c for a in get_args(annotation) for k, c in _specs(a).items()}
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        kind = annotation.model_fields.get("kind")
        if kind is not None and isinstance(kind.default, str):
            return {kind.default: annotation}
    return {}


def recipe_fields() -> dict[str, Any]:
    """Every recipe key (supervised, GAN and contrastive divergence) with its
    annotation; a key whose kinds differ takes them all (``optimizer``: adam, ...,
    cd)."""
    fields: dict[str, Any] = {}
    for cls in (Recipe, GanRecipe, CdRecipe):
        for key, info in cls.model_fields.items():
            if key in _RECIPE_INTERNAL:
                continue
            known = fields.get(key)
            if known is None:
                fields[key] = info.annotation
            elif _specs(info.annotation).keys() - _specs(known).keys():
                fields[key] = known | info.annotation
    return fields


def _layer_items() -> list[Completion]:
    return [
        Completion(name, "layer", cls.summary or cls.category)
        for name, cls in OPS.items()
        if name != "call"
    ]


def _arguments(cls: type[BaseModel], internal: frozenset[str], sugar: tuple[str, ...]) -> list:
    items = [
        Completion(k, "argument", str(getattr(f.annotation, "__name__", "") or ""))
        for k, f in cls.model_fields.items()
        if k not in internal
    ]
    return items + [Completion(s, "argument") for s in sugar]


def _definitions(text: str) -> tuple[list[str], dict[str, list[str]]]:
    """The file's model names, and its block names with their parameters."""
    models: list[str] = []
    blocks: dict[str, list[str]] = {}
    for kind, name, params in _DEFINITION.findall(text):
        if kind == "model":
            models.append(name)
        else:
            blocks[name] = [p.strip() for p in params.split(",") if p.strip()]
    return models, blocks


def _value_items(annotation: Any, key: str, models: list[str]) -> list[Completion]:
    if key in ("model", "generator", "discriminator"):
        return [Completion(m, "model") for m in models]
    if key in ("data", "validation"):
        from nnc.ir.datasets import CATALOG

        return [Completion(n, "value", info.description) for n, info in CATALOG.items()]
    return [Completion(c, "value") for c in dict.fromkeys(_choices(annotation))]


def _in_parens(callee: str, train: bool, line_before: str, models: list[str], blocks: dict) -> list:
    key = re.search(r"([A-Za-z_][A-Za-z0-9_]*)\s*=\s*[A-Za-z_0-9]*\Z", line_before)
    if callee in OPS:
        cls = OPS[callee]
        if key is not None:
            if key.group(1) == "activation":
                return [
                    Completion(n, "layer") for n, c in OPS.items() if c.category == "activation"
                ]
            field = cls.model_fields.get(key.group(1))
            return [] if field is None else _value_items(field.annotation, key.group(1), models)
        sugar = LAYER_SUGAR if cls.category == "layer" else ("name",)
        return _arguments(cls, OP_INTERNAL, sugar) + _layer_items()
    if callee in blocks:
        return [Completion(p, "argument") for p in blocks[callee]]
    if train:
        specs: dict[str, type[BaseModel]] = {}
        for annotation in recipe_fields().values():
            specs.update(_specs(annotation))
        if callee in specs:
            spec = specs[callee]
            if key is not None:
                field = spec.model_fields.get(key.group(1))
                return [] if field is None else _value_items(field.annotation, "", models)
            return _arguments(spec, SPEC_INTERNAL | {"kind"}, ())
    return _layer_items()


def complete(text: str, line: int, col: int) -> list[Completion]:
    """What may be written at (line, col) (1-based, in characters), filtered by the
    word being typed there."""
    lines = text.split("\n")
    if not 1 <= line <= len(lines):
        return []
    line_before = lines[line - 1][: col - 1]
    before = "\n".join([*lines[: line - 1], line_before])
    typed = _WORD_END.search(line_before)
    prefix = typed.group() if typed else ""
    stack = _scan(before)
    models, blocks = _definitions(text)
    braces = [o for o in stack if o.char == "{"]
    item = braces[-1] if braces else None
    items: list[Completion]
    if stack and stack[-1].char == "(":
        items = _in_parens(
            stack[-1].name, item is not None and item.name == "train", line_before, models, blocks
        )
    elif item is None:
        items = [Completion(k, "keyword") for k in ("model", "block", "train")]
    elif item.name == "train":
        items = _train_items(line_before, prefix, models)
    else:
        items = _layer_items()
        items += [Completion(b, "block", f"block({', '.join(p)})") for b, p in blocks.items()]
        items += [
            Completion(m, "model", "a model used as a layer") for m in models if m != item.title
        ]
        items += [Completion(k, "keyword") for k in ("input", "output")]
    seen: set[str] = set()
    out = []
    for c in items:
        if c.label.startswith(prefix) and c.label not in seen:
            seen.add(c.label)
            out.append(c)
    return out


def _train_items(line_before: str, prefix: str, models: list[str]) -> list[Completion]:
    fields = recipe_fields()
    head = line_before[: len(line_before) - len(prefix)]
    if not head.strip():
        return [Completion(k, "setting") for k in fields]
    key = re.match(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s", head)
    if key is None or key.group(1) not in fields:
        return []
    return _value_items(fields[key.group(1)], key.group(1), models)
