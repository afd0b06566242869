"""ONNX lowerings of the layers: dense, embedding, convolutions, pooling, reshaping
and normalization. See ``docs/backends/onnx.md`` for the table of conversions.

Tensors carry the batch as axis 0, so an IR axis ``a`` of the sample is ONNX axis
``a + 1``; spatial layouts are channels-first on both sides and need no transpose.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from nnc.backends.onnx.builder import GraphBuilder, Lowering
from nnc.errors import BackendError
from nnc.ir.ops.conv import Conv2dTranspose, _Conv
from nnc.ir.ops.dense import Dense, Embedding
from nnc.ir.ops.normalization import (
    BatchNorm,
    GroupNorm,
    InstanceNorm,
    LayerNorm,
    LocalResponseNorm,
)
from nnc.ir.ops.pooling import AvgPool, GlobalAvgPool, MaxPool, SumPool, _Pool
from nnc.ir.ops.reshape import Dropout, Flatten, Reshape
from nnc.ir.types import format_shape


def onnx_pads(pads: tuple[tuple[int, int], ...]) -> list[int]:
    """nnc's (begin, end) pairs per spatial dim -> ONNX ``[b1, b2, ..., e1, e2, ...]``."""
    return [b for b, _ in pads] + [e for _, e in pads]


def dense(b: GraphBuilder, node: Dense) -> None:
    x = b.value(node.inputs[0])
    if b.input_type(node).rank == 1:
        # [N, F] @ weight[units, F]^T: Gemm takes the canonical layout with transB.
        inputs = [x, b.param(node, "weight")]
        if node.bias:
            inputs.append(b.param(node, "bias"))
        b.bind(node, b.op("Gemm", inputs, node.name, transB=1))
        return
    # A sequence [N, t, F]: Gemm is 2-D only, so MatMul with the weight as [F, units].
    weight_t = b.initializer(f"{node.name}.weight_transposed", b.weight(node, "weight").T)
    if not node.bias:
        b.bind(node, b.op("MatMul", [x, weight_t], node.name))
        return
    product = b.op("MatMul", [x, weight_t], f"{node.name}/matmul")
    b.bind(node, b.op("Add", [product, b.param(node, "bias")], node.name))


def embedding(b: GraphBuilder, node: Embedding) -> None:
    table = b.param(node, "weight")
    b.bind(node, b.op("Gather", [table, b.value(node.inputs[0])], node.name, axis=0))


def conv(b: GraphBuilder, node: _Conv) -> None:
    spatial = b.input_type(node).shape[1:]
    inputs = [b.value(node.inputs[0]), b.param(node, "weight")]
    if node.bias:
        inputs.append(b.param(node, "bias"))
    out = b.op(
        "Conv",
        inputs,
        node.name,
        kernel_shape=list(node.kernel),
        strides=list(node.stride),
        pads=onnx_pads(node.pads(spatial)),
        dilations=list(node.dilation),
        group=node.groups,
    )
    b.bind(node, out)


def conv_transpose(b: GraphBuilder, node: Conv2dTranspose) -> None:
    # The canonical weight [in, out, kh, kw] is ONNX's layout; nnc's crop is ONNX's pads.
    inputs = [b.value(node.inputs[0]), b.param(node, "weight")]
    if node.bias:
        inputs.append(b.param(node, "bias"))
    out = b.op(
        "ConvTranspose",
        inputs,
        node.name,
        kernel_shape=list(node.kernel),
        strides=list(node.stride),
        pads=onnx_pads(node.pads()),
        output_padding=list(node.output_padding),
    )
    b.bind(node, out)


def _window(b: GraphBuilder, node: _Pool) -> dict[str, Any]:
    """Kernel, strides and pads (ceil mode's end pad included: nnc never exports
    ceil_mode=1, whose rule not every runtime shares) and the dilation, if any."""
    w = node.window(b.input_type(node))
    window = {"kernel_shape": list(w.kernel), "strides": list(w.stride), "pads": onnx_pads(w.pads)}
    if w.dilation:
        window["dilations"] = list(w.dilation)
    return window


def _pads_past_the_kernel(window: dict[str, Any]) -> bool:
    """Whether a pad reaches the kernel's size, which onnxruntime's pools refuse ("Pad
    should be smaller than kernel"); nnc allows pads up to a dilated window's span."""
    kernel, pads = window["kernel_shape"], window["pads"]
    return any(p >= kernel[k % len(kernel)] for k, p in enumerate(pads))


def _padded_first(b: GraphBuilder, node: _Pool, window: dict[str, Any], value: float) -> str:
    """The pool's input padded by an explicit Pad of ``value``; the window's pads are
    then 0 (every window still holds a real element: nnc check refuses one that
    does not)."""
    pads = window.pop("pads")
    rank = len(pads) // 2
    ones = [0, 0, *pads[:rank], 0, 0, *pads[rank:]]
    inputs = [b.value(node.inputs[0]), b.ints(f"{node.name}/pads", ones)]
    inputs.append(b.scalar(f"{node.name}/pad_value", value))
    return b.op("Pad", inputs, f"{node.name}/padded", mode="constant")


def maxpool(b: GraphBuilder, node: MaxPool) -> None:
    # ONNX MaxPool ignores padded positions, as nnc's does; floor mode (ceil_mode=0).
    window = _window(b, node)
    x = b.value(node.inputs[0])
    if _pads_past_the_kernel(window):
        x = _padded_first(b, node, window, float("-inf"))
    b.bind(node, b.op("MaxPool", [x], node.name, **window))


# AveragePool takes dilations from opset 19; before, a dilated window is a Conv.
FIRST_OPSET_WITH_DILATED_AVERAGE_POOL = 19


def avgpool(b: GraphBuilder, node: AvgPool) -> None:
    window = _window(b, node)
    x = b.value(node.inputs[0])
    if "dilations" in window and b.opset < FIRST_OPSET_WITH_DILATED_AVERAGE_POOL:
        _dilated_window_sum(b, node, window, mean=True)
        return
    if _pads_past_the_kernel(window):
        # the mean over the real taps: the window mean of the zero-padded input times
        # the window size over each window's count of real taps, a constant of the shape
        t = b.input_type(node)
        spatial = t.shape[1:]
        if any(isinstance(n, str) for n in spatial):
            raise BackendError(
                f"{node.op} with a pad as wide as its kernel over the symbolic size "
                f"{format_shape(t.shape)} cannot be exported (onnxruntime refuses such pads)",
                node.span,
            )
        w = node.window(t)
        real = np.pad(np.ones([int(n) for n in spatial], dtype=np.float32), w.pads)
        counts = _window_counts(real, w.kernel, w.stride, w.dilations)
        scale = float(math.prod(window["kernel_shape"])) / counts
        mean = b.op(
            "AveragePool",
            [_padded_first(b, node, window, 0.0)],
            f"{node.name}/mean",
            count_include_pad=1,
            **window,
        )
        b.bind(
            node,
            b.op("Mul", [mean, b.initializer(f"{node.name}/scale", scale[None, None])], node.name),
        )
        return
    b.bind(node, b.op("AveragePool", [x], node.name, count_include_pad=0, **window))


def sumpool(b: GraphBuilder, node: SumPool) -> None:
    # The sum over the real elements equals the mean over the whole window, padded
    # zeros included, times the window size: padding adds nothing to a sum.
    window = _window(b, node)
    x = b.value(node.inputs[0])
    if "dilations" in window and b.opset < FIRST_OPSET_WITH_DILATED_AVERAGE_POOL:
        _dilated_window_sum(b, node, window, mean=False)
        return
    if _pads_past_the_kernel(window):
        x = _padded_first(b, node, window, 0.0)
    mean = b.op("AveragePool", [x], f"{node.name}/mean", count_include_pad=1, **window)
    size = b.scalar(f"{node.name}/window_size", float(math.prod(window["kernel_shape"])))
    b.bind(node, b.op("Mul", [mean, size], node.name))


def _dilated_window_sum(b: GraphBuilder, node: _Pool, window: dict[str, Any], mean: bool) -> None:
    """A dilated average or sum pool before opset 19:
    a depthwise Conv with a kernel of ones sums each window's zero-padded taps; the
    mean divides by the count of real taps per window, a constant of the shapes."""
    t = b.input_type(node)
    channels, spatial = t.shape[0], t.shape[1:]
    if any(isinstance(n, str) for n in t.shape):  # channels too: the kernel's groups
        raise BackendError(
            f"{node.op} with a dilation over the symbolic size {format_shape(t.shape)} needs "
            f"opset {FIRST_OPSET_WITH_DILATED_AVERAGE_POOL} or later (AveragePool's dilations). "
            f"Received: opset {b.opset}",
            node.span,
        )
    ones = np.ones((channels, 1, *window["kernel_shape"]), dtype=np.float32)
    kernel = b.initializer(f"{node.name}/ones", ones)
    x = b.value(node.inputs[0])
    sums = b.op(
        "Conv", [x, kernel], f"{node.name}/sum" if mean else node.name, group=channels, **window
    )
    if not mean:
        b.bind(node, sums)
        return
    w = node.window(t)
    real = np.pad(np.ones([int(n) for n in spatial], dtype=np.float32), w.pads)
    counts = _window_counts(real, w.kernel, w.stride, w.dilations)
    divisor = b.initializer(f"{node.name}/counts", counts[None, None])
    b.bind(node, b.op("Div", [sums, divisor], node.name))


def _window_counts(real: np.ndarray, kernel: Any, stride: Any, dilation: Any) -> np.ndarray:
    """Per window, the number of 1s of ``real`` (the padded mask of real elements)."""
    span = tuple((k - 1) * d + 1 for k, d in zip(kernel, dilation, strict=True))
    windows = np.lib.stride_tricks.sliding_window_view(real, span)
    steps = tuple(slice(None, None, s) for s in stride) + tuple(
        slice(None, None, d) for d in dilation
    )
    taps = windows[steps]
    return taps.sum(axis=tuple(range(len(kernel), taps.ndim))).astype(np.float32)


def global_avg_pool(b: GraphBuilder, node: GlobalAvgPool) -> None:
    # GlobalAveragePool keeps unit spatial dims ([N, C, 1, 1]); nnc's result is [C].
    pooled = b.op("GlobalAveragePool", [b.value(node.inputs[0])], f"{node.name}/pooled")
    b.bind(node, b.op("Flatten", [pooled], node.name, axis=1))


def flatten(b: GraphBuilder, node: Flatten) -> None:
    if b.input_type(node).rank == 1:
        b.alias(node)
        return
    b.bind(node, b.op("Flatten", [b.value(node.inputs[0])], node.name, axis=1))


def reshape(b: GraphBuilder, node: Reshape) -> None:
    # 0 copies the batch dim from the input (ONNX's default allowzero=0).
    shape = b.ints(f"{node.name}/shape", [0, *node.shape])
    b.bind(node, b.op("Reshape", [b.value(node.inputs[0]), shape], node.name))


def dropout(b: GraphBuilder, node: Dropout) -> None:
    # The exported graph is for inference, where dropout is the identity.
    b.alias(node)


def batchnorm(b: GraphBuilder, node: BatchNorm) -> None:
    # Inference form with the running statistics. ONNX's momentum weights the old
    # running value, nnc's the batch statistic, hence 1 - momentum (documentation
    # only: inference never updates the statistics).
    inputs = [b.value(node.inputs[0])] + [
        b.param(node, p) for p in ("weight", "bias", "running_mean", "running_var")
    ]
    out = b.op(
        "BatchNormalization", inputs, node.name, epsilon=node.eps, momentum=1.0 - node.momentum
    )
    b.bind(node, out)


FIRST_OPSET_WITH_LAYER_NORMALIZATION = 17


def layernorm(b: GraphBuilder, node: LayerNorm) -> None:
    x = b.value(node.inputs[0])
    weight = b.param(node, "weight")
    bias = b.param(node, "bias") if node.bias else None  # bias = false: scale only
    if b.opset >= FIRST_OPSET_WITH_LAYER_NORMALIZATION:
        inputs = [x, weight] if bias is None else [x, weight, bias]
        b.bind(node, b.op("LayerNormalization", inputs, node.name, axis=-1, epsilon=node.eps))
        return
    # Before opset 17, written out as docs/semantics.md defines it (biased variance).
    mean = b.reduce_mean(x, [-1], f"{node.name}/mean")
    centred = b.op("Sub", [x, mean], f"{node.name}/centred")
    squares = b.op("Mul", [centred, centred], f"{node.name}/squares")
    variance = b.reduce_mean(squares, [-1], f"{node.name}/variance")
    shifted = b.op(
        "Add", [variance, b.scalar(f"{node.name}/eps", node.eps)], f"{node.name}/var_eps"
    )
    deviation = b.op("Sqrt", [shifted], f"{node.name}/std")
    normalized = b.op("Div", [centred, deviation], f"{node.name}/normalized")
    if bias is None:
        b.bind(node, b.op("Mul", [normalized, weight], node.name))
        return
    scaled = b.op("Mul", [normalized, weight], f"{node.name}/scaled")
    b.bind(node, b.op("Add", [scaled, bias], node.name))


def instancenorm(b: GraphBuilder, node: InstanceNorm) -> None:
    inputs = [b.value(node.inputs[0]), b.param(node, "weight"), b.param(node, "bias")]
    b.bind(node, b.op("InstanceNormalization", inputs, node.name, epsilon=node.eps))


# GroupNormalization-18 scales per group; -21 per channel, as nnc (and torch) do.
FIRST_OPSET_WITH_CHANNEL_GROUP_NORMALIZATION = 21


def groupnorm(b: GraphBuilder, node: GroupNorm) -> None:
    x = b.value(node.inputs[0])
    if b.opset >= FIRST_OPSET_WITH_CHANNEL_GROUP_NORMALIZATION:
        inputs = [x, b.param(node, "weight"), b.param(node, "bias")]
        attributes: dict[str, Any] = {"num_groups": node.groups, "epsilon": node.eps}
        b.bind(node, b.op("GroupNormalization", inputs, node.name, **attributes))
        return
    # Before opset 21: the groups as the channels of an InstanceNormalization of
    # x viewed as [N, groups, rest], then the per-channel scale and shift (the
    # importer reads this chain back as one groupnorm).
    name, t = node.name, b.input_type(node)
    grouped = b.op(
        "Reshape", [x, b.ints(f"{name}/groups", [0, node.groups, -1])], f"{name}/grouped"
    )
    unit = b.initializer(f"{name}/unit_scale", np.ones(node.groups, dtype=np.float32))
    zero = b.initializer(f"{name}/zero_shift", np.zeros(node.groups, dtype=np.float32))
    normal = b.op(
        "InstanceNormalization", [grouped, unit, zero], f"{name}/normal", epsilon=node.eps
    )
    dims = [0, *(d if isinstance(d, int) else -1 for d in t.shape)]
    if dims.count(-1) <= 1:
        shape = b.ints(f"{name}/shape", dims)
    else:
        shape = b.op("Shape", [x], f"{name}/shape")
    normal = b.op("Reshape", [normal, shape], f"{name}/normalized")
    per_channel = (-1, *(1,) * (t.rank - 1))
    weight = b.initializer(f"{name}.weight", b.weight(node, "weight").reshape(per_channel))
    bias = b.initializer(f"{name}.bias", b.weight(node, "bias").reshape(per_channel))
    scaled = b.op("Mul", [normal, weight], f"{name}/scaled")
    b.bind(node, b.op("Add", [scaled, bias], name))


def lrn(b: GraphBuilder, node: LocalResponseNorm) -> None:
    if node.size % 2 == 0:
        _lrn_even(b, node)
        return
    attributes: dict[str, Any] = {
        "size": node.size,
        "alpha": node.alpha,
        "beta": node.beta,
        "bias": node.bias,
    }
    x = b.value(node.inputs[0])
    if b.input_type(node).rank == 3:
        b.bind(node, b.op("LRN", [x], node.name, **attributes))
        return
    # [N, C, L]: onnxruntime's LRN wants 4-D input, so add a unit width and drop it.
    wide = b.unsqueeze(x, [3], f"{node.name}/unsqueezed")
    normalized = b.op("LRN", [wide], f"{node.name}/lrn", **attributes)
    b.bind(node, b.squeeze(normalized, [3], node.name))


def _lrn_even(b: GraphBuilder, node: LocalResponseNorm) -> None:
    """LRN written out, because onnxruntime's LRN refuses even sizes.

    The channel window sum of squares is an average pool over a unit-channel view
    ``[N, 1, C, ...]`` with zero padding counted, times the window size; so
    ``alpha / size * sum`` is ``alpha * mean``.
    """
    x = b.value(node.inputs[0])
    spatial = b.input_type(node).rank - 1
    before, after = (node.size - 1) // 2, node.size // 2
    squares = b.op("Mul", [x, x], f"{node.name}/squares")
    view = b.unsqueeze(squares, [1], f"{node.name}/channels_as_rows")
    mean = b.op(
        "AveragePool",
        [view],
        f"{node.name}/window_mean",
        kernel_shape=[node.size] + [1] * spatial,
        pads=[before] + [0] * spatial + [after] + [0] * spatial,
        count_include_pad=1,
    )
    mean = b.squeeze(mean, [1], f"{node.name}/window_mean_squeezed")
    scaled = b.op("Mul", [mean, b.scalar(f"{node.name}/alpha", node.alpha)], f"{node.name}/scaled")
    shifted = b.op("Add", [scaled, b.scalar(f"{node.name}/bias", node.bias)], f"{node.name}/base")
    power = b.op(
        "Pow", [shifted, b.scalar(f"{node.name}/beta", node.beta)], f"{node.name}/denominator"
    )
    b.bind(node, b.op("Div", [x, power], node.name))


LOWERINGS: dict[str, Lowering] = {
    "dense": dense,
    "embedding": embedding,
    "conv1d": conv,
    "conv2d": conv,
    "conv3d": conv,
    "conv2d_transpose": conv_transpose,
    "maxpool": maxpool,
    "avgpool": avgpool,
    "sumpool": sumpool,
    "global_avg_pool": global_avg_pool,
    "maxpool3d": maxpool,
    "avgpool3d": avgpool,
    "flatten": flatten,
    "reshape": reshape,
    "dropout": dropout,
    "batchnorm": batchnorm,
    "layernorm": layernorm,
    "lrn": lrn,
    "instancenorm": instancenorm,
    "groupnorm": groupnorm,
}
