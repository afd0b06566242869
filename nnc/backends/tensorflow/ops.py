"""One lowering per IR op: the TensorFlow expression that computes a node.

A lowering takes the :class:`~nnc.backends.tensorflow.graph.ModelEmitter` and the
node, asks for its inputs in the layout it wants (channels-last for convolutions,
pooling and other per-channel ops; channels-first, nnc's canonical layout, for ops
over the feature axis; either for element-wise ops), and returns the expression and
the layout of its result. One-line activations are data (:data:`ELEMENTWISE`);
anything longer is a named function. ``docs/backends/tensorflow.md`` lists what each
op becomes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from nnc.backends.codegen import py_literal
from nnc.backends.tensorflow.arith import ARITH
from nnc.backends.tensorflow.graph import FIRST, LAST, ModelEmitter, tensor_axis
from nnc.backends.tensorflow.layout import LAYOUT
from nnc.backends.tensorflow.linalg import LINALG
from nnc.backends.tensorflow.maths import LOWERINGS as MATHS
from nnc.backends.tensorflow.positions import POSITIONS
from nnc.backends.tensorflow.resample import RESAMPLE
from nnc.ir.ops import Node
from nnc.ir.ops.activations import Elu, LeakyRelu, LogSoftmax, PRelu, Softmax
from nnc.ir.ops.attention import Attention
from nnc.ir.ops.conv import Conv2dTranspose, _Conv
from nnc.ir.ops.dense import Dense, Embedding
from nnc.ir.ops.energy import Rbm
from nnc.ir.ops.graph import Concat
from nnc.ir.ops.normalization import BatchNorm, LayerNorm, LocalResponseNorm, _GroupedNorm
from nnc.ir.ops.pooling import GlobalAvgPool, _Pool
from nnc.ir.ops.recurrent import _Recurrent
from nnc.ir.ops.reshape import Dropout, Flatten, Reshape
from nnc.ir.types import numel

Lowered = tuple[str, str]
# Each lowering takes the node of its own op class.
Lowering = Callable[[ModelEmitter, Any], Lowered]

# Element-wise activations whose TensorFlow form is one call with nnc's semantics.
ELEMENTWISE: dict[str, str] = {
    "linear": "tf.identity({x})",
    "sigmoid": "tf.sigmoid({x})",
    "tanh": "tf.tanh({x})",
    "relu": "tf.nn.relu({x})",
    "gelu": "tf.nn.gelu({x}, approximate=False)",  # the exact erf form
    "softplus": "tf.nn.softplus({x})",  # stable: max(x, 0) + log1p(exp(-|x|))
    "silu": "tf.nn.silu({x})",
}


def _elementwise(e: ModelEmitter, node: Node) -> Lowered:
    x = e.input(node, 0, None)
    return ELEMENTWISE[node.op].format(x=x.local), x.layout


def _step(e: ModelEmitter, node: Node) -> Lowered:
    e.library.add("step")
    x = e.input(node, 0, None)
    return f"step({x.local})", x.layout


def _leaky_relu(e: ModelEmitter, node: LeakyRelu) -> Lowered:
    x = e.input(node, 0, None)
    return f"tf.nn.leaky_relu({x.local}, alpha={py_literal(node.alpha)})", x.layout


SELU_ALPHA = 1.6732632423543772
SELU_SCALE = 1.0507009873554805


def _exponential_linear(v: str, alpha: float) -> str:
    """``x if x > 0 else alpha * (e^x - 1)``, written out: tf.nn.elu and tf.nn.selu
    compute e^x - 1 as exp(x) - 1, which loses every digit near 0 (elu(-1e-8) is 0).
    expm1 sees only x <= 0, so the branch not taken cannot overflow into a NaN
    gradient."""
    return f"tf.where({v} > 0, {v}, {py_literal(alpha)} * tf.math.expm1(tf.minimum({v}, 0.0)))"


def _elu(e: ModelEmitter, node: Elu) -> Lowered:
    x = e.input(node, 0, None)
    return _exponential_linear(x.local, node.alpha), x.layout


def _selu(e: ModelEmitter, node: Node) -> Lowered:
    x = e.input(node, 0, None)
    return f"{py_literal(SELU_SCALE)} * {_exponential_linear(x.local, SELU_ALPHA)}", x.layout


def _prelu(e: ModelEmitter, node: PRelu) -> Lowered:
    x = e.input(node, 0, LAST)
    t = node.type
    layer = e.layer(node, "PRelu", channels=t.shape[0], **_frozen(node.trainable))
    return f"{layer}({x.local})", x.layout


def _softmax(e: ModelEmitter, node: Softmax | LogSoftmax) -> Lowered:
    x = e.input(node, 0, None)
    axis = tensor_axis(node.axis, node.type.rank, x.layout)
    fn = "tf.nn.softmax" if isinstance(node, Softmax) else "tf.nn.log_softmax"
    written = -1 if axis == node.type.rank else axis
    return f"{fn}({x.local}, axis={written})", x.layout


def _frozen(trainable: bool) -> dict[str, object]:
    return {} if trainable else {"trainable": False}


def _frozen_bias(node: Dense | _Conv) -> dict[str, object]:
    """``bias_trainable = false``: the layer's bias is a variable that no optimizer sees."""
    if node.bias and node.trainable and not node.bias_trainable:
        return {"bias_trainable": False}
    return {}


# -- layers with parameters -----------------------------------------------------------


def _dense(e: ModelEmitter, node: Dense) -> Lowered:
    x = e.input(node, 0, FIRST)
    features = e.model.value_type(node.inputs[0]).shape[-1]
    kwargs: dict[str, object] = {"features": features, "units": node.units}
    if not node.bias:
        kwargs["bias"] = False
    layer = e.layer(node, "Dense", **kwargs, **_frozen(node.trainable), **_frozen_bias(node))
    return f"{layer}({x.local})", FIRST


def _rbm(e: ModelEmitter, node: Rbm) -> Lowered:
    x = e.input(node, 0, FIRST)
    visible = e.model.value_type(node.inputs[0]).shape[0]
    layer = e.layer(node, "RBM", visible=visible, hidden=node.hidden, **_frozen(node.trainable))
    return f"{layer}({x.local})", FIRST


def _attention(e: ModelEmitter, node: Attention) -> Lowered:
    ins = [e.model.value_type(r) for r in node.inputs]
    d_q, d_k, d_v, key_dim, value_dim = node.dims(ins)
    (iq, ik, iv), im = node.split_inputs(ins)
    kwargs: dict[str, object] = {
        "heads": node.heads,
        "dims": (d_q, d_k, d_v),
        "key_dim": key_dim,
        "value_dim": value_dim,
    }
    if not node.bias:
        kwargs["bias"] = False
    if node.causal:
        kwargs["causal"] = True
    if node.dropout:
        kwargs["dropout"] = node.dropout
        e.library.add("dropout")
    layer = e.layer(node, "MultiHeadAttention", **kwargs, **_frozen(node.trainable))
    args = [e.input(node, i, FIRST).local for i in (iq, ik, iv)]
    if im is not None:
        args.append(f"key_mask={e.input(node, im, FIRST).local}")
    if node.dropout:
        args += ["training=training", "generator=self.generator"]
    return f"{layer}({', '.join(args)})", FIRST


def _embedding(e: ModelEmitter, node: Embedding) -> Lowered:
    x = e.input(node, 0, FIRST)
    layer = e.layer(node, "Embedding", vocab=node.vocab, dim=node.dim, **_frozen(node.trainable))
    return f"{layer}({x.local})", FIRST


def _conv(e: ModelEmitter, node: _Conv) -> Lowered:
    x = e.input(node, 0, LAST)
    t = e.model.value_type(node.inputs[0])
    kwargs: dict[str, object] = {
        "channels": t.shape[0],
        "filters": node.filters,
        "kernel": node.kernel,
    }
    if any(s != 1 for s in node.stride):
        kwargs["stride"] = node.stride
    if node.padding == "same":
        kwargs["padding"] = "SAME"  # TensorFlow's SAME is nnc's same (SAME_UPPER)
    elif isinstance(node.padding, tuple) and any(node.padding):
        kwargs["padding"] = node.pads(t.shape[1:])
    if any(d != 1 for d in node.dilation):
        kwargs["dilation"] = node.dilation
    if node.groups != 1:
        kwargs["groups"] = node.groups
    if not node.bias:
        kwargs["bias"] = False
    depthwise = (
        node.rank == 2
        and node.groups > 1
        and node.groups == t.shape[0]
        and node.stride[0] == node.stride[1]
        and all(d == 1 for d in node.dilation)
    )
    cls = "Conv3d" if node.rank == 3 else "DepthwiseConv" if depthwise else "Conv"
    layer = e.layer(node, cls, **kwargs, **_frozen(node.trainable), **_frozen_bias(node))
    return f"{layer}({x.local})", LAST


def _conv_transpose(e: ModelEmitter, node: Conv2dTranspose) -> Lowered:
    x = e.input(node, 0, LAST)
    t = e.model.value_type(node.inputs[0])
    kwargs: dict[str, object] = {
        "channels": t.shape[0],
        "filters": node.filters,
        "kernel": node.kernel,
        "stride": node.stride,
    }
    crop = node.pads()
    if any(any(p) for p in crop):
        kwargs["crop"] = crop
    if any(node.output_padding):
        kwargs["output_padding"] = node.output_padding
    if not node.bias:
        kwargs["bias"] = False
    layer = e.layer(node, "ConvTranspose2d", **kwargs, **_frozen(node.trainable))
    return f"{layer}({x.local})", LAST


def _batchnorm(e: ModelEmitter, node: BatchNorm) -> Lowered:
    x = e.input(node, 0, LAST)
    layer = e.layer(
        node,
        "BatchNorm",
        channels=node.type.shape[0],
        momentum=node.momentum,
        eps=node.eps,
        **_frozen(node.trainable),
    )
    return f"{layer}({x.local}, training=training)", x.layout


def _layernorm(e: ModelEmitter, node: LayerNorm) -> Lowered:
    x = e.input(node, 0, FIRST)
    options = _frozen(node.trainable) if node.bias else {"bias": False, **_frozen(node.trainable)}
    layer = e.layer(node, "LayerNorm", features=node.type.shape[-1], eps=node.eps, **options)
    return f"{layer}({x.local})", FIRST


_RECURRENT_CLASSES = {"rnn": "SimpleRNN", "lstm": "LSTM", "gru": "GRU"}


def _recurrent(e: ModelEmitter, node: _Recurrent) -> Lowered:
    x = e.input(node, 0, FIRST)
    kwargs: dict[str, object] = {
        "features": e.model.value_type(node.inputs[0]).shape[1],
        "units": node.units,
    }
    if node.return_sequences:
        kwargs["return_sequences"] = True
    layer = e.layer(node, _RECURRENT_CLASSES[node.op], **kwargs, **_frozen(node.trainable))
    return f"{layer}({x.local})", FIRST


# -- pooling, normalisation without parameters, reshaping --------------------------------


def _pool(e: ModelEmitter, node: _Pool) -> Lowered:
    x = e.input(node, 0, LAST)
    t = e.model.value_type(node.inputs[0])
    window = node.window(t)
    size, stride = py_literal(window.kernel), py_literal(window.stride)
    if window.dilation or isinstance(node.padding, tuple) or node.ceil_mode:
        return _window_pool(e, node, window, x.local), LAST
    if node.op == "sumpool":
        e.library.add("sum_pool")
        pads = f", pads={py_literal(window.pads)}" if any(any(p) for p in window.pads) else ""
        return f"sum_pool({x.local}, {size}, {stride}{pads})", LAST
    # TensorFlow's SAME is nnc's same: max pooling ignores the padding and average
    # pooling divides by the real elements of each window, as nnc defines them.
    fn = {"maxpool": "max_pool", "avgpool": "avg_pool"}[node.op.removesuffix("3d")]
    padding = py_literal(node.padding.upper())
    return f"tf.nn.{fn}{t.rank - 1}d({x.local}, {size}, {stride}, {padding})", LAST


def _window_pool(e: ModelEmitter, node: _Pool, window: Any, x: str) -> str:
    """Explicit or ceil-mode padding, or a dilation: the window_pool helper."""
    e.library.add("window_pool")
    kind = {"maxpool": "max", "avgpool": "mean", "sumpool": "sum"}[node.op.removesuffix("3d")]
    args = [x, py_literal(kind), py_literal(window.kernel), py_literal(window.stride)]
    args.append(py_literal(window.pads))
    if window.dilation:
        args.append(f"dilation={py_literal(window.dilation)}")
    return f"window_pool({', '.join(args)})"


def _grouped_norm(e: ModelEmitter, node: _GroupedNorm) -> Lowered:
    x = e.input(node, 0, LAST)
    channels = node.type.shape[0]
    assert isinstance(channels, int)
    groups = node.channel_groups(channels)
    trainable = _frozen(node.trainable)
    kwargs: dict[str, object] = {"channels": channels, "groups": groups, "eps": node.eps}
    layer = e.layer(node, "GroupNorm", **kwargs, **trainable)
    return f"{layer}({x.local})", x.layout


def _global_avg_pool(e: ModelEmitter, node: GlobalAvgPool) -> Lowered:
    x = e.input(node, 0, LAST)
    axes = tuple(range(1, e.model.value_type(node.inputs[0]).rank))
    return f"tf.reduce_mean({x.local}, axis={py_literal(axes)})", FIRST


def _lrn(e: ModelEmitter, node: LocalResponseNorm) -> Lowered:
    x = e.input(node, 0, LAST)
    e.library.add("local_response_norm")
    args = ", ".join(
        f"{k}={py_literal(getattr(node, k))}" for k in ("size", "alpha", "beta", "bias")
    )
    return f"local_response_norm({x.local}, {args})", LAST


def _flatten(e: ModelEmitter, node: Flatten) -> Lowered:
    x = e.input(node, 0, FIRST)  # canonical feature order: channels first
    n = numel(node.type.shape)
    if isinstance(n, int):
        return f"tf.reshape({x.local}, (-1, {n}))", FIRST
    return f"tf.reshape({x.local}, (tf.shape({x.local})[0], -1))", FIRST


def _reshape(e: ModelEmitter, node: Reshape) -> Lowered:
    x = e.input(node, 0, FIRST)
    shape = py_literal((-1, *node.type.shape))
    return f"tf.reshape({x.local}, {shape})", FIRST


def _dropout(e: ModelEmitter, node: Dropout) -> Lowered:
    x = e.input(node, 0, None)
    e.library.add("dropout")
    rate = py_literal(node.rate)
    return f"dropout({x.local}, {rate}, self.generator) if training else {x.local}", x.layout


# -- joining tensors -------------------------------------------------------------------


def _concat(e: ModelEmitter, node: Concat) -> Lowered:
    first = e.input(node, 0, None)
    rest = [e.input(node, k, first.layout) for k in range(1, len(node.inputs))]
    axis = tensor_axis(node.axis, node.type.rank, first.layout)
    values = ", ".join(v.local for v in (first, *rest))
    return f"tf.concat([{values}], axis={axis})", first.layout


LOWERINGS: dict[str, Lowering] = {
    **{op: _elementwise for op in ELEMENTWISE},
    "step": _step,
    "leaky_relu": _leaky_relu,
    "elu": _elu,
    "selu": _selu,
    "prelu": _prelu,
    "softmax": _softmax,
    "log_softmax": _softmax,
    "dense": _dense,
    "embedding": _embedding,
    "rbm": _rbm,
    "conv1d": _conv,
    "conv2d": _conv,
    "conv3d": _conv,
    "conv2d_transpose": _conv_transpose,
    "batchnorm": _batchnorm,
    "instancenorm": _grouped_norm,
    "groupnorm": _grouped_norm,
    "layernorm": _layernorm,
    "rnn": _recurrent,
    "lstm": _recurrent,
    "gru": _recurrent,
    "maxpool": _pool,
    "avgpool": _pool,
    "sumpool": _pool,
    "global_avg_pool": _global_avg_pool,
    "maxpool3d": _pool,
    "avgpool3d": _pool,
    "lrn": _lrn,
    "flatten": _flatten,
    "reshape": _reshape,
    "dropout": _dropout,
    "attention": _attention,
    "concat": _concat,
    **MATHS,
    **RESAMPLE,
    **POSITIONS,
    **LAYOUT,
    **ARITH,
    **LINALG,
}
"""Every op but ``call`` (a model used as a layer), which the emitter handles itself."""
