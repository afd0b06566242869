"""The layer classes generated TensorFlow modules include when they use them.

Each is a ``keras.layers.Layer`` holding its parameters as Keras variables in
TensorFlow's (and Keras') native layout, converting canonical arrays on the way in
and out (``to_native`` / ``to_canonical``); gradients and optimizer state convert the
same way. Emitted
verbatim (no spec-derived text) by :mod:`.library`; ``docs/backends/tensorflow.md``
lists every conversion.
"""

from __future__ import annotations

import textwrap

LAYERS: dict[str, str] = {}


def _layer(name: str, source: str) -> None:
    LAYERS[name] = textwrap.dedent(source).strip("\n")


_layer(
    "Layer",
    '''
    @keras.saving.register_keras_serializable(package="nnc")
    class Layer(keras.layers.Layer):
        """A Keras layer holding nnc parameters as variables, made (and the layer built)
        in __init__. Its config is its constructor's arguments, all plain values, which
        Keras records, so a model saved with model.save loads back with
        keras.models.load_model once this module is imported.

        A Keras variable's arithmetic goes through Keras' ops, which name the graph's
        ops differently, and TensorFlow's graph optimiser (Grappler) orders some sums
        by op name; so where a variable is an operand the layers use the tf.Variable
        it holds (.value), and every step rounds as the plain TensorFlow layers did.

        parameters() maps canonical parameter names to variables; to_native and
        to_canonical convert an array between nnc's layout and the variable's (the
        identity unless the layer says otherwise). Gradients and optimizer state
        convert the same way, since every conversion is a rearrangement."""

        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.built = True

        def _open_name_scope(self):
            # Keras runs each layer call in a name scope of the layer's name. TensorFlow's
            # graph optimiser (Grappler) orders some of its rewritten sums by op name, so
            # scoped names sum gradient contributions in another order: the same maths,
            # other roundings. Unscoped, a step computes bit for bit what the plain
            # TensorFlow formulation of these layers computed.
            return contextlib.nullcontext()

        def variable(self, shape, trainable, name, fill=0.0):
            """A float32 variable; the runtime loads the real (canonical) values into it."""
            constant = keras.initializers.Constant(fill)
            return self.add_weight(shape, constant, trainable=trainable, name=name)

        def parameters(self):
            return {}

        @staticmethod
        def to_native(param, value):
            return value

        @staticmethod
        def to_canonical(param, value):
            return value
    ''',
)

_layer(
    "Dense",
    '''
    @keras.saving.register_keras_serializable(package="nnc")
    class Dense(Layer):
        """y = x Wᵀ + b over the last axis. The kernel is stored as Keras stores it,
        [in, out] = Wᵀ (nnc's weight is [out, in])."""

        def __init__(
            self,
            features,
            units,
            bias=True,
            trainable=True,
            bias_trainable=True,
            name=None,
            **kwargs,
        ):
            super().__init__(trainable=trainable, name=name, **kwargs)
            self.kernel = self.variable([features, units], trainable, "kernel")
            bias_trainable = trainable and bias_trainable
            self.bias = self.variable([units], bias_trainable, "bias") if bias else None

        def call(self, x):
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

_layer(
    "RBM",
    '''
    @keras.saving.register_keras_serializable(package="nnc")
    class RBM(Layer):
        """A restricted Boltzmann machine used as a layer: its up pass, the hidden
        probabilities sigmoid(v W + c). Every variable is in nnc's layout (weight
        [visible, hidden]); the visible bias takes no part here and no optimizer
        sees it."""

        def __init__(self, visible, hidden, trainable=True, name=None, **kwargs):
            super().__init__(trainable=trainable, name=name, **kwargs)
            self.weight = self.variable([visible, hidden], trainable, "weight")
            self.visible_bias = self.variable([visible], False, "visible_bias")
            self.hidden_bias = self.variable([hidden], trainable, "hidden_bias")

        def call(self, v):
            return tf.sigmoid(tf.matmul(v, self.weight) + self.hidden_bias)

        def parameters(self):
            return {
                "weight": self.weight,
                "visible_bias": self.visible_bias,
                "hidden_bias": self.hidden_bias,
            }
    ''',
)

_layer(
    "Embedding",
    '''
    @keras.saving.register_keras_serializable(package="nnc")
    class Embedding(Layer):
        """Row lookup of int64 ids in a [vocab, dim] table (nnc's and Keras' layout)."""

        def __init__(self, vocab, dim, trainable=True, name=None, **kwargs):
            super().__init__(trainable=trainable, name=name, **kwargs)
            self.table = self.variable([vocab, dim], trainable, "embeddings")

        def call(self, ids):
            return tf.gather(self.table.value, ids)  # a ResourceGather, as before Keras

        def parameters(self):
            return {"weight": self.table}
    ''',
)

_layer(
    "Conv",
    '''
    @keras.saving.register_keras_serializable(package="nnc")
    class Conv(Layer):
        """Convolution (cross-correlation, kernels never flipped) of channels-last input:
        [N, L, C] (1-D) or [N, H, W, C] (2-D).

        The kernel is stored as TensorFlow wants it, [*kernel, C/groups, filters] (HWIO);
        nnc's weight is [filters, C/groups, *kernel]. `padding` is "VALID", "SAME"
        (TensorFlow's own, which is nnc's `same`: out = ceil(in / stride), the odd pad
        at the end) or explicit (begin, end) pairs per spatial dim, applied with tf.pad.

        oneDNN, TensorFlow's CPU kernel, gets some 2-D convolutions of one input
        channel (per group) with a larger stride across than down wrong (TensorFlow
        2.21: 71 of 447 such shapes in a sweep, none of 4,768 others), so those run on
        the transposed image (height and width swapped), which computes the same sums.

        TensorFlow's other CPU kernels (Eigen's, used where oneDNN is off) have no
        gradient for a dilated or a grouped convolution. So a dilation is written into
        the kernel (zeros between its taps, which add nothing to any sum) and groups
        are convolved one by one and concatenated: one formulation that trains under
        either kernel set."""

        def __init__(
            self,
            channels,
            filters,
            kernel,
            stride=None,
            padding="VALID",
            dilation=None,
            groups=1,
            bias=True,
            trainable=True,
            bias_trainable=True,
            name=None,
            **kwargs,
        ):
            super().__init__(trainable=trainable, name=name, **kwargs)
            self.kernel = self.variable([*kernel, channels // groups, filters], trainable, "kernel")
            bias_trainable = trainable and bias_trainable
            self.bias = self.variable([filters], bias_trainable, "bias") if bias else None
            self.stride = stride or (1,) * len(kernel)
            self.dilation = dilation or (1,) * len(kernel)
            self.groups = groups
            self.pads = None if isinstance(padding, str) else [[0, 0], *padding, [0, 0]]
            self.padding = padding if isinstance(padding, str) else "VALID"
            self.swap = len(kernel) == 2 and channels == groups and self.stride[0] < self.stride[1]

        def call(self, x):
            if self.pads is not None:
                x = tf.pad(x, self.pads)
            kernel, stride = self.dilated(self.kernel), self.stride
            if self.swap:  # see the class docstring
                x, kernel = tf.transpose(x, (0, 2, 1, 3)), tf.transpose(kernel, (1, 0, 2, 3))
                stride = stride[::-1]
            if self.groups == 1:
                y = self.convolve(x, kernel, stride, self.padding)
            else:
                groups = tf.split(x, self.groups, -1), tf.split(kernel, self.groups, -1)
                pairs = zip(*groups, strict=True)
                y = tf.concat([self.convolve(xs, ks, stride, self.padding) for xs, ks in pairs], -1)
            if self.swap:
                y = tf.transpose(y, (0, 2, 1, 3))
            return y if self.bias is None else tf.nn.bias_add(y, self.bias)

        @staticmethod
        def convolve(x, kernel, stride, padding):
            conv = tf.nn.conv1d if len(stride) == 1 else tf.nn.conv2d
            return conv(x, kernel, stride, padding)

        def dilated(self, kernel):
            # [k, ...] -> [(k-1)*d + 1, ...] along each spatial axis, zeros between taps
            for axis, d in enumerate(self.dilation):
                if d > 1:
                    spread = tf.expand_dims(kernel, axis + 1)
                    padding = [[0, 0]] * spread.shape.rank
                    padding[axis + 1] = [0, d - 1]
                    shape = kernel.shape.as_list()
                    shape[axis] *= d
                    kernel = tf.reshape(tf.pad(spread, padding), shape)
                    kernel = kernel[(slice(None),) * axis + (slice(shape[axis] - d + 1),)]
            return kernel

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

_layer(
    "DepthwiseConv",
    '''
    @keras.saving.register_keras_serializable(package="nnc")
    class DepthwiseConv(Conv):
        """The Conv layer with one input channel per group (groups = channels), equal
        strides and no dilation, as one tf.nn.depthwise_conv2d in place of a
        convolution per channel. The kernel keeps Conv's [kh, kw, 1, filters]: filter
        o reads channel o // (filters / channels), TensorFlow's depthwise order, so a
        reshape to [kh, kw, channels, filters / channels] is its depthwise filter."""

        def call(self, x):
            if self.pads is not None:
                x = tf.pad(x, self.pads)
            kh, kw, _, filters = self.kernel.shape
            kernel = tf.reshape(self.kernel, (kh, kw, self.groups, filters // self.groups))
            y = tf.nn.depthwise_conv2d(x, kernel, (1, *self.stride, 1), self.padding)
            return y if self.bias is None else tf.nn.bias_add(y, self.bias)
    ''',
)

_layer(
    "Conv3d",
    '''
    @keras.saving.register_keras_serializable(package="nnc")
    class Conv3d(Conv):
        """The Conv layer over channels-last [N, D, H, W, C], with tf.nn.conv3d (which
        takes its strides as [1, *stride, 1])."""

        @staticmethod
        def convolve(x, kernel, stride, padding):
            return tf.nn.conv3d(x, kernel, (1, *stride, 1), padding)
    ''',
)

_layer(
    "ConvTranspose2d",
    '''
    @keras.saving.register_keras_serializable(package="nnc")
    class ConvTranspose2d(Layer):
        """Transposed convolution (the gradient of conv2d with respect to its input) of
        channels-last input, as PyTorch and ONNX define it.

        The kernel is stored as tf.nn.conv2d_transpose wants it, [kh, kw, filters, C_in];
        nnc's weight is [C_in, filters, kh, kw]. The full output, (in-1)*stride + k,
        plus `output_padding` rows and columns at the end, is cropped by `crop`
        ((top, bottom), (left, right))."""

        def __init__(
            self,
            channels,
            filters,
            kernel,
            stride,
            crop=((0, 0), (0, 0)),
            output_padding=(0, 0),
            bias=True,
            trainable=True,
            name=None,
            **kwargs,
        ):
            super().__init__(trainable=trainable, name=name, **kwargs)
            self.kernel = self.variable([*kernel, filters, channels], trainable, "kernel")
            self.bias = self.variable([filters], trainable, "bias") if bias else None
            self.filters, self.size, self.stride = filters, kernel, stride
            self.crop, self.output_padding = crop, output_padding

        def call(self, x):
            shape = tf.shape(x)
            (kh, kw), (sh, sw), (ph, pw) = self.size, self.stride, self.output_padding
            height = (shape[1] - 1) * sh + kh + ph
            width = (shape[2] - 1) * sw + kw + pw
            full = tf.nn.conv2d_transpose(
                x,
                self.kernel,
                tf.stack([shape[0], height, width, self.filters]),
                self.stride,
                "VALID",
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

_layer(
    "BatchNorm",
    '''
    def batch_moments(x):
        """Per channel (the last axis): the mean and biased variance over the other
        axes, and n, the values per channel. Under data-parallel training (a
        tf.distribute strategy with several replicas) the sums behind them are summed
        over the replicas, so each normalises its slice with the statistics of the
        global batch; all_reduce is differentiable (its gradient is a sum too)."""
        axes = list(range(len(x.shape) - 1))
        n = tf.cast(tf.size(x) // tf.shape(x)[-1], x.dtype)
        replicas = tf.distribute.get_replica_context()
        if replicas is None or replicas.num_replicas_in_sync == 1:
            mean, variance = tf.nn.moments(x, axes=axes)
            return mean, variance, n
        total, n = replicas.all_reduce(tf.distribute.ReduceOp.SUM, [tf.reduce_sum(x, axes), n])
        mean = total / n
        squares = tf.reduce_sum(tf.square(x - mean), axes)
        return mean, replicas.all_reduce(tf.distribute.ReduceOp.SUM, squares) / n, n


    @keras.saving.register_keras_serializable(package="nnc")
    class BatchNorm(Layer):
        """nnc's batch normalisation of the channels (the last axis, channels-last).

        Training normalises with the batch mean and biased variance, and moves the
        running statistics towards them by `momentum` (PyTorch's convention; Keras'
        momentum is 1 minus this), the variance unbiased by n / (n - 1). Evaluation
        uses the running statistics. Written out because Keras' BatchNormalization
        keeps the biased variance and defaults differ. In data-parallel training the
        statistics are the global batch's (batch_moments)."""

        def __init__(self, channels, momentum, eps, trainable=True, name=None, **kwargs):
            super().__init__(trainable=trainable, name=name, **kwargs)
            self.gamma = self.variable([channels], trainable, "gamma", fill=1.0)
            self.beta = self.variable([channels], trainable, "beta")
            self.running_mean = self.variable([channels], False, "running_mean")
            self.running_var = self.variable([channels], False, "running_var", fill=1.0)
            self.momentum, self.eps = momentum, eps

        def call(self, x, training=False):
            if not training:
                stats = self.running_mean.value, self.running_var.value
                return normalize(x, *stats, self.gamma.value, self.beta.value, self.eps)
            mean, variance, n = batch_moments(x)
            unbiased = variance * n / tf.maximum(n - 1.0, 1.0)
            m = self.momentum
            self.running_mean.assign((1.0 - m) * self.running_mean.value + m * mean)
            self.running_var.assign((1.0 - m) * self.running_var.value + m * unbiased)
            return normalize(x, mean, variance, self.gamma.value, self.beta.value, self.eps)

        def parameters(self):
            return {
                "weight": self.gamma,
                "bias": self.beta,
                "running_mean": self.running_mean,
                "running_var": self.running_var,
            }
    ''',
)

_layer(
    "LayerNorm",
    '''
    @keras.saving.register_keras_serializable(package="nnc")
    class LayerNorm(Layer):
        """y = γ (x - mean) / √(var + eps) + β over the last axis (biased variance)."""

        def __init__(self, features, eps, bias=True, trainable=True, name=None, **kwargs):
            super().__init__(trainable=trainable, name=name, **kwargs)
            self.gamma = self.variable([features], trainable, "gamma", fill=1.0)
            self.beta = self.variable([features], trainable, "beta") if bias else None
            self.eps = eps

        def call(self, x):
            mean, variance = tf.nn.moments(x, axes=[-1], keepdims=True)
            shift = 0.0 if self.beta is None else self.beta.value  # bias = false: scale only
            return normalize(x, mean, variance, self.gamma.value, shift, self.eps)

        def parameters(self):
            if self.beta is None:
                return {"weight": self.gamma}
            return {"weight": self.gamma, "bias": self.beta}
    ''',
)

_layer(
    "GroupNorm",
    '''
    @keras.saving.register_keras_serializable(package="nnc")
    class GroupNorm(Layer):
        """nnc's group normalisation of channels-last [N, *spatial, C]: per sample, the
        mean and biased variance over each group of C / groups consecutive channels and
        every position, then a per-channel scale and shift (torch's GroupNorm; Keras'
        GroupNormalization has the same layout but defaults to eps 1e-3). Instance
        normalisation is one channel per group."""

        def __init__(self, channels, groups, eps, trainable=True, name=None, **kwargs):
            super().__init__(trainable=trainable, name=name, **kwargs)
            self.gamma = self.variable([channels], trainable, "gamma", fill=1.0)
            self.beta = self.variable([channels], trainable, "beta")
            self.groups, self.eps = groups, eps

        def call(self, x):
            shape = tf.shape(x)
            grouped = tf.reshape(x, tf.concat([shape[:-1], [self.groups, -1]], 0))
            axes = [*range(1, len(x.shape) - 1), len(x.shape)]
            mean, variance = tf.nn.moments(grouped, axes=axes, keepdims=True)
            normal = (grouped - mean) * tf.math.rsqrt(variance + self.eps)
            return tf.reshape(normal, shape) * self.gamma + self.beta

        def parameters(self):
            return {"weight": self.gamma, "bias": self.beta}
    ''',
)

_layer(
    "PRelu",
    '''
    @keras.saving.register_keras_serializable(package="nnc")
    class PRelu(Layer):
        """x if x > 0 else alpha_c * x, one learned slope per channel (the last axis).

        Written with tf.where: max(x, 0) + alpha * min(x, 0) computes the same values,
        but at x = 0 TensorFlow sends the gradient of both max and min to x, a slope of
        1 + alpha where nnc's is alpha (and exact zeros are common: zero biases,
        padding, relu outputs)."""

        def __init__(self, channels, trainable=True, name=None, **kwargs):
            super().__init__(trainable=trainable, name=name, **kwargs)
            self.alpha = self.variable([channels], trainable, "alpha", fill=0.25)

        def call(self, x):
            return tf.where(x > 0, x, self.alpha.value * x)

        def parameters(self):
            return {"alpha": self.alpha}
    ''',
)

_layer(
    "Recurrent",
    '''
    @keras.saving.register_keras_serializable(package="nnc")
    class Recurrent(Layer):
        """A recurrent layer over [N, t, F], its weights stored as Keras stores them:
        kernel [F, gates*H] = W_ihᵀ and recurrent_kernel [H, gates*H] = W_hhᵀ.

        The input term of every step is one matmul up front; the recurrence runs with
        tf.scan over time (t may differ from batch to batch)."""

        gates = 1

        def __init__(
            self, features, units, return_sequences=False, trainable=True, name=None, **kwargs
        ):
            super().__init__(trainable=trainable, name=name, **kwargs)
            self.units, self.return_sequences = units, return_sequences
            size = self.gates * units
            self.kernel = self.variable([features, size], trainable, "kernel")
            self.recurrent_kernel = self.variable([units, size], trainable, "recurrent_kernel")

        def run(self, inputs, initial):
            """Loop `self.cell` over time; return [N, t, H] or the last state [N, H]. Only
            the sequence keeps every step's state (tf.scan); the last state alone is a
            fold, which stores none of them."""
            steps = tf.transpose(inputs, (1, 0, 2))
            if not self.return_sequences:
                last = tf.foldl(self.cell, steps, initializer=initial)
                return last[0] if isinstance(last, tuple) else last
            states = tf.scan(self.cell, steps, initializer=initial)
            h = states[0] if isinstance(states, tuple) else states
            return tf.transpose(h, (1, 0, 2))

        def zeros(self, x):
            return tf.zeros([tf.shape(x)[0], self.units])
    ''',
)

_layer(
    "SimpleRNN",
    '''
    @keras.saving.register_keras_serializable(package="nnc")
    class SimpleRNN(Recurrent):
        """h_t = tanh(W_ih x_t + W_hh h_{t-1} + b), h_0 = 0 (Keras' SimpleRNN layout)."""

        def __init__(
            self, features, units, return_sequences=False, trainable=True, name=None, **kwargs
        ):
            super().__init__(features, units, return_sequences, trainable, name, **kwargs)
            self.bias = self.variable([units], trainable, "bias")

        def call(self, x):
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

_layer(
    "LSTM",
    '''
    @keras.saving.register_keras_serializable(package="nnc")
    class LSTM(Recurrent):
        """Long short-term memory with gates i, f, g, o: nnc's order, which is Keras'
        i, f, c, o, so its weights are only transposed (one bias, as in Keras)."""

        gates = 4

        def __init__(
            self, features, units, return_sequences=False, trainable=True, name=None, **kwargs
        ):
            super().__init__(features, units, return_sequences, trainable, name, **kwargs)
            self.bias = self.variable([4 * units], trainable, "bias")

        def call(self, x):
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

_layer(
    "GRU",
    '''
    @keras.saving.register_keras_serializable(package="nnc")
    class GRU(Recurrent):
        """Gated recurrent unit with the reset applied after the recurrent matmul:
        Keras' GRU(reset_after=True). Keras orders the gates z, r, h where nnc orders
        them r, z, n, so the first two gate blocks swap; its bias [2, 3H] is the two
        variables input_bias (nnc's bias_ih) and recurrent_bias (bias_hh)."""

        gates = 3

        def __init__(
            self, features, units, return_sequences=False, trainable=True, name=None, **kwargs
        ):
            super().__init__(features, units, return_sequences, trainable, name, **kwargs)
            self.input_bias = self.variable([3 * units], trainable, "input_bias")
            self.recurrent_bias = self.variable([3 * units], trainable, "recurrent_bias")

        def call(self, x):
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

_layer(
    "Param",
    '''
    @keras.saving.register_keras_serializable(package="nnc")
    class Param(Layer):
        """A learned tensor of a graph (nnc's param): a variable in nnc's layout,
        read with a leading batch axis of size 1 so that it broadcasts over the batch."""

        def __init__(self, shape, trainable=True, name=None, **kwargs):
            super().__init__(trainable=trainable, name=name, **kwargs)
            self.value = self.variable(shape, trainable, "value")

        def read(self):
            """The value with a batch axis of 1 (read, not called: a Keras call takes inputs)."""
            return self.value[None]

        def parameters(self):
            return {"value": self.value}
    ''',
)

_layer(
    "MultiHeadAttention",
    '''
    @keras.saving.register_keras_serializable(package="nnc")
    class MultiHeadAttention(Layer):
        """nnc's attention, written out: softmax(Q Kᵀ / √key_dim) V per head, then the
        output projection. Kernels are stored [in, out] (nnc's weights are [out, in]).
        A key not attended gets weight 0; a query attending no key, all-zero weights."""

        def __init__(
            self,
            heads,
            dims,
            key_dim,
            value_dim,
            bias=True,
            causal=False,
            dropout=0.0,
            trainable=True,
            name=None,
            **kwargs,
        ):
            super().__init__(trainable=trainable, name=name, **kwargs)
            shapes = {
                "query": (dims[0], heads * key_dim),
                "key": (dims[1], heads * key_dim),
                "value": (dims[2], heads * value_dim),
                "output": (heads * value_dim, dims[0]),
            }
            items = shapes.items()
            self.kernels = {k: self.variable(list(s), trainable, f"{k}_kernel") for k, s in items}
            self.biases = {
                k: self.variable([s[1]], trainable, k + "_bias") for k, s in shapes.items() if bias
            }
            self.heads, self.scale = heads, 1.0 / key_dim**0.5
            self.causal, self.dropout = causal, dropout

        def project(self, x, part):
            y = tf.matmul(x, self.kernels[part])
            return y + self.biases[part] if self.biases else y

        def split(self, x):
            shape = tf.shape(x)
            return tf.transpose(tf.reshape(x, [shape[0], shape[1], self.heads, -1]), [0, 2, 1, 3])

        def call(self, q, k, v, key_mask=None, training=False, generator=None):
            n, t, s = tf.shape(q)[0], tf.shape(q)[1], tf.shape(k)[1]
            # Keys and values shared by every sample (a param, batch 1) take the
            # queries' batch: the gradient of a broadcasting BatchMatMulV2 corrupts
            # memory (TF 2.21 with oneDNN; see batch_matmul).
            k = tf.broadcast_to(k, tf.concat([[n], tf.shape(k)[1:]], 0))
            v = tf.broadcast_to(v, tf.concat([[n], tf.shape(v)[1:]], 0))
            q_h = self.split(self.project(q, "query"))
            k_h = self.split(self.project(k, "key"))
            v_h = self.split(self.project(v, "value"))
            scores = tf.matmul(q_h, k_h, transpose_b=True) * self.scale
            allowed = tf.ones([1, 1, t, s], dtype=tf.bool)
            if self.causal:  # key j <= query i
                allowed &= tf.range(s)[None, :] <= tf.range(t)[:, None]
            if key_mask is not None:  # 1 = attend
                allowed &= tf.not_equal(key_mask, 0.0)[:, None, None, :]
            top = tf.reduce_max(tf.where(allowed, scores, float("-inf")), axis=-1, keepdims=True)
            top = tf.stop_gradient(tf.where(tf.math.is_finite(top), top, 0.0))
            e = tf.where(allowed, tf.exp(tf.minimum(scores - top, 0.0)), 0.0)
            total = tf.reduce_sum(e, axis=-1, keepdims=True)
            weights = e / tf.where(total > 0, total, 1.0)
            if training and self.dropout > 0:
                weights = dropout(weights, self.dropout, generator)
            mixed = tf.reshape(tf.transpose(tf.matmul(weights, v_h), [0, 2, 1, 3]), [n, t, -1])
            return self.project(mixed, "output")

        def parameters(self):
            out = {}
            for part, kernel in self.kernels.items():
                out[part + ".weight"] = kernel
                if self.biases:
                    out[part + ".bias"] = self.biases[part]
            return out

        @staticmethod
        def to_native(param, value):
            return value.T if param.endswith(".weight") else value

        to_canonical = to_native  # a transpose is its own inverse
    ''',
)

_layer(
    "LearnedPositions",
    '''
    @keras.saving.register_keras_serializable(package="nnc")
    class LearnedPositions(Layer):
        """x + table[:t]: one learned vector per position, table [max_len, d] (nnc's
        layout)."""

        def __init__(self, max_len, dim, trainable=True, name=None, **kwargs):
            super().__init__(trainable=trainable, name=name, **kwargs)
            self.table = self.variable([max_len, dim], trainable, "table")

        def call(self, x):
            return x + self.table[: tf.shape(x)[1]]

        def parameters(self):
            return {"weight": self.table}
    ''',
)
