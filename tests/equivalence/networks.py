"""Random valid small networks, for differential fuzzing of the backends.

:func:`random_network` writes a ``.nn`` program: one model over a random input (a
vector, a sequence, a 1-D signal, an image, or integer tokens), grown statement by
statement from the op registry with random hyper-parameters, with skip connections
(``+``) and concatenations of earlier values, sometimes a smaller model used as a
layer, a head fitting a random loss, and a recipe with a random optimizer, schedule
and L2. Each statement is kept only if the program still passes ``nnc check``, so
shapes are always compatible and the checker itself decides what is valid.

Choices come from a :class:`Chooser`: :class:`RandomChooser` (the soak script) or
:func:`networks`, a Hypothesis strategy (the suite), which also shrinks a failing
program towards a smaller one.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from hypothesis import strategies as st

import nnc
from nnc.errors import NncError
from nnc.ir.ops import OPS

T = TypeVar("T")
Shape = tuple[int | str, ...]


class Chooser(Protocol):
    def integer(self, lo: int, hi: int) -> int: ...

    def choice(self, options: Sequence[T]) -> T: ...

    def chance(self, p: float) -> bool: ...


class RandomChooser:
    """Choices from a seeded :class:`random.Random`."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)

    def integer(self, lo: int, hi: int) -> int:
        return self.rng.randint(lo, hi)

    def choice(self, options: Sequence[T]) -> T:
        return options[self.rng.randrange(len(options))]

    def chance(self, p: float) -> bool:
        return self.rng.random() < p


class DrawChooser:
    """Choices drawn by Hypothesis (so that failures shrink)."""

    def __init__(self, draw: Callable[[st.SearchStrategy[Any]], Any]) -> None:
        self.draw = draw

    def integer(self, lo: int, hi: int) -> int:
        return int(self.draw(st.integers(lo, hi)))

    def choice(self, options: Sequence[T]) -> T:
        return options[self.draw(st.integers(0, len(options) - 1))]

    def chance(self, p: float) -> bool:
        return bool(self.draw(st.integers(0, 99)) < round(100 * p))


@st.composite
def networks(draw: Callable[[st.SearchStrategy[Any]], Any]) -> str:
    """A Hypothesis strategy of ``.nn`` programs (see :func:`random_network`)."""
    return random_network(DrawChooser(draw))


# -- layers -------------------------------------------------------------------------------

INITS = ["glorot_uniform", "glorot_normal", "he_normal", "lecun_uniform", "normal(0, 0.3)"]
# `step` only ends a network (see _head): inside one, its 0/1 outputs make ties and
# batchnorm channels of zero variance, whose float32 results are not comparable
# (docs/semantics.md, "Tolerances").
ACTIVATIONS = [
    "relu",
    "sigmoid",
    "tanh",
    "linear",
    "leaky_relu(0.2)",
    "elu(0.7)",
    "selu",
    "gelu",
    "softplus",
    "silu",
    "prelu",
]


def _args(*positional: object, **keywords: object) -> str:
    parts = [str(p) for p in positional]
    parts += [f"{k} = {v}" for k, v in keywords.items()]
    return ", ".join(parts)


def _dims(c: Chooser, lo: int, hi: int, rank: int) -> str:
    """One value for every dim, or a list with one per dim."""
    if rank == 1 or c.chance(0.6):
        return str(c.integer(lo, hi))
    return "[" + ", ".join(str(c.integer(lo, hi)) for _ in range(rank)) + "]"


def _padding(c: Chooser, rank: int, most: int) -> str:
    kind = c.choice(["valid", "same", "same", "int", "pairs", "sides"])
    if kind in ("valid", "same"):
        return kind
    if kind == "int" or rank == 1:
        return str(c.integer(0, most))
    if kind == "pairs":
        return "[" + ", ".join(str(c.integer(0, most)) for _ in range(rank)) + "]"
    return "[" + ", ".join(str(c.integer(0, most)) for _ in range(2 * rank)) + "]"


def _extras(c: Chooser, keywords: dict[str, object], init: bool = True) -> None:
    """Keywords every parametrised layer accepts: bias, init, trainable."""
    if c.chance(0.15):
        keywords["bias"] = "false"
    if init and c.chance(0.3):
        keywords["init"] = c.choice(INITS)
    if c.chance(0.1):
        keywords["trainable"] = "false"


def dense(c: Chooser, shape: Shape) -> str:
    kw: dict[str, object] = {}
    _extras(c, kw)
    return f"dense({_args(c.integer(1, 8), **kw)})"


def conv(c: Chooser, shape: Shape) -> str | None:
    rank = len(shape) - 1
    channels = shape[0]
    if not isinstance(channels, int):
        return None  # a sequence of symbolic length read as channels
    kw: dict[str, object] = {}
    if c.chance(0.4):
        kw["stride"] = _dims(c, 1, 2, rank)
    kw["padding"] = _padding(c, rank, 2)
    if c.chance(0.2):
        kw["dilation"] = _dims(c, 1, 2, rank)
    groups = c.choice([g for g in range(1, channels + 1) if channels % g == 0])
    filters = groups * c.integer(1, max(1, 6 // groups))
    if groups > 1:
        kw["groups"] = groups
    _extras(c, kw)
    return f"conv{rank}d({_args(filters, _dims(c, 1, 3, rank), **kw)})"


def conv_transpose(c: Chooser, shape: Shape) -> str:
    kw: dict[str, object] = {}
    stride = c.integer(1, 2)
    if stride > 1:
        kw["stride"] = stride
        if c.chance(0.3):
            kw["output_padding"] = 1
    kw["padding"] = c.choice(["valid", "same", "1", "[1, 0, 0, 1]"])
    _extras(c, kw)
    return f"conv2d_transpose({_args(c.integer(1, 4), c.integer(1, 3), **kw)})"


def pool(c: Chooser, shape: Shape) -> str:
    op = c.choice(["maxpool", "avgpool", "sumpool"])
    size = c.integer(1, 3)
    kw: dict[str, object] = {}
    if c.chance(0.4):
        kw["stride"] = c.integer(1, size)
    if c.chance(0.4):
        kw["padding"] = "same"
    return f"{op}({_args(size, **kw)})"


def recurrent(c: Chooser, shape: Shape) -> str:
    op = c.choice(["rnn", "lstm", "gru"])
    kw: dict[str, object] = {}
    if c.chance(0.6):
        kw["return_sequences"] = "true"
    if c.chance(0.1):
        kw["trainable"] = "false"
    return f"{op}({_args(c.integer(1, 6), **kw)})"


def batchnorm(c: Chooser, shape: Shape) -> str:
    kw: dict[str, object] = {}
    if c.chance(0.5):
        kw["momentum"] = c.choice([0.05, 0.3, 0.9])
    if c.chance(0.3):
        kw["eps"] = c.choice([1e-3, 0.1])
    if c.chance(0.1):
        kw["trainable"] = "false"
    return f"batchnorm({_args(**kw)})" if kw else "batchnorm"


def layernorm(c: Chooser, shape: Shape) -> str | None:
    if not isinstance(shape[-1], int) or shape[-1] < 2:
        return None  # over one value it outputs its bias: degenerate, see ACTIVATIONS
    return c.choice(["layernorm", "layernorm(eps = 0.01)"])


def lrn(c: Chooser, shape: Shape) -> str:
    kw = {"alpha": c.choice([1e-4, 0.1, 1.0]), "beta": c.choice([0.5, 0.75, 1.0])}
    if c.chance(0.3):
        kw["bias"] = 2.0
    return f"lrn({_args(c.integer(1, 5), **kw)})"


def activation(c: Chooser, shape: Shape) -> str:
    # Not over an axis of one value: softmax is then the constant 1 (log_softmax 0),
    # and a normalisation after it normalises rounding noise (docs/semantics.md,
    # Tolerances, item 6; soak seed 3960147947 of --seed 14).
    axes = [axis for axis in range(-len(shape), len(shape)) if shape[axis] != 1]
    if axes and c.chance(0.15):
        op = c.choice(["softmax", "log_softmax"])
        return f"{op}(axis = {c.choice(axes)})"
    return c.choice(ACTIVATIONS)


def reshape(c: Chooser, shape: Shape) -> str:
    if not all(isinstance(d, int) for d in shape):
        return "flatten"
    total = 1
    for d in shape:
        total *= int(d)
    first = c.choice([d for d in range(1, total + 1) if total % d == 0])
    if c.chance(0.5):
        return f"reshape([{first}, -1])"
    rest = total // first
    second = c.choice([d for d in range(1, rest + 1) if rest % d == 0])
    return f"reshape([{first}, {second}, -1])"


def simple(text: str) -> Callable[[Chooser, Shape], str]:
    def layer(c: Chooser, shape: Shape) -> str:
        return text

    return layer


def dropout(c: Chooser, shape: Shape) -> str:
    return f"dropout({c.choice([0.1, 0.5])})"


# Which layers fit a value of each rank (per-sample), with weights of how often.
LAYERS: dict[int, list[tuple[Any, int]]] = {
    1: [
        (dense, 6),
        (activation, 5),
        (batchnorm, 1),
        (layernorm, 1),
        (reshape, 2),
        (dropout, 1),
    ],
    2: [
        (dense, 3),
        (conv, 4),
        (recurrent, 4),
        (pool, 2),
        (activation, 4),
        (batchnorm, 1),
        (layernorm, 1),
        (lrn, 1),
        (simple("global_avg_pool"), 1),
        (simple("flatten"), 2),
        (reshape, 1),
        (dropout, 1),
    ],
    3: [
        (conv, 6),
        (conv_transpose, 2),
        (pool, 3),
        (activation, 4),
        (batchnorm, 2),
        (layernorm, 1),
        (lrn, 1),
        (simple("global_avg_pool"), 1),
        (simple("flatten"), 2),
        (reshape, 1),
        (dropout, 1),
    ],
}


Layer = Callable[[Chooser, Shape], "str | None"]


def _weighted(c: Chooser, options: list[tuple[Layer, int]]) -> Layer:
    return c.choice([f for f, weight in options for _ in range(weight)])


# -- growing a model ------------------------------------------------------------------------


@dataclass
class Value:
    name: str
    shape: Shape
    dtype: str = "float32"
    # A layernorm's output: its mean over the last axis is exactly the bias (0 at the
    # start), so averaging it away leaves a constant, and a batchnorm of a constant
    # normalises float32 rounding noise (amplified by 1/sqrt(eps)): not comparable.
    centred: bool = False
    # A normalisation's output (batchnorm or layernorm, perhaps through elementwise
    # activations): many values near 0, and an ill-conditioned trajectory moves them by
    # more than rounding, so a `step` of it may flip on one backend and not on another.
    normalised: bool = False

    @property
    def size(self) -> int:
        n = 1
        for d in self.shape:
            n *= d if isinstance(d, int) else 6
        return n


@dataclass
class Builder:
    """A program under construction: earlier models, the main model's statements."""

    chooser: Chooser
    prelude: list[str] = field(default_factory=list)
    inputs: list[str] = field(default_factory=list)
    statements: list[str] = field(default_factory=list)
    values: list[Value] = field(default_factory=list)
    counter: int = 0

    def text(self, statements: list[str] | None = None, output: str | None = None) -> str:
        body = [*self.inputs, *(self.statements if statements is None else statements)]
        if output:
            body.append(f"output {output}")
        lines = "\n".join(f"    {line}" for line in body)
        return "\n".join([*self.prelude, f"model Fuzz {{\n{lines}\n}}\n"])

    def fresh(self) -> str:
        self.counter += 1
        return f"v{self.counter}"

    def attempt(self, expression: str, prelude: list[str] | None = None) -> Value | None:
        """Add ``name = expression`` if the program still checks; its value, or None."""
        name = self.fresh()
        statements = [*self.statements, f"{name} = {expression}"]
        saved = self.prelude
        if prelude:
            self.prelude = [*saved, *prelude]
        try:
            program = nnc.parse(self.text(statements, output=name), "<fuzz>")
        except NncError:
            self.prelude = saved
            return None
        node_type = program.models["Fuzz"].value_type(name)
        if any(isinstance(d, str) and not d.isidentifier() for d in node_type.shape):
            self.prelude = saved  # a symbolic expression such as t-2: keep dims simple
            return None
        value = Value(name, node_type.shape, node_type.dtype)
        if value.size > 400:
            self.prelude = saved
            return None
        self.statements = statements
        self.values.append(value)
        return value

    @property
    def current(self) -> Value:
        return self.values[-1]


def _input(b: Builder) -> Value:
    c = b.chooser
    kind = c.choice(["vector", "sequence", "signal", "image", "image", "tokens"])
    if kind == "vector":
        shape: Shape = (c.integer(1, 8),)
    elif kind == "sequence":
        shape = (c.choice([2, 4, "t"]), c.integer(1, 4))
    elif kind == "signal":
        shape = (c.integer(1, 4), c.integer(3, 9))
    elif kind == "image":
        shape = (c.integer(1, 4), c.integer(3, 7), c.integer(3, 7))
    else:
        shape = (c.choice([3, "t"]),)
    dtype = "int64" if kind == "tokens" else "float32"
    dims = ", ".join(str(d) for d in shape)
    b.inputs.append(f"input x: {'int64' if dtype == 'int64' else ''}[{dims}]")
    value = Value("x", shape, dtype)
    b.values.append(value)
    if dtype == "int64":
        embedded = b.attempt(f"x |> embedding({c.integer(2, 9)}, {c.integer(1, 4)})")
        assert embedded is not None
        return embedded
    return value


def _layer(b: Builder, source: Value) -> Value | None:
    c = b.chooser
    options = LAYERS[len(source.shape)]
    for _ in range(6):
        layer = _weighted(c, options)(c, source.shape)
        if layer is None or (source.centred and layer == "global_avg_pool"):
            continue
        centred = layer.startswith("layernorm")
        elementwise = layer in ACTIVATIONS or layer.startswith("dropout")
        normalised = layer.startswith(("batchnorm", "layernorm")) or (
            source.normalised and elementwise
        )
        if c.chance(0.3) and layer not in ACTIVATIONS:
            activation = c.choice(ACTIVATIONS)
            layer += f" |> {activation}"
            centred = centred and activation == "linear"
        value = b.attempt(f"{source.name} |> {layer}")
        if value is not None:
            value.centred = centred
            value.normalised = normalised
            return value
    return None


def _merge(b: Builder) -> Value | None:
    """``latest + earlier`` or ``concat(latest, earlier, axis)`` of a fitting earlier value."""
    c = b.chooser
    latest = b.current
    earlier = [v for v in b.values[:-1] if v.dtype == "float32"]
    same = [v for v in earlier if v.shape == latest.shape]
    if same and c.chance(0.6):
        other = c.choice(same)
        return _mark(b.attempt(f"{latest.name} + {other.name}"), latest, other)
    fits = [
        (v, axis)
        for v in earlier
        for axis in range(len(latest.shape))
        if len(v.shape) == len(latest.shape)
        and all(
            a == d for i, (a, d) in enumerate(zip(v.shape, latest.shape, strict=True)) if i != axis
        )
    ]
    if not fits:
        return None
    other, axis = c.choice(fits)
    return _mark(b.attempt(f"concat({latest.name}, {other.name}, axis = {axis})"), latest, other)


def _matmul(b: Builder) -> Value | None:
    """``latest @ param([k, n])`` (a learned right factor, sometimes a vector), or
    ``latest @ earlier`` with an earlier value whose rows fit."""
    c = b.chooser
    latest = b.current
    k = latest.shape[-1] if latest.shape else None
    if latest.dtype != "float32" or not isinstance(k, int):
        return None
    fits = [
        v for v in b.values[:-1] if v.dtype == "float32" and len(v.shape) >= 2 and v.shape[-2] == k
    ]
    if fits and c.chance(0.3):
        other = c.choice(fits)
        return _mark(b.attempt(f"{latest.name} @ {other.name}"), latest, other)
    shape = [k, c.integer(1, 6)] if c.chance(0.7) else [k]
    init = f", init = {c.choice(INITS)}" if c.chance(0.3) else ""
    factor = f"param([{', '.join(str(d) for d in shape)}]{init})"
    value = b.attempt(f"{latest.name} @ {factor}")
    if value is not None and not value.shape:  # a dot product: keep a rank-1 value
        b.statements.pop()
        b.values.pop()
        value = b.attempt(f"({latest.name} @ {factor}) |> reshape([1])")
    return _mark(value, latest)


def _mark(value: Value | None, *parts: Value) -> Value | None:
    """A sum or concatenation holds its parts' values: it is normalised if one is."""
    if value is not None:
        value.normalised = any(part.normalised for part in parts)
    return value


def _call(b: Builder) -> Value | None:
    """A small model of one to three layers, used as a layer of the main model."""
    c = b.chooser
    source = b.current
    if not all(isinstance(d, int) for d in source.shape) or source.dtype != "float32":
        return None
    name = f"Part{len(b.prelude) + 1}"
    inner = Builder(c, inputs=[f"input a: [{', '.join(str(d) for d in source.shape)}]"])
    inner.values.append(
        Value("a", source.shape, centred=source.centred, normalised=source.normalised)
    )
    for _ in range(c.integer(1, 3)):
        if _layer(inner, inner.current) is None:
            break
    if len(inner.values) == 1:
        return None
    body = "\n".join(f"    {line}" for line in [*inner.inputs, *inner.statements])
    model = f"model {name} {{\n{body}\n    output {inner.current.name}\n}}\n"
    value = b.attempt(f"{source.name} |> {name}", prelude=[model])
    if value is not None:
        value.centred, value.normalised = inner.current.centred, inner.current.normalised
    return value


LOSSES = ["mse", "mae", "sse", "cross_entropy", "binary_cross_entropy"]


def _head(b: Builder, loss: str) -> None:
    """Fit the output to the loss: class scores for cross-entropy, a small output."""
    c = b.chooser
    out = b.current
    normalised = out.normalised
    if out.size > 48 or (loss == "cross_entropy" and c.chance(0.5)):
        if len(out.shape) == 3 or (out.size > 48 and len(out.shape) > 1):
            b.attempt(f"{out.name} |> flatten")
        if b.attempt(f"{b.current.name} |> dense({c.integer(2, 5)})") is not None:
            normalised = False
    if loss == "cross_entropy" and b.current.shape[-1] != 1 and c.chance(0.4):
        b.attempt(f"{b.current.name} |> softmax")  # over more than one class (activation)
    if loss == "binary_cross_entropy" and c.chance(0.5):
        b.attempt(f"{b.current.name} |> sigmoid")
    if loss in ("mse", "sse") and not normalised and c.chance(0.15):
        # a perceptron's output; not of a normalisation's (see Value.normalised)
        b.attempt(f"{b.current.name} |> step")


def _optimizer(c: Chooser) -> str:
    kind = c.choice(["sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam"])
    if kind == "sgd":
        return f"sgd(lr = {c.choice([0.01, 0.05])})"
    if kind in ("momentum", "nesterov"):
        nesterov = ", nesterov = true" if kind == "nesterov" else ""
        return f"sgd(lr = {c.choice([0.01, 0.05])}, momentum = {c.choice([0.5, 0.9])}{nesterov})"
    if kind == "adagrad":
        # 0 too: the harness allows for what it does to a cancelling gradient
        # (docs/semantics.md, Tolerances, item 7).
        accumulator = c.choice([0, 0.01, 0.1])
        return f"adagrad(lr = {c.choice([0.01, 0.05])}, initial_accumulator = {accumulator})"
    if kind == "rmsprop":
        return f"rmsprop(lr = {c.choice([0.001, 0.01])}, rho = {c.choice([0.9, 0.5])})"
    return f"adam(lr = {c.choice([0.001, 0.01])}, beta1 = {c.choice([0.9, 0.5])})"


def random_network(c: Chooser, max_statements: int = 7) -> str:
    """A valid ``.nn`` program: model ``Fuzz`` and its recipe (data is synthetic)."""
    b = Builder(c)
    _input(b)
    for _ in range(c.integer(1, max_statements)):
        roll = c.integer(0, 9)
        grown = None
        if roll == 0 and len(b.values) > 1:
            grown = _merge(b)
        elif roll == 1:
            grown = _call(b)
        elif roll == 2:
            grown = _matmul(b)
        if grown is None:
            grown = _layer(b, b.current)
        if grown is None:
            break
    loss = c.choice(LOSSES)
    _head(b, loss)
    recipe = ['    data      "fuzz.npz"', f"    loss      {loss}", f"    optimizer {_optimizer(c)}"]
    if c.chance(0.3):
        schedule = c.choice(["step(every = 2, gamma = 0.5)", "exponential(0.7)"])
        recipe.append(f"    schedule  {schedule}")
    if c.chance(0.3):
        recipe.append(f"    l2        {c.choice([0.001, 0.01])}")
    text = b.text(output=b.current.name) + "\ntrain Fuzz {\n" + "\n".join(recipe) + "\n}\n"
    try:
        nnc.parse(text, "<fuzz>")
    except NncError:  # the output does not fit the loss (a symbolic class axis, say)
        text = text.replace(f"loss      {loss}", "loss      mse")
    return text


def ops_of(source: str) -> set[str]:
    """The ops a generated program uses (to measure the generator's coverage)."""
    program = nnc.parse(source, "<fuzz>")
    return {n.op for m in program.models.values() for n in m.nodes}


ALL_OPS = frozenset(OPS)
