"""An independent float64 NumPy reference of nnc's semantics, for the TensorFlow tests.

It evaluates a (flattened) model straight from ``docs/semantics.md``, in canonical
channels-first layout, with plain loops over kernel offsets, windows and time steps.
It has no backward pass: gradients come from central finite differences in float64
(:func:`numeric_gradient`), so nothing here shares code or derivations with the
backend under test. Dropout is the identity (masks are never comparable across
frameworks); tests that compare training use dropout-free programs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from math import erf

import numpy as np

from nnc.ir.ops.conv import Conv2dTranspose, _Conv
from nnc.ir.passes import inline_calls
from nnc.ir.program import Program
from nnc.ir.training import (
    Adagrad,
    Adam,
    BinaryCrossEntropy,
    CrossEntropy,
    Mae,
    Mse,
    Rmsprop,
    Sgd,
    Sse,
)
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
_erf = np.vectorize(erf)


@dataclass
class Pass:
    """One evaluation: its mode, the batchnorm statistics it would move, and the
    straight-through offsets of step nodes (``step(x) = x + offset`` near the point
    where the offsets were recorded, so finite differences see slope 1)."""

    training: bool = False
    updates: Arrays = field(default_factory=dict)
    step_offsets: dict[str, np.ndarray] | None = None


def run(
    program: Program,
    model: str,
    weights: Mapping[str, np.ndarray],
    inputs: list[np.ndarray],
    mode: Pass | None = None,
) -> list[np.ndarray]:
    """The model's outputs for a batch, in float64."""
    mode = mode or Pass()
    flat = inline_calls(program, model)
    w = {k: np.asarray(v, dtype=np.float64) for k, v in weights.items()}
    env: dict[str, np.ndarray] = {}
    for decl, x in zip(flat.inputs, inputs, strict=True):
        env[decl.name] = x if decl.type.dtype == "int64" else np.asarray(x, dtype=np.float64)
    for node in flat.nodes:
        xs = [env[ref[:-2] if ref.endswith(":0") else ref] for ref in node.inputs]
        env[node.name] = _evaluate(node, xs, w, mode)
    return [env[o[:-2] if o.endswith(":0") else o] for o in flat.outputs]


def _param(w: Arrays, node, name: str) -> np.ndarray:  # type: ignore[no-untyped-def]
    return w[f"{node.name}.{name}"]


def _evaluate(node, xs: list[np.ndarray], w: Arrays, mode: Pass) -> np.ndarray:  # type: ignore[no-untyped-def]
    op = node.op
    if op in ARITH:
        return ARITH[op](node, xs)
    if op in linalg_reference.OPS:
        return linalg_reference.evaluate(node, xs, w.get(f"{node.name}.value"))
    x = xs[0]
    if spatial_reference.handles(node):
        own = {k[len(node.name) + 1 :]: v for k, v in w.items() if k.startswith(node.name + ".")}
        return spatial_reference.evaluate_layer(node, x, own)
    if op in attention_reference.OPS:
        prefix = node.name + "."
        own = {k[len(prefix) :]: v for k, v in w.items() if k.startswith(prefix)}
        return attention_reference.evaluate(node, xs, own)
    if op in positions_reference.OPS:
        return positions_reference.evaluate(node, x, {"weight": w.get(f"{node.name}.weight")})
    if op in ACTIVATIONS:
        return ACTIVATIONS[op](node, x)
    if op in MATHS:
        return MATHS[op](node, x)
    if op == "step":
        if mode.step_offsets is None:
            return (x > 0).astype(np.float64)
        if node.name not in mode.step_offsets:
            mode.step_offsets[node.name] = (x > 0).astype(np.float64) - x
        return x + mode.step_offsets[node.name]
    if op == "prelu":
        alpha = _param(w, node, "alpha").reshape((-1,) + (1,) * (x.ndim - 2))
        return np.where(x > 0, x, alpha * x)
    if op == "dense":
        y = x @ _param(w, node, "weight").T
        return y + _param(w, node, "bias") if node.bias else y
    if op == "rbm":
        z = x @ _param(w, node, "weight") + _param(w, node, "hidden_bias")
        return 1.0 / (1.0 + np.exp(-z))
    if op == "embedding":
        return _param(w, node, "weight")[x]
    if op in ("conv1d", "conv2d"):
        return _conv(node, x, w)
    if op == "conv2d_transpose":
        return _conv_transpose(node, x, w)
    if op in ("maxpool", "avgpool", "sumpool"):
        return _pool(node, x)
    if op == "global_avg_pool":
        return x.mean(axis=tuple(range(2, x.ndim)))
    if op == "flatten":
        return x.reshape(len(x), -1)
    if op == "reshape":
        return x.reshape(len(x), *node.type.shape)
    if op == "dropout":
        return x
    if op == "batchnorm":
        return _batchnorm(node, x, w, mode)
    if op == "layernorm":
        mean = x.mean(axis=-1, keepdims=True)
        var = x.var(axis=-1, keepdims=True)
        shift = _param(w, node, "bias") if node.bias else 0.0
        return (x - mean) / np.sqrt(var + node.eps) * _param(w, node, "weight") + shift
    if op == "lrn":
        return _lrn(node, x)
    if op in ("rnn", "lstm", "gru"):
        return _recurrent(node, x, w)
    if op == "concat":
        return np.concatenate(xs, axis=node.axis % (x.ndim - 1) + 1)
    if op in spatial_reference.OPS:
        return spatial_reference.evaluate(node, x)
    if op in layout_reference.OPS:
        return layout_reference.evaluate(node, x)
    # A new op needs its reference here too: fail loudly rather than skip it.
    raise AssertionError(f"the test reference has no op '{op}'")


def _softmax(x: np.ndarray, axis: int) -> np.ndarray:
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _log_softmax(x: np.ndarray, axis: int) -> np.ndarray:
    shifted = x - x.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


_SELU_ALPHA = 1.6732632423543772
_SELU_SCALE = 1.0507009873554805

ACTIVATIONS: dict[str, Callable[..., np.ndarray]] = {
    "linear": lambda n, x: x,
    "sigmoid": lambda n, x: _sigmoid(x),
    "tanh": lambda n, x: np.tanh(x),
    "relu": lambda n, x: np.maximum(x, 0.0),
    "leaky_relu": lambda n, x: np.where(x > 0, x, n.alpha * x),
    "elu": lambda n, x: np.where(x > 0, x, n.alpha * np.expm1(np.minimum(x, 0.0))),
    "selu": lambda n, x: (
        _SELU_SCALE * np.where(x > 0, x, _SELU_ALPHA * np.expm1(np.minimum(x, 0.0)))
    ),
    "gelu": lambda n, x: 0.5 * x * (1.0 + _erf(x / np.sqrt(2.0))),
    "softplus": lambda n, x: np.maximum(x, 0.0) + np.log1p(np.exp(-np.abs(x))),
    "silu": lambda n, x: x * _sigmoid(x),
    "softmax": lambda n, x: _softmax(x, n.axis % (x.ndim - 1) + 1),
    "log_softmax": lambda n, x: _log_softmax(x, n.axis % (x.ndim - 1) + 1),
}


def _as_2d(x: np.ndarray) -> np.ndarray:
    """[N, C, L] -> [N, C, 1, L], so one 2-D routine serves 1-D ops."""
    return x[:, :, None, :] if x.ndim == 3 else x


def _conv(node: _Conv, x: np.ndarray, w: Arrays) -> np.ndarray:
    one_d = x.ndim == 3
    weight = _param(w, node, "weight")
    if one_d:
        weight = weight[:, :, None, :]
    pads = node.pads(node_input_spatial(x))
    (pt, pb), (pl, pr) = ((0, 0), *pads) if one_d else pads
    kernel = (1, *node.kernel) if one_d else node.kernel
    stride = (1, *node.stride) if one_d else node.stride
    dilation = (1, *node.dilation) if one_d else node.dilation
    xp = np.pad(_as_2d(x), ((0, 0), (0, 0), (pt, pb), (pl, pr)))
    n, c, h, wd = xp.shape
    oh = (h - (kernel[0] - 1) * dilation[0] - 1) // stride[0] + 1
    ow = (wd - (kernel[1] - 1) * dilation[1] - 1) // stride[1] + 1
    groups = node.groups
    cg, og = c // groups, node.filters // groups
    y = np.zeros((n, node.filters, oh, ow))
    for i in range(kernel[0]):
        for j in range(kernel[1]):
            top, left = i * dilation[0], j * dilation[1]
            patch = xp[
                :,
                :,
                top : top + stride[0] * (oh - 1) + 1 : stride[0],
                left : left + stride[1] * (ow - 1) + 1 : stride[1],
            ]
            for g in range(groups):
                y[:, g * og : (g + 1) * og] += np.einsum(
                    "nchw,oc->nohw",
                    patch[:, g * cg : (g + 1) * cg],
                    weight[g * og : (g + 1) * og, :, i, j],
                )
    if node.bias:
        y += _param(w, node, "bias")[None, :, None, None]
    return y[:, :, 0, :] if one_d else y


def node_input_spatial(x: np.ndarray) -> tuple[int, ...]:
    return tuple(x.shape[2:])


def _conv_transpose(node: Conv2dTranspose, x: np.ndarray, w: Arrays) -> np.ndarray:
    weight = _param(w, node, "weight")  # [C_in, filters, kh, kw]
    n, _, h, wd = x.shape
    (kh, kw), (sh, sw), (oph, opw) = node.kernel, node.stride, node.output_padding
    full = np.zeros((n, node.filters, (h - 1) * sh + kh + oph, (wd - 1) * sw + kw + opw))
    for i in range(kh):
        for j in range(kw):
            full[:, :, i : i + sh * (h - 1) + 1 : sh, j : j + sw * (wd - 1) + 1 : sw] += np.einsum(
                "nchw,co->nohw", x, weight[:, :, i, j]
            )
    (top, bottom), (left, right) = node.pads()
    y = full[:, :, top : full.shape[2] - bottom, left : full.shape[3] - right]
    if node.bias:
        y = y + _param(w, node, "bias")[None, :, None, None]
    return y


def _pool(node, x: np.ndarray) -> np.ndarray:  # type: ignore[no-untyped-def]
    from nnc.ir.types import TensorType

    window = node.window(TensorType(shape=x.shape[1:]))
    one_d = x.ndim == 3
    kernel = (1, *window.kernel) if one_d else window.kernel
    stride = (1, *window.stride) if one_d else window.stride
    (pt, pb), (pl, pr) = ((0, 0), *window.pads) if one_d else window.pads
    x2 = _as_2d(x)
    pad = ((0, 0), (0, 0), (pt, pb), (pl, pr))
    fill = -np.inf if node.op == "maxpool" else 0.0
    xp = np.pad(x2, pad, constant_values=fill)
    real = np.pad(np.ones_like(x2), pad)
    h, wd = xp.shape[2:]
    oh = (h - kernel[0]) // stride[0] + 1
    ow = (wd - kernel[1]) // stride[1] + 1
    windows = []
    counts = []
    for i in range(kernel[0]):
        for j in range(kernel[1]):
            sl = (
                slice(None),
                slice(None),
                slice(i, i + stride[0] * (oh - 1) + 1, stride[0]),
                slice(j, j + stride[1] * (ow - 1) + 1, stride[1]),
            )
            windows.append(xp[sl])
            counts.append(real[sl])
    stacked = np.stack(windows)
    if node.op == "maxpool":
        y = stacked.max(axis=0)
    elif node.op == "sumpool":
        y = stacked.sum(axis=0)
    else:
        y = stacked.sum(axis=0) / np.stack(counts).sum(axis=0)
    return y[:, :, 0, :] if one_d else y


def _batchnorm(node, x: np.ndarray, w: Arrays, mode: Pass) -> np.ndarray:  # type: ignore[no-untyped-def]
    axes = (0, *range(2, x.ndim))
    shape = (1, -1) + (1,) * (x.ndim - 2)
    gamma = _param(w, node, "weight").reshape(shape)
    beta = _param(w, node, "bias").reshape(shape)
    if mode.training:
        mean = x.mean(axis=axes)
        var = x.var(axis=axes)
        count = x.size // x.shape[1]
        m = node.momentum
        mode.updates[f"{node.name}.running_mean"] = (1 - m) * _param(
            w, node, "running_mean"
        ) + m * mean
        mode.updates[f"{node.name}.running_var"] = (1 - m) * _param(
            w, node, "running_var"
        ) + m * var * count / (count - 1)
    else:
        mean = _param(w, node, "running_mean")
        var = _param(w, node, "running_var")
    return gamma * (x - mean.reshape(shape)) / np.sqrt(var.reshape(shape) + node.eps) + beta


def _lrn(node, x: np.ndarray) -> np.ndarray:  # type: ignore[no-untyped-def]
    c = x.shape[1]
    before, after = (node.size - 1) // 2, -(-(node.size - 1) // 2)
    total = np.zeros_like(x)
    for ch in range(c):
        lo, hi = max(0, ch - before), min(c, ch + after + 1)
        total[:, ch] = (x[:, lo:hi] ** 2).sum(axis=1)
    return x / (node.bias + node.alpha / node.size * total) ** node.beta


def _recurrent(node, x: np.ndarray, w: Arrays) -> np.ndarray:  # type: ignore[no-untyped-def]
    w_ih, w_hh = _param(w, node, "weight_ih"), _param(w, node, "weight_hh")
    n, steps, _ = x.shape
    units = node.units
    h = np.zeros((n, units))
    c = np.zeros((n, units))
    outs = []
    for t in range(steps):
        xt = x[:, t]
        if node.op == "rnn":
            h = np.tanh(xt @ w_ih.T + h @ w_hh.T + _param(w, node, "bias"))
        elif node.op == "lstm":
            z = xt @ w_ih.T + h @ w_hh.T + _param(w, node, "bias")
            i, f, g, o = np.split(z, 4, axis=1)
            c = _sigmoid(f) * c + _sigmoid(i) * np.tanh(g)
            h = _sigmoid(o) * np.tanh(c)
        else:
            gi = xt @ w_ih.T + _param(w, node, "bias_ih")
            gh = h @ w_hh.T + _param(w, node, "bias_hh")
            ir, iz, in_ = np.split(gi, 3, axis=1)
            hr, hz, hn = np.split(gh, 3, axis=1)
            r = _sigmoid(ir + hr)
            zg = _sigmoid(iz + hz)
            cand = np.tanh(in_ + r * hn)
            h = (1 - zg) * cand + zg * h
        outs.append(h)
    return np.stack(outs, axis=1) if node.return_sequences else h


# -- losses --------------------------------------------------------------------------------


def loss_value(loss, y: np.ndarray, t: np.ndarray) -> float:  # type: ignore[no-untyped-def]
    """nnc's loss, straight from the table in docs/semantics.md."""
    reduce = np.sum if loss.summed else np.mean  # reduction = sum | mean
    if isinstance(loss, Mse):
        return float(reduce((y - t) ** 2))
    if isinstance(loss, Mae):
        return float(reduce(np.abs(y - t)))
    if isinstance(loss, Sse):
        return float(0.5 * np.sum((y - t) ** 2))
    if isinstance(loss, CrossEntropy):
        log_p = _log_softmax(y, -1) if loss.from_logits else np.log(np.maximum(y, 1e-7))
        terms = -(t * log_p).sum(axis=-1)
        if loss.ignore is not None and not loss.summed:  # padding rows are all zero
            return float(terms.sum() / max(np.count_nonzero(t.any(axis=-1)), 1))
        return float(reduce(terms))
    if isinstance(loss, BinaryCrossEntropy):
        if loss.from_logits:
            return float(reduce(np.maximum(y, 0) - y * t + np.log1p(np.exp(-np.abs(y)))))
        p = np.clip(y, 1e-7, 1 - 1e-7)
        return float(reduce(-(t * np.log(p) + (1 - t) * np.log(1 - p))))
    raise AssertionError(f"the test reference has no loss {loss}")


# -- finite differences ------------------------------------------------------------------


def numeric_gradient(
    f: Callable[[np.ndarray], float],
    at: np.ndarray,
    coords: list[tuple[int, ...]] | None = None,
    eps: float = 1e-6,
) -> np.ndarray:
    """Central differences of ``f`` at ``at`` (float64), at ``coords`` or everywhere;
    entries not probed are NaN."""
    at = np.array(at, dtype=np.float64)
    grad = np.full(at.shape, np.nan)
    for idx in coords if coords is not None else list(np.ndindex(at.shape)):
        saved = at[idx]
        at[idx] = saved + eps
        plus = f(at)
        at[idx] = saved - eps
        minus = f(at)
        at[idx] = saved
        grad[idx] = (plus - minus) / (2 * eps)
    return grad


def probe_coords(
    shape: tuple[int, ...], rng: np.random.Generator, limit: int
) -> list[tuple[int, ...]]:
    """Every coordinate of a small tensor, or ``limit`` random ones of a large one."""
    every = list(np.ndindex(shape))
    if len(every) <= limit:
        return every
    picks = rng.choice(len(every), size=limit, replace=False)
    return [every[i] for i in sorted(picks)]


# -- optimizers --------------------------------------------------------------------------


def optimizer_update(opt, params: Arrays, grads: Arrays, state: Arrays, lr: float) -> None:  # type: ignore[no-untyped-def]
    """One update of docs/semantics.md's optimizer table, in place, float64."""
    state["step"] = state.get("step", 0) + 1
    t = state["step"]
    for name, g in grads.items():
        p = params[name]
        if isinstance(opt, Sgd):
            if opt.momentum == 0:
                params[name] = p - lr * g
                continue
            v = opt.momentum * state.get(f"{name}.velocity", 0.0) + g
            state[f"{name}.velocity"] = v
            params[name] = p - lr * (g + opt.momentum * v if opt.nesterov else v)
        elif isinstance(opt, Adagrad):
            acc = state.get(f"{name}.accumulator", opt.initial_accumulator) + g**2
            state[f"{name}.accumulator"] = acc
            params[name] = p - lr * g / (np.sqrt(acc) + opt.eps)
        elif isinstance(opt, Rmsprop):
            v = opt.rho * state.get(f"{name}.square_avg", 0.0) + (1 - opt.rho) * g**2
            state[f"{name}.square_avg"] = v
            params[name] = p - lr * g / (np.sqrt(v) + opt.eps)
        elif isinstance(opt, Adam):
            m = opt.beta1 * state.get(f"{name}.m", 0.0) + (1 - opt.beta1) * g
            v = opt.beta2 * state.get(f"{name}.v", 0.0) + (1 - opt.beta2) * g**2
            state[f"{name}.m"], state[f"{name}.v"] = m, v
            m_hat, v_hat = m / (1 - opt.beta1**t), v / (1 - opt.beta2**t)
            params[name] = p - lr * m_hat / (np.sqrt(v_hat) + opt.eps)
        else:
            raise AssertionError(f"the test reference has no optimizer {opt}")
