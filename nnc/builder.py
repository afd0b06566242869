"""Build networks in Python, without text: the same IR the parser makes.

A :class:`Builder` makes one model; a :class:`ProgramBuilder` makes several models
and their training recipes. Nodes are named by the parser's rules (see
:mod:`nnc.dsl.lower`): ``name=...`` when given, else ``<op>_<k>`` counting per op
from 1; a call of another model is named after it in snake_case (``encoder_1``);
a block instance prefixes the names of its nodes with its own name
(``residual_1_conv2d_1``). Attributes are normalised by the IR classes themselves
(``kernel=3`` is ``(3, 3)`` on a conv2d), and :meth:`Builder.build` returns the
checked program, so a model built here equals the one parsed from the same text.

>>> import nnc
>>> b = nnc.Builder("Xor")
>>> x = b.input("x", [2])
>>> h = b.dense(x, 5, activation="sigmoid")
>>> y = b.dense(h, 1, activation="sigmoid")
>>> b.output(y)
>>> program = b.build()
>>> program == nnc.parse("model Xor { input x: [2]  dense(5) sigmoid  dense(1) sigmoid }")
True

Like a stack of layers in ``.nn`` text, a layer given no input tensor takes the most
recent value, and a model without ``output`` returns it:

>>> b = nnc.Builder("Xor")
>>> _ = b.input("x", [2]); _ = b.dense(5); _ = b.sigmoid(); _ = b.dense(1); _ = b.sigmoid()
>>> b.build() == program
True
"""

from __future__ import annotations

import functools
import types
import typing
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError

from nnc.dsl.lower import snake_case
from nnc.errors import (
    ArgumentError,
    GraphError,
    NameResolutionError,
    NncError,
    RecipeError,
    ResourceError,
    ShapeError,
    did_you_mean,
)
from nnc.ir.base import Op
from nnc.ir.ops import ACTIVATIONS, OPS, Node
from nnc.ir.ops.graph import Call
from nnc.ir.passes import check
from nnc.ir.passes.infer import infer_model
from nnc.ir.passes.validate import check_identifier
from nnc.ir.program import Input, Model, Program
from nnc.ir.training import (
    BinaryCrossEntropy,
    CrossEntropy,
    DataFile,
    Dataset,
    GanRecipe,
    Recipe,
)
from nnc.ir.types import TensorType

MAX_BLOCK_DEPTH = 32  # as in the language: blocks nest at most this deep
_INTERNAL = frozenset({"op", "name", "inputs", "outs", "span"})
_RECIPE_INTERNAL = frozenset({"kind", "name", "span", "setting_spans"})

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
        return self.ref

    @property
    def shape(self) -> tuple[int | str, ...]:
        return self.type.shape

    def __repr__(self) -> str:
        return f"Tensor({self.ref!r}, {self.type})"


@dataclass
class _Scope:
    """Where names are made: the model itself, or one block instance."""

    prefix: str = ""
    block: str | None = None
    counters: dict[str, int] = field(default_factory=dict)


class Builder:
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
        self.program = program if program is not None else ProgramBuilder()
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
                (isinstance(d, int) and d > 0) or (isinstance(d, str) and d.isidentifier())
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
        inputs, rest = self._split(args)
        if activation is not None and cls.category != "layer":
            raise ArgumentError(f"{op} has no argument 'activation' (only layers take one)")
        values = _bind_positional(cls, op, rest, attrs)
        with self._naming(name, op) as node_name:
            out = self._add(_construct(cls, op, {**values, "name": node_name, "inputs": inputs}))
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

    # -- op methods: each is ``layer(<op>, ...)`` ------------------------------------

    def dense(self, *args: Any, **attrs: Any) -> Tensor:
        """``dense(units, bias, init, bias_init, trainable)``: y = x Wᵀ + b."""
        return self.layer("dense", *args, **attrs)

    def embedding(self, *args: Any, **attrs: Any) -> Tensor:
        """``embedding(vocab, dim)``: rows of a learned table for int64 ids."""
        return self.layer("embedding", *args, **attrs)

    def conv1d(self, *args: Any, **attrs: Any) -> Tensor:
        """``conv1d(filters, kernel, stride, padding, dilation, groups)`` over [C, L]."""
        return self.layer("conv1d", *args, **attrs)

    def conv2d(self, *args: Any, **attrs: Any) -> Tensor:
        """``conv2d(filters, kernel, stride, padding, dilation, groups)`` over [C, H, W]."""
        return self.layer("conv2d", *args, **attrs)

    def conv2d_transpose(self, *args: Any, **attrs: Any) -> Tensor:
        """``conv2d_transpose(filters, kernel, stride, padding, output_padding)``."""
        return self.layer("conv2d_transpose", *args, **attrs)

    def maxpool(self, *args: Any, **attrs: Any) -> Tensor:
        """``maxpool(size, stride = size, padding = valid)``."""
        return self.layer("maxpool", *args, **attrs)

    def avgpool(self, *args: Any, **attrs: Any) -> Tensor:
        """``avgpool(size, stride = size, padding = valid)``: mean of the real elements."""
        return self.layer("avgpool", *args, **attrs)

    def sumpool(self, *args: Any, **attrs: Any) -> Tensor:
        """``sumpool(size, stride = size, padding = valid)``."""
        return self.layer("sumpool", *args, **attrs)

    def global_avg_pool(self, *args: Any, **attrs: Any) -> Tensor:
        """Mean over all spatial positions: [C, ...] -> [C]."""
        return self.layer("global_avg_pool", *args, **attrs)

    def flatten(self, *args: Any, **attrs: Any) -> Tensor:
        """Collapse the per-sample dims, channels-first order."""
        return self.layer("flatten", *args, **attrs)

    def reshape(self, *args: Any, **attrs: Any) -> Tensor:
        """``reshape(shape)``; one dim may be -1."""
        return self.layer("reshape", *args, **attrs)

    def dropout(self, *args: Any, **attrs: Any) -> Tensor:
        """``dropout(rate)``: inverted dropout, identity at inference."""
        return self.layer("dropout", *args, **attrs)

    def batchnorm(self, *args: Any, **attrs: Any) -> Tensor:
        """``batchnorm(momentum = 0.1, eps = 1e-5)`` over axis 0 (channels)."""
        return self.layer("batchnorm", *args, **attrs)

    def layernorm(self, *args: Any, **attrs: Any) -> Tensor:
        """``layernorm(eps = 1e-5)`` over the last axis."""
        return self.layer("layernorm", *args, **attrs)

    def lrn(self, *args: Any, **attrs: Any) -> Tensor:
        """``lrn(size = 5, alpha, beta, bias)``: local response normalisation."""
        return self.layer("lrn", *args, **attrs)

    def rnn(self, *args: Any, **attrs: Any) -> Tensor:
        """``rnn(units, return_sequences = false)``: h = tanh(W x + U h + b)."""
        return self.layer("rnn", *args, **attrs)

    def lstm(self, *args: Any, **attrs: Any) -> Tensor:
        """``lstm(units, return_sequences = false)``, gates i, f, g, o."""
        return self.layer("lstm", *args, **attrs)

    def gru(self, *args: Any, **attrs: Any) -> Tensor:
        """``gru(units, return_sequences = false)``, gates r, z, n."""
        return self.layer("gru", *args, **attrs)

    def add(self, *args: Any, **attrs: Any) -> Tensor:
        """Element-wise sum of two or more tensors (``x + y`` in .nn text)."""
        return self.layer("add", *args, **attrs)

    def concat(self, *args: Any, **attrs: Any) -> Tensor:
        """``concat(x, y, ..., axis = 0)``."""
        return self.layer("concat", *args, **attrs)

    def linear(self, *args: Any, **attrs: Any) -> Tensor:
        """The identity activation."""
        return self.layer("linear", *args, **attrs)

    def step(self, *args: Any, **attrs: Any) -> Tensor:
        """Heaviside step with a straight-through gradient."""
        return self.layer("step", *args, **attrs)

    def sigmoid(self, *args: Any, **attrs: Any) -> Tensor:
        """1 / (1 + e^-x)."""
        return self.layer("sigmoid", *args, **attrs)

    def tanh(self, *args: Any, **attrs: Any) -> Tensor:
        """Hyperbolic tangent."""
        return self.layer("tanh", *args, **attrs)

    def relu(self, *args: Any, **attrs: Any) -> Tensor:
        """max(x, 0)."""
        return self.layer("relu", *args, **attrs)

    def leaky_relu(self, *args: Any, **attrs: Any) -> Tensor:
        """``leaky_relu(alpha = 0.01)``."""
        return self.layer("leaky_relu", *args, **attrs)

    def elu(self, *args: Any, **attrs: Any) -> Tensor:
        """``elu(alpha = 1.0)``."""
        return self.layer("elu", *args, **attrs)

    def prelu(self, *args: Any, **attrs: Any) -> Tensor:
        """Leaky relu with a learned slope per channel."""
        return self.layer("prelu", *args, **attrs)

    def selu(self, *args: Any, **attrs: Any) -> Tensor:
        """Scaled elu with the self-normalising constants."""
        return self.layer("selu", *args, **attrs)

    def gelu(self, *args: Any, **attrs: Any) -> Tensor:
        """x·Φ(x), exact erf form."""
        return self.layer("gelu", *args, **attrs)

    def softplus(self, *args: Any, **attrs: Any) -> Tensor:
        """log(1 + e^x)."""
        return self.layer("softplus", *args, **attrs)

    def silu(self, *args: Any, **attrs: Any) -> Tensor:
        """x·σ(x)."""
        return self.layer("silu", *args, **attrs)

    def softmax(self, *args: Any, **attrs: Any) -> Tensor:
        """``softmax(axis = -1)``."""
        return self.layer("softmax", *args, **attrs)

    def log_softmax(self, *args: Any, **attrs: Any) -> Tensor:
        """``log_softmax(axis = -1)``."""
        return self.layer("log_softmax", *args, **attrs)

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
        _check_arity(node)
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
        recipes = {name: self._recipe(name, s, models) for name, s in self._recipes.items()}
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

    def _recipe(
        self, name: str, settings: dict[str, Any], models: dict[str, Model]
    ) -> Recipe | GanRecipe:
        is_gan = "generator" in settings or "discriminator" in settings
        cls: type[Recipe] | type[GanRecipe] = GanRecipe if is_gan else Recipe
        fields = {k: f for k, f in cls.model_fields.items() if k not in _RECIPE_INTERNAL}
        values: dict[str, Any] = {}
        for key, value in settings.items():
            if key not in fields:
                raise RecipeError(
                    f"unknown setting '{key}' in {'a GAN' if is_gan else 'a'} train recipe. "
                    f"Settings: {', '.join(fields)}",
                    hint=did_you_mean(key, fields),
                )
            values[key] = _setting(key, value, fields[key].annotation)
        if not is_gan:
            values.setdefault("model", name)
            if "loss" in values:
                values["loss"] = _resolve_logits(values["loss"], models.get(values["model"]))
        elif "from_logits" not in values:
            disc = models.get(str(values.get("discriminator")))
            if disc is not None:
                values["from_logits"] = _last_op(disc) != "sigmoid"
        try:
            return cls(name=name, **values)
        except ValidationError as exc:
            raise _recipe_error(name, exc, values) from None


# -- argument binding ---------------------------------------------------------------------


def _bind_positional(
    cls: type[Op], op: str, positional: Sequence[Any], attrs: dict[str, Any]
) -> dict[str, Any]:
    fields = {k: f for k, f in cls.model_fields.items() if k not in _INTERNAL}
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
    return {k: _spec_value(v, fields[k].annotation) for k, v in values.items()}


def make_node(op: str, name: str, inputs: Sequence[str], **attrs: Any) -> Node:
    """An IR node of ``op`` from keyword attributes, converted and checked as the
    builder does (``init="he_normal"``; a bad value is an :class:`ArgumentError`).

    >>> make_node("conv2d", "stem", ["image"], filters=8, kernel=3).kernel
    (3, 3)
    """
    cls = OPS.get(op)
    if cls is None:
        raise NameResolutionError(f"unknown op '{op}'", hint=did_you_mean(op, OPS))
    values = _bind_positional(cls, op, (), attrs)
    return _construct(cls, op, {**values, "name": name, "inputs": tuple(inputs)})


def _construct(cls: type[Op], op: str, values: dict[str, Any]) -> Node:
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


def _check_arity(node: Node) -> None:
    want = type(node).arity
    n = len(node.inputs)
    if want is None and n < 2:
        raise ArgumentError(f"{node.op} needs at least 2 inputs. Received: {n}")
    if want is not None and n != want:
        raise ArgumentError(f"{node.op} takes {want} input(s). Received: {n}")


def _spec_kinds(annotation: Any) -> dict[str, type[BaseModel]]:
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
                out.update(_spec_kinds(option))
    return out


def _spec_value(value: Any, annotation: Any) -> Any:
    """A spec given by name (``"he_normal"``) as its IR object; other values as given."""
    kinds = _spec_kinds(annotation)
    if not kinds:
        return value
    if isinstance(value, str) and value in kinds:
        return kinds[value]()
    if isinstance(value, list | tuple):
        return tuple(_spec_value(v, annotation) for v in value)
    return value


def _setting(key: str, value: Any, annotation: Any) -> Any:
    if key in ("data", "validation") and isinstance(value, str | Path):
        text = str(value)
        return Dataset(name=text) if text.isidentifier() else DataFile(path=text)
    if key == "metrics" and isinstance(value, str):
        value = (value,)
    return _spec_value(value, annotation)


def _last_op(model: Model | None) -> str | None:
    if model is None or len(model.outputs) != 1:
        return None
    last = {n.name: n for n in model.nodes}.get(model.outputs[0])
    return last.op if last is not None else None


def _resolve_logits(loss: Any, model: Model | None) -> Any:
    """An unspecified ``from_logits`` follows the model's last op, as in the language."""
    if not isinstance(loss, CrossEntropy | BinaryCrossEntropy):
        return loss
    if "from_logits" in loss.model_fields_set or model is None or len(model.outputs) != 1:
        return loss
    squash = "softmax" if isinstance(loss, CrossEntropy) else "sigmoid"
    return type(loss)(from_logits=_last_op(model) != squash)


def _recipe_error(name: str, exc: ValidationError, values: dict[str, Any]) -> NncError:
    err = exc.errors()[0]
    loc = [str(p) for p in err.get("loc", ())]
    key = loc[0] if loc else ""
    if err.get("type") == "missing":
        return RecipeError(f"train recipe '{name}': missing setting '{key}'")
    message = str(err.get("msg", "invalid value")).removeprefix("Value error, ")
    return RecipeError(
        f"train recipe '{name}': setting '{key}': {message[:1].lower()}{message[1:]}. "
        f"Received: {values.get(key, err.get('input'))!r}"
    )
