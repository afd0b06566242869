"""The model builder (inputs, layers, calls, blocks and outputs) and the program
builder that holds several models and their recipes."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

from nnc.builder.binding import bind_positional, check_arity, construct
from nnc.builder.layers import LayerMethods
from nnc.builder.program import recipe_of
from nnc.dsl.lower import snake_case
from nnc.errors import (
    ArgumentError,
    GraphError,
    NameResolutionError,
    ResourceError,
    ShapeError,
    did_you_mean,
)
from nnc.ir.ops import ACTIVATIONS, OPS, Node
from nnc.ir.ops.arith import ConstantTensor
from nnc.ir.ops.graph import Call
from nnc.ir.ops.layout import Slice, check_split, split_slices
from nnc.ir.passes import check
from nnc.ir.passes.infer import infer_model
from nnc.ir.passes.validate import IDENTIFIER, check_identifier
from nnc.ir.program import Input, Model, Program
from nnc.ir.types import TensorType

MAX_BLOCK_DEPTH = 32  # as in the language: blocks nest at most this deep
R = TypeVar("R")


@dataclass(frozen=True, eq=False)
class Tensor:
    """A value of a model under construction: a model input, a node's output, or
    output ``k`` of a call (``ref`` is then ``call_1:k``). ``type`` is inferred as
    the model is built, so a shape error is raised by the call that causes it."""

    builder: Builder = field(repr=False)
    ref: str
    type: TensorType

    @property
    def name(self) -> str:
        """The value reference (a node or input name, or ``call:k``)."""
        return self.ref

    @property
    def shape(self) -> tuple[int | str, ...]:
        """The inferred per-sample shape."""
        return self.type.shape

    def __repr__(self) -> str:
        return f"Tensor({self.ref!r}, {self.type})"

    # Arithmetic reads as in .nn text: ``h * 0.5``, ``1 - g`` (auto-named nodes).
    def __add__(self, other: Any) -> Tensor:
        return self.builder.add(self, other)

    def __radd__(self, other: Any) -> Tensor:
        return self.builder.add(other, self)

    def __sub__(self, other: Any) -> Tensor:
        return self.builder.sub(self, other)

    def __rsub__(self, other: Any) -> Tensor:
        return self.builder.sub(other, self)

    def __mul__(self, other: Any) -> Tensor:
        return self.builder.mul(self, other)

    def __rmul__(self, other: Any) -> Tensor:
        return self.builder.mul(other, self)

    def __truediv__(self, other: Any) -> Tensor:
        return self.builder.div(self, other)

    def __rtruediv__(self, other: Any) -> Tensor:
        return self.builder.div(other, self)

    def __pow__(self, other: Any) -> Tensor:
        return self.builder.pow(self, other)

    def __rpow__(self, other: Any) -> Tensor:
        return self.builder.pow(other, self)

    def __neg__(self) -> Tensor:
        return self.builder.neg(self)


@dataclass
class _Scope:
    """Where names are made: the model itself, or one block instance."""

    prefix: str = ""
    block: str | None = None
    counters: dict[str, int] = field(default_factory=dict)


class Builder(LayerMethods):
    """Builds one model, node by node; see the module docstring for an example.

    Layer methods take their input tensors first, then the op's positional
    arguments, then keyword arguments, as in ``.nn`` text:
    ``b.conv2d(x, 16, kernel=3, padding="same", activation="relu", name="stem")``.
    Spec-valued arguments take a name (``init="he_normal"``) or an IR object
    (``init=Normal(std=0.01)``).
    """

    def __init__(self, name: str, program: ProgramBuilder | None = None):
        problem = check_identifier(name, "model name")
        if problem:
            raise NameResolutionError(problem)
        if name in OPS:
            raise NameResolutionError(
                f"'{name}' is the name of a built-in op; choose another model name"
            )
        self.name = name
        if program is None:
            program = ProgramBuilder()
        self.program = program
        self._inputs: list[Input] = []
        self._nodes: list[Node] = []
        self._outputs: tuple[str, ...] | None = None
        self._types: dict[str, TensorType] = {}
        self._taken: set[str] = set()
        self._scopes: list[_Scope] = [_Scope()]
        self._current: Tensor | None = None
        self.program._register(self)

    def __repr__(self) -> str:
        return f"Builder({self.name!r}, {len(self._nodes)} nodes)"

    # -- inputs and outputs ---------------------------------------------------------

    def input(self, name: str, shape: Sequence[int | str], dtype: str = "float32") -> Tensor:
        """Declare a model input: a per-sample ``shape`` of positive ints and symbols."""
        if len(self._scopes) > 1:
            raise GraphError(
                "a block takes its input tensors as arguments; declare model inputs outside it"
            )
        self._claim(name, "input name")
        dims: list[int | str] = []
        for d in shape:
            if isinstance(d, bool) or not (
                (isinstance(d, int) and d > 0) or (isinstance(d, str) and IDENTIFIER.match(d))
            ):
                raise ArgumentError(
                    "a shape dim must be a positive integer or a symbol such as 't'. "
                    f"Received: {d!r}"
                )
            dims.append(d)
        if dtype not in ("float32", "int64"):
            raise ArgumentError(
                f"input dtype must be float32 or int64. Received: {dtype}",
                hint=did_you_mean(dtype, ["float32", "int64"]),
            )
        t = TensorType(dtype=dtype, shape=tuple(dims))
        self._inputs.append(Input(name=name, type=t))
        return self._value(name, t)

    def output(self, *tensors: Tensor) -> None:
        """Declare the model's outputs (without it, the model returns its latest value)."""
        if len(self._scopes) > 1:
            raise GraphError("a block returns its outputs; declare model outputs outside it")
        if self._outputs is not None:
            raise GraphError(f"model '{self.name}': outputs are declared twice")
        if not tensors:
            raise ArgumentError("output needs at least one tensor")
        self._outputs = tuple(self._own(t).ref for t in tensors)

    # -- layers ------------------------------------------------------------------------

    def layer(
        self,
        op: str,
        *args: Any,
        name: str | None = None,
        activation: str | tuple[Any, ...] | None = None,
        **attrs: Any,
    ) -> Tensor:
        """Apply any op of the registry: ``b.layer("conv2d", x, 16, kernel=3)``.

        Leading tensors are its inputs (none: the latest value); the remaining
        positional arguments bind to the op's positional attributes. ``activation``
        (``"relu"`` or ``("leaky_relu", 0.2)``) adds an activation node after a layer.
        """
        cls = OPS.get(op)
        if cls is None or cls is Call:
            choices = [o for o in OPS if o != "call"]
            raise NameResolutionError(
                f"unknown op '{op}'" + ("; use Builder.call for a model" if op == "call" else ""),
                hint=did_you_mean(op, choices),
            )
        inputs: tuple[str, ...]
        if cls.arity == 0:  # a param: no tensor input, not even the latest value
            if any(isinstance(a, Tensor) for a in args):
                raise ArgumentError(f"{op} takes no tensor input")
            inputs, rest = (), list(args)
        else:
            inputs, rest = self._split(args)
        if activation is not None and cls.category != "layer":
            raise ArgumentError(f"{op} has no argument 'activation' (only layers take one)")
        values = bind_positional(cls, op, rest, attrs)
        with self._naming(name, op) as node_name:
            out = self._add(construct(cls, op, {**values, "name": node_name, "inputs": inputs}))
        if activation is None:
            return out
        act, *act_args = (activation,) if isinstance(activation, str) else activation
        if act not in ACTIVATIONS:
            raise ArgumentError(
                f"'activation' expects an activation such as relu or ('leaky_relu', 0.2). "
                f"Received: {act!r}",
                hint=did_you_mean(str(act), ACTIVATIONS),
            )
        return self.layer(act, out, *act_args)

    def constant(self, value: Any, name: str | None = None) -> Tensor:
        """A constant float32 tensor from a number or a (nested) list, with no inputs:
        ``b.constant([[1, 0.5], [2, 3]])`` is ``constant([[1, 0.5], [2, 3]])``."""
        with self._naming(name, "constant") as node_name:
            values = {"value": value, "name": node_name, "inputs": ()}
            return self._add(construct(ConstantTensor, "constant", values))

    def call(
        self, model: str | Builder | Model, *inputs: Tensor, name: str | None = None
    ) -> Tensor | tuple[Tensor, ...]:
        """Use another model as a layer; returns its output, or a tuple of them.

        ``model`` is a model name of this program, a :class:`Builder` or an IR
        :class:`~nnc.ir.program.Model` (both are added to the program when needed).
        """
        callee = self.program._callee(model, caller=self.name)
        refs = self._inputs_or_current([self._own(t) for t in inputs])
        with self._naming(name, snake_case(callee.name)) as node_name:
            node = Call(name=node_name, inputs=refs, model=callee.name)
            # Type the call as shape inference will: a one-node model in this program.
            probe = Model(
                name=self.name,
                inputs=tuple(Input(name=r, type=self._types[r]) for r in dict.fromkeys(refs)),
                nodes=(node,),
                outputs=(node.name,),
            )
            models = {**self.program._dependencies(callee), self.name: probe}
            outs = infer_model(probe, Program(models=models)).nodes[0].outs
        self._record(node.model_copy(update={"outs": outs}))
        tensors = [
            self._value(node.name if k == 0 else f"{node.name}:{k}", t) for k, t in enumerate(outs)
        ]
        self._current = tensors[0]
        return tensors[0] if len(tensors) == 1 else tuple(tensors)

    def split(
        self,
        *args: Any,
        axis: int = 0,
        sizes: Sequence[int] = (),
        names: Sequence[str] | None = None,
    ) -> tuple[Tensor, ...]:
        """``left, right = x |> split(axis = 0, sizes = [2, 3])``: one ``slice`` per
        output, named ``names`` (as the assigned names of ``.nn`` text) or
        ``split_<k>``. ``sum(sizes)`` must be the size of ``axis``."""
        refs, rest = self._split(args)
        if rest or len(refs) != 1:
            raise ArgumentError("split takes one tensor; give axis and sizes by keyword")
        if names is not None and len(names) != len(sizes):
            raise GraphError(
                f"split makes {len(sizes)} outputs (one per size in {list(sizes)}); "
                f"{len(names)} names are given"
            )
        try:
            check_split(axis, tuple(sizes), self._types[refs[0]], None)
            pieces = split_slices(axis, tuple(sizes))
        except ShapeError as err:
            raise ShapeError(err.message) from None
        out = []
        for k, piece in enumerate(pieces):
            explicit = names[k] if names is not None else None
            with self._naming(explicit, "split") as node_name:
                out.append(self._add(Slice(name=node_name, inputs=refs, **piece)))
        return tuple(out)

    def block(self, fn: Callable[..., R], *args: Any, name: str | None = None, **kwargs: Any) -> R:
        """Expand a reusable piece of graph: ``fn(builder, *args, **kwargs)`` runs with
        its node names prefixed by the instance name (``<fn>_<k>`` or ``name``), as a
        ``block`` of ``.nn`` text does. See :func:`block` for the decorator form."""
        block_name = getattr(fn, "__name__", "block")
        if len(self._scopes) > MAX_BLOCK_DEPTH:
            raise ResourceError(f"blocks nested deeper than {MAX_BLOCK_DEPTH} levels")
        if any(s.block == block_name for s in self._scopes):
            raise GraphError(f"block '{block_name}' uses itself")
        instance = self._node_name(name, block_name)
        self._scopes.append(_Scope(prefix=instance + "_", block=block_name))
        try:
            return fn(self, *args, **kwargs)
        finally:
            self._scopes.pop()

    # -- training and results ----------------------------------------------------------

    def train(self, **settings: Any) -> None:
        """Add the training recipe of this model, named after it (``train Mlp { ... }``).
        Settings are those of :class:`~nnc.ir.training.Recipe` (or ``GanRecipe``)."""
        self.program.train(self.name, **settings)

    def model(self) -> Model:
        """The model as unchecked IR (nodes named, types filled in)."""
        if not self._inputs:
            raise GraphError(f"model '{self.name}' declares no input")
        outputs = self._outputs
        if outputs is None:
            if self._current is None:
                raise GraphError(f"model '{self.name}' has no output")
            outputs = (self._current.ref,)
        return Model(
            name=self.name, inputs=tuple(self._inputs), nodes=tuple(self._nodes), outputs=outputs
        )

    def build(self) -> Program:
        """The checked program holding this model (and its recipes and callees)."""
        return self.program.build()

    # -- internals -----------------------------------------------------------------------

    def _split(self, args: Sequence[Any]) -> tuple[tuple[str, ...], list[Any]]:
        """Leading tensors (or the latest value when there are none) and the rest."""
        k = 0
        while k < len(args) and isinstance(args[k], Tensor):
            k += 1
        if any(isinstance(a, Tensor) for a in args[k:]):
            raise ArgumentError("tensor inputs must come before the other arguments")
        refs = self._inputs_or_current([self._own(t) for t in args[:k]])
        return refs, list(args[k:])

    def _inputs_or_current(self, tensors: list[Tensor]) -> tuple[str, ...]:
        if tensors:
            return tuple(t.ref for t in tensors)
        if self._current is None:
            raise GraphError("a layer needs an input: declare one first, e.g. b.input('x', [4])")
        return (self._current.ref,)

    def _own(self, t: Tensor) -> Tensor:
        if not isinstance(t, Tensor):
            raise ArgumentError(f"expected a Tensor of this builder. Received: {t!r}")
        if t.builder is not self:
            raise GraphError(
                f"tensor '{t.ref}' belongs to model '{t.builder.name}', not '{self.name}'; "
                "use Builder.call to use one model inside another"
            )
        return t

    @contextmanager
    def _naming(self, explicit: str | None, base: str) -> Iterator[str]:
        """A node name, given back if the node cannot be made, so that a failed call
        leaves the auto-naming as it was."""
        scope = self._scopes[-1]
        counters = dict(scope.counters)
        name = self._node_name(explicit, base)
        try:
            yield name
        except BaseException:
            self._taken.discard(name)
            scope.counters = counters
            raise

    def _node_name(self, explicit: str | None, base: str) -> str:
        """``prefix + explicit`` when given, else the next free ``prefix + base_k``."""
        scope = self._scopes[-1]
        if explicit is not None:
            problem = check_identifier(explicit, "name")
            if problem:
                raise NameResolutionError(problem)
            return self._claim(scope.prefix + explicit, "name")
        k = scope.counters.get(base, 0)
        while True:
            k += 1
            candidate = f"{scope.prefix}{base}_{k}"
            if candidate not in self._taken:
                break
        scope.counters[base] = k
        return self._claim(candidate, "name")

    def _claim(self, name: str, what: str) -> str:
        problem = check_identifier(name, what)
        if problem:
            raise NameResolutionError(problem)
        if name in self._taken:
            raise NameResolutionError(f"duplicate name '{name}' in model '{self.name}'")
        self._taken.add(name)
        return name

    def _add(self, node: Node) -> Tensor:
        """Type a new node from its inputs (raising its shape error now) and record it."""
        check_arity(node)
        ins = [self._types[r] for r in node.inputs]
        try:
            out = node.infer(ins)
            node.param_specs(ins)
        except ShapeError as err:
            raise ShapeError(f"node '{node.name}': {err.message}", hint=err.hint) from None
        self._record(node.model_copy(update={"outs": (out,)}))
        tensor = self._value(node.name, out)
        self._current = tensor
        return tensor

    def _record(self, node: Node) -> None:
        self._nodes.append(node)

    def _value(self, ref: str, t: TensorType) -> Tensor:
        self._types[ref] = t
        tensor = Tensor(self, ref, t)
        self._current = tensor
        return tensor


def block(fn: Callable[..., R]) -> Callable[..., R]:
    """Decorate ``fn(builder, *args)`` so that each call expands as a block instance.

    >>> import nnc
    >>> @nnc.block
    ... def mlp_layer(b, x, units):
    ...     return b.dense(x, units, activation="relu")
    >>> b = nnc.Builder("M")
    >>> x = b.input("x", [4])
    >>> y = mlp_layer(b, mlp_layer(b, x, 8), 3)
    >>> [n.name for n in b.model().nodes]
    ['mlp_layer_1_dense_1', 'mlp_layer_1_relu_1', 'mlp_layer_2_dense_1', 'mlp_layer_2_relu_1']
    """

    @functools.wraps(fn)
    def expand(builder: Builder, *args: Any, name: str | None = None, **kwargs: Any) -> R:
        return builder.block(fn, *args, name=name, **kwargs)

    return expand


class ProgramBuilder:
    """Builds a program of several models and training recipes.

    >>> import nnc
    >>> pb = nnc.ProgramBuilder()
    >>> enc = pb.model("Encoder")
    >>> _ = enc.dense(enc.input("pixels", [64]), 8)
    >>> ae = pb.model("Autoencoder")
    >>> code = ae.call(enc, ae.input("pixels", [64]))
    >>> _ = ae.dense(code, 64, activation="sigmoid")
    >>> pb.train("Autoencoder", data="digits", target="input", loss="mse", optimizer="adam")
    >>> program = pb.build()
    >>> [n.name for n in program.models["Autoencoder"].nodes]
    ['encoder_1', 'dense_1', 'sigmoid_1']
    """

    def __init__(self) -> None:
        self._models: dict[str, Builder | Model] = {}
        self._recipes: dict[str, dict[str, Any]] = {}

    def model(self, name: str) -> Builder:
        """A new model of this program."""
        if name in self._models:
            raise NameResolutionError(f"model '{name}' is defined twice")
        return Builder(name, program=self)

    def add_model(self, model: Model) -> None:
        """Add an existing IR model (from ``nnc.load``, say), to be called by others."""
        if model.name in self._models and self._models[model.name] is not model:
            raise NameResolutionError(f"model '{model.name}' is defined twice")
        self._models[model.name] = model

    def train(self, name: str, **settings: Any) -> None:
        """Add a training recipe. Supervised by default (``model`` defaults to
        ``name``); a GAN recipe when ``generator`` and ``discriminator`` are given.

        Spec settings take names or IR objects: ``loss="cross_entropy"``,
        ``optimizer=Adam(lr=0.005)``; ``data`` takes a built-in dataset name, a file
        path, or a ``Dataset``/``DataFile``. As in ``.nn`` text, an unspecified
        ``from_logits`` follows the model's last op.
        """
        problem = check_identifier(name, "train recipe name")
        if problem:
            raise NameResolutionError(problem)
        if name in self._recipes:
            raise NameResolutionError(f"train recipe '{name}' is defined twice")
        self._recipes[name] = settings

    def build(self) -> Program:
        """The checked program: shape inference and validation, as ``nnc.check``."""
        models = self._ir_models()
        recipes = {name: recipe_of(name, s, models) for name, s in self._recipes.items()}
        return check(Program(models=models, recipes=recipes))

    # -- internals -----------------------------------------------------------------------

    def _register(self, builder: Builder) -> None:
        if builder.name in self._models:
            raise NameResolutionError(f"model '{builder.name}' is defined twice")
        self._models[builder.name] = builder

    def _ir_models(self) -> dict[str, Model]:
        return {n: m.model() if isinstance(m, Builder) else m for n, m in self._models.items()}

    def _dependencies(self, model: Model) -> dict[str, Model]:
        """``model`` and the models it calls, directly or not (only those: the others
        may still be under construction)."""
        found = {model.name: model}
        for node in model.nodes:
            if isinstance(node, Call) and node.model not in found:
                callee = self._models.get(node.model)
                if callee is not None:
                    found.update(
                        self._dependencies(
                            callee.model() if isinstance(callee, Builder) else callee
                        )
                    )
        return found

    def _callee(self, model: str | Builder | Model, caller: str) -> Model:
        if isinstance(model, Builder):
            if model.program is not self:
                self._adopt(model)
            model = model.name
        elif isinstance(model, Model):
            self.add_model(model)
            model = model.name
        if model == caller:
            raise GraphError(f"model '{caller}' uses itself")
        found = self._models.get(model)
        if found is None:
            raise NameResolutionError(
                f"unknown model '{model}'", hint=did_you_mean(model, self._models)
            )
        return found.model() if isinstance(found, Builder) else found

    def _adopt(self, builder: Builder) -> None:
        """Take in a model built for another program, with the models it calls."""
        if self._models.get(builder.name) not in (None, builder):
            raise NameResolutionError(f"model '{builder.name}' is defined twice")
        self._models[builder.name] = builder
        for node in builder.model().nodes:
            if isinstance(node, Call) and node.model not in self._models:
                dep = builder.program._models[node.model]
                if isinstance(dep, Builder):
                    self._adopt(dep)
                else:
                    self.add_model(dep)
