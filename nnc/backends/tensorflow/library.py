"""Fixed helper code that generated TensorFlow modules include when they use it.

Each entry is a top-level function or class, written once here and emitted verbatim
(no spec-derived text in it), in the order of :data:`ORDER`. The emitter records
which entries a model needs; :func:`emit_library` writes only those, so a generated
module carries no dead helpers. Layer classes hold their parameters as
``tf.Variable`` in TensorFlow's native layout and convert canonical arrays on the way
in and out (``to_native`` / ``to_canonical``); the conversions are listed in
``docs/backends/tensorflow.md``.
"""

from __future__ import annotations

import textwrap

from nnc.backends.codegen import CodeWriter

_SOURCES: dict[str, str] = {}


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

# -- layers ------------------------------------------------------------------------------

_entry(
    "Layer",
    '''
    class Layer(tf.Module):
        """A layer holding nnc parameters as TensorFlow variables.

        parameters() maps canonical parameter names to variables; to_native and
        to_canonical convert an array between nnc's layout and the variable's (the
        identity unless the layer says otherwise). Gradients and optimizer state
        convert the same way, since every conversion is a rearrangement."""

        def parameters(self):
            return {}

        @staticmethod
        def to_native(param, value):
            return value

        @staticmethod
        def to_canonical(param, value):
            return value


    def variable(shape, trainable, name, fill=0.0):
        """A float32 variable; the runtime loads the real (canonical) values into it."""
        return tf.Variable(tf.fill(shape, fill), trainable=trainable, name=name)
    ''',
)

_entry(
    "Dense",
    '''
    class Dense(Layer):
        """y = x Wᵀ + b over the last axis. The kernel is stored as Keras stores it,
        [in, out] = Wᵀ (nnc's weight is [out, in])."""

        def __init__(self, features, units, bias=True, trainable=True, name=None):
            super().__init__(name=name)
            self.kernel = variable([features, units], trainable, "kernel")
            self.bias = variable([units], trainable, "bias") if bias else None

        def __call__(self, x):
            y = tf.matmul(x, self.kernel)
            return y if self.bias is None else y + self.bias

        def parameters(self):
            if self.bias is None:
                return {"weight": self.kernel}
            return {"weight": self.kernel, "bias": self.bias}

        @staticmethod
        def to_native(param, value):
            return value.T if param == "weight" else value

        to_canonical = to_native  # a transpose is its own inverse
    ''',
)

_entry(
    "Embedding",
    '''
    class Embedding(Layer):
        """Row lookup of int64 ids in a [vocab, dim] table (nnc's and Keras' layout)."""

        def __init__(self, vocab, dim, trainable=True, name=None):
            super().__init__(name=name)
            self.table = variable([vocab, dim], trainable, "embeddings")

        def __call__(self, ids):
            return tf.gather(self.table, ids)

        def parameters(self):
            return {"weight": self.table}
    ''',
)

_entry(
    "Conv",
    '''
    class Conv(Layer):
        """Convolution (cross-correlation, kernels never flipped) of channels-last input:
        [N, L, C] (1-D) or [N, H, W, C] (2-D).

        The kernel is stored as TensorFlow wants it, [*kernel, C/groups, filters] (HWIO);
        nnc's weight is [filters, C/groups, *kernel]. Groups follow from the kernel's
        input depth. `padding` is "VALID", "SAME" (TensorFlow's own, which is nnc's
        `same`: out = ceil(in / stride), the odd pad at the end) or explicit
        (begin, end) pairs per spatial dim, applied with tf.pad."""

        def __init__(
            self, channels, filters, kernel, stride=None, padding="VALID", dilation=None,
            groups=1, bias=True, trainable=True, name=None,
        ):
            super().__init__(name=name)
            self.kernel = variable([*kernel, channels // groups, filters], trainable, "kernel")
            self.bias = variable([filters], trainable, "bias") if bias else None
            self.stride = stride or (1,) * len(kernel)
            self.dilation = dilation or (1,) * len(kernel)
            self.pads = None if isinstance(padding, str) else [[0, 0], *padding, [0, 0]]
            self.padding = padding if isinstance(padding, str) else "VALID"
            self.convolve = tf.nn.conv1d if len(kernel) == 1 else tf.nn.conv2d

        def __call__(self, x):
            if self.pads is not None:
                x = tf.pad(x, self.pads)
            y = self.convolve(x, self.kernel, self.stride, self.padding, dilations=self.dilation)
            return y if self.bias is None else tf.nn.bias_add(y, self.bias)

        def parameters(self):
            if self.bias is None:
                return {"weight": self.kernel}
            return {"weight": self.kernel, "bias": self.bias}

        @staticmethod
        def to_native(param, value):
            # [filters, C/groups, *kernel] -> [*kernel, C/groups, filters]
            if param != "weight":
                return value
            return np.transpose(value, (*range(2, value.ndim), 1, 0))

        @staticmethod
        def to_canonical(param, value):
            if param != "weight":
                return value
            return np.transpose(value, (value.ndim - 1, value.ndim - 2, *range(value.ndim - 2)))
    ''',
)

_entry(
    "ConvTranspose2d",
    '''
    class ConvTranspose2d(Layer):
        """Transposed convolution (the gradient of conv2d with respect to its input) of
        channels-last input, as PyTorch and ONNX define it.

        The kernel is stored as tf.nn.conv2d_transpose wants it, [kh, kw, filters, C_in];
        nnc's weight is [C_in, filters, kh, kw]. The full output, (in-1)*stride + k,
        plus `output_padding` rows and columns at the end, is cropped by `crop`
        ((top, bottom), (left, right))."""

        def __init__(
            self, channels, filters, kernel, stride, crop=((0, 0), (0, 0)),
            output_padding=(0, 0), bias=True, trainable=True, name=None,
        ):
            super().__init__(name=name)
            self.kernel = variable([*kernel, filters, channels], trainable, "kernel")
            self.bias = variable([filters], trainable, "bias") if bias else None
            self.filters, self.size, self.stride = filters, kernel, stride
            self.crop, self.output_padding = crop, output_padding

        def __call__(self, x):
            shape = tf.shape(x)
            (kh, kw), (sh, sw), (ph, pw) = self.size, self.stride, self.output_padding
            height = (shape[1] - 1) * sh + kh + ph
            width = (shape[2] - 1) * sw + kw + pw
            full = tf.nn.conv2d_transpose(
                x, self.kernel, tf.stack([shape[0], height, width, self.filters]),
                self.stride, "VALID",
            )
            (top, bottom), (left, right) = self.crop
            y = full[:, top : height - bottom, left : width - right, :]
            return y if self.bias is None else tf.nn.bias_add(y, self.bias)

        def parameters(self):
            if self.bias is None:
                return {"weight": self.kernel}
            return {"weight": self.kernel, "bias": self.bias}

        @staticmethod
        def to_native(param, value):
            # [C_in, filters, kh, kw] -> [kh, kw, filters, C_in]
            return np.transpose(value, (2, 3, 1, 0)) if param == "weight" else value

        @staticmethod
        def to_canonical(param, value):
            return np.transpose(value, (3, 2, 0, 1)) if param == "weight" else value
    ''',
)

_entry(
    "BatchNorm",
    '''
    class BatchNorm(Layer):
        """nnc's batch normalisation of the channels (the last axis, channels-last).

        Training normalises with the batch mean and biased variance, and moves the
        running statistics towards them by `momentum` (PyTorch's convention; Keras'
        momentum is 1 minus this), the variance unbiased by n / (n - 1). Evaluation
        uses the running statistics. Written out because Keras' BatchNormalization
        keeps the biased variance and defaults differ."""

        def __init__(self, channels, momentum, eps, trainable=True, name=None):
            super().__init__(name=name)
            self.gamma = variable([channels], trainable, "gamma", fill=1.0)
            self.beta = variable([channels], trainable, "beta")
            self.running_mean = variable([channels], False, "running_mean")
            self.running_var = variable([channels], False, "running_var", fill=1.0)
            self.momentum, self.eps = momentum, eps

        def __call__(self, x, training=False):
            if not training:
                return tf.nn.batch_normalization(
                    x, self.running_mean, self.running_var, self.beta, self.gamma, self.eps
                )
            mean, variance = tf.nn.moments(x, axes=list(range(len(x.shape) - 1)))
            n = tf.cast(tf.size(x) // tf.shape(x)[-1], x.dtype)  # values per channel
            unbiased = variance * n / tf.maximum(n - 1.0, 1.0)
            m = self.momentum
            self.running_mean.assign((1.0 - m) * self.running_mean + m * mean)
            self.running_var.assign((1.0 - m) * self.running_var + m * unbiased)
            return tf.nn.batch_normalization(x, mean, variance, self.beta, self.gamma, self.eps)

        def parameters(self):
            return {
                "weight": self.gamma,
                "bias": self.beta,
                "running_mean": self.running_mean,
                "running_var": self.running_var,
            }
    ''',
)

_entry(
    "LayerNorm",
    '''
    class LayerNorm(Layer):
        """y = γ (x - mean) / √(var + eps) + β over the last axis (biased variance)."""

        def __init__(self, features, eps, trainable=True, name=None):
            super().__init__(name=name)
            self.gamma = variable([features], trainable, "gamma", fill=1.0)
            self.beta = variable([features], trainable, "beta")
            self.eps = eps

        def __call__(self, x):
            mean, variance = tf.nn.moments(x, axes=[-1], keepdims=True)
            return tf.nn.batch_normalization(x, mean, variance, self.beta, self.gamma, self.eps)

        def parameters(self):
            return {"weight": self.gamma, "bias": self.beta}
    ''',
)

_entry(
    "PRelu",
    '''
    class PRelu(Layer):
        """x if x > 0 else alpha_c * x, one learned slope per channel (the last axis)."""

        def __init__(self, channels, trainable=True, name=None):
            super().__init__(name=name)
            self.alpha = variable([channels], trainable, "alpha", fill=0.25)

        def __call__(self, x):
            return tf.maximum(x, 0.0) + self.alpha * tf.minimum(x, 0.0)

        def parameters(self):
            return {"alpha": self.alpha}
    ''',
)

_entry(
    "Recurrent",
    '''
    class Recurrent(Layer):
        """A recurrent layer over [N, t, F], its weights stored as Keras stores them:
        kernel [F, gates*H] = W_ihᵀ and recurrent_kernel [H, gates*H] = W_hhᵀ.

        The input term of every step is one matmul up front; the recurrence runs with
        tf.scan over time (t may differ from batch to batch)."""

        gates = 1

        def __init__(self, features, units, return_sequences=False, trainable=True, name=None):
            super().__init__(name=name)
            self.units, self.return_sequences = units, return_sequences
            self.kernel = variable([features, self.gates * units], trainable, "kernel")
            self.recurrent_kernel = variable(
                [units, self.gates * units], trainable, "recurrent_kernel"
            )

        def run(self, inputs, initial):
            """Scan `self.cell` over time; return [N, t, H] or the last state [N, H]."""
            states = tf.scan(self.cell, tf.transpose(inputs, (1, 0, 2)), initializer=initial)
            h = states[0] if isinstance(states, tuple) else states
            return tf.transpose(h, (1, 0, 2)) if self.return_sequences else h[-1]

        def zeros(self, x):
            return tf.zeros([tf.shape(x)[0], self.units])
    ''',
)

_entry(
    "SimpleRNN",
    '''
    class SimpleRNN(Recurrent):
        """h_t = tanh(W_ih x_t + W_hh h_{t-1} + b), h_0 = 0 (Keras' SimpleRNN layout)."""

        def __init__(self, features, units, return_sequences=False, trainable=True, name=None):
            super().__init__(features, units, return_sequences, trainable, name)
            self.bias = variable([units], trainable, "bias")

        def __call__(self, x):
            return self.run(tf.matmul(x, self.kernel) + self.bias, self.zeros(x))

        def cell(self, h, inputs_t):
            return tf.tanh(inputs_t + tf.matmul(h, self.recurrent_kernel))

        def parameters(self):
            return {
                "weight_ih": self.kernel,
                "weight_hh": self.recurrent_kernel,
                "bias": self.bias,
            }

        @staticmethod
        def to_native(param, value):
            return value if param == "bias" else value.T

        to_canonical = to_native
    ''',
)

_entry(
    "LSTM",
    '''
    class LSTM(Recurrent):
        """Long short-term memory with gates i, f, g, o: nnc's order, which is Keras'
        i, f, c, o, so its weights are only transposed (one bias, as in Keras)."""

        gates = 4

        def __init__(self, features, units, return_sequences=False, trainable=True, name=None):
            super().__init__(features, units, return_sequences, trainable, name)
            self.bias = variable([4 * units], trainable, "bias")

        def __call__(self, x):
            zeros = self.zeros(x)
            return self.run(tf.matmul(x, self.kernel) + self.bias, (zeros, zeros))

        def cell(self, state, inputs_t):
            h, c = state
            z = inputs_t + tf.matmul(h, self.recurrent_kernel)
            i, f, g, o = tf.split(z, 4, axis=-1)
            c = tf.sigmoid(f) * c + tf.sigmoid(i) * tf.tanh(g)
            return tf.sigmoid(o) * tf.tanh(c), c

        def parameters(self):
            return {
                "weight_ih": self.kernel,
                "weight_hh": self.recurrent_kernel,
                "bias": self.bias,
            }

        @staticmethod
        def to_native(param, value):
            return value if param == "bias" else value.T

        to_canonical = to_native
    ''',
)

_entry(
    "GRU",
    '''
    class GRU(Recurrent):
        """Gated recurrent unit with the reset applied after the recurrent matmul:
        Keras' GRU(reset_after=True). Keras orders the gates z, r, h where nnc orders
        them r, z, n, so the first two gate blocks swap; its bias [2, 3H] is the two
        variables input_bias (nnc's bias_ih) and recurrent_bias (bias_hh)."""

        gates = 3

        def __init__(self, features, units, return_sequences=False, trainable=True, name=None):
            super().__init__(features, units, return_sequences, trainable, name)
            self.input_bias = variable([3 * units], trainable, "input_bias")
            self.recurrent_bias = variable([3 * units], trainable, "recurrent_bias")

        def __call__(self, x):
            return self.run(tf.matmul(x, self.kernel) + self.input_bias, self.zeros(x))

        def cell(self, h, inputs_t):
            x_z, x_r, x_h = tf.split(inputs_t, 3, axis=-1)
            recurrent = tf.matmul(h, self.recurrent_kernel) + self.recurrent_bias
            h_z, h_r, h_h = tf.split(recurrent, 3, axis=-1)
            z = tf.sigmoid(x_z + h_z)
            r = tf.sigmoid(x_r + h_r)
            n = tf.tanh(x_h + r * h_h)
            return (1.0 - z) * n + z * h

        def parameters(self):
            return {
                "weight_ih": self.kernel,
                "weight_hh": self.recurrent_kernel,
                "bias_ih": self.input_bias,
                "bias_hh": self.recurrent_bias,
            }

        @staticmethod
        def to_native(param, value):
            r, z, n = np.split(value, 3, axis=0)  # gate blocks: r, z, n -> z, r, h
            value = np.concatenate([z, r, n], axis=0)
            return value if param.startswith("bias") else value.T

        @staticmethod
        def to_canonical(param, value):
            value = value if param.startswith("bias") else value.T
            z, r, n = np.split(value, 3, axis=0)
            return np.concatenate([r, z, n], axis=0)
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
    "dropout",
    "sum_pool",
    "local_response_norm",
    "Layer",
    "Dense",
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
    "Embedding": ("Layer",),
    "Conv": ("Layer",),
    "ConvTranspose2d": ("Layer",),
    "BatchNorm": ("Layer",),
    "LayerNorm": ("Layer",),
    "PRelu": ("Layer",),
    "Recurrent": ("Layer",),
    "SimpleRNN": ("Recurrent",),
    "LSTM": ("Recurrent",),
    "GRU": ("Recurrent",),
    "named_parameters": ("Layer",),
    "as_batch": ("InputError",),
}

# Top-level names the library may define (model classes and locals must avoid them).
DEFINED_NAMES: frozenset[str] = frozenset({*ORDER, "variable", "spec"})


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
