"""Walking a flat model to write its forward and backward passes.

:class:`Walk` names every value of the graph (after its node, through
``py_identifier``), decides which values need a gradient, and gives each op's
lowering a :class:`NodeContext`: the names of its inputs, output and parameters,
and helpers that emit lines, accumulate gradients and record which forward values
the backward pass reads (those go into the cache that ``propagate`` returns).

Gradients flow backwards in reverse topological order. A value read by several
nodes receives one contribution from each (``d_v = d_v + ...``). Model inputs get a
gradient only when ``backpropagate(..., input_gradients=True)`` asks for one, and a
node whose output needs no gradient (nothing trainable behind it) gets no backward
code at all.
"""

from __future__ import annotations

import builtins
import itertools
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Literal

from nnc.backends.codegen import CodeWriter, py_identifier
from nnc.backends.numpy.kernels import KERNELS
from nnc.dsl.unparse import node_text
from nnc.errors import UnsupportedOpError
from nnc.ir.base import Op, ParamSpec
from nnc.ir.program import Model
from nnc.ir.types import TensorType, format_shape

# Names the generated methods use for themselves; graph values never take them.
RESERVED = frozenset(
    {
        "np",
        "zlib",
        "self",
        "w",
        "grads",
        "cache",
        "training",
        "input_gradients",
        "PARAMETERS",
        "TRAINABLE",
        "DECAYED",
        "Runtime",
        "initial_weights",
        "learning_rate",
        "fit",
        "_draw",
        *KERNELS,
        *dir(builtins),
    }
)

# Whether a value needs a gradient: never, always (a trainable parameter lies behind
# it), or only when backpropagate is asked for input gradients.
Need = Literal["no", "yes", "inputs"]


class Namer:
    """Unique Python identifiers: ``base``, else ``base_2``, ``base_3``, ..."""

    def __init__(self, reserved: frozenset[str] = RESERVED):
        self.taken: set[str] = set(reserved)

    def fresh(self, base: str) -> str:
        candidate, k = base, 1
        while candidate in self.taken:
            k += 1
            candidate = f"{base}_{k}"
        self.taken.add(candidate)
        return candidate


@dataclass
class Value:
    """A value of the graph: a model input or a node output."""

    ref: str
    ident: str
    type: TensorType
    grad: str
    need: Need = "no"
    is_input: bool = False


@dataclass(frozen=True)
class Lowering:
    """How one op is written: a forward and a backward emitter, each given a context."""

    forward: Callable[[NodeContext], None]
    backward: Callable[[NodeContext], None]


def describe(node: Op) -> str:
    """The node as .nn text for a comment, e.g. ``conv2d(16, kernel = 3)``."""
    text = node_text(node)
    return " ".join(text.split())  # a comment must stay on one line


@dataclass
class Walk:
    """The forward and backward code of one flat model."""

    model: Model
    lowerings: dict[str, Lowering]
    trainable: frozenset[str]
    backend: str = "numpy"
    namer: Namer = field(default_factory=Namer)
    values: dict[str, Value] = field(default_factory=dict)
    kernels: set[str] = field(default_factory=set)
    defined: list[str] = field(default_factory=list)  # forward names, in order
    saved: set[str] = field(default_factory=set)  # forward names the backward reads
    kept: set[str] = field(default_factory=set)  # forward names train_step reads
    temps: dict[tuple[str, str], str] = field(default_factory=dict)
    assigned: set[str] = field(default_factory=set)  # gradients assigned so far
    uses_training_flag: bool = False
    # batchnorm nodes: (node name, cache name of its batch statistics, momentum)
    statistics: list[tuple[str, str, float]] = field(default_factory=list)
    # Values that depend on no input (constants and what is computed from them only):
    # held with a batch axis of size 1, which broadcasts.
    batch_free: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        for decl in self.model.inputs:
            self._add_value(decl.name, decl.type, is_input=True)
        for node in self.model.nodes:
            if node.op not in self.lowerings:
                raise UnsupportedOpError(node.op, self.backend, node.span)
            self._add_value(node.name, node.type)
            if all(ref in self.batch_free for ref in node.inputs):
                self.batch_free.add(node.name)
        self._decide_needs()

    def _add_value(self, ref: str, type_: TensorType, is_input: bool = False) -> None:
        ident = self.namer.fresh(py_identifier(ref))
        self.values[ref] = Value(ref, ident, type_, grad="", is_input=is_input)

    def _decide_needs(self) -> None:
        live = set(self.model.outputs)
        for node in reversed(self.model.nodes):
            if node.name in live:
                live.update(node.inputs)
        for value in self.values.values():
            if value.is_input and value.type.dtype == "float32" and value.ref in live:
                value.need = "inputs"
        for node in self.model.nodes:
            value = self.values[node.name]
            if value.type.dtype != "float32" or node.name not in live:
                continue
            ins = {self.values[ref].need for ref in node.inputs}
            if self.node_params(node, trainable_only=True) or "yes" in ins:
                value.need = "yes"
            elif "inputs" in ins:
                value.need = "inputs"
        for value in self.values.values():
            if value.need != "no":
                value.grad = self.namer.fresh(f"d_{value.ident}")

    # -- facts about nodes ------------------------------------------------------------

    def node_params(self, node: Op, trainable_only: bool = False) -> list[ParamSpec]:
        ins = [self.values[ref].type for ref in node.inputs]
        return [
            spec
            for spec in node.param_specs(ins)
            if not trainable_only or f"{node.name}.{spec.name}" in self.trainable
        ]

    # -- the two passes ------------------------------------------------------------------

    def forward(self, w: CodeWriter) -> None:
        """The body of ``propagate`` after the inputs were checked (no return)."""
        for decl in self.model.inputs:
            self.defined.append(self.values[decl.name].ident)
        for node in self.model.nodes:
            c = NodeContext(self, node, w, "forward")
            c.comment_heading()
            self.lowerings[node.op].forward(c)
            self.defined.append(c.y)
            w.blank()

    def output_gradients(self) -> tuple[list[str], list[str]]:
        """The parameters of ``backpropagate`` that receive d loss / d output, and the
        lines that add a repeated output's gradient to the first one."""
        params: list[str] = []
        lines: list[str] = []
        for ref in self.model.outputs:
            value = self.values[ref]
            if value.need != "no" and value.grad not in self.assigned:
                self.assigned.add(value.grad)
                params.append(value.grad)
                continue
            params.append(self.namer.fresh(f"d_{value.ident}"))
            if value.need != "no":
                lines.append(f"{value.grad} = {value.grad} + {params[-1]}")
        return params, lines

    def backward(self, w: CodeWriter) -> None:
        """The body of ``backpropagate`` after the cache was unpacked and the output
        gradients were received (see :meth:`output_gradients`; call it first)."""
        for node in reversed(self.model.nodes):
            value = self.values[node.name]
            if value.need == "no":
                for spec in self.node_params(node, trainable_only=True):
                    # Nothing downstream reads this node: its parameters get no gradient.
                    key = repr(f"{node.name}.{spec.name}")
                    w.line(f"grads[{key}] = np.zeros_like(w[{key}])")
                continue
            c = NodeContext(self, node, w, "backward")
            c.comment_heading()
            if value.need == "inputs":
                with w.block("if input_gradients:"):
                    c.guarded = True
                    self.lowerings[node.op].backward(c)
            else:
                self.lowerings[node.op].backward(c)
            w.blank()

    def cache_names(self) -> list[str]:
        """Forward names the cache must hold, in the order they were defined."""
        wanted = self.saved | self.kept
        return [name for name in self.defined if name in wanted]


class NodeContext:
    """What a lowering sees of one node, in the forward or the backward pass."""

    def __init__(self, walk: Walk, node: Op, w: CodeWriter, phase: str):
        self.walk = walk
        self.node = node
        self.w = w
        self.phase = phase
        self.guarded = False
        self.ident = walk.values[node.name].ident

    # -- names -------------------------------------------------------------------------

    def comment_heading(self) -> None:
        """``# <node> = <op as .nn text>: <shape>``, on two lines when too long."""
        shape = format_shape(self.out_type.shape)
        one = f"# {self.node.name} = {describe(self.node)}: {shape}"
        if len(self.w.indent * self.w.level) + len(one) <= WIDTH:
            self.w.line(one)
        else:
            self.w.line(f"# {self.node.name}: {shape}")
            self.w.line(f"#     {describe(self.node)}")

    @property
    def in_types(self) -> list[TensorType]:
        return [self.walk.values[ref].type for ref in self.node.inputs]

    @property
    def out_type(self) -> TensorType:
        return self.node.type

    def _read(self, name: str) -> str:
        if self.phase == "backward":
            self.walk.saved.add(name)
        return name

    def x(self, i: int = 0) -> str:
        """The name of input ``i`` (read from the cache in the backward pass)."""
        return self._read(self.walk.values[self.node.inputs[i]].ident)

    @property
    def xs(self) -> list[str]:
        return [self.x(i) for i in range(len(self.node.inputs))]

    @property
    def y(self) -> str:
        """The name of the node's output (read from the cache in the backward pass)."""
        if self.phase == "backward":
            return self._read(self.ident)
        return self.ident

    @property
    def dy(self) -> str:
        """The name of the gradient of the node's output."""
        return self.walk.values[self.node.name].grad

    def temp(self, key: str) -> str:
        """A forward intermediate of this node (``<node>_<key>``); in the backward pass,
        the same name, read from the cache."""
        slot = (self.node.name, key)
        if self.phase == "forward":
            if slot not in self.walk.temps:
                self.walk.temps[slot] = self.walk.namer.fresh(f"{self.ident}_{key}")
                self.walk.defined.append(self.walk.temps[slot])
            return self.walk.temps[slot]
        return self._read(self.walk.temps[slot])

    def local(self, key: str) -> str:
        """A backward intermediate of this node (``<node>_<key>``)."""
        return self.walk.namer.fresh(f"{self.ident}_{key}")

    def keep(self, name: str) -> None:
        """Put a forward name in the cache for train_step (running statistics)."""
        self.walk.kept.add(name)

    def param(self, name: str) -> str:
        return f"w[{self.node.name + '.' + name!r}]"

    def has_param(self, name: str) -> bool:
        return any(spec.name == name for spec in self.walk.node_params(self.node))

    def trains(self, name: str) -> bool:
        return f"{self.node.name}.{name}" in self.walk.trainable

    def kernel(self, name: str) -> str:
        """Use a shared kernel (it will be emitted into the module)."""
        if name not in KERNELS:
            raise KeyError(f"unknown kernel '{name}'")
        self.walk.kernels.add(name)
        return name

    def training_flag(self) -> str:
        """``training`` in the forward pass; in the backward pass, read from the cache."""
        self.walk.uses_training_flag = True
        return "training"

    # -- emitting ----------------------------------------------------------------------

    def line(self, text: str) -> None:
        """One statement; an assignment too long for a line is wrapped in parentheses."""
        room = WIDTH - len(self.w.indent * self.w.level)
        self.w.lines_(wrap_assignment(text, room))

    @contextmanager
    def block(self, header: str) -> Iterator[None]:
        with self.w.block(header):
            yield

    def call(self, target: str, function: str, args: Sequence[str]) -> None:
        """``target = function(args)``, wrapped one argument a line when long, and one
        target a line when even ``target = function(`` is too long."""
        room = WIDTH - len(self.w.indent * self.w.level)
        self.w.lines_(wrap_call(target, function, args, room))

    def grad_target(self, name: str) -> str:
        """Where a kernel's gradient for parameter ``name`` goes: ``grads[...]``, or
        ``_`` for a frozen parameter."""
        return f"grads[{self.node.name + '.' + name!r}]" if self.trains(name) else "_"

    def grad_param(self, name: str, expr: str) -> None:
        """``grads[<param>] = expr`` for a trainable parameter (frozen ones: nothing)."""
        if self.trains(name):
            self.line(f"{self.grad_target(name)} = {expr}")

    def needs(self, i: int = 0) -> bool:
        """Whether input ``i`` takes a gradient at all."""
        return self.walk.values[self.node.inputs[i]].need != "no"

    def input_gradient_name(self, i: int) -> str:
        """Where a kernel may write its gradient for input ``i``: the input's gradient
        itself when this is its first contribution, else a local to add from."""
        value = self.walk.values[self.node.inputs[i]]
        if value.need != "no" and value.grad not in self.walk.assigned:
            return value.grad
        return self.local("d_input")

    def grad_input(self, i: int, expr: str, setup: Sequence[str] = ()) -> None:
        """Add ``expr`` to the gradient of input ``i``, after the ``setup`` lines.

        The first contribution assigns, later ones add; ``expr`` may be the name from
        :meth:`input_gradient_name`, already assigned by ``setup`` or a kernel call.
        Contributions to a value that needs a gradient only for ``input_gradients``
        are emitted under that flag.
        """
        value = self.walk.values[self.node.inputs[i]]
        if value.need == "no":
            return
        if expr == value.grad and not setup:  # a kernel call assigned it already
            self.walk.assigned.add(value.grad)
            return
        if value.need == "inputs" and not self.guarded:
            with self.w.block("if input_gradients:"):
                self._accumulate(value, expr, setup)
        else:
            self._accumulate(value, expr, setup)

    def _accumulate(self, value: Value, expr: str, setup: Sequence[str]) -> None:
        for text in setup:
            self.line(text)
        if expr == value.grad:  # written in place by the setup or a kernel call
            self.walk.assigned.add(value.grad)
        elif value.grad in self.walk.assigned:
            # `g + a if c else b` would read as `(g + a) if c else b`: bracket any
            # contribution that binds more loosely than `+`.
            if _top_level(expr, LOOSER_THAN_PLUS):
                expr = f"({expr})"
            if expr.startswith("-") and not _top_level(expr[1:], (" + ", " - ")):
                self.line(f"{value.grad} = {value.grad} - {expr[1:]}")  # not `g + -d`
                return
            self.line(f"{value.grad} = {value.grad} + {expr}")
        else:
            self.walk.assigned.add(value.grad)
            self.line(f"{value.grad} = {expr}")


WIDTH = 100  # generated lines stay within this many characters
# Python operators that bind more loosely than `+` (spaced, as generated code writes them).
LOOSER_THAN_PLUS: tuple[str, ...] = (
    *(" if ", " and ", " or ", "not ", "lambda", " & ", " | ", " ^ ", " << ", " >> "),
    *(" < ", " > ", " <= ", " >= ", " == ", " != ", " is ", " in "),
)


def _top_level(text: str, tokens: Sequence[str]) -> list[int]:
    """Where ``tokens`` occur in ``text`` outside brackets and strings."""
    found: list[int] = []
    depth, quote, i = 0, "", 0
    while i < len(text):
        ch = text[i]
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif depth == 0 and any(text.startswith(t, i) for t in tokens):
            found.append(i)
        i += 1
    return found


# Binary operators by how loosely they bind (black's and ruff's delimiter priorities):
# a long expression splits at the loosest ones first. Generated code spaces them.
PRIORITIES: tuple[tuple[str, ...], ...] = (
    (" if ", " else "),
    (" or ",),
    (" and ",),
    (" < ", " > ", " <= ", " >= ", " == ", " != ", " is not ", " is ", " not in ", " in "),
    (" | ",),
    (" ^ ",),
    (" & ",),
    (" << ", " >> "),
    (" + ", " - "),
    (" * ", " / ", " // ", " % ", " @ "),
)


def _loosest(expr: str) -> list[int]:
    """Where the loosest top-level binary operators of ``expr`` start (none: [])."""
    for tokens in PRIORITIES:
        found = _top_level(expr, tokens)
        if found:
            return found
    return []


def _brackets(expr: str) -> list[tuple[int, int]]:
    """The top-level bracket pairs of ``expr`` (opening, closing index), in order."""
    pairs: list[tuple[int, int]] = []
    depth, quote, start = 0, "", 0
    for i, ch in enumerate(expr):
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in "([{":
            if depth == 0:
                start = i
            depth += 1
        elif ch in ")]}":
            depth -= 1
            if depth == 0:
                pairs.append((start, i))
    return pairs


def _split_at_bracket(target: str, expr: str, room: int) -> list[str] | None:
    """``target = expr`` split inside one of its top-level brackets, the last one whose
    first line fits, as ``ruff format`` splits a right-hand side that ends in a
    bracket: ``y = f(`` / the contents / ``) ...``."""
    for opening, closing in reversed(_brackets(expr)):
        head, body, tail = expr[: opening + 1], expr[opening + 1 : closing], expr[closing:]
        if len(tail) > room:
            return None
        if not body or len(f"{target} = {head}") > room:
            continue
        if len(body) <= room - 4:
            return [f"{target} = {head}", f"    {body}", tail]
        items = _items(body)
        if len(items) < 2 or any(len(item) + 1 > room - 4 for item in items):
            return None
        return [f"{target} = {head}", *(f"    {item}," for item in items), tail]
    return None


def wrap_assignment(text: str, room: int) -> list[str]:
    """``target = expr`` in lines of at most ``room`` characters where possible, the
    way ``ruff format`` wraps it: split inside the expression's last bracket when it
    ends in one and has at most one loosest operator; else the expression in
    parentheses, on one line or broken before each of its loosest operators.

    >>> wrap_assignment("y = alpha * beta + gamma", 12)
    ['y = (', '    alpha * beta', '    + gamma', ')']
    >>> wrap_assignment("y = scale * (alpha - beta)", 18)
    ['y = scale * (', '    alpha - beta', ')']
    """
    equals = _top_level(text, (" = ",))
    if len(text) <= room or not equals:
        return [text]
    target, expr = text[: equals[0]], text[equals[0] + 3 :]
    loosest = _loosest(expr)
    # ruff leaves the parentheses out for a call or subscript, or for one loosest
    # operator whose right operand ends in a call or parenthesis (not a subscript)
    bracketed = expr.endswith((")", "]")) if not loosest else expr.endswith(")")
    if len(loosest) <= 1 and bracketed and " if " not in expr:
        split = _split_at_bracket(target, expr, room)
        if split is not None:
            return split
    if len(expr) <= room - 4:
        return [f"{target} = (", f"    {expr}", ")"]
    cuts = [0, *(i + 1 for i in loosest), len(expr)]
    pieces = [expr[x:y].strip() for x, y in itertools.pairwise(cuts)]
    return [f"{target} = (", *(f"    {piece}" for piece in pieces), ")"]


def wrap_call(target: str, function: str, args: Sequence[str], room: int) -> list[str]:
    """``target = function(args)`` within ``room`` characters a line where possible."""
    one = f"{target} = {function}({', '.join(args)})"
    if len(one) <= room:
        return [one]
    body = [f"    {a}," for a in args]
    if len(f"{target} = {function}(") <= room:
        return [f"{target} = {function}(", *body, ")"]
    lines = ["("]
    for item in _items(target):
        if item.startswith("(") and item.endswith(")") and len(item) + 5 > room:
            lines += ["    (", *(f"        {inner}," for inner in _items(item[1:-1])), "    ),"]
        else:
            lines.append(f"    {item},")
    return [*lines, f") = {function}(", *body, ")"]


def _items(text: str) -> list[str]:
    """The items of a comma-separated list (commas inside brackets kept)."""
    cuts = [0, *(i + 2 for i in _top_level(text, (", ",))), len(text) + 2]
    return [text[a : b - 2].strip() for a, b in itertools.pairwise(cuts)]


def batch_axis(axis: int) -> int:
    """A per-sample axis as an axis of the batched array (negative axes stay)."""
    return axis + 1 if axis >= 0 else axis
