"""A float64 NumPy reference forward pass, written from docs/semantics.md.

It is deliberately plain (loops over kernel offsets and time steps) so that it can
be checked by reading; tests compare the ONNX backend against it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from itertools import product

import numpy as np

from nnc.ir.ops.pooling import _Pool
from nnc.ir.program import Model
from tests import linalg_reference
from tests.arith_reference import ARITH
from tests.backends import (
    attention_reference,
    layout_reference,
    positions_reference,
    spatial_reference,
)
from tests.maths_reference import MATHS

Arrays = Mapping[str, np.ndarray]
SELU_ALPHA = 1.6732632423543772
SELU_SCALE = 1.0507009873554805


def forward(model: Model, weights: Arrays, *inputs: np.ndarray) -> list[np.ndarray]:
    """Outputs of a flat (call-free), typed model, in float64."""
    env: dict[str, np.ndarray] = {}
    for decl, x in zip(model.inputs, inputs, strict=True):
        env[decl.name] = x if decl.type.dtype == "int64" else np.asarray(x, np.float64)
    for node in model.nodes:
        args = [env[r] for r in node.inputs]
        w = {
            k.split(".")[-1]: np.asarray(v, np.float64)
            for k, v in weights.items()
            if k.rsplit(".", 1)[0] == node.name
        }
        if node.op in attention_reference.OPS:  # parameters named <node>.<part>.<kind>
            prefix = node.name + "."
            own = {k[len(prefix) :]: v for k, v in weights.items() if k.startswith(prefix)}
            env[node.name] = attention_reference.evaluate(node, args, own)
            continue
        if node.op in positions_reference.OPS:
            env[node.name] = positions_reference.evaluate(node, args[0], w)
            continue
        env[node.name] = _op(node, args, w)
    return [env[o] for o in model.outputs]


def _op(node, args, w):
    if node.op in linalg_reference.OPS:
        return linalg_reference.evaluate(node, args, w.get("value"))
    op = node.op
    if op in ARITH:
        return ARITH[op](node, args)
    x = args[0]
    if spatial_reference.handles(node):
        return spatial_reference.evaluate_layer(node, x, w)
    if op == "dense":
        return x @ w["weight"].T + w.get("bias", 0.0)
    if op == "rbm":
        return 1.0 / (1.0 + np.exp(-(x @ w["weight"] + w["hidden_bias"])))
    if op == "embedding":
        return w["weight"][x]
    if op in ("conv1d", "conv2d"):
        return _conv(
            x,
            w,
            node.kernel,
            node.stride,
            node.dilation,
            node.groups,
            node.pads(x.shape[2:]),
            node.filters,
        )
    if op == "conv2d_transpose":
        return _conv_transpose(x, w, node)
    if op in ("maxpool", "avgpool", "sumpool"):
        return _pool(x, node)
    if op == "global_avg_pool":
        return x.reshape(x.shape[0], x.shape[1], -1).mean(axis=2)
    if op == "flatten":
        return x.reshape(x.shape[0], -1)
    if op == "reshape":
        return x.reshape(x.shape[0], *node.shape)
    if op in ("dropout", "linear"):
        return x
    if op == "batchnorm":
        shape = (1, -1) + (1,) * (x.ndim - 2)
        scale = w["weight"] / np.sqrt(w["running_var"] + node.eps)
        return (x - w["running_mean"].reshape(shape)) * scale.reshape(shape) + w["bias"].reshape(
            shape
        )
    if op == "layernorm":
        mean = x.mean(axis=-1, keepdims=True)
        var = x.var(axis=-1, keepdims=True)
        return (x - mean) / np.sqrt(var + node.eps) * w["weight"] + w.get("bias", 0.0)
    if op == "lrn":
        return _lrn(x, node)
    if op in ("rnn", "lstm", "gru"):
        return _recurrent(x, w, node)
    if op == "concat":
        return np.concatenate(args, axis=node.axis + 1 if node.axis >= 0 else node.axis)
    if op in MATHS:
        return MATHS[op](node, x)
    if op in spatial_reference.OPS:
        return spatial_reference.evaluate(node, x)
    if op in layout_reference.OPS:
        return layout_reference.evaluate(node, x)
    return _activation(x, w, node)


def _activation(x, w, node):
    op = node.op
    if op == "step":
        return (x > 0).astype(np.float64)
    if op == "sigmoid":
        return 1.0 / (1.0 + np.exp(-x))
    if op == "tanh":
        return np.tanh(x)
    if op == "relu":
        return np.maximum(x, 0.0)
    if op == "leaky_relu":
        return np.where(x > 0, x, node.alpha * x)
    if op == "elu":
        return np.where(x > 0, x, node.alpha * np.expm1(np.minimum(x, 0)))
    if op == "selu":
        return SELU_SCALE * np.where(x > 0, x, SELU_ALPHA * np.expm1(np.minimum(x, 0)))
    if op == "gelu":
        erf = np.vectorize(math.erf)
        return 0.5 * x * (1.0 + erf(x / math.sqrt(2.0)))
    if op == "softplus":
        return np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x)))
    if op == "silu":
        return x / (1.0 + np.exp(-x))
    if op == "prelu":
        alpha = w["alpha"].reshape((1, -1) + (1,) * (x.ndim - 2))
        return np.where(x > 0, x, alpha * x)
    axis = node.axis + 1 if node.axis >= 0 else node.axis
    shifted = x - x.max(axis=axis, keepdims=True)
    log_sum = np.log(np.exp(shifted).sum(axis=axis, keepdims=True))
    if op == "softmax":
        return np.exp(shifted - log_sum)
    if op == "log_softmax":
        return shifted - log_sum
    raise KeyError(f"the reference has no op {op!r}")


def _conv(x, w, kernel, stride, dilation, groups, pads, filters):
    x = np.pad(x, [(0, 0), (0, 0), *pads])
    n, c = x.shape[:2]
    spatial = x.shape[2:]
    out_shape = [
        (size - (k - 1) * d - 1) // s + 1
        for size, k, s, d in zip(spatial, kernel, stride, dilation, strict=True)
    ]
    y = np.zeros((n, filters, *out_shape))
    per_group_in, per_group_out = c // groups, filters // groups
    for g in range(groups):
        xs = x[:, g * per_group_in : (g + 1) * per_group_in]
        ws = w["weight"][g * per_group_out : (g + 1) * per_group_out]
        for offset in product(*(range(k) for k in kernel)):
            window = (
                slice(None),
                slice(None),
                *(
                    slice(o * d, o * d + (size - 1) * s + 1, s)
                    for o, d, s, size in zip(offset, dilation, stride, out_shape, strict=True)
                ),
            )
            patch = xs[window]
            y[:, g * per_group_out : (g + 1) * per_group_out] += np.einsum(
                "nc...,oc->no...", patch, ws[(slice(None), slice(None), *offset)]
            )
    if "bias" in w:
        y += w["bias"].reshape((1, -1) + (1,) * len(kernel))
    return y


def _conv_transpose(x, w, node):
    n, _, h, wd = x.shape
    (kh, kw), (sh, sw) = node.kernel, node.stride
    (ph0, ph1), (pw0, pw1) = node.pads()
    oh, ow = node.output_padding
    full = np.zeros((n, node.filters, (h - 1) * sh + kh + oh, (wd - 1) * sw + kw + ow))
    for i, j in product(range(kh), range(kw)):
        contribution = np.einsum("nchw,co->nohw", x, w["weight"][:, :, i, j])
        full[:, :, i : i + (h - 1) * sh + 1 : sh, j : j + (wd - 1) * sw + 1 : sw] += contribution
    y = full[:, :, ph0 : full.shape[2] - ph1, pw0 : full.shape[3] - pw1]
    if "bias" in w:
        y = y + w["bias"].reshape(1, -1, 1, 1)
    return y


def _pool(x, node: _Pool):
    from nnc.ir.types import TensorType

    win = node.window(TensorType(shape=x.shape[1:]))
    fill = np.nan
    padded = np.pad(x, [(0, 0), (0, 0), *win.pads], constant_values=fill)
    out_shape = [
        (size - k) // s + 1
        for size, k, s in zip(padded.shape[2:], win.kernel, win.stride, strict=True)
    ]
    stack = []
    for offset in product(*(range(k) for k in win.kernel)):
        window = (
            slice(None),
            slice(None),
            *(
                slice(o, o + (size - 1) * s + 1, s)
                for o, s, size in zip(offset, win.stride, out_shape, strict=True)
            ),
        )
        stack.append(padded[window])
    values = np.stack(stack)
    if node.op == "maxpool":
        return np.nanmax(values, axis=0)
    if node.op == "avgpool":
        return np.nanmean(values, axis=0)
    return np.nansum(values, axis=0)


def _lrn(x, node):
    c = x.shape[1]
    before, after = (node.size - 1) // 2, math.ceil((node.size - 1) / 2)
    squares = x**2
    total = np.zeros_like(x)
    for ch in range(c):
        lo, hi = max(0, ch - before), min(c - 1, ch + after)
        total[:, ch] = squares[:, lo : hi + 1].sum(axis=1)
    return x / (node.bias + node.alpha / node.size * total) ** node.beta


def _recurrent(x, w, node):
    n, steps, _ = x.shape
    units = node.units
    h = np.zeros((n, units))
    c = np.zeros((n, units))
    sig = lambda v: 1.0 / (1.0 + np.exp(-v))  # noqa: E731
    outputs = []
    for t in range(steps):
        xt = x[:, t]
        if node.op == "rnn":
            h = np.tanh(xt @ w["weight_ih"].T + h @ w["weight_hh"].T + w["bias"])
        elif node.op == "lstm":
            z = xt @ w["weight_ih"].T + h @ w["weight_hh"].T + w["bias"]
            i, f, g, o = (z[:, k * units : (k + 1) * units] for k in range(4))
            c = sig(f) * c + sig(i) * np.tanh(g)
            h = sig(o) * np.tanh(c)
        else:
            gi = xt @ w["weight_ih"].T + w["bias_ih"]
            gh = h @ w["weight_hh"].T + w["bias_hh"]
            r = sig(gi[:, :units] + gh[:, :units])
            z = sig(gi[:, units : 2 * units] + gh[:, units : 2 * units])
            cand = np.tanh(gi[:, 2 * units :] + r * gh[:, 2 * units :])
            h = (1 - z) * cand + z * h
        outputs.append(h)
    return np.stack(outputs, axis=1) if node.return_sequences else h
