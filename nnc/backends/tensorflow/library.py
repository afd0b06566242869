"""Fixed helper code that generated TensorFlow modules include when they use it.

Each entry is a top-level function or class, written once here and emitted verbatim
(no spec-derived text in it), in the order of :data:`ORDER`. The emitter records
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

_entry(
    "InputError",
    '''
    class InputError(ValueError):
        """Arrays that do not fit the model: shape, dtype, index range or weight names.

        nnc.backends.tensorflow.build() makes it an nnc DataError as well."""
    ''',
)

_entry(
    "TrainingError",
    '''
    class TrainingError(RuntimeError):
        """A training method called on a model that has no supervised train recipe.

        nnc.backends.tensorflow.build() makes it an nnc RecipeError as well."""
    ''',
)

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
        for node, layer in model.layers().items():
            if isinstance(layer, Layer):
                for param, var in layer.parameters().items():
                    yield f"{prefix}{node}.{param}", (layer, param, var)
            else:
                yield from named_parameters(layer, f"{prefix}{node}.")
    ''',
)

_entry(
    "as_batch",
    '''
    def as_batch(value, what, shape, dtype):
        """A NumPy batch as a tensor, checked against a per-sample shape (a name: any
        size) and converted to `dtype`."""
        array = np.asarray(value)
        if dtype == "int64" and not np.issubdtype(array.dtype, np.integer):
            raise InputError(f"{what} must hold integer ids. Received: dtype {array.dtype}")
        if not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)):
            raise InputError(f"{what} must hold real numbers. Received: dtype {array.dtype}")
        fits = array.ndim == len(shape) + 1 and all(
            isinstance(want, str) or want == got for want, got in zip(shape, array.shape[1:])
        )
        if not fits:
            expected = ", ".join(["N", *map(str, shape)])
            raise InputError(
                f"{what} must be a batch of shape [{expected}]. Received: shape {list(array.shape)}"
            )
        return tf.convert_to_tensor(array.astype(dtype, copy=False))


    def spec(shape, dtype):
        """A TensorSpec for a batch; the batch and named dims stay unknown (None)."""
        return tf.TensorSpec([None, *(None if isinstance(d, str) else d for d in shape)], dtype)
    ''',
)

# The order entries appear in a module, dependencies first: what the model classes
# use comes before them; the runtime's plumbing comes just before the Runtime.
MODEL_PART: tuple[str, ...] = (
    "to_channels_last",
    "to_channels_first",
    "step",
    "first_extreme",
    "dropout",
    "sum_pool",
    "local_response_norm",
    "normalize",
    "Layer",
    "Dense",
    "RBM",
    "Embedding",
    "Conv",
    "ConvTranspose2d",
    "BatchNorm",
    "LayerNorm",
    "PRelu",
    "Recurrent",
    "SimpleRNN",
    "LSTM",
    "GRU",
    "MultiHeadAttention",
)
RUNTIME_PART: tuple[str, ...] = (
    "InputError",
    "TrainingError",
    "named_parameters",
    "as_batch",
)
ORDER = MODEL_PART + RUNTIME_PART

# Entries that need another entry.
REQUIRES: dict[str, tuple[str, ...]] = {
    "Dense": ("Layer",),
    "RBM": ("Layer",),
    "Embedding": ("Layer",),
    "Conv": ("Layer",),
    "ConvTranspose2d": ("Layer",),
    "BatchNorm": ("Layer", "normalize"),
    "LayerNorm": ("Layer", "normalize"),
    "PRelu": ("Layer",),
    "Recurrent": ("Layer",),
    "SimpleRNN": ("Recurrent",),
    "LSTM": ("Recurrent",),
    "GRU": ("Recurrent",),
    "named_parameters": ("Layer",),
    "as_batch": ("InputError",),
}

# Top-level names the library may define (model classes and locals must avoid them).
DEFINED_NAMES: frozenset[str] = frozenset({*ORDER, "variable", "spec", "batch_moments"})


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


def emit_library(w: CodeWriter, names: set[str], part: tuple[str, ...]) -> None:
    """Write the entries of ``part`` named (or needed), in dependency order."""
    needed = closure(names)
    for name in part:
        if name in needed:
            w.blank(2)
            w.lines_(_SOURCES[name].splitlines())
