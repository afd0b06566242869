"""A small float64 NumPy forward pass (evaluation mode) for the ops the pass tests
use, written from docs/semantics.md. The passes must leave its outputs unchanged
where they promise to; it is independent of every backend."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping

import numpy as np

from nnc.ir.ops import Node
from nnc.ir.passes import inline_calls
from nnc.ir.program import Program

Array = np.ndarray


def forward(
    program: Program, model: str, weights: Mapping[str, Array], *inputs: Array
) -> list[Array]:
    """The model's outputs for a batch, in float64."""
    flat = inline_calls(program, model)
    env: dict[str, Array] = {
        i.name: np.asarray(x, dtype=np.float64) for i, x in zip(flat.inputs, inputs, strict=True)
    }
    for node in flat.nodes:
        params = {
            k.rsplit(".", 1)[1]: np.asarray(v, dtype=np.float64)
            for k, v in weights.items()
            if k.rsplit(".", 1)[0] == node.name
        }
        env[node.name] = _op(node, [env[r] for r in node.inputs], params)
    return [env[o] for o in flat.outputs]


def _op(node: Node, xs: list[Array], p: dict[str, Array]) -> Array:
    x = xs[0]
    simple = ACTIVATIONS.get(node.op)
    if simple is not None:
        return simple(x, node)
    if node.op == "dense":
        return x @ p["weight"].T + p.get("bias", 0.0)
    if node.op in ("conv1d", "conv2d"):
        return _conv(x, p, node)
    if node.op == "conv2d_transpose":
        return _conv_transpose(x, p, node)
    if node.op == "batchnorm":
        shape = (1, -1) + (1,) * (x.ndim - 2)
        scale = p["weight"] / np.sqrt(p["running_var"] + node.eps)  # type: ignore[union-attr]
        return (x - p["running_mean"].reshape(shape)) * scale.reshape(shape) + p["bias"].reshape(
            shape
        )
    if node.op in ("maxpool", "avgpool"):
        return _pool(x, node)
    if node.op == "global_avg_pool":
        return x.reshape(x.shape[0], x.shape[1], -1).mean(axis=2)
    if node.op == "flatten":
        return x.reshape(x.shape[0], -1)
    if node.op == "reshape":
        return x.reshape(x.shape[0], *node.shape)  # type: ignore[union-attr]
    if node.op == "dropout":
        return x
    if node.op == "add":
        return sum(xs[1:], xs[0])
    if node.op == "concat":
        axis = node.axis + 1 if node.axis >= 0 else node.axis  # type: ignore[union-attr]
        return np.concatenate(xs, axis=axis)
    if node.op == "rnn":
        return _rnn(x, p, node)
    if node.op == "lstm":
        return _lstm(x, p, node)
    raise AssertionError(f"the test reference has no {node.op}")


def _sigmoid(x: Array) -> Array:
    return 1.0 / (1.0 + np.exp(-x))


def _softmax(x: Array, axis: int) -> Array:
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _gelu(x: Array) -> Array:
    erf = np.vectorize(math.erf)
    return 0.5 * x * (1.0 + erf(x / math.sqrt(2.0)))


ACTIVATIONS: dict[str, Callable[[Array, Node], Array]] = {
    "linear": lambda x, n: x,
    "relu": lambda x, n: np.maximum(x, 0.0),
    "sigmoid": lambda x, n: _sigmoid(x),
    "tanh": lambda x, n: np.tanh(x),
    "gelu": lambda x, n: _gelu(x),
    "silu": lambda x, n: x * _sigmoid(x),
    "leaky_relu": lambda x, n: np.where(x > 0, x, n.alpha * x),  # type: ignore[union-attr]
    "elu": lambda x, n: np.where(x > 0, x, n.alpha * (np.exp(np.minimum(x, 0)) - 1)),  # type: ignore[union-attr]
    "softmax": lambda x, n: _softmax(x, n.axis + 1 if n.axis >= 0 else n.axis),  # type: ignore[union-attr]
}


def _conv(x: Array, p: dict[str, Array], node: Node) -> Array:
    w = p["weight"]
    kernel, stride, dilation = node.kernel, node.stride, node.dilation  # type: ignore[union-attr]
    groups = node.groups  # type: ignore[union-attr]
    pads = node.pads(x.shape[2:])  # type: ignore[union-attr]
    xp = np.pad(x, [(0, 0), (0, 0), *pads])
    out = [
        (xp.shape[2 + i] - (kernel[i] - 1) * dilation[i] - 1) // stride[i] + 1
        for i in range(len(kernel))
    ]
    y = np.zeros((x.shape[0], w.shape[0], *out))
    cin, fout = w.shape[1], w.shape[0] // groups
    for k in itertools.product(*(range(n) for n in kernel)):
        window = tuple(
            slice(k[i] * dilation[i], k[i] * dilation[i] + (out[i] - 1) * stride[i] + 1, stride[i])
            for i in range(len(kernel))
        )
        patch = xp[(slice(None), slice(None), *window)]
        for g in range(groups):
            taps = w[(slice(g * fout, (g + 1) * fout), slice(None), *k)]
            y[:, g * fout : (g + 1) * fout] += np.einsum(
                "nc...,fc->nf...", patch[:, g * cin : (g + 1) * cin], taps
            )
    return y + p.get("bias", np.zeros(w.shape[0])).reshape((1, -1) + (1,) * len(kernel))


def _conv_transpose(x: Array, p: dict[str, Array], node: Node) -> Array:
    w = p["weight"]  # [C_in, F, kh, kw]
    (kh, kw), (sh, sw) = node.kernel, node.stride  # type: ignore[union-attr]
    n, _, h, wd = x.shape
    full = np.zeros((n, w.shape[1], (h - 1) * sh + kh, (wd - 1) * sw + kw))
    for i, j in itertools.product(range(kh), range(kw)):
        full[:, :, i : i + (h - 1) * sh + 1 : sh, j : j + (wd - 1) * sw + 1 : sw] += np.einsum(
            "nchw,cf->nfhw", x, w[:, :, i, j]
        )
    (top, bottom), (left, right) = node.pads()  # type: ignore[union-attr]
    oh, ow = node.output_padding  # type: ignore[union-attr]
    full = np.pad(full, [(0, 0), (0, 0), (0, oh), (0, ow)])
    y = full[:, :, top : full.shape[2] - bottom, left : full.shape[3] - right]
    return y + p.get("bias", np.zeros(w.shape[1])).reshape(1, -1, 1, 1)


def _pool(x: Array, node: Node) -> Array:
    window = node.window(_type(x))  # type: ignore[union-attr]
    pad_value = -np.inf if node.op == "maxpool" else 0.0
    xp = np.pad(x, [(0, 0), (0, 0), *window.pads], constant_values=pad_value)
    count = np.pad(np.ones(x.shape[2:]), window.pads)
    out = [
        (xp.shape[2 + i] - window.kernel[i]) // window.stride[i] + 1
        for i in range(len(window.kernel))
    ]
    patches, counts = [], []
    for k in itertools.product(*(range(n) for n in window.kernel)):
        sl = tuple(
            slice(k[i], k[i] + (out[i] - 1) * window.stride[i] + 1, window.stride[i])
            for i in range(len(k))
        )
        patches.append(xp[(slice(None), slice(None), *sl)])
        counts.append(count[sl])
    if node.op == "maxpool":
        return np.max(patches, axis=0)
    return np.sum(patches, axis=0) / np.sum(counts, axis=0)


def _type(x: Array):  # type: ignore[no-untyped-def]
    from nnc.ir.types import TensorType

    return TensorType(shape=tuple(int(d) for d in x.shape[1:]))


def _rnn(x: Array, p: dict[str, Array], node: Node) -> Array:
    h = np.zeros((x.shape[0], p["weight_hh"].shape[0]))
    steps = []
    for t in range(x.shape[1]):
        h = np.tanh(x[:, t] @ p["weight_ih"].T + h @ p["weight_hh"].T + p["bias"])
        steps.append(h)
    return np.stack(steps, axis=1) if node.return_sequences else h  # type: ignore[union-attr]


def _lstm(x: Array, p: dict[str, Array], node: Node) -> Array:
    units = p["weight_hh"].shape[1]
    h = np.zeros((x.shape[0], units))
    c = np.zeros_like(h)
    steps = []
    for t in range(x.shape[1]):
        z = x[:, t] @ p["weight_ih"].T + h @ p["weight_hh"].T + p["bias"]
        i, f, g, o = (z[:, k * units : (k + 1) * units] for k in range(4))
        c = _sigmoid(f) * c + _sigmoid(i) * np.tanh(g)
        h = _sigmoid(o) * np.tanh(c)
        steps.append(h)
    return np.stack(steps, axis=1) if node.return_sequences else h  # type: ignore[union-attr]
