"""Lowering graph bodies: the statements of a model or a block instance -> IR nodes.

See :mod:`nnc.dsl.lower` for the naming rules.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from nnc.dsl import ast
from nnc.dsl.bind import Binder, is_distribution
from nnc.dsl.printer import expr_text
from nnc.errors import (
    ArgumentError,
    GraphError,
    NameResolutionError,
    NncError,
    ResourceError,
    Span,
    did_you_mean,
)
from nnc.ir.ops import ACTIVATIONS, OPS, Node
from nnc.ir.ops.arith import CALLED, INFIX, Add, ConstantTensor, Neg, check_float32
from nnc.ir.ops.graph import Call
from nnc.ir.ops.layout import Slice, split_slices
from nnc.ir.ops.linalg import Matmul
from nnc.ir.passes.validate import check_identifier
from nnc.ir.program import BlockInstance, Input
from nnc.ir.types import Dim, TensorType

if TYPE_CHECKING:
    from nnc.dsl.lower import _Lowerer

MAX_BLOCK_DEPTH = 32
MAX_NODES = 100_000
MAX_REPEAT = 10_000

# What a repeat count, a dim and a layer chosen from a list take (for a chooser).
RepeatCount = Annotated[int, "repeat count"]
ShapeDim = Annotated[int, "input dim"]
LayerChoice = Annotated[str, "layer"]


@dataclass
class BlockCheck:
    """A block instance's declared input shapes, verified after shape inference."""

    model: str
    block: str
    instance: str
    inputs: list[tuple[str, str, tuple[Dim, ...]]]  # (declared name, actual ref, pattern)
    span: Span


@dataclass
class SplitCheck:
    """A split's sizes, verified against its input's axis after shape inference."""

    model: str
    source: str
    axis: int
    sizes: tuple[int, ...]
    span: Span


class SplitArgs(BaseModel):
    """The arguments of ``split``, which lowers to one ``slice`` per output."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    axis: int = 0
    sizes: tuple[Annotated[int, Field(gt=0)], ...]

    positional: ClassVar[tuple[str, ...]] = ("axis", "sizes")


def snake_case(name: str) -> str:
    """``DigitsCNN`` -> ``digits_cnn``."""
    s = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", name)
    s = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", s)
    return s.lower()


@dataclass
class Graph:
    """The nodes of one model under construction, shared by its block instances."""

    nodes: list[Node] = field(default_factory=list)
    taken: set[str] = field(default_factory=set)
    emitted: set[str] = field(default_factory=set)
    blocks: list[BlockInstance] = field(default_factory=list)  # inner instances first


class Scope:
    """Lowers the statements of one model body or one block instance.

    Names bind like Python variables: a name refers to its latest binding, and may be
    bound again (``y = y |> relu``). A name used before any binding refers to its
    first binding further down, which is how a cycle can be written (and reported).
    """

    def __init__(
        self,
        lowerer: _Lowerer,
        model: str,
        graph: Graph,
        prefix: str = "",
        params: dict[str, ast.Expr] | None = None,
        bound_inputs: Sequence[str] | None = None,
        parent: Scope | None = None,
        block: str | None = None,
        instance: str = "",
    ):
        self.lw = lowerer
        self.model = model
        self.graph = graph
        self.prefix = prefix
        self.params = params or {}
        self.bound_inputs = list(bound_inputs) if bound_inputs is not None else None
        self.parent = parent
        self.block = block
        self.instance = instance  # the block instance this scope lowers ("" for a model)
        self.depth: int = 0 if parent is None else parent.depth + 1
        self.inputs: list[Input] = []
        self.block_inputs: list[tuple[str, str, tuple[Dim, ...]]] = []
        self.outputs: list[str] | None = None
        self.bound: dict[str, str] = {}
        self.declared: set[str] = set()
        self.forward: list[ast.Ref] = []
        self.counters: dict[str, int] = {}
        self.current: str | None = None
        self.split_names: list[str] | None = None
        self.binder = Binder(self._param_value, choose=lowerer.choose, float32=True)
        # Inside a block of another file (nnc's standard library): the call in the
        # spec, which every node and error of the instance is located at.
        self.site: Span | None = parent.site if parent is not None else None

    @property
    def nodes(self) -> list[Node]:
        return self.graph.nodes

    # -- statements -----------------------------------------------------------

    def run(self, body: Sequence[ast.Stmt]) -> None:
        self._prescan(body)
        for stmt in body:
            self._statement(stmt)
        for ref in self.forward:
            if self.prefix + ref.name not in self.graph.emitted:
                raise NameResolutionError(
                    f"'{ref.name}' is used before it is defined",
                    ref.span,
                    hint="only names bound to a layer's result can be used before their definition",
                )

    def _statement(self, stmt: ast.Stmt) -> None:
        if isinstance(stmt, ast.InputDecl):
            self._input(stmt)
        elif isinstance(stmt, ast.Stack):
            current = self.need_current(stmt.span)
            refs = self._apply(stmt.stage, [current], None)
            if stmt.stage.name == "split" and len(refs) != 1:
                raise GraphError(
                    f"split makes {len(refs)} outputs; assign them: a, b = x |> split(...)",
                    stmt.span,
                )
            self.current = refs[0]
        elif isinstance(stmt, ast.Assign):
            self._assign(stmt)
        elif isinstance(stmt, ast.Repeat):
            self._repeat(stmt)
        else:
            if self.outputs is not None:
                raise GraphError("outputs are declared twice", stmt.span)
            self.outputs = [self._value(v) for v in stmt.values]

    def _repeat(self, r: ast.Repeat) -> None:
        """``repeat N { ... }``: the body N times in a row, as if written out."""
        for stmt in r.body:
            if isinstance(stmt, ast.InputDecl | ast.Output):
                what = "an input" if isinstance(stmt, ast.InputDecl) else "the outputs"
                raise GraphError(
                    f"a repeat body cannot declare {what}; declare them outside it", stmt.span
                )
        with self.binder.at(self._fresh("repeat")):
            count = self.binder.convert(r.count, RepeatCount, "repeat: the count")
        if not 0 <= count <= MAX_REPEAT:
            raise ArgumentError(
                f"repeat takes a count from 0 to {MAX_REPEAT}. Received: {count}", r.count.span
            )
        for _ in range(count):
            for stmt in r.body:
                self._statement(stmt)

    def _prescan(self, body: Sequence[ast.Stmt]) -> None:
        """Collect the names bound in this body, and the names given with ``name = ...``,
        so auto-naming never takes them."""
        for stmt in body:
            if isinstance(stmt, ast.Repeat):
                self._prescan(stmt.body)
                continue
            names: list[tuple[str, Span]] = []
            if isinstance(stmt, ast.InputDecl):
                names = [(stmt.name, stmt.name_span)]
            elif isinstance(stmt, ast.Assign):
                names = [(t, stmt.span) for t in stmt.targets]
                if len(set(stmt.targets)) != len(stmt.targets):
                    raise NameResolutionError(
                        "a name is assigned twice in one statement", stmt.span
                    )
            for n, span in names:
                problem = check_identifier(n, "name")
                if problem:
                    raise NameResolutionError(problem, span)
                if n in self.params:
                    raise NameResolutionError(f"'{n}' is already a block parameter", span)
                if isinstance(stmt, ast.InputDecl) and n in self.declared:
                    raise NameResolutionError(f"duplicate input '{n}'", span)
                if n not in self.declared:
                    self.declared.add(n)
                    self.graph.taken.add(self.prefix + n)
            for stage in _stages(stmt):
                for a in stage.args:
                    if a.name == "name" and isinstance(a.value, ast.Ref):
                        self.graph.taken.add(self.prefix + a.value.name)

    def _input(self, d: ast.InputDecl) -> None:
        dims: list[Dim] = []
        for item in d.shape.items:
            value = self._param_value(item) if isinstance(item, ast.Ref) else None
            item = value if value is not None else item
            with self.binder.at(f"{self.prefix}{d.name}.shape"):
                item = self.binder.sample(item, ShapeDim, f"input '{d.name}': a dim")
            if isinstance(item, ast.Int) and item.value > 0:
                dims.append(item.value)
            elif isinstance(item, ast.Ref):
                dims.append(item.name)
            else:
                raise ArgumentError(
                    "a shape dim must be a positive integer or a symbol such as t. "
                    f"Received: {_text(item)}",
                    item.span,
                )
        dtype = d.dtype or "float32"
        if dtype not in ("float32", "int64"):
            raise ArgumentError(
                f"input dtype must be float32 or int64. Received: {dtype}",
                d.span,
                hint=did_you_mean(dtype, ["float32", "int64"]),
            )
        t = TensorType(dtype=dtype, shape=tuple(dims))
        if self.bound_inputs is None:
            self.inputs.append(Input(name=d.name, type=t, span=d.name_span))
            self.bound[d.name] = d.name
            self.current = d.name
            return
        index = len(self.block_inputs)
        if index >= len(self.bound_inputs):
            raise ArgumentError(
                f"block '{self.block}' declares more inputs than it was given "
                f"({len(self.bound_inputs)})",
                d.span,
            )
        actual = self.bound_inputs[index]
        self.bound[d.name] = actual
        self.block_inputs.append((d.name, actual, t.shape))
        self.current = actual

    def _assign(self, a: ast.Assign) -> None:
        if len(a.targets) == 1 and isinstance(a.value, ast.Ref):  # y = x: an alias
            ref = self._tensor(a.value)
            self.bound[a.targets[0]] = ref
            self.current = ref
            return
        final = self._binding_name(a.targets[0])
        if len(a.targets) > 1:  # a split names each of its slices after its target
            self.split_names = [final, *(self._binding_name(t) for t in a.targets[1:])]
        try:
            refs = self._values(a.value, final)
        finally:
            self.split_names = None
        if len(refs) != len(a.targets):
            raise GraphError(
                f"{len(a.targets)} name(s) for an expression with {len(refs)} output(s)", a.span
            )
        for target, ref in zip(a.targets, refs, strict=True):
            self.bound[target] = ref
        self.current = refs[0]

    def _binding_name(self, target: str) -> str:
        """The node name for a binding of ``target``: the name itself the first time,
        then ``<name>_2``, ``<name>_3``..."""
        name = self.prefix + target
        if target not in self.bound and name not in self.graph.emitted:
            return name
        k = 1
        while True:
            k += 1
            candidate = f"{name}_{k}"
            if candidate not in self.graph.taken:
                self.graph.taken.add(candidate)
                return candidate

    def need_current(self, span: Span) -> str:
        if self.current is None:
            raise GraphError("a layer needs an input: declare one first, e.g. input x: [4]", span)
        return self.current

    # -- expressions ------------------------------------------------------------

    def _value(self, expr: ast.Expr, final: str | None = None) -> str:
        return self._value_of(self._values(expr, final), expr)

    @staticmethod
    def _value_of(refs: list[str], expr: ast.Expr) -> str:
        if len(refs) != 1:
            raise GraphError(f"expected one tensor, got {len(refs)}", expr.span)
        return refs[0]

    def _values(self, expr: ast.Expr, final: str | None = None) -> list[str]:
        if isinstance(expr, ast.Ref):
            return [self._tensor(expr)]
        if isinstance(expr, ast.Pipe):
            # A chain `x |> a |> b ...` nests to the left: walk it in a loop, not by
            # recursion, so a chain of thousands of links lowers.
            pipes: list[ast.Pipe] = []
            inner: ast.Expr = expr
            while isinstance(inner, ast.Pipe):
                pipes.append(inner)
                inner = inner.value
            value = self._value(inner)
            for pipe in reversed(pipes[1:]):
                value = self._value_of(self._apply(pipe.stage, [value], None), pipe)
            return self._apply(pipes[0].stage, [value], final)
        if isinstance(expr, ast.BinOp) and expr.op in INFIX:
            return [self._infix_chain(expr, final)]
        if isinstance(expr, ast.Neg):
            value = self._value(expr.value)
            name = final or self._fresh("neg")
            self._emit(Neg(name=name, inputs=(value,), span=expr.span))
            return [name]
        if (
            isinstance(expr, ast.Call)
            and expr.name in CALLED
            and len(expr.args) == 2
            and all(a.name is None for a in expr.args)
        ):
            left, right = (a.value for a in expr.args)
            return [self._arith(expr.name, left, right, expr, final)]
        if isinstance(expr, ast.Call):
            stage = ast.Stage(name=expr.name, args=expr.args, span=expr.span)
            return self._apply(stage, [], final)
        if isinstance(expr, ast.BinOp) and expr.op == "@":
            operands = (self._value(expr.left), self._value(expr.right))
            name = final or self._fresh("matmul")
            self._emit(Matmul(name=name, inputs=operands, span=expr.span))
            return [name]
        raise GraphError(f"expected a tensor expression. Received: {_text(expr)}", expr.span)

    def _infix_chain(self, expr: ast.BinOp, final: str | None) -> str:
        """A left-nested chain of infix operators (``a - b * c - d ...``), lowered in a
        loop, not by recursion: a chain may have thousands of links. A run of ``+`` of
        tensors (``a + b + c``) is one add node."""
        spine: list[ast.BinOp] = []
        e: ast.Expr = expr
        while isinstance(e, ast.BinOp) and e.op in INFIX:
            spine.append(e)
            e = e.left
        spine.reverse()  # innermost first
        current: ast.Expr | str = e  # the chain so far: an operand, or a lowered ref
        terms: list[ast.Expr | str] = []  # a pending run of + of tensors
        for k, node in enumerate(spine):
            last = k == len(spine) - 1
            name = final if last else None
            if self._tensor_sum(node, current):
                terms = terms or [current]
                terms += _flatten_add(node.right, lambda t: self._scalar(t) is not None)
                if not last and self._tensor_sum(spine[k + 1], "run"):
                    continue  # the run goes on
                inputs = tuple(self._operand(t) for t in terms)
                current = name or self._fresh("add")
                self._emit(Add(name=current, inputs=inputs, span=node.op_span or node.span))
                terms = []
                continue
            current = self._arith(INFIX[node.op], current, node.right, node, name)
        assert isinstance(current, str)
        return current

    def _tensor_sum(self, node: ast.BinOp, left: ast.Expr | str) -> bool:
        return node.op == "+" and self._scalar(left) is None and self._scalar(node.right) is None

    def _operand(self, t: ast.Expr | str) -> str:
        return t if isinstance(t, str) else self._value(t)

    def _arith(
        self,
        op: str,
        left: ast.Expr | str,
        right: ast.Expr,
        expr: ast.BinOp | ast.Call,
        final: str | None,
    ) -> str:
        """A binary arithmetic node; a number on either side becomes its ``scalar``
        (``left`` may be lowered already: a ref)."""
        span = expr.op_span or expr.span if isinstance(expr, ast.BinOp) else expr.span
        numbers = self._scalar(left), self._scalar(right)
        if numbers[0] is not None and numbers[1] is not None:
            raise GraphError(
                f"{_text(expr)} computes a number, not a tensor: write the number itself, "
                "or constant(...) for a constant tensor",
                span,
            )
        fields: dict[str, Any] = {}
        inputs: tuple[str, ...]
        if numbers[0] is None and numbers[1] is None:
            inputs = (self._operand(left), self._operand(right))
        else:
            side = "left" if numbers[0] is not None else "right"
            number = numbers[0] if side == "left" else numbers[1]
            literal = left if side == "left" else right
            try:
                check_float32(float(number), "the number")  # type: ignore[arg-type]
            except ValueError as err:
                assert not isinstance(literal, str)
                raise ArgumentError(str(err), literal.span) from None
            inputs = (self._operand(right if side == "left" else left),)
            fields = {"scalar": float(number), "scalar_side": side}  # type: ignore[arg-type]
        name = final or self._fresh(op)
        self._emit(OPS[op](name=name, inputs=inputs, span=span, **fields))  # type: ignore[arg-type]
        return name

    def _scalar(self, expr: ast.Expr | str) -> float | None:
        """The number an operand stands for (a literal, a block parameter bound to one,
        a negated one), or None for a tensor (a lowered ref is one)."""
        if isinstance(expr, str):
            return None
        if isinstance(expr, ast.Ref) and expr.name not in self.bound:
            bound = self._param_value(expr)
            return self._scalar(bound) if bound is not None else None
        if isinstance(expr, ast.Int | ast.Float) and not isinstance(expr, ast.Bool):
            return float(expr.value)
        if isinstance(expr, ast.Neg):
            inner = self._scalar(expr.value)
            return None if inner is None else -inner
        return None

    def _constant(self, stage: ast.Stage, piped: list[str], final: str | None) -> list[str]:
        """``constant(<number or nested list>)``: a tensor node without inputs."""
        if piped:
            raise ArgumentError(
                "constant takes no tensor input: bind it, e.g. c = constant([1, 0.5])", stage.span
            )
        literal: ast.Expr | None = None
        name = final
        for arg in stage.args:
            if arg.name == "name" and isinstance(arg.value, ast.Ref):
                name = self.prefix + arg.value.name
            elif arg.name is None and literal is None:
                literal = arg.value
            else:
                raise ArgumentError(
                    "constant takes one number or nested list of numbers (and name = ...). "
                    f"Received: {_text(arg.value)}",
                    arg.span,
                )
        if literal is None:
            raise ArgumentError("constant needs a value, e.g. constant([1, 0.5])", stage.span)
        name = name or self._fresh("constant")
        value = self._literal(literal)
        try:
            node = ConstantTensor(name=name, inputs=(), value=value, span=stage.span)
        except ValidationError as err:
            message = str(err.errors()[0].get("msg", "invalid value")).removeprefix("Value error, ")
            raise ArgumentError(f"constant: {message}", literal.span) from None
        self._emit(node)
        return [name]

    def _literal(self, expr: ast.Expr) -> Any:
        """A constant's literal as nested Python lists of floats, each number checked."""
        if isinstance(expr, ast.Ref) and self._param_value(expr) is not None:
            return self._literal(self._param_value(expr))  # type: ignore[arg-type]
        if isinstance(expr, ast.ListExpr):
            return [self._literal(item) for item in expr.items]
        number = self._scalar(expr)
        if number is None or isinstance(expr, ast.Bool):
            raise ArgumentError(f"a constant holds numbers. Received: {_text(expr)}", expr.span)
        try:
            check_float32(number, "the constant value")
        except ValueError as err:
            raise ArgumentError(str(err), expr.span) from None
        return number

    def _tensor(self, ref: ast.Ref) -> str:
        name = ref.name
        if name in self.bound:
            return self.bound[name]
        if name in self.declared:
            self.forward.append(ref)
            return self.prefix + name
        if name in self.params:
            raise GraphError(f"'{name}' is a block parameter, not a tensor", ref.span)
        raise NameResolutionError(
            f"undefined name '{name}'", ref.span, hint=did_you_mean(name, self.declared)
        )

    def _is_tensor(self, expr: ast.Expr) -> bool:
        if isinstance(expr, ast.Ref):
            return expr.name not in self.params and expr.name in self.declared
        if isinstance(expr, ast.Call):
            return self._is_layer(expr.name)
        return isinstance(expr, ast.BinOp | ast.Neg | ast.Pipe)

    def _is_layer(self, name: str) -> bool:
        return (
            name in OPS
            or name == "split"
            or name in self.lw.block_defs
            or name in self.lw.model_defs
        )

    def _param_value(self, ref: ast.Ref) -> ast.Expr | None:
        return self.params.get(ref.name)

    # -- applying a layer -------------------------------------------------------

    def _apply(self, stage: ast.Stage, piped: list[str], final: str | None) -> list[str]:
        """Apply a layer, block or model to ``piped`` plus its leading tensor args."""
        call = ast.Call(name=stage.name, args=stage.args, span=stage.span)
        if is_distribution(call, LayerChoice):  # a layer drawn from a list: choice(relu, tanh)
            with self.binder.at(self._fresh("layer")):
                chosen = self.binder.sample(call, LayerChoice, "a layer")
            return self._apply(as_stage(chosen), piped, final)
        tensors: list[str] = list(piped)
        attrs: list[ast.Arg] = []
        explicit_name: str | None = None
        activation: ast.Expr | None = None
        for arg in stage.args:
            if arg.name is None and self._is_tensor(arg.value):
                if attrs:
                    raise ArgumentError(
                        "tensor inputs must come before the other arguments", arg.span
                    )
                tensors.append(self._value(arg.value))
            elif arg.name == "name":
                if not isinstance(arg.value, ast.Ref):
                    raise ArgumentError("'name' expects an identifier", arg.value.span)
                explicit_name = self.prefix + arg.value.name
            elif (
                arg.name == "activation"
                and stage.name in OPS
                and OPS[stage.name].category == "layer"
            ):
                activation = arg.value
            else:
                attrs.append(arg)
        if stage.name == "constant" and stage.name not in self.lw.block_defs:
            return self._constant(stage, tensors, explicit_name or final)
        if stage.name in self.lw.block_defs:
            return self._block(stage, tensors, attrs, explicit_name or final)
        if stage.name in self.lw.model_defs:
            if attrs:
                raise ArgumentError(
                    f"model '{stage.name}' takes tensors only. Received: {_text(attrs[0].value)}",
                    attrs[0].span,
                )
            callee = self.lw._model(stage.name)
            name = explicit_name or final or self._fresh(snake_case(stage.name))
            self._emit(Call(name=name, inputs=tuple(tensors), model=stage.name, span=stage.span))
            n_out = len(callee.outputs)
            return [name] + [f"{name}:{k}" for k in range(1, n_out)]
        if stage.name == "split":
            return self._split(stage, tensors, attrs, explicit_name or final)
        if stage.name not in OPS or OPS[stage.name] is Call:
            choices = [
                n for n in (*OPS, "split", *self.lw.block_defs, *self.lw.model_defs) if n != "call"
            ]
            raise NameResolutionError(
                f"unknown layer '{stage.name}'", stage.span, hint=did_you_mean(stage.name, choices)
            )
        name = explicit_name or (final if activation is None else None) or self._fresh(stage.name)
        with self.binder.at(name):
            node = self.binder.bind(
                OPS[stage.name],
                attrs,
                stage.name,
                stage.span,
                fixed={"name": name, "inputs": tuple(tensors), "span": stage.span},
                sugar=("activation", "name") if OPS[stage.name].category == "layer" else ("name",),
            )
            if activation is not None:
                with self.binder.at("activation"):
                    activation = self.binder.sample(activation, LayerChoice, "'activation'")
        self._emit(node)
        if activation is None:
            return [name]
        return self._activation(activation, name, final)

    def _split(
        self, stage: ast.Stage, tensors: list[str], attrs: list[ast.Arg], final: str | None
    ) -> list[str]:
        """``split(axis, sizes)``: one ``slice`` node per output, named after the
        assigned names; the sizes are checked against the axis after shape inference."""
        if len(tensors) != 1:
            raise ArgumentError(f"split takes 1 input. Received: {len(tensors)}", stage.span)
        with self.binder.at(final or "split"):
            args = self.binder.bind(SplitArgs, attrs, "split", stage.span)
        names = self.split_names
        if names is not None and len(names) != len(args.sizes):
            raise GraphError(
                f"split makes {len(args.sizes)} outputs (one per size in {list(args.sizes)}); "
                f"{len(names)} names are assigned",
                stage.span,
            )
        if names is None:
            first = [final] if final else []
            names = first + [self._fresh("split") for _ in range(len(args.sizes) - len(first))]
        for name, piece in zip(names, split_slices(args.axis, args.sizes, stage.span), strict=True):
            self._emit(Slice(name=name, inputs=(tensors[0],), span=stage.span, **piece))
        self.lw.split_checks.append(
            SplitCheck(self.model, tensors[0], args.axis, args.sizes, stage.span)
        )
        return names

    def _activation(self, expr: ast.Expr, source: str, final: str | None) -> list[str]:
        if isinstance(expr, ast.Ref):
            expr = self._param_value(expr) or expr
        if not isinstance(expr, ast.Ref | ast.Call) or expr.name not in ACTIVATIONS:
            name = expr.name if isinstance(expr, ast.Ref | ast.Call) else _text(expr)
            raise ArgumentError(
                f"'activation' expects an activation such as relu or leaky_relu(0.2). "
                f"Received: {name}",
                expr.span,
                hint=did_you_mean(name, ACTIVATIONS),
            )
        args = expr.args if isinstance(expr, ast.Call) else ()
        stage = ast.Stage(name=expr.name, args=args, span=expr.span)
        return self._apply(stage, [source], final)

    def _block(
        self, stage: ast.Stage, tensors: list[str], attrs: list[ast.Arg], instance: str | None
    ) -> list[str]:
        d = self.lw.block_defs[stage.name]
        if self.depth >= MAX_BLOCK_DEPTH:
            raise ResourceError(f"blocks nested deeper than {MAX_BLOCK_DEPTH} levels", stage.span)
        scope: Scope | None = self
        while scope is not None:
            if scope.block == d.name:
                raise GraphError(f"block '{d.name}' uses itself", stage.span)
            scope = scope.parent
        need = self.lw.block_sizes.at_least(d.name)
        if len(self.graph.nodes) + need > MAX_NODES:
            raise ResourceError(
                f"model '{self.model}' would have more than {MAX_NODES:,} nodes: this "
                f"instance of block '{d.name}' unfolds to at least {need:,}",
                stage.span,
            )
        instance = instance or self._fresh(d.name)
        params = self._block_args(d, attrs, stage.span, instance)
        inner = Scope(
            self.lw,
            model=self.model,
            graph=self.graph,
            prefix=instance + "_",
            params=params,
            bound_inputs=tensors,
            parent=self,
            block=d.name,
            instance=instance,
        )
        first = len(self.graph.nodes)
        if self.site is None and d.span.file != stage.span.file:
            inner.site = stage.span
        try:
            inner.run(d.body)
        except NncError as err:
            if inner.site is self.site:
                raise
            raise _at_the_call(err, d, stage.span) from None
        if len(inner.block_inputs) != len(tensors):
            raise ArgumentError(
                f"block '{d.name}' takes {len(inner.block_inputs)} input(s). "
                f"Received: {len(tensors)}",
                stage.span,
            )
        self.lw.checks.append(
            BlockCheck(self.model, d.name, instance, inner.block_inputs, stage.span)
        )
        if inner.outputs is not None:
            outputs = inner.outputs
        else:
            try:
                outputs = [inner.need_current(d.span)]
            except NncError as err:
                if inner.site is self.site:
                    raise
                raise _at_the_call(err, d, stage.span) from None
        self.graph.blocks.append(
            BlockInstance(
                name=instance,
                block=d.name,
                params=tuple(d.params),
                args=tuple(_text(params[p]) for p in d.params),
                inputs=tuple((name, actual) for name, actual, _ in inner.block_inputs),
                shapes=tuple(shape for _, _, shape in inner.block_inputs),
                outputs=tuple(outputs),
                nodes=tuple(n.name for n in self.graph.nodes[first:]),
                parent=self.instance,
            )
        )
        return outputs

    def _block_args(
        self, d: ast.BlockDef, attrs: list[ast.Arg], span: Span, instance: str
    ) -> dict[str, ast.Expr]:
        params: dict[str, ast.Expr] = {}
        n_pos = 0
        for arg in attrs:
            if arg.name is None:
                if n_pos >= len(d.params):
                    raise ArgumentError(
                        f"block '{d.name}' takes {len(d.params)} argument(s) "
                        f"({', '.join(d.params)}). Received: {n_pos + 1}",
                        arg.span,
                    )
                key = d.params[n_pos]
                n_pos += 1
            else:
                key = arg.name
                if key not in d.params:
                    raise ArgumentError(
                        f"block '{d.name}' has no parameter '{key}'",
                        arg.span,
                        hint=did_you_mean(key, d.params),
                    )
            if key in params:
                raise ArgumentError(f"block parameter '{key}' is given twice", arg.span)
            value = arg.value
            if isinstance(value, ast.Ref) and value.name in self.params:
                value = self.params[value.name]
            # A drawn argument is drawn once for the instance, whatever it is used for.
            with self.binder.at(f"{instance}.{key}"):
                value = self.binder.sample(value, Any, f"block '{d.name}': argument '{key}'")
            if isinstance(value, ast.Ref) and value.name in self.params:
                value = self.params[value.name]
            if isinstance(value, ast.String):
                # No setting of a layer takes a string: refused here, even where the
                # block leaves the parameter unused.
                raise ArgumentError(
                    f"block '{d.name}': argument '{key}' expects a number, a name or a list; "
                    f"strings are for file names in train recipes. Received: {_text(value)}",
                    value.span,
                )
            params[key] = value
        missing = [p for p in d.params if p not in params]
        if missing:
            raise ArgumentError(
                f"block '{d.name}' is missing argument(s): {', '.join(missing)}", span
            )
        return params

    # -- naming -----------------------------------------------------------------

    def _fresh(self, base: str) -> str:
        k = self.counters.get(base, 0)
        while True:
            k += 1
            name = f"{self.prefix}{base}_{k}"
            if name not in self.graph.taken:
                break
        self.counters[base] = k
        self.graph.taken.add(name)
        return name

    def _emit(self, node: Node) -> None:
        if self.site is not None:
            node = node.model_copy(update={"span": self.site})
        if len(self.graph.nodes) >= MAX_NODES:
            raise ResourceError(f"model '{self.model}' has more than {MAX_NODES} nodes", node.span)
        if node.name in self.graph.emitted:
            raise NameResolutionError(f"duplicate name '{node.name}'", node.span)
        self.graph.taken.add(node.name)
        self.graph.emitted.add(node.name)
        self.graph.nodes.append(node)


def _at_the_call(err: NncError, d: ast.BlockDef, call: Span) -> NncError:
    """An error inside a block of another file, located at its call in the spec (the
    library's line is named in the message)."""
    if err.span is None or err.span.file == call.file:
        return err
    moved = copy.copy(err)
    moved.message = f"{err.message} (in block '{d.name}' at {err.span})"
    moved.args = (moved.message,)
    moved.span = call
    moved.source = None
    return moved


def as_stage(expr: ast.Expr) -> ast.Stage:
    """A chosen layer (``relu``, ``leaky_relu(0.2)``) as a stage."""
    if isinstance(expr, ast.Ref):
        return ast.Stage(name=expr.name, args=(), span=expr.span)
    if isinstance(expr, ast.Call):
        return ast.Stage(name=expr.name, args=expr.args, span=expr.span, parens=True)
    raise ArgumentError(
        f"a layer choice takes layer names such as relu or leaky_relu(0.2). Received: "
        f"{_text(expr)}",
        expr.span,
    )


def _flatten_add(expr: ast.Expr, is_number: Callable[[ast.Expr], bool]) -> list[ast.Expr]:
    """The tensor terms of ``a + b + ...``, left to right (in a loop: a sum may be
    long). A sum with a number (``x + 1``) is a term of its own: one scalar node."""
    out: list[ast.Expr] = []
    todo = [expr]
    while todo:
        e = todo.pop()
        if (
            isinstance(e, ast.BinOp)
            and e.op == "+"
            and not is_number(e.left)
            and not is_number(e.right)
        ):
            todo += [e.right, e.left]
        else:
            out.append(e)
    return out


def _stages(stmt: ast.Stmt) -> list[ast.Stage]:
    """Every stage and call written in a statement (for the name pre-scan)."""
    out: list[ast.Stage] = []

    def walk(root: ast.Expr) -> None:
        # An explicit stack, not recursion: a chain may have thousands of links.
        todo: list[ast.Expr] = [root]
        while todo:
            e = todo.pop()
            if isinstance(e, ast.Pipe):
                out.append(e.stage)
                todo += [a.value for a in reversed(e.stage.args)]
                todo.append(e.value)
            elif isinstance(e, ast.BinOp):
                todo += [e.right, e.left]
            elif isinstance(e, ast.Neg):
                todo.append(e.value)
            elif isinstance(e, ast.Call):
                out.append(ast.Stage(name=e.name, args=e.args, span=e.span))
                todo += [a.value for a in reversed(e.args)]

    if isinstance(stmt, ast.Stack):
        out.append(stmt.stage)
    elif isinstance(stmt, ast.Assign):
        walk(stmt.value)
    elif isinstance(stmt, ast.Output):
        for v in stmt.values:
            walk(v)
    return out


def _text(expr: ast.Expr) -> str:
    return expr_text(expr)
