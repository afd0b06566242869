"""An independent float64 NumPy reference for nnc's semantics, written from
docs/semantics.md for the PyTorch backend's tests.

:func:`run` evaluates a model (calls inlined) on a batch; :func:`loss_value`
applies a recipe's loss; :func:`numeric_gradient` differentiates any scalar function
of the weights by central differences. The step activation's straight-through
gradient cannot come from differences (the step is flat), so during differentiation
``run`` replaces each step by ``z + c`` with ``c = step(z₀) - z₀`` frozen at the
base point: exactly the straight-through rule.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nnc.ir.passes import inline_calls
from nnc.ir.program import Model, Program
from nnc.ir.training import BinaryCrossEntropy, CrossEntropy, Mae, Mse, Sse
from nnc.ir.types import TensorType
from tests import linalg_reference
from tests.arith_reference import ARITH
from tests.backends import (
    attention_reference,
    layout_reference,
    positions_reference,
    spatial_reference,
)
from tests.maths_reference import MATHS

Arrays = dict[str, np.ndarray]


@dataclass
class Trace:
    """What a training-mode run records: the new batchnorm statistics, and the
    straight-through offsets of step nodes (reused when ``frozen``)."""

    running: Arrays = field(default_factory=dict)
    steps: Arrays = field(default_factory=dict)
    frozen: bool = False


def run(
    program: Program,
    model: str,
    weights: Mapping[str, np.ndarray],
    inputs: Sequence[np.ndarray],
    training: bool = False,
    trace: Trace | None = None,
) -> list[np.ndarray]:
    """The model's outputs in float64. Dropout must be off (rate 0 or evaluation)."""
    flat, types = _flat(program, model)
    trace = trace if trace is not None else Trace()
    w = {k: np.asarray(v, dtype=np.float64) for k, v in weights.items()}
    env: dict[str, Any] = {}
    for decl, value in zip(flat.inputs, inputs, strict=True):
        env[decl.name] = value if decl.type.dtype == "int64" else np.asarray(value, np.float64)
    for node in flat.nodes:
        xs = [env[ref] for ref in node.inputs]
        params = {k[len(node.name) + 1 :]: v for k, v in w.items() if k.startswith(node.name + ".")}
        env[node.name] = _OPS[node.op](node, xs, params, training, trace, types[node.name])
    return [env[o] for o in flat.outputs]


_FLAT: dict[tuple[int, str], tuple[Program, Model, dict[str, list[TensorType]]]] = {}


def _flat(program: Program, model: str) -> tuple[Model, dict[str, list[TensorType]]]:
    """The model with calls inlined and each node's input types, computed once."""
    key = (id(program), model)
    if key not in _FLAT:
        flat = inline_calls(program, model)
        types = {n.name: [flat.value_type(r) for r in n.inputs] for n in flat.nodes}
        _FLAT[key] = (program, flat, types)  # holding the program keeps its id unique
    _, flat, types = _FLAT[key]
    return flat, types


# -- layers ----------------------------------------------------------------------------


def _dense(node: Any, xs: list, p: Arrays, *_: Any) -> np.ndarray:
    y = xs[0] @ p["weight"].T
    return y + p["bias"] if "bias" in p else y


def _rbm(node: Any, xs: list, p: Arrays, *_: Any) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-(xs[0] @ p["weight"] + p["hidden_bias"])))


def _embedding(node: Any, xs: list, p: Arrays, *_: Any) -> np.ndarray:
    return p["weight"][xs[0]]


def _windows(x: np.ndarray, kernel: Sequence[int], stride: Sequence[int], dilation: Sequence[int]):
    """Yield (kernel offset, strided view of x for that offset) over the spatial dims."""
    spatial = x.shape[2:]
    out = [
        (n - (k - 1) * d - 1) // s + 1
        for n, k, s, d in zip(spatial, kernel, stride, dilation, strict=True)
    ]
    for offset in np.ndindex(*kernel):
        index = tuple(
            slice(o * d, o * d + (m - 1) * s + 1, s)
            for o, d, s, m in zip(offset, dilation, stride, out, strict=True)
        )
        yield offset, x[(slice(None), slice(None), *index)]


def _pad(x: np.ndarray, pads: Sequence[tuple[int, int]], value: float = 0.0) -> np.ndarray:
    return np.pad(x, [(0, 0), (0, 0), *pads], constant_values=value)


def _conv(node: Any, xs: list, p: Arrays, _t: bool, _tr: Trace, ins: list) -> np.ndarray:
    x = _pad(xs[0], node.pads(ins[0].shape[1:]))
    weight = p["weight"]
    groups = node.groups
    n, c = x.shape[:2]
    o = weight.shape[0]
    total = 0.0
    for offset, view in _windows(x, node.kernel, node.stride, node.dilation):
        xg = view.reshape(n, groups, c // groups, *view.shape[2:])
        wg = weight[(slice(None), slice(None), *offset)].reshape(groups, o // groups, c // groups)
        total = total + np.einsum("ngc...,goc->ngo...", xg, wg).reshape(n, o, *view.shape[2:])
    y = np.asarray(total)
    if "bias" in p:
        y = y + p["bias"].reshape(1, -1, *([1] * (y.ndim - 2)))
    return y


def _conv_transpose(node: Any, xs: list, p: Arrays, *_: Any) -> np.ndarray:
    x, weight = xs[0], p["weight"]
    n, _, h, w = x.shape
    (sh, sw), (kh, kw) = node.stride, node.kernel
    full = np.zeros((n, weight.shape[1], (h - 1) * sh + kh, (w - 1) * sw + kw))
    for i in range(kh):
        for j in range(kw):
            contribution = np.einsum("nchw,co->nohw", x, weight[:, :, i, j])
            full[:, :, i : i + (h - 1) * sh + 1 : sh, j : j + (w - 1) * sw + 1 : sw] += contribution
    oph, opw = node.output_padding
    full = np.pad(full, [(0, 0), (0, 0), (0, oph), (0, opw)])
    (hb, he), (wb, we) = node.pads()
    y = full[:, :, hb : full.shape[2] - he, wb : full.shape[3] - we]
    return y + p["bias"].reshape(1, -1, 1, 1) if "bias" in p else y


def _pool(node: Any, xs: list, p: Arrays, _t: bool, _tr: Trace, ins: list) -> np.ndarray:
    if spatial_reference.handles(node):
        return spatial_reference.pool(node, xs[0])
    window = node.window(ins[0])
    ones = (1,) * len(window.kernel)
    x = xs[0]
    if node.op == "maxpool":
        views = _windows(_pad(x, window.pads, -np.inf), window.kernel, window.stride, ones)
        return np.max(np.stack([v for _, v in views]), axis=0)
    sums = sum(v for _, v in _windows(_pad(x, window.pads), window.kernel, window.stride, ones))
    if node.op == "sumpool":
        return np.asarray(sums)
    mask = _pad(np.ones((1, 1, *x.shape[2:])), window.pads)
    counts = sum(v for _, v in _windows(mask, window.kernel, window.stride, ones))
    return np.asarray(sums) / counts


def _global_avg_pool(node: Any, xs: list, *_: Any) -> np.ndarray:
    return xs[0].mean(axis=tuple(range(2, xs[0].ndim)))


def _flatten(node: Any, xs: list, *_: Any) -> np.ndarray:
    return xs[0].reshape(len(xs[0]), -1)


def _reshape(node: Any, xs: list, *_: Any) -> np.ndarray:
    return xs[0].reshape(len(xs[0]), *node.shape)


def _dropout(node: Any, xs: list, p: Arrays, training: bool, *_: Any) -> np.ndarray:
    if training and node.rate > 0:
        raise ValueError("the reference cannot draw dropout masks; disable dropout")
    return xs[0]


def _batchnorm(node: Any, xs: list, p: Arrays, training: bool, trace: Trace, _: Any):
    x = xs[0]
    axes = (0, *range(2, x.ndim))
    shape = (1, -1, *([1] * (x.ndim - 2)))
    if training:
        mean, var = x.mean(axis=axes), x.var(axis=axes)
        count = x.size // x.shape[1]
        m = node.momentum
        trace.running[f"{node.name}.running_mean"] = (1 - m) * p["running_mean"] + m * mean
        trace.running[f"{node.name}.running_var"] = (1 - m) * p["running_var"] + m * var * count / (
            count - 1
        )
    else:
        mean, var = p["running_mean"], p["running_var"]
    normal = (x - mean.reshape(shape)) / np.sqrt(var.reshape(shape) + node.eps)
    return p["weight"].reshape(shape) * normal + p["bias"].reshape(shape)


def _layernorm(node: Any, xs: list, p: Arrays, *_: Any) -> np.ndarray:
    x = xs[0]
    mean, var = x.mean(axis=-1, keepdims=True), x.var(axis=-1, keepdims=True)
    return p["weight"] * (x - mean) / np.sqrt(var + node.eps) + p.get("bias", 0.0)


def _lrn(node: Any, xs: list, *_: Any) -> np.ndarray:
    x = xs[0]
    before = (node.size - 1) // 2
    after = node.size - 1 - before
    squares = np.pad(x**2, [(0, 0), (before, after)] + [(0, 0)] * (x.ndim - 2))
    c = x.shape[1]
    window = sum(squares[:, i : i + c] for i in range(node.size))
    return x / (node.bias + node.alpha / node.size * window) ** node.beta


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-z))


def _recurrent(node: Any, xs: list, p: Arrays, *_: Any) -> np.ndarray:
    x = xs[0]
    n, steps = x.shape[:2]
    hidden = node.units
    h = np.zeros((n, hidden))
    c = np.zeros((n, hidden))
    outputs = []
    for t in range(steps):
        a = x[:, t] @ p["weight_ih"].T
        r = h @ p["weight_hh"].T
        if node.op == "rnn":
            h = np.tanh(a + r + p["bias"])
        elif node.op == "lstm":
            z = a + r + p["bias"]
            i, f, g, o = (z[:, k * hidden : (k + 1) * hidden] for k in range(4))
            c = _sigmoid(f) * c + _sigmoid(i) * np.tanh(g)
            h = _sigmoid(o) * np.tanh(c)
        else:
            a, r = a + p["bias_ih"], r + p["bias_hh"]
            gates = [
                (a[:, k * hidden : (k + 1) * hidden], r[:, k * hidden : (k + 1) * hidden])
                for k in range(3)
            ]
            reset = _sigmoid(gates[0][0] + gates[0][1])
            update = _sigmoid(gates[1][0] + gates[1][1])
            candidate = np.tanh(gates[2][0] + reset * gates[2][1])
            h = (1 - update) * candidate + update * h
        outputs.append(h)
    return np.stack(outputs, axis=1) if node.return_sequences else h


def _arith(node: Any, xs: list, *_: Any) -> np.ndarray:
    return ARITH[node.op](node, xs)


def _concat(node: Any, xs: list, *_: Any) -> np.ndarray:
    return np.concatenate(xs, axis=node.axis + 1 if node.axis >= 0 else node.axis)


# -- activations -------------------------------------------------------------------------

SELU_ALPHA, SELU_SCALE = 1.6732632423543772, 1.0507009873554805


def _erf(x: np.ndarray) -> np.ndarray:
    from math import erf

    return np.vectorize(erf)(x)


def _step(node: Any, xs: list, p: Arrays, training: bool, trace: Trace, _: Any) -> np.ndarray:
    z = xs[0]
    if trace.frozen:
        return z + trace.steps[node.name]
    y = (z > 0).astype(np.float64)
    trace.steps[node.name] = y - z
    return y


def _softmax(node: Any, xs: list, *_: Any) -> np.ndarray:
    axis = node.axis + 1 if node.axis >= 0 else node.axis
    z = xs[0] - xs[0].max(axis=axis, keepdims=True)
    e = np.exp(z)
    out = e / e.sum(axis=axis, keepdims=True)
    return out if node.op == "softmax" else z - np.log(e.sum(axis=axis, keepdims=True))


_ELEMENTWISE: dict[str, Callable[[Any, np.ndarray], np.ndarray]] = {
    "linear": lambda n, x: x,
    "sigmoid": lambda n, x: _sigmoid(x),
    "tanh": lambda n, x: np.tanh(x),
    "relu": lambda n, x: np.maximum(x, 0),
    "leaky_relu": lambda n, x: np.where(x > 0, x, n.alpha * x),
    "elu": lambda n, x: np.where(x > 0, x, n.alpha * (np.exp(np.minimum(x, 0)) - 1)),
    "selu": lambda n, x: (
        SELU_SCALE * np.where(x > 0, x, SELU_ALPHA * (np.exp(np.minimum(x, 0)) - 1))
    ),
    "gelu": lambda n, x: 0.5 * x * (1 + _erf(x / np.sqrt(2))),
    "softplus": lambda n, x: np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x))),
    "silu": lambda n, x: x * _sigmoid(x),
}


def _spatial(node: Any, xs: list, *_: Any) -> np.ndarray | None:
    return spatial_reference.evaluate(node, xs[0])


def _attention(node: Any, xs: list, p: Arrays, *_: Any) -> np.ndarray:
    return attention_reference.evaluate(node, xs, p)


def _positions(node: Any, xs: list, p: Arrays, *_: Any) -> np.ndarray:
    return positions_reference.evaluate(node, xs[0], p)


def _layout(node: Any, xs: list, *_: Any) -> np.ndarray:
    return layout_reference.evaluate(node, xs[0])


def _spatial_layer(node: Any, xs: list, p: Arrays, *_: Any) -> np.ndarray:
    return spatial_reference.evaluate_layer(node, xs[0], p)


def _elementwise(node: Any, xs: list, *_: Any) -> np.ndarray:
    return _ELEMENTWISE[node.op](node, xs[0])


def _maths(node: Any, xs: list, *_: Any) -> np.ndarray:
    return MATHS[node.op](node, xs[0])


def _linalg(node: Any, xs: list, p: Arrays, *_: Any) -> np.ndarray:
    return linalg_reference.evaluate(node, xs, p.get("value"))


def _prelu(node: Any, xs: list, p: Arrays, *_: Any) -> np.ndarray:
    x = xs[0]
    alpha = p["alpha"].reshape(1, -1, *([1] * (x.ndim - 2)))
    return np.where(x > 0, x, alpha * x)


_OPS: dict[str, Callable[..., np.ndarray]] = {
    "dense": _dense,
    "rbm": _rbm,
    "embedding": _embedding,
    "conv1d": _conv,
    "conv2d": _conv,
    "conv2d_transpose": _conv_transpose,
    "maxpool": _pool,
    "avgpool": _pool,
    "sumpool": _pool,
    "global_avg_pool": _global_avg_pool,
    "flatten": _flatten,
    "reshape": _reshape,
    "dropout": _dropout,
    "batchnorm": _batchnorm,
    "layernorm": _layernorm,
    "lrn": _lrn,
    "rnn": _recurrent,
    "lstm": _recurrent,
    "gru": _recurrent,
    "concat": _concat,
    "step": _step,
    "prelu": _prelu,
    "softmax": _softmax,
    "log_softmax": _softmax,
    **dict.fromkeys(_ELEMENTWISE, _elementwise),
    **dict.fromkeys(MATHS, _maths),
    **dict.fromkeys(spatial_reference.OPS, _spatial),
    **dict.fromkeys(layout_reference.OPS, _layout),
    **dict.fromkeys(ARITH, _arith),
    **dict.fromkeys({"maxpool3d", "avgpool3d", *spatial_reference.LAYER_OPS}, _spatial_layer),
    **dict.fromkeys(linalg_reference.OPS, _linalg),
    **dict.fromkeys(attention_reference.OPS, _attention),
    **dict.fromkeys(positions_reference.OPS, _positions),
}
REFERENCE_OPS = frozenset(_OPS)


# -- losses ----------------------------------------------------------------------------------


def loss_value(loss: Any, y: np.ndarray, t: np.ndarray) -> float:
    """A recipe's loss in float64, written from the Losses table of docs/semantics.md."""
    reduce = np.sum if loss.summed else np.mean  # reduction = sum | mean
    if isinstance(loss, Mse):
        return float(reduce((y - t) ** 2))
    if isinstance(loss, Mae):
        return float(reduce(np.abs(y - t)))
    if isinstance(loss, Sse):
        return float(0.5 * np.sum((y - t) ** 2))
    if isinstance(loss, CrossEntropy):
        if loss.from_logits:
            z = y - y.max(axis=-1, keepdims=True)
            log_p = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
        else:
            log_p = np.log(np.maximum(y, 1e-7))
        terms = -(t * log_p).sum(axis=-1)
        if loss.ignore is not None and not loss.summed:  # padding rows are all zero
            return float(terms.sum() / max(np.count_nonzero(t.any(axis=-1)), 1))
        return float(reduce(terms))
    if isinstance(loss, BinaryCrossEntropy):
        if loss.from_logits:
            return float(reduce(np.maximum(y, 0) - y * t + np.log1p(np.exp(-np.abs(y)))))
        p = np.clip(y, 1e-7, 1 - 1e-7)
        return float(reduce(-(t * np.log(p) + (1 - t) * np.log(1 - p))))
    raise TypeError(f"no reference for loss {loss}")


# -- differentiation -------------------------------------------------------------------------


def numeric_gradient(
    f: Callable[[Arrays], float],
    point: Mapping[str, np.ndarray],
    names: Sequence[str],
    eps: float = 1e-6,
    limit: int = 400,
    seed: int = 0,
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Central differences of ``f`` at ``point`` for the entries of ``names``: per name,
    (flat indices checked, derivatives). Tensors larger than ``limit`` entries are
    checked at ``limit`` random indices."""
    rng = np.random.default_rng(seed)
    base = {k: np.array(v, dtype=np.float64) for k, v in point.items()}
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for name in names:
        size = base[name].size
        indices = np.arange(size) if size <= limit else rng.choice(size, limit, replace=False)
        derivatives = np.empty(len(indices))
        flat = base[name].reshape(-1)
        for j, i in enumerate(indices):
            keep = flat[i]
            flat[i] = keep + eps
            up = f(base)
            flat[i] = keep - eps
            down = f(base)
            flat[i] = keep
            derivatives[j] = (up - down) / (2 * eps)
        out[name] = (indices, derivatives)
    return out
