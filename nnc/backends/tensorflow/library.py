"""Fixed helper code that generated TensorFlow modules include when they use it.

Each entry is a top-level function or class, written once here and emitted verbatim
(no spec-derived text in it), in the order of :data:`LIBRARY`. The emitter records
which entries a model needs; :func:`emit_library` writes only those, so a generated
module carries no dead helpers. Layer classes hold their parameters as
``tf.Variable`` in TensorFlow's native layout and convert canonical arrays on the way
in and out (``to_native`` / ``to_canonical``); they live in :mod:`.layers`, and the
conversions are listed in ``docs/backends/tensorflow.md``.
"""

from __future__ import annotations

import textwrap

from nnc.backends.codegen import CodeWriter
from nnc.backends.tensorflow.layers import LAYERS

_SOURCES: dict[str, str] = dict(LAYERS)


def _entry(name: str, source: str) -> None:
    _SOURCES[name] = textwrap.dedent(source).strip("\n")


# -- errors raised by the generated runtime -------------------------------------------

# -- layout and element-wise helpers -------------------------------------------------

_entry(
    "to_channels_last",
    '''
    def to_channels_last(x):
        """[N, C, *spatial] -> [N, *spatial, C]: the layout TensorFlow's CPU kernels want."""
        return tf.transpose(x, (0, *range(2, len(x.shape)), 1))
    ''',
)

_entry(
    "to_channels_first",
    '''
    def to_channels_first(x):
        """[N, *spatial, C] -> [N, C, *spatial]: nnc's canonical layout."""
        rank = len(x.shape)
        return tf.transpose(x, (0, rank - 1, *range(1, rank - 1)))
    ''',
)

_entry(
    "step",
    '''
    @tf.custom_gradient
    def step(x):
        """Heaviside step, 1 where x > 0, with a straight-through gradient (1): so
        step + sse + sgd with batch 1 is Rosenblatt's perceptron rule."""

        def straight_through(upstream):
            return upstream

        return tf.cast(x > 0, x.dtype), straight_through
    ''',
)

_entry(
    "first_extreme",
    '''
    def first_extreme(x, axes, keepdims=False, largest=True):
        """The max (or min) of x over axes. The gradient goes to the first extreme element
        in row-major order of those axes (tf.reduce_max splits it among ties)."""
        kept = [a for a in range(len(x.shape)) if a not in axes]
        moved = tf.transpose(x, kept + list(axes))
        flat = tf.reshape(moved, tf.concat([tf.shape(moved)[: len(kept)], [-1]], 0))
        extreme = tf.reduce_max(flat, -1, True) if largest else tf.reduce_min(flat, -1, True)
        hit = tf.cast(flat == extreme, tf.int32)
        first = tf.argmax(hit * tf.cast(tf.cumsum(hit, axis=-1) == 1, tf.int32), axis=-1)
        value = tf.gather(flat, first, batch_dims=len(kept))
        for a in axes if keepdims else ():
            value = tf.expand_dims(value, a)
        return value
    ''',
)

_entry(
    "batch_matmul",
    '''
    def batch_matmul(a, b):
        """a @ b for two stacks of matrices of one rank, without a broadcasting
        BatchMatMulV2, whose gradient corrupts memory for some shapes (TF 2.21 on
        oneDNN: [N, 1, m, k] @ [1, 1, k, n]). A right factor shared by every sample
        (a param: every leading dim 1) is one tensordot; otherwise the leading axes
        are broadcast explicitly first."""
        if all(d == 1 for d in b.shape[:-2]):
            return tf.tensordot(a, tf.reshape(b, tf.shape(b)[-2:]), axes=1)
        lead = tf.broadcast_dynamic_shape(tf.shape(a)[:-2], tf.shape(b)[:-2])
        a = tf.broadcast_to(a, tf.concat([lead, tf.shape(a)[-2:]], 0))
        b = tf.broadcast_to(b, tf.concat([lead, tf.shape(b)[-2:]], 0))
        return tf.linalg.matmul(a, b)
    ''',
)

_entry(
    "dropout",
    '''
    def dropout(x, rate, generator):
        """Inverted dropout: keep each element with probability 1 - rate and scale it by
        1 / (1 - rate). The mask's seed comes from `generator`, reseeded by Runtime.seed."""
        return tf.nn.experimental.stateless_dropout(x, rate, seed=generator.make_seeds(1)[:, 0])
    ''',
)

_entry(
    "sum_pool",
    '''
    def sum_pool(x, size, stride, pads=None):
        """The sum of each window's real elements, channels-last. Padding adds zeros, which
        add nothing, so the mean of a padded full window times its size is that sum."""
        if pads is not None:
            x = tf.pad(x, [[0, 0], *pads, [0, 0]])
        return tf.nn.avg_pool(x, size, stride, "VALID") * float(np.prod(size))
    ''',
)

_entry(
    "window_pool",
    '''
    def window_pool(x, kind, size, stride, pads, dilation=None):
        """The max, the mean over the real elements, or the sum of each window of
        channels-last x, with (begin, end) pads per spatial dim (explicit, TF-style
        same, or ceil mode's end pad) and a dilation. Padding is -inf for the max (it
        never wins) and zeros otherwise; the mean divides the window means by those of
        a padded mask of ones. TensorFlow pools a dilated window at stride 1 only, and
        refuses a stride wider than the window, so such a pool runs at stride 1 and
        keeps every stride-th output."""
        padding = [[0, 0], *pads, [0, 0]]
        dilated = dilation is not None and any(d > 1 for d in dilation)
        subsample = dilated or any(s > k for s, k in zip(stride, size, strict=True))
        strides = (1,) * len(size) if subsample else stride

        def pooled(t, pooling, fill=0.0):
            t = tf.pad(t, padding, constant_values=fill)
            return tf.nn.pool(t, size, pooling, strides=strides, padding="VALID",
                              dilations=dilation)

        if kind == "max":
            y = pooled(x, "MAX", -np.inf)
        elif kind == "mean":
            y = pooled(x, "AVG") / pooled(tf.ones_like(x[:1, ..., :1]), "AVG")
        else:
            y = pooled(x, "AVG") * float(np.prod(size))
        if subsample:
            y = y[(slice(None), *(slice(None, None, s) for s in stride), slice(None))]
        return y
    ''',
)

_entry(
    "normalize",
    '''
    def normalize(x, mean, variance, gamma, beta, eps):
        """gamma * (x - mean) / sqrt(variance + eps) + beta, the mean subtracted first.

        tf.nn.batch_normalization computes x * s + (beta - mean * s) instead: the same
        in exact arithmetic, but two large terms cancel when the mean is large against
        the spread, losing digits the other backends keep."""
        return (x - mean) * (gamma * tf.math.rsqrt(variance + eps)) + beta
    ''',
)

_entry(
    "local_response_norm",
    '''
    def local_response_norm(x, size, alpha, beta, bias):
        """AlexNet's LRN across the channels (the last axis), in nnc's (PyTorch's and
        ONNX's) convention: y_c = x_c / (bias + alpha/size * S_c) ** beta, where S_c sums
        x_k**2 over k in [c - (size-1)//2, c + size//2], zero beyond the edges.

        Written out: tf.nn.local_response_normalization takes a radius (odd windows only),
        an alpha not divided by the size, and 4-D input only."""
        channels = tf.shape(x)[-1]
        rank = len(x.shape)
        squares = tf.pad(tf.square(x), [[0, 0]] * (rank - 1) + [[(size - 1) // 2, size // 2]])
        window = tf.add_n([squares[..., k : k + channels] for k in range(size)])
        return x / (bias + alpha / size * window) ** beta
    ''',
)

_entry(
    "named_parameters",
    '''
    def named_parameters(model, prefix=""):
        """(canonical name, (layer, parameter, variable)) for every parameter and buffer,
        in nnc's order; a model used as a layer prefixes its names with the call's."""
        for node, layer in model.parameter_layers().items():
            if isinstance(layer, Layer):
                for param, var in layer.parameters().items():
                    yield f"{prefix}{node}.{param}", (layer, param, var)
            else:
                yield from named_parameters(layer, f"{prefix}{node}.")
    ''',
)

_entry(
    "sinusoidal_positions",
    '''
    def sinusoidal_positions(x, base):
        """x + PE[:t]: PE[p, j] = sin(p w_j) at even j, cos(p w_j) at odd j, with
        w_j = base^(-2 floor(j/2) / d); the table is built in float64, rounded once."""
        t, d = tf.shape(x)[1], x.shape[2]
        j = tf.range(d, dtype=tf.float64)
        frequencies = tf.pow(tf.constant(base, tf.float64), -2.0 * tf.math.floordiv(j, 2.0) / d)
        angles = tf.cast(tf.range(t), tf.float64)[:, None] * frequencies
        table = tf.where(tf.math.floormod(j, 2.0) == 0.0, tf.sin(angles), tf.cos(angles))
        return x + tf.cast(table, x.dtype)
    ''',
)

# The order entries appear in a module, dependencies first: what the model classes
# use comes before them; the runtime's plumbing comes just before the Runtime.
MODEL_PART: tuple[str, ...] = (
    "to_channels_last",
    "to_channels_first",
    "step",
    "first_extreme",
    "batch_matmul",
    "dropout",
    "sum_pool",
    "window_pool",
    "local_response_norm",
    "normalize",
    "Layer",
    "Dense",
    "RBM",
    "Embedding",
    "Conv",
    "DepthwiseConv",
    "Conv3d",
    "ConvTranspose2d",
    "BatchNorm",
    "LayerNorm",
    "GroupNorm",
    "PRelu",
    "Recurrent",
    "SimpleRNN",
    "LSTM",
    "GRU",
    "Param",
    "MultiHeadAttention",
    "LearnedPositions",
    "sinusoidal_positions",
)
# named_parameters: for the standalone fit's L2, which names canonical parameters.
LIBRARY: tuple[str, ...] = (*MODEL_PART, "named_parameters")

# Entries that need another entry.
REQUIRES: dict[str, tuple[str, ...]] = {
    "Dense": ("Layer",),
    "RBM": ("Layer",),
    "Embedding": ("Layer",),
    "Conv": ("Layer",),
    "Conv3d": ("Conv",),
    "DepthwiseConv": ("Conv",),
    "GroupNorm": ("Layer",),
    "ConvTranspose2d": ("Layer",),
    "BatchNorm": ("Layer", "normalize"),
    "LayerNorm": ("Layer", "normalize"),
    "PRelu": ("Layer",),
    "Recurrent": ("Layer",),
    "SimpleRNN": ("Recurrent",),
    "LSTM": ("Recurrent",),
    "GRU": ("Recurrent",),
    "Param": ("Layer",),
    "MultiHeadAttention": ("Layer",),
    "LearnedPositions": ("Layer",),
    "named_parameters": ("Layer",),
}

# Top-level names the library may define (model classes and locals must avoid them).
DEFINED_NAMES: frozenset[str] = frozenset({*LIBRARY, "variable", "batch_moments"})


def closure(names: set[str]) -> set[str]:
    """The entries named plus everything they need."""
    out: set[str] = set()
    pending = list(names)
    while pending:
        name = pending.pop()
        if name not in out:
            out.add(name)
            pending.extend(REQUIRES.get(name, ()))
    return out


def emit_library(w: CodeWriter, names: set[str], part: tuple[str, ...] = LIBRARY) -> None:
    """Write the entries of ``part`` named (or needed), in dependency order."""
    needed = closure(names)
    for name in part:
        if name in needed:
            w.blank(2)
            w.lines_(_SOURCES[name].splitlines())
