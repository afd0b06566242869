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
from nnc.verify.tolerance import SYMBOLIC_LENGTH

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


def rbm(c: Chooser, shape: Shape) -> str:
    """An rbm's up pass (a model trained by backprop runs no Gibbs chain)."""
    kw: dict[str, object] = {}
    if c.chance(0.3):
        kw["init"] = c.choice(INITS)
    return f"rbm({_args(c.integer(1, 6), **kw)})"


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


def pool(c: Chooser, shape: Shape) -> str | None:
    """A 1-, 2- or 3-D pool (``maxpool3d``, ``avgpool3d`` over ``[C, D, H, W]``), sometimes
    with a window per dim, a stride wider than the window, explicit (asymmetric) pads,
    dilation or ``ceil_mode``."""
    rank = len(shape) - 1
    if not isinstance(shape[0], int):
        return None  # a sequence of symbolic length read as channels (see conv)
    op = c.choice(["maxpool3d", "avgpool3d"] if rank == 3 else ["maxpool", "avgpool", "sumpool"])
    size = c.integer(1, 3)
    sizes = [size] * rank if rank == 1 or c.chance(0.7) else [c.integer(1, 3) for _ in shape[1:]]
    kw: dict[str, object] = {}
    if c.chance(0.4):
        kw["stride"] = c.integer(1, size + 1)  # wider than a window of `size` too
    if c.chance(0.2):
        kw["dilation"] = c.integer(1, 2)
    roll = c.integer(0, 9)
    if roll < 3:
        kw["padding"] = "same"
    elif roll < 5:
        most = max(0, min(sizes) - 1)  # a pad stays smaller than the window
        kw["padding"] = "[" + ", ".join(str(c.integer(0, most)) for _ in range(2 * rank)) + "]"
    if c.chance(0.2):
        kw["ceil_mode"] = "true"
    first = str(size) if len(set(sizes)) == 1 else "[" + ", ".join(map(str, sizes)) + "]"
    return f"{op}({_args(first, **kw)})"


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


# The fewest values a drawn normalisation (layernorm, instancenorm, groupnorm) runs
# over. Over one value it outputs its bias: degenerate, see ACTIVATIONS. Over two, a
# and b, it outputs +-d / sqrt(d^2 + eps) with d = (a - b) / 2: a pair equal up to sign
# in exact arithmetic, so an even function after it (square, abs, pow 2) makes an exact
# tie, and float32 rounding picks which of the two a later max sends its gradient to
# (soak seed 590352499 of --seed 36: groupnorm(2) of [2, 2], pow 2, global_max_pool; the
# bias gradient's sign was the tie-break's, and torch's rmsprop state ended 2.7e-3
# off). The bias starts at exactly 0, so the reference's weight perturbation keeps the
# tie and the tolerance's allowance for discontinuities cannot see it.
MIN_NORMALISED = 3


def layernorm(c: Chooser, shape: Shape) -> str | None:
    if not isinstance(shape[-1], int) or shape[-1] < MIN_NORMALISED:
        return None
    return c.choice(["layernorm", "layernorm(eps = 0.01)"])


def _spatial(shape: Shape) -> int:
    """The positions per channel the harness feeds (a symbolic length at SYMBOLIC_LENGTH)."""
    n = 1
    for d in shape[1:]:
        n *= d if isinstance(d, int) else SYMBOLIC_LENGTH
    return n


def instancenorm(c: Chooser, shape: Shape) -> str | None:
    """Over the spatial positions of each channel of ``[C, L]``, ``[C, H, W]`` or
    ``[C, D, H, W]``: not over fewer than MIN_NORMALISED positions."""
    if _spatial(shape) < MIN_NORMALISED:
        return None
    return c.choice(["instancenorm", "instancenorm(eps = 0.01)"])


def groupnorm(c: Chooser, shape: Shape) -> str | None:
    """Not over groups of fewer than MIN_NORMALISED values (soak seed 2912742878 of
    --seed 1: groupnorm(2) of [2, 1, 1, 1] is exactly its bias, and torch's group_norm,
    x * s + (b - mean * s), left 2.5e-5 of rounding noise there)."""
    channels = shape[0]
    if not isinstance(channels, int):
        return None
    spatial = _spatial(shape)
    options = [g for g in range(1, channels + 1) if channels % g == 0]
    options = [g for g in options if channels // g * spatial >= MIN_NORMALISED]
    if not options:
        return None
    groups = c.choice(options)
    return f"groupnorm({_args(groups, **({'eps': 0.01} if c.chance(0.3) else {}))})"


def attention(c: Chooser, shape: Shape) -> str | None:
    """Self-attention of a ``[t, d]`` sequence (cross-attention is a merge, _attend)."""
    width = shape[-1]
    if not isinstance(width, int):
        return None
    heads = c.choice([h for h in range(1, width + 1) if width % h == 0])
    return f"attention({_args(heads, **_attention_keywords(c))})"


def _attention_keywords(c: Chooser) -> dict[str, object]:
    kw: dict[str, object] = {}
    if c.chance(0.3):
        kw["key_dim"] = c.integer(1, 4)
    if c.chance(0.2):
        kw["value_dim"] = c.integer(1, 4)
    if c.chance(0.3):
        kw["causal"] = "true"
    if c.chance(0.2):
        kw["bias"] = "false"
    return kw


def positions(c: Chooser, shape: Shape) -> str:
    if c.chance(0.5):
        return c.choice(["sinusoidal_positions", "sinusoidal_positions(base = 100)"])
    longest = shape[0] if isinstance(shape[0], int) else SYMBOLIC_LENGTH
    return f"learned_positions({longest + c.integer(0, 3)})"


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


# Element-wise maths (docs/semantics.md, Activations). `exp` and `square` can overflow a
# deep draw: the float64 reference is then not finite and the case is "diverged".
MATHS = [
    "exp",
    "abs",
    "square",
    "erf",
    "relu6",
    "hard_sigmoid",
    "hard_swish",
    "softsign",
    "mish",
]
# The ops defined on positive inputs only, and what makes an input positive today:
# each is drawn straight after one of these (`softplus |> log`), so that it stays finite
# and smooth. Extension point: with scalar constants, `abs |> ... + 1.0` fits here too.
DOMAIN_OPS = ["log", "sqrt", "rsqrt"]
POSITIVE = ["softplus", "sigmoid"]


def maths(c: Chooser, shape: Shape) -> str:
    roll = c.integer(0, 5)
    if roll == 0:
        lo = c.choice([-2.0, -1.0, -0.5, 0.0])
        return f"clip({lo}, {c.choice([0.25, 0.75, 1.5])})"
    if roll == 1:
        return f"{c.choice(POSITIVE)} |> {c.choice(DOMAIN_OPS)}"
    return c.choice(MATHS)


def _axes_subset(c: Chooser, rank: int) -> list[int]:
    """A non-empty set of per-sample axes, some written from the end."""
    axes = [a for a in range(rank) if c.chance(0.5)] or [c.integer(0, rank - 1)]
    return [a - rank if c.chance(0.3) else a for a in axes]


def reduce(c: Chooser, shape: Shape) -> str:
    op = c.choice(["mean", "sum", "max", "min"])
    rank = len(shape)
    kw: dict[str, object] = {}
    if c.chance(0.2):
        kw["keepdims"] = "true"  # every axis: `mean(keepdims = true)` gives [1, ...]
        return f"{op}({_args(**kw)})"
    axes = _axes_subset(c, rank)
    kw["axis"] = axes[0] if len(axes) == 1 and c.chance(0.5) else axes
    if len(axes) == rank or c.chance(0.4):
        kw["keepdims"] = "true"  # no rank-0 values: every layer needs an axis
    return f"{op}({_args(**kw)})"


def resize(c: Chooser, shape: Shape) -> str:
    rank = len(shape) - 1
    kw: dict[str, object] = {}
    if c.chance(0.5):
        kw["mode"] = "bilinear"
        if c.chance(0.4):
            kw["align_corners"] = "true"
    return f"resize({_args(_dims(c, 1, 2, rank), **kw)})"


def blocks(c: Chooser, shape: Shape) -> str | None:
    if not all(isinstance(d, int) for d in shape):
        return None
    ch, h, w = (int(d) for d in shape)
    options = []
    if ch % 4 == 0:
        options.append("depth_to_space(2)")
    if h % 2 == 0 and w % 2 == 0:
        options.append("space_to_depth(2)")
    return c.choice(options) if options else None


def transpose(c: Chooser, shape: Shape) -> str:
    rank = len(shape)
    if c.chance(0.25):
        return "transpose"  # the per-sample axes reversed
    perm = list(range(rank))
    for i in range(rank - 1, 0, -1):  # Fisher-Yates with the chooser's draws
        j = c.integer(0, i)
        perm[i], perm[j] = perm[j], perm[i]
    return f"transpose([{', '.join(str(p) for p in perm)}])"


def squeeze(c: Chooser, shape: Shape) -> str | None:
    ones = [a for a, d in enumerate(shape) if d == 1]
    if not ones or len(ones) == len(shape):
        return None
    if c.chance(0.4):
        return "squeeze"
    return f"squeeze([{c.choice(ones) - (len(shape) if c.chance(0.3) else 0)}])"


def unsqueeze(c: Chooser, shape: Shape) -> str:
    out = len(shape) + 1  # at most rank 3 (attempt refuses the rest)
    return f"unsqueeze([{c.integer(-out, out - 1)}])"


def slice_(c: Chooser, shape: Shape) -> str | None:
    static = [a for a, d in enumerate(shape) if isinstance(d, int) and d > 1]
    if not static:
        return None
    axis = c.choice(static)
    n = int(shape[axis])
    step = c.choice([1, 1, 2, -1, -2])
    start, stop = c.integer(-n, n - 1), c.integer(-n - 1, n + 1)
    if step > 0 and slice(start, stop, step).indices(n)[0] >= slice(start, stop).indices(n)[1]:
        start, stop = stop, start  # the checker refuses an empty slice; try the other way
    text = f"slice(axes = [{axis}], starts = [{start}], stops = [{stop}]"
    return text + (f", steps = [{step}])" if step != 1 or c.chance(0.3) else ")")


def pad(c: Chooser, shape: Shape) -> str:
    mode = c.choice(["constant", "constant", "reflect", "edge"])
    pads = [c.integer(0, 2) if c.chance(0.6) else 0 for _ in range(2 * len(shape))]
    kw: dict[str, object] = {}
    if mode != "constant":
        kw["mode"] = mode
    elif c.chance(0.3):
        kw["value"] = c.choice([0.5, -1.0])
    return f"pad({_args('[' + ', '.join(str(p) for p in pads) + ']', **kw)})"


def tile(c: Chooser, shape: Shape) -> str:
    return f"tile([{', '.join(str(c.integer(1, 2)) for _ in shape)}])"


def broadcast_to(c: Chooser, shape: Shape) -> str | None:
    if not all(isinstance(d, int) for d in shape):
        return None
    target = [c.integer(2, 3) if d == 1 else int(d) for d in shape]
    if len(target) < 3 and (c.chance(0.5) or target == [int(d) for d in shape]):
        target.insert(0, c.integer(2, 3))
    return f"broadcast_to([{', '.join(str(d) for d in target)}])"


# Layers by the name they start with: which flags of their input (see Value) they keep.
ELEMENTWISE = {
    *(a.split("(")[0] for a in ACTIVATIONS),
    *MATHS,
    *DOMAIN_OPS,
    *POSITIVE,
    "clip",
    "dropout",
}
# Ops that move or pick values and compute nothing new: a centred value stays centred
# (its average may still be the constant bias), a normalised one normalised.
LAYOUT = {
    "transpose",
    "squeeze",
    "unsqueeze",
    "slice",
    "pad",
    "tile",
    "broadcast_to",
    "resize",
    "depth_to_space",
    "space_to_depth",
    "max",
    "min",
    "global_max_pool",
}
# Ops that may repeat one value along an axis (a size-1 axis stretched, an edge
# copied): a layernorm or softmax over that axis sees equal values (see Value.repeated).
REPEATING = {"tile", "broadcast_to", "resize"}  # and pad(mode = edge)
# Pools pick or average values: a normalised value stays normalised (a maxpool(1) is
# the identity; soak seed 2211060752 of --seed 2 ended a groupnorm with one and a step).
POOLS = {"maxpool", "avgpool", "sumpool", "maxpool3d", "avgpool3d", "global_avg_pool"}
# The normalisations over a sample's own values: the average of their output over the
# normalised positions is exactly the bias (Value.centred), and they must not normalise
# one value repeated (Value.repeated).
NORMS = ("layernorm", "instancenorm", "groupnorm")


# Which layers fit a value of each rank (per-sample), with weights of how often
# (Builder.attempt keeps only values of a rank listed here). Rank 4 is a volume
# [C, D, H, W] (conv3d, the 3-D pools, the normalisations over it).
LAYERS: dict[int, list[tuple[Any, int]]] = {
    1: [
        (dense, 6),
        (rbm, 1),
        (activation, 5),
        (maths, 2),
        (batchnorm, 1),
        (layernorm, 1),
        (reshape, 2),
        (dropout, 1),
        (reduce, 2),
        (slice_, 1),
        (pad, 1),
        (tile, 1),
        (unsqueeze, 1),
        (broadcast_to, 1),
    ],
    2: [
        (dense, 3),
        (conv, 4),
        (recurrent, 4),
        (pool, 2),
        (activation, 4),
        (maths, 2),
        (batchnorm, 1),
        (layernorm, 1),
        (lrn, 1),
        (simple("global_avg_pool"), 1),
        (simple("global_max_pool"), 1),
        (simple("flatten"), 2),
        (reshape, 1),
        (dropout, 1),
        (reduce, 2),
        (resize, 1),
        (transpose, 1),
        (squeeze, 1),
        (unsqueeze, 1),
        (slice_, 1),
        (pad, 1),
        (tile, 1),
        (broadcast_to, 1),
        (instancenorm, 1),
        (groupnorm, 1),
        (attention, 2),
        (positions, 1),
    ],
    3: [
        (conv, 6),
        (conv_transpose, 2),
        (pool, 3),
        (activation, 4),
        (maths, 2),
        (batchnorm, 2),
        (layernorm, 1),
        (lrn, 1),
        (simple("global_avg_pool"), 1),
        (simple("global_max_pool"), 1),
        (simple("flatten"), 2),
        (reshape, 1),
        (dropout, 1),
        (reduce, 2),
        (resize, 1),
        (blocks, 2),
        (transpose, 1),
        (squeeze, 1),
        (slice_, 1),
        (pad, 1),
        (tile, 1),
        (instancenorm, 1),
        (groupnorm, 1),
    ],
    4: [
        (conv, 6),
        (pool, 4),
        (activation, 3),
        (maths, 1),
        (batchnorm, 2),
        (instancenorm, 2),
        (groupnorm, 2),
        (simple("global_avg_pool"), 1),
        (simple("global_max_pool"), 1),
        (simple("flatten"), 2),
        (reshape, 1),
        (dropout, 1),
        (reduce, 1),
        (transpose, 1),
        (squeeze, 1),
        (slice_, 1),
        (pad, 1),
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
    # Some axis may hold one value repeated (a broadcast, a tile or resize of a size-1
    # axis, an edge pad): a layernorm or softmax over it is degenerate as above.
    repeated: bool = False

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
    program: nnc.Program | None = None  # the program as the last attempt checked it

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
        values = self.attempt_many(expression, 1, prelude)
        return values[0] if values else None

    def attempt_many(
        self, expression: str, outputs: int, prelude: list[str] | None = None
    ) -> list[Value] | None:
        """Add ``n1, n2, ... = expression`` (``outputs`` names: a split) if the program
        still checks and every value is small, of a rank LAYERS knows, with simple
        dims; the new values (appended in order), or None."""
        names = [self.fresh() for _ in range(outputs)]
        statements = [*self.statements, f"{', '.join(names)} = {expression}"]
        saved = self.prelude
        if prelude:
            self.prelude = [*saved, *prelude]
        try:
            program = nnc.parse(self.text(statements, output=names[-1]), "<fuzz>")
        except NncError:
            self.prelude = saved
            return None
        values = []
        for name in names:
            node_type = program.models["Fuzz"].value_type(name)
            value = Value(name, node_type.shape, node_type.dtype)
            # a symbolic expression such as t-2 (keep dims simple), too large, or a rank
            # no layer takes (a reduction to a scalar, an unsqueeze to rank 4)
            if (
                any(isinstance(d, str) and not d.isidentifier() for d in node_type.shape)
                or value.size > 400
                or len(value.shape) not in LAYERS
            ):
                self.prelude = saved
                return None
            values.append(value)
        self.statements = statements
        self.values.extend(values)
        self.program = program
        return values

    @property
    def current(self) -> Value:
        return self.values[-1]


def _input(b: Builder) -> Value:
    c = b.chooser
    kind = c.choice(["vector", "sequence", "signal", "image", "image", "volume", "tokens"])
    if kind == "vector":
        shape: Shape = (c.integer(1, 8),)
    elif kind == "sequence":
        shape = (c.choice([2, 4, "t"]), c.integer(1, 4))
    elif kind == "signal":
        shape = (c.integer(1, 4), c.integer(3, 9))
    elif kind == "image":
        shape = (c.integer(1, 4), c.integer(3, 7), c.integer(3, 7))
    elif kind == "volume":
        shape = (c.integer(1, 3), c.integer(2, 4), c.integer(2, 5), c.integer(3, 5))
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
        if layer is None:
            continue
        head = _head_of(layer)
        if source.centred and head in ("global_avg_pool", "mean", "sum"):
            continue  # the average of a layernorm's output is its bias (Value.centred)
        if source.repeated and head in ("softmax", "log_softmax", *NORMS):
            continue
        elementwise = head in ELEMENTWISE
        keeps = elementwise or head in LAYOUT
        centred = head in NORMS or (source.centred and (head == "linear" or head in LAYOUT))
        normalised = head in ("batchnorm", *NORMS) or (
            source.normalised and (keeps or head in POOLS)
        )
        repeated = (
            head in REPEATING
            or (head == "pad" and "mode = edge" in layer)
            or (source.repeated and keeps)
        )
        if c.chance(0.3) and not elementwise:
            activation = c.choice(ACTIVATIONS) if c.chance(0.8) else maths(c, source.shape)
            layer += f" |> {activation}"
            centred = centred and activation == "linear"
        value = b.attempt(f"{source.name} |> {layer}")
        if value is not None:
            value.centred = centred
            value.normalised = normalised
            value.repeated = repeated
            return value
    return None


def _head_of(layer: str) -> str:
    """The op a layer's text starts with: ``clip(0.0, 1.5)`` -> ``clip``."""
    return layer.split("(")[0].split(" ")[0]


def _split(b: Builder) -> Value | None:
    """``p, q[, r] = latest |> split(axis, sizes)``: every piece becomes a value (the
    merges may join them again); the last is the one the model grows from."""
    c = b.chooser
    source = b.current
    static = [a for a, d in enumerate(source.shape) if isinstance(d, int) and d > 1]
    if source.dtype != "float32" or not static:
        return None
    axis = c.choice(static)
    n = int(source.shape[axis])
    pieces = c.integer(2, min(3, n))
    cuts = sorted({c.integer(1, n - 1) for _ in range(pieces - 1)})
    sizes = [hi - lo for lo, hi in zip([0, *cuts], [*cuts, n], strict=True)]
    written = axis - len(source.shape) if c.chance(0.3) else axis
    values = b.attempt_many(
        f"{source.name} |> split(axis = {written}, sizes = [{', '.join(map(str, sizes))}])",
        len(sizes),
    )
    if not values:
        return None
    for value in values:  # a piece of a value keeps its flags (conservatively)
        value.centred, value.normalised = source.centred, source.normalised
        value.repeated = source.repeated
    return values[-1]


def _merge(b: Builder) -> Value | None:
    """``latest + earlier`` or ``concat(latest, earlier, axis)`` of a fitting earlier value
    (one of :data:`MERGES`)."""
    c = b.chooser
    for _ in range(3):
        merge = _weighted(c, MERGES)
        value = merge(b)
        if value is not None:
            return value
    return None


def _add(b: Builder) -> Value | None:
    c = b.chooser
    latest = b.current
    same = [v for v in b.values[:-1] if v.dtype == "float32" and v.shape == latest.shape]
    if not same:
        return None
    other = c.choice(same)
    return _mark(b.attempt(f"{latest.name} + {other.name}"), latest, other)


def _concat(b: Builder) -> Value | None:
    c = b.chooser
    latest = b.current
    earlier = [v for v in b.values[:-1] if v.dtype == "float32"]
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


def _arith(b: Builder) -> Value | None:
    """``latest - earlier``, ``latest * earlier``, ``maximum``/``minimum``: broadcasting
    binary arithmetic with an earlier value whose shape broadcasts (else nothing)."""
    c = b.chooser
    latest = b.current
    earlier = [v for v in b.values[:-1] if v.dtype == "float32"]
    if latest.dtype != "float32" or not earlier:
        return None
    other = c.choice(earlier)
    op = c.choice(["-", "*", "maximum", "minimum"])
    text = (
        f"{latest.name} {op} {other.name}" if op in "-*" else f"{op}({latest.name}, {other.name})"
    )
    value = _mark(b.attempt(text), latest, other)
    if value is not None and op in ("maximum", "minimum") and latest.shape != other.shape:
        # A broadcast operand that wins clamps whole rows to its one value (soak seed
        # 2211060752 of --seed 2: maximum(tanh(max(v)), v) is mostly that value, and a
        # groupnorm of it normalised rounding noise): as repeated as a broadcast.
        value.repeated = True
    return value


def _scalar(b: Builder) -> Value | None:
    """The latest value with a number or a constant: ``x * 0.5``, ``1 - x``, ``x / 4``,
    ``-x``, ``pow(x, 2)``, ``x + constant(...)`` of its last axis."""
    c = b.chooser
    x = b.current
    if x.dtype != "float32":
        return None
    forms = [f"{x.name} * {c.choice([0.5, -1.5, 2])}", f"1 - {x.name}", f"{x.name} / 4"]
    forms += [f"-{x.name}", f"pow({x.name}, 2)"]
    last = x.shape[-1] if x.shape else None
    if isinstance(last, int) and last <= 8:
        values = ", ".join(str(round(0.25 * (k - 1), 2)) for k in range(last))
        forms.append(f"{x.name} + constant([{values}])")
    return _mark(b.attempt(c.choice(forms)), x)


def _attend(b: Builder) -> Value | None:
    """Cross-attention of the latest ``[t, d]`` value to an earlier sequence or a learned
    ``param([s, e])`` (keys without a batch axis), as ``(q, kv)`` or ``(q, k, v)``,
    sometimes with a key mask (a constant that keeps the first key)."""
    c = b.chooser
    q = b.current
    width = q.shape[-1] if len(q.shape) == 2 else None
    if q.dtype != "float32" or not isinstance(width, int):
        return None
    earlier = [v for v in b.values[:-1] if v.dtype == "float32" and len(v.shape) == 2]
    if earlier and c.chance(0.6):
        memory = c.choice(earlier)
        keys, length = memory.name, memory.shape[0]
    else:
        length = c.integer(1, 4)
        keys = f"param([{length}, {c.integer(1, 5)}])"
    inputs = [q.name, keys]
    if c.chance(0.3):
        inputs.append(keys)  # (q, k, v) with v = k
    if isinstance(length, int) and length > 1 and c.chance(0.3):
        mask = [1] + [c.integer(0, 1) for _ in range(length - 1)]
        inputs.append(f"constant([{', '.join(map(str, mask))}])")
    heads = c.choice([h for h in range(1, width + 1) if width % h == 0])
    kw = {"heads": heads, **_attention_keywords(c)}
    return _mark(b.attempt(f"attention({', '.join(inputs)}, {_args(**kw)})"), q)


def _mark(value: Value | None, *parts: Value) -> Value | None:
    """A sum or concatenation holds its parts' values: it is normalised (or repeated) if
    one is."""
    if value is not None:
        value.normalised = any(part.normalised for part in parts)
        value.repeated = any(part.repeated for part in parts)
    return value


# Ways of combining the latest value with an earlier one, with weights.
# Extension point: the broadcasting binary arithmetic (`-`, `*`, `/`, pow, maximum,
# minimum, scalar constants, `constant()`) and `@` / `matmul` with `param()` join here,
# each a function of the Builder that returns its new value (or None when nothing fits;
# `/` and pow need the domain care of DOMAIN_OPS). `_mark` the result.
MERGES: list[tuple[Callable[[Builder], Value | None], int]] = [
    (_add, 3),
    (_concat, 2),
    (_arith, 2),
    (_attend, 1),
]


def _call(b: Builder) -> Value | None:
    """A small model of one to three layers, used as a layer of the main model."""
    c = b.chooser
    source = b.current
    if not all(isinstance(d, int) for d in source.shape) or source.dtype != "float32":
        return None
    name = f"Part{len(b.prelude) + 1}"
    inner = Builder(c, inputs=[f"input a: [{', '.join(str(d) for d in source.shape)}]"])
    inner.values.append(
        Value(
            "a",
            source.shape,
            centred=source.centred,
            normalised=source.normalised,
            repeated=source.repeated,
        )
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
        value.repeated = inner.current.repeated
    return value


LOSSES = ["mse", "mae", "sse", "cross_entropy", "binary_cross_entropy"]


def _head(b: Builder, loss: str) -> None:
    """Fit the output to the loss: class scores for cross-entropy, a small output."""
    c = b.chooser
    out = b.current
    normalised = out.normalised
    # A cross-entropy over a repeated axis cancels its own gradient exactly (soak seed
    # 250538052 of --seed 20): such an output gets a dense head.
    if out.size > 48 or (loss == "cross_entropy" and (out.repeated or c.chance(0.5))):
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
        elif roll == 3 and c.chance(0.3):
            grown = _split(b)
        elif roll == 4 and c.chance(0.5):
            grown = _scalar(b)
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


def ops_of(source: str | nnc.Program) -> set[str]:
    """The ops a generated program uses (to measure the generator's coverage)."""
    program = nnc.parse(source, "<fuzz>") if isinstance(source, str) else source
    return {n.op for m in program.models.values() for n in m.nodes}


ALL_OPS = frozenset(OPS)

# Registry ops the generator leaves out on purpose, with why. Every other op must be
# drawn (tests/equivalence/test_fuzz.py): a new op joins LAYERS or MERGES, or this.
# (rbm is drawn too: in a model trained by backprop it is its up pass, sigmoid(v W + c),
# and its visible bias, which only contrastive divergence uses, gets no gradient.)
NOT_DRAWN: dict[str, str] = {}
