"""IR -> syntax tree, so that any program (parsed, built in Python, imported from
ONNX or rewritten by passes) can be written as ``.nn`` text.

The guarantee, tested on every example: ``parse(format(p)) == p``.

A model whose nodes form a single chain is written as a stack of layers; any other
graph is written with one named assignment per node. Attributes equal to their
defaults are left out.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from nnc.dsl import ast
from nnc.dsl.lower import snake_case
from nnc.dsl.printer import expr_text
from nnc.errors import Span
from nnc.ir.base import Op
from nnc.ir.ops.arith import ConstantTensor, Neg, _Broadcasting
from nnc.ir.ops.graph import Call
from nnc.ir.ops.linalg import Matmul
from nnc.ir.program import Model, Program
from nnc.ir.training import (
    BinaryCrossEntropy,
    CdRecipe,
    CrossEntropy,
    DataFile,
    Dataset,
    GanRecipe,
    Recipe,
    TextData,
)

NOWHERE = Span(file="<ir>", line=0, col=0, end_line=0, end_col=0)

# Attributes that accept one int for "the same in every spatial dim".
_BROADCAST = frozenset({"kernel", "stride", "dilation", "size", "output_padding"})


def program_to_ast(program: Program, resolved: bool = False) -> ast.File:
    """The program as a syntax tree; with ``resolved``, every recipe setting and every
    argument of a recipe's specs is written, defaults included (what a run used)."""
    items: list[ast.Item] = [model_to_ast(m) for m in program.models.values()]
    items += [recipe_to_ast(r, resolved) for r in program.recipes.values()]
    return ast.File(items=tuple(items))


def model_to_ast(model: Model) -> ast.ModelDef:
    body: list[ast.Stmt] = [
        ast.InputDecl(
            name=i.name,
            dtype=None if i.type.dtype == "float32" else i.type.dtype,
            shape=ast.ListExpr(items=tuple(_dim(d) for d in i.type.shape), span=NOWHERE),
            span=NOWHERE,
            name_span=NOWHERE,
        )
        for i in model.inputs
    ]
    body += _chain(model) if _is_chain(model) else _graph(model)
    return ast.ModelDef(name=model.name, body=tuple(body), span=NOWHERE, name_span=NOWHERE)


def _dim(d: int | str) -> ast.Expr:
    return ast.Int(value=d, span=NOWHERE) if isinstance(d, int) else ast.Ref(name=d, span=NOWHERE)


def _is_chain(model: Model) -> bool:
    if len(model.inputs) != 1 or len(model.outputs) != 1 or not model.nodes:
        return False
    previous = model.inputs[0].name
    for node in model.nodes:
        if node.inputs != (previous,) or isinstance(node, _Broadcasting):
            return False
        previous = node.name
    return model.outputs == (previous,)


def _chain(model: Model) -> list[ast.Stmt]:
    """Stack statements, naming a node explicitly only where auto-naming would differ."""
    explicit: set[str] = set()
    while True:
        taken = {i.name for i in model.inputs} | explicit
        counters: dict[str, int] = {}
        wrong: set[str] = set()
        for node in model.nodes:
            if node.name in explicit:
                continue
            base = snake_case(node.model) if isinstance(node, Call) else node.op
            k = counters.get(base, 0)
            while True:
                k += 1
                auto = f"{base}_{k}"
                if auto not in taken:
                    break
            counters[base] = k
            taken.add(auto)
            if auto != node.name:
                wrong.add(node.name)
        if not wrong:
            break
        explicit |= wrong
    return [
        ast.Stack(stage=_stage(node, (), node.name in explicit), span=NOWHERE)
        for node in model.nodes
    ]


def _graph(model: Model) -> list[ast.Stmt]:
    used = {i.name for i in model.inputs} | {n.name for n in model.nodes}
    aliases: dict[str, str] = {}
    stmts: list[ast.Stmt] = []

    def ref(value: str) -> ast.Expr:
        return ast.Ref(name=aliases.get(value, value), span=NOWHERE)

    for node in model.nodes:
        inputs = tuple(ref(v) for v in node.inputs)
        value: ast.Expr
        if isinstance(node, _Broadcasting | ConstantTensor):
            value = arith_expr(node, inputs)
        elif isinstance(node, Neg):
            value = ast.Neg(value=inputs[0], span=NOWHERE)
        elif isinstance(node, Matmul):
            value = ast.BinOp(op="@", left=inputs[0], right=inputs[1], span=NOWHERE)
        else:
            stage = _stage(node, inputs, explicit_name=False)
            value = ast.Call(name=stage.name, args=stage.args, span=NOWHERE)
        targets = [node.name]
        if isinstance(node, Call):
            n_out = len(node.outs) if node.outs else 1
            for k in range(1, n_out):
                alias = _unique(f"{node.name}_out{k}", used)
                aliases[f"{node.name}:{k}"] = alias
                targets.append(alias)
        stmts.append(ast.Assign(targets=tuple(targets), value=value, span=NOWHERE))
    stmts.append(ast.Output(values=tuple(ref(o) for o in model.outputs), span=NOWHERE))
    return stmts


def _unique(name: str, used: set[str]) -> str:
    candidate, k = name, 1
    while candidate in used:
        k += 1
        candidate = f"{name}_{k}"
    used.add(candidate)
    return candidate


def arith_expr(node: _Broadcasting | ConstantTensor, inputs: tuple[ast.Expr, ...]) -> ast.Expr:
    """An arithmetic node as the expression that writes it: ``a + b + c``, ``1.0 - g``,
    ``pow(x, 2.0)``, ``constant([[1.0, 0.5]])``."""
    if isinstance(node, ConstantTensor):
        literal = ast.Arg(name=None, value=_nested(node.nested()), span=NOWHERE)
        return ast.Call(name="constant", args=(literal,), span=NOWHERE)
    operands = list(inputs)
    if node.scalar is not None:
        number = ast.Float(value=node.scalar, span=NOWHERE)
        operands.insert(0 if node.scalar_side == "left" else len(operands), number)
    if not node.symbol:
        args = tuple(ast.Arg(name=None, value=o, span=NOWHERE) for o in operands)
        return ast.Call(name=node.op, args=args, span=NOWHERE)
    value = operands[0]
    for term in operands[1:]:
        value = ast.BinOp(op=node.symbol, left=value, right=term, span=NOWHERE)
    return value


def _nested(value: Any) -> ast.Expr:
    if isinstance(value, list):
        return ast.ListExpr(items=tuple(_nested(v) for v in value), span=NOWHERE)
    return ast.Float(value=value, span=NOWHERE)


def node_text(node: Op) -> str:
    """A node as the layer call that writes it, e.g. ``conv2d(16, 3, padding = same)``
    (for comments in generated code and for messages).

    >>> import nnc
    >>> node_text(nnc.load("examples/digits_cnn.nn").models["DigitsCNN"].nodes[0])
    'conv2d(16, 3, padding = same)'
    """
    if isinstance(node, ConstantTensor) and len(node.value) > 8:
        return f"constant(<{len(node.value)} values of shape {list(node.shape)}>)"
    plain_add = node.op == "add" and getattr(node, "scalar", None) is None  # as it always read
    if isinstance(node, _Broadcasting | ConstantTensor) and not plain_add:
        refs = tuple(ast.Ref(name=r, span=NOWHERE) for r in node.inputs)
        return expr_text(arith_expr(node, refs))
    return expr_text(_stage(node, (), explicit_name=False))


def _stage(node: Op, inputs: tuple[ast.Expr, ...], explicit_name: bool) -> ast.Stage:
    name = node.model if isinstance(node, Call) else node.op
    args = [ast.Arg(name=None, value=i, span=NOWHERE) for i in inputs]
    if not isinstance(node, Call):
        args += _attr_args(node, skip={"op", "name", "inputs", "outs", "span"})
    if explicit_name:
        args.append(ast.Arg(name="name", value=ast.Ref(name=node.name, span=NOWHERE), span=NOWHERE))
    return ast.Stage(name=name, args=tuple(args), span=NOWHERE)


def _attr_args(
    obj: BaseModel,
    skip: set[str],
    keep: frozenset[str] = frozenset(),
    explicit: bool = False,
    by_position: bool | None = None,
) -> list[ast.Arg]:
    """Arguments for the fields of ``obj`` that differ from their defaults (every
    field, with ``explicit``): the leading ``positional`` fields by position, the rest
    by keyword (``by_position`` False: every one by keyword; by default, so when
    ``explicit``: ``adam(lr = 0.002, beta1 = 0.9, ...)`` reads better resolved)."""
    shown: dict[str, Any] = {}
    for key, info in type(obj).model_fields.items():
        if key in skip:
            continue
        value = getattr(obj, key)
        if explicit and value is None:
            continue  # an optional argument that was not given: nothing to resolve
        if (
            not explicit
            and key not in keep
            and not info.is_required()
            and value == info.get_default(call_default_factory=True, validated_data={})
        ):
            continue
        shown[key] = value
    out = []
    positional = not explicit if by_position is None else by_position
    for key in getattr(type(obj), "positional", ()) if positional else ():
        if key not in shown:
            break
        value = value_expr(shown.pop(key), key, explicit)
        out.append(ast.Arg(name=None, value=value, span=NOWHERE))
    out += [
        ast.Arg(name=k, value=value_expr(v, k, explicit), span=NOWHERE) for k, v in shown.items()
    ]
    return out


def value_expr(value: Any, key: str = "", explicit: bool = False) -> ast.Expr:
    """A Python attribute value as the expression that binds back to it (a spec with
    every argument written, with ``explicit``)."""
    if isinstance(value, bool):
        return ast.Bool(value=value, span=NOWHERE)
    if isinstance(value, int):
        return ast.Int(value=value, span=NOWHERE)
    if isinstance(value, float):
        return ast.Float(value=value, span=NOWHERE)
    if isinstance(value, str):
        if key != "path" and value.isidentifier():
            return ast.Ref(name=value, span=NOWHERE)
        return ast.String(value=value, span=NOWHERE)
    if isinstance(value, tuple):
        if value and key in _BROADCAST and len(set(value)) == 1:
            return value_expr(value[0])
        if key == "padding":
            half = len(value) // 2
            if len(set(value)) == 1:
                return value_expr(value[0])
            if value[:half] == value[half:] and half > 1:
                value = value[:half]
        return ast.ListExpr(items=tuple(value_expr(v) for v in value), span=NOWHERE)
    if isinstance(value, BaseModel) and "kind" in type(value).model_fields:
        args = _attr_args(value, skip={"kind"}, explicit=explicit)
        if not args:
            return ast.Ref(name=value.kind, span=NOWHERE)  # type: ignore[attr-defined]
        return ast.Call(name=value.kind, args=tuple(args), span=NOWHERE)  # type: ignore[attr-defined]
    raise TypeError(f"cannot write {value!r} as .nn")


def recipe_to_ast(recipe: Recipe | GanRecipe | CdRecipe, resolved: bool = False) -> ast.TrainDef:
    """A recipe as a ``train`` block: the settings that differ from their defaults, or
    with ``resolved`` every setting (and every argument of its specs)."""
    settings: list[ast.Setting] = []
    skip = {"kind", "name", "span", "setting_spans"}
    for key, info in type(recipe).model_fields.items():
        if key in skip:
            continue
        value = getattr(recipe, key)
        default = (
            None
            if info.is_required()
            else info.get_default(call_default_factory=True, validated_data={})
        )
        if key == "model" and value == recipe.name:
            continue
        shown = resolved or key == "optimizer"
        if not info.is_required() and value == default and not shown:
            continue
        if value is None or value == ():
            continue
        args = tuple(_setting_args(key, value, resolved))
        settings.append(ast.Setting(key=key, args=args, span=NOWHERE, key_span=NOWHERE))
    return ast.TrainDef(name=recipe.name, settings=tuple(settings), span=NOWHERE, name_span=NOWHERE)


def _setting_args(key: str, value: Any, explicit: bool = False) -> list[ast.Arg]:
    def positional(e: ast.Expr) -> ast.Arg:
        return ast.Arg(name=None, value=e, span=NOWHERE)

    if isinstance(value, Dataset):
        return [
            positional(ast.Ref(name=value.name, span=NOWHERE)),
            *_attr_args(value, skip={"kind", "name"}, explicit=explicit),
        ]
    if isinstance(value, DataFile):
        return [
            positional(ast.String(value=value.path, span=NOWHERE)),
            *_attr_args(value, skip={"kind", "path"}, explicit=explicit),
        ]
    if isinstance(value, TextData):
        first: ast.Expr = (
            ast.Ref(name=value.corpus, span=NOWHERE)
            if value.corpus is not None
            else ast.String(value=str(value.path), span=NOWHERE)
        )
        options = _attr_args(value, skip={"kind", "corpus", "path"}, explicit=explicit)
        return [positional(ast.Call(name="text", args=(positional(first), *options), span=NOWHERE))]
    if isinstance(value, CrossEntropy | BinaryCrossEntropy):
        # Always explicit: an omitted flag is resolved from the model when parsed.
        return [
            positional(
                ast.Call(
                    name=value.kind,
                    args=tuple(
                        _attr_args(
                            value, skip={"kind"}, keep=frozenset({"from_logits"}), explicit=explicit
                        )
                    ),
                    span=NOWHERE,
                )
            )
        ]
    if isinstance(value, tuple):
        return [positional(value_expr(v, explicit=explicit)) for v in value]
    if isinstance(value, BaseModel) and "kind" not in type(value).model_fields:
        # positionally when the positions say it all ("noise normal, 16"), else by name
        whole = set(getattr(type(value), "positional", ())) == set(type(value).model_fields)
        return _attr_args(value, skip=set(), explicit=explicit, by_position=whole) or [
            ast.Arg(name=k, value=value_expr(getattr(value, k), k), span=NOWHERE)
            for k in list(type(value).model_fields)[:1]
        ]
    return [positional(value_expr(value, key, explicit))]
