"""ONNX -> IR converters for the layers: Gemm, MatMul, Add/Sum, convolutions,
pooling, normalization and activations. Shape-only ops are in ``import_views``."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import onnx

from nnc.backends.onnx import import_linalg
from nnc.backends.onnx.import_common import (
    attributes,
    clean_float,
    resolve_padding,
    spatial_attribute,
    static,
    unsupported_value,
)
from nnc.backends.onnx.importer import Const, Converter, Importer, Tensor
from nnc.ir.shapes import transpose_same_pads
from nnc.ir.types import Dim, format_shape

SELU_ALPHA = 1.6732632423543772
SELU_SCALE = 1.0507009873554805

# ONNX op -> (nnc op, {ONNX attribute: default}) for element-wise activations whose
# attributes carry over by name.
ELEMENTWISE: dict[str, tuple[str, dict[str, float]]] = {
    "Relu": ("relu", {}),
    "Sigmoid": ("sigmoid", {}),
    "Tanh": ("tanh", {}),
    "Softplus": ("softplus", {}),
    "LeakyRelu": ("leaky_relu", {"alpha": 0.01}),
    "Elu": ("elu", {"alpha": 1.0}),
}


def elementwise(imp: Importer, node: onnx.NodeProto) -> None:
    op, known = ELEMENTWISE[node.op_type]
    a = attributes(imp, node, known)
    t = imp.tensor(node)
    # Element-wise ops do not care how values are laid out: the view carries over.
    arguments: dict[str, Any] = {k: clean_float(v) for k, v in a.items()}
    ref = imp.add(node, op, [t.ref], **arguments)
    imp.set(node, Tensor(ref, t.shape, t.batch_axis))


def selu(imp: Importer, node: onnx.NodeProto) -> None:
    a = attributes(imp, node, {"alpha": SELU_ALPHA, "gamma": SELU_SCALE})
    for key, want in (("alpha", SELU_ALPHA), ("gamma", SELU_SCALE)):
        if not math.isclose(a[key], want, rel_tol=1e-6):
            raise unsupported_value(
                imp, node, key, a[key], f"nnc's selu uses the self-normalizing {key} {want}"
            )
    t = imp.tensor(node)
    imp.set(node, Tensor(imp.add(node, "selu", [t.ref]), t.shape, t.batch_axis))


def gelu(imp: Importer, node: onnx.NodeProto) -> None:
    a = attributes(imp, node, {"approximate": "none"})
    if a["approximate"] != "none":
        raise unsupported_value(
            imp, node, "approximate", a["approximate"], "nnc's gelu is the exact erf form"
        )
    t = imp.tensor(node)
    imp.set(node, Tensor(imp.add(node, "gelu", [t.ref]), t.shape, t.batch_axis))


def softmax(imp: Importer, node: onnx.NodeProto) -> None:
    # Before opset 13 Softmax flattened the axes from `axis` on (default 1); that is a
    # softmax over one axis only when `axis` is the last one.
    legacy = imp.graph.opset < 13
    a = attributes(imp, node, {"axis": 1 if legacy else -1})
    ref, t = imp.standard(node)
    rank = t.rank + 1
    axis = a["axis"] + rank if a["axis"] < 0 else a["axis"]
    if not 0 < axis < rank:
        why = "that is the batch axis" if axis == 0 else "out of range"
        raise unsupported_value(imp, node, "axis", a["axis"], why)
    if legacy and axis != rank - 1:
        raise unsupported_value(
            imp, node, "axis", a["axis"], "before opset 13 it normalizes several axes at once"
        )
    op = "softmax" if node.op_type == "Softmax" else "log_softmax"
    out = imp.add(node, op, [ref], axis=-1 if axis == rank - 1 else axis - 1)
    imp.set(node, Tensor(out, t.shape))


def prelu(imp: Importer, node: onnx.NodeProto) -> None:
    attributes(imp, node, {})
    ref, t = imp.standard(node)
    slope = imp.const(node, 1, "slope")
    if slope is None or not static(t.shape):
        raise imp.error(node, "needs a constant slope and a static input shape")
    sample = tuple(int(d) for d in t.shape)
    try:
        full = np.broadcast_to(slope, (1, *sample))[0]
    except ValueError:
        raise imp.error(
            node, f"slope of shape {list(slope.shape)} does not broadcast to {list(sample)}"
        ) from None
    per_channel = full.reshape(sample[0], -1)
    if not np.all(per_channel == per_channel[:, :1]):
        raise imp.error(node, "the slope varies within a channel; nnc's prelu has one per channel")
    out = imp.add(node, "prelu", [ref], params={"alpha": per_channel[:, 0].copy()})
    imp.set(node, Tensor(out, t.shape))


def gemm(imp: Importer, node: onnx.NodeProto) -> None:
    a = attributes(imp, node, {"alpha": 1.0, "beta": 1.0, "transA": 0, "transB": 0})
    if a["transA"]:
        raise unsupported_value(imp, node, "transA", a["transA"], "the data must be [N, features]")
    x = imp.tensor(node, 0)
    if x.rank != 2:
        raise imp.error(node, f"expects a [N, features] input. Received rank {x.rank}")
    b = imp.const(node, 1, "weight B")
    if b is None or b.ndim != 2:
        raise imp.error(node, "needs a constant 2-D weight B")
    weight = (b if a["transB"] else b.T) * a["alpha"]  # canonical [out, in]
    units = weight.shape[0]
    c = imp.const(node, 2, "bias C")
    params = {"weight": weight}
    if c is not None:
        bias = _bias_vector(imp, node, c * a["beta"], (units,), channel_axis=0)
        params["bias"] = bias
    ref = imp.add(
        node, "dense", [imp.shaped(x, node)], params=params, units=units, bias=c is not None
    )
    imp.set(node, Tensor(ref, (units,)))
    imp.biasable[ref] = node.output[0]


def matmul(imp: Importer, node: onnx.NodeProto) -> None:
    attributes(imp, node, {})
    x, right = imp.value(node, 0), imp.value(node, 1)
    dense = isinstance(x, Tensor) and x.rank in (2, 3)
    if not (dense and isinstance(right, Const) and right.array.ndim == 2):
        import_linalg.matmul(imp, node)  # a matmul of tensors, or by a param
        return
    x = imp.tensor(node, 0)
    w = right.array
    ref = imp.add(
        node,
        "dense",
        [imp.shaped(x, node)],
        params={"weight": w.T},
        units=w.shape[1],
        bias=False,
    )
    imp.set(node, Tensor(ref, (*x.shape[:-1], w.shape[1])))
    imp.biasable[ref] = node.output[0]


def add(imp: Importer, node: onnx.NodeProto) -> None:
    attributes(imp, node, {})
    values = [imp.value(node, k) for k in range(len(node.input))]
    consts = [(k, v.array) for k, v in enumerate(values) if isinstance(v, Const)]
    if len(values) == 2 and len(consts) == 1:
        const_index, array = consts[0]
        _fold_bias(imp, node, 1 - const_index, array)
        return
    _sum(imp, node)


def sum_(imp: Importer, node: onnx.NodeProto) -> None:
    attributes(imp, node, {})
    if len(node.input) == 1:
        imp.set(node, imp.tensor(node, 0))
        return
    _sum(imp, node)


def _sum(imp: Importer, node: onnx.NodeProto) -> None:
    terms = [imp.tensor(node, k) for k in range(len(node.input))]
    first = terms[0]
    for t in terms[1:]:
        if t.shape != first.shape or t.batch_axis != first.batch_axis:
            raise imp.error(
                node,
                f"adds tensors of shapes {_shape(first)} and {_shape(t)}; nnc's add needs equal "
                "shapes (no broadcasting)",
            )
    refs = [imp.shaped(t, node, batch_first=False) for t in terms]
    imp.set(node, Tensor(imp.add(node, "add", refs), first.shape, first.batch_axis))


def _shape(t: Tensor) -> str:
    return "[" + ", ".join("N" if d is None else str(d) for d in t.full_shape()) + "]"


def _fold_bias(
    imp: Importer, node: onnx.NodeProto, tensor_index: int, constant: np.ndarray
) -> None:
    """``x + c`` where x is the sole use of a bias-free Gemm/MatMul/Conv output: the
    constant becomes that layer's bias. nnc has no op adding a constant otherwise."""
    t = imp.tensor(node, tensor_index)
    source = node.input[tensor_index]
    layer = imp.node_of(t.ref)
    if (
        layer is None
        or imp.biasable.get(t.ref) != source
        or getattr(layer, "bias", True)
        or imp.graph.sole_consumer(source) is not node
    ):
        if import_linalg.add_param(imp, node, tensor_index, constant):
            return  # a learned tensor of the same shape: param + add
        raise imp.error(
            node,
            "adds a constant to a tensor; nnc imports that only as the bias of the Gemm, "
            "MatMul, Conv or ConvTranspose whose sole output it is, or as a param of the "
            "tensor's own shape",
        )
    assert layer.channel_axis is not None  # a biasable layer: dense or a conv
    units = int(getattr(layer, layer.channels_field))
    bias = _bias_vector(imp, node, constant, t.shape, layer.channel_axis, units)
    imp.replace(t.ref, {"bias": bias}, bias=True)
    imp.set(node, t)


def _bias_vector(
    imp: Importer,
    node: onnx.NodeProto,
    c: np.ndarray,
    shape: tuple[Dim, ...],
    channel_axis: int,
    units: int | None = None,
) -> np.ndarray:
    """A constant broadcast over a layer's per-sample output ``shape`` as one value per
    channel (``channel_axis``), or an error when it varies otherwise."""
    full = (1, *(d if isinstance(d, int) else 1 for d in shape))
    try:
        spread = np.broadcast_to(np.asarray(c, dtype=np.float64), full)[0]
        if np.broadcast_shapes(np.shape(c), full) != full:
            raise ValueError
    except ValueError:
        raise imp.error(
            node, f"bias of shape {list(np.shape(c))} does not fit the output {list(shape)}"
        ) from None
    moved = np.moveaxis(spread, channel_axis, 0).reshape(spread.shape[channel_axis], -1)
    if not np.all(moved == moved[:, :1]):
        raise imp.error(node, "the bias varies along a non-channel axis")
    bias = moved[:, 0]
    if units is not None and bias.shape != (units,):
        raise imp.error(node, f"bias of shape {list(np.shape(c))} does not fit {units} channels")
    return bias


def conv(imp: Importer, node: onnx.NodeProto) -> None:
    a = attributes(
        imp,
        node,
        {
            "kernel_shape": None,
            "strides": None,
            "pads": None,
            "dilations": None,
            "group": 1,
            "auto_pad": "NOTSET",
        },
    )
    ref, t = imp.standard(node)
    w = imp.const(node, 1, "weight")
    if w is None or w.ndim not in (3, 4, 5):
        raise imp.error(node, "needs a constant 1-D, 2-D or 3-D kernel ([out, in/groups, k...])")
    rank = w.ndim - 2
    kernel = tuple(int(k) for k in w.shape[2:])
    if a["kernel_shape"] is not None and tuple(a["kernel_shape"]) != kernel:
        raise imp.error(
            node, f"kernel_shape {a['kernel_shape']} disagrees with the weight {list(w.shape)}"
        )
    strides = spatial_attribute(imp, node, a, "strides", rank, 1)
    dilations = spatial_attribute(imp, node, a, "dilations", rank, 1)
    padding = resolve_padding(imp, node, a, t.shape[1:], kernel, strides, dilations)
    b = imp.const(node, 2, "bias")
    params: dict[str, Any] = {"weight": w}
    if b is not None:
        params["bias"] = b.reshape(-1)
    out = imp.add(
        node,
        f"conv{rank}d",
        [ref],
        params=params,
        filters=int(w.shape[0]),
        kernel=kernel,
        stride=strides,
        padding=padding,
        dilation=dilations,
        groups=int(a["group"]),
        bias=b is not None,
    )
    imp.set(node, Tensor(out, imp.types[out].shape))
    imp.biasable[out] = node.output[0]


def conv_transpose(imp: Importer, node: onnx.NodeProto) -> None:
    a = attributes(
        imp,
        node,
        {
            "kernel_shape": None,
            "strides": None,
            "pads": None,
            "dilations": None,
            "group": 1,
            "auto_pad": "NOTSET",
            "output_padding": None,
            "output_shape": None,
        },
    )
    ref, _ = imp.standard(node)
    w = imp.const(node, 1, "weight")
    if w is None or w.ndim != 4:
        raise imp.error(
            node, "nnc imports 2-D ConvTranspose with a constant [in, out, kh, kw] weight"
        )
    for name, ok, why in (
        ("group", a["group"] == 1, "nnc's conv2d_transpose has no groups"),
        ("dilations", a["dilations"] in (None, [1, 1]), "nnc's conv2d_transpose is undilated"),
        ("output_shape", a["output_shape"] is None, "give pads and output_padding instead"),
        ("auto_pad", a["auto_pad"] in ("NOTSET", "VALID"), "give explicit pads instead"),
    ):
        if not ok:
            raise unsupported_value(imp, node, name, a[name], why)
    kernel = (int(w.shape[2]), int(w.shape[3]))
    if a["kernel_shape"] is not None and tuple(a["kernel_shape"]) != kernel:
        raise imp.error(
            node, f"kernel_shape {a['kernel_shape']} disagrees with the weight {list(w.shape)}"
        )
    strides = spatial_attribute(imp, node, a, "strides", 2, 1)
    output_padding = spatial_attribute(imp, node, a, "output_padding", 2, 0)
    pads = (0, 0, 0, 0) if a["auto_pad"] == "VALID" else tuple(a["pads"] or (0, 0, 0, 0))
    padding: Any = tuple(int(p) for p in pads)
    if not any(padding):
        padding = "valid"
    elif all(k >= s for k, s in zip(kernel, strides, strict=True)):  # else never 'same'
        same = [transpose_same_pads(k, s) for k, s in zip(kernel, strides, strict=True)]
        if padding == (same[0][0], same[1][0], same[0][1], same[1][1]):
            padding = "same"
    b = imp.const(node, 2, "bias")
    params: dict[str, Any] = {"weight": w}
    if b is not None:
        params["bias"] = b.reshape(-1)
    out = imp.add(
        node,
        "conv2d_transpose",
        [ref],
        params=params,
        filters=int(w.shape[1]),
        kernel=kernel,
        stride=strides,
        padding=padding,
        output_padding=output_padding,
        bias=b is not None,
    )
    imp.set(node, Tensor(out, imp.types[out].shape))
    imp.biasable[out] = node.output[0]


POOL_ATTRIBUTES: dict[str, Any] = {
    "kernel_shape": None,
    "strides": None,
    "pads": None,
    "auto_pad": "NOTSET",
    "ceil_mode": 0,
    "dilations": None,
}


def pool_arguments(
    imp: Importer, node: onnx.NodeProto, a: dict[str, Any], t: Any
) -> dict[str, Any]:
    """kernel/stride/padding/dilation/ceil_mode of an nnc pooling op for an ONNX pool
    node. ONNX's ceil_mode rule is nnc's: the last window must start inside the input
    or the begin padding."""
    kernel = tuple(int(k) for k in a["kernel_shape"] or ())
    rank = len(kernel)
    if rank not in (1, 2, 3) or t.rank != rank + 1:
        raise imp.error(
            node,
            f"nnc pools over 1, 2 or 3 spatial dims of [N, C, ...]; kernel_shape is "
            f"{list(kernel)} for an input of rank {t.rank + 1}",
        )
    strides = spatial_attribute(imp, node, a, "strides", rank, 1)
    dilations = spatial_attribute(imp, node, a, "dilations", rank, 1)
    padding = resolve_padding(imp, node, a, t.shape[1:], kernel, strides, dilations)
    arguments: dict[str, Any] = {
        "size": _one_or_all(kernel),
        "stride": () if strides == kernel else _one_or_all(strides),
        "padding": padding,
    }
    if any(d != 1 for d in dilations):
        arguments["dilation"] = _one_or_all(dilations)
    if a["ceil_mode"]:
        if not static(t.shape[1:]):
            raise unsupported_value(imp, node, "ceil_mode", 1, "it needs static sizes")
        arguments["ceil_mode"] = True
    return arguments


def _one_or_all(values: tuple[int, ...]) -> tuple[int, ...]:
    return values[:1] if len(set(values)) == 1 else values


def _pool_op(name: str, t: Any) -> str:
    return f"{name}3d" if t.rank == 4 else name


def maxpool(imp: Importer, node: onnx.NodeProto) -> None:
    a = attributes(imp, node, {**POOL_ATTRIBUTES, "storage_order": 0})
    if imp.needed(node, 1):
        raise imp.error(node, "its Indices output is used; nnc's maxpool returns values only")
    ref, t = imp.standard(node)
    out = imp.add(node, _pool_op("maxpool", t), [ref], **pool_arguments(imp, node, a, t))
    imp.set(node, Tensor(out, imp.types[out].shape))


def avgpool(imp: Importer, node: onnx.NodeProto) -> None:
    a = attributes(imp, node, {**POOL_ATTRIBUTES, "count_include_pad": 0})
    ref, t = imp.standard(node)
    arguments = pool_arguments(imp, node, a, t)
    if a["count_include_pad"] and (arguments["padding"] != "valid" or a["ceil_mode"]):
        raise unsupported_value(
            imp,
            node,
            "count_include_pad",
            1,
            "nnc's avgpool averages the real elements only",
        )
    out = imp.add(node, _pool_op("avgpool", t), [ref], **arguments)
    imp.set(node, Tensor(out, imp.types[out].shape))


def global_avg_pool(imp: Importer, node: onnx.NodeProto) -> None:
    attributes(imp, node, {})
    ref, t = imp.standard(node)
    out = imp.add(node, "global_avg_pool", [ref])
    # ONNX keeps unit spatial dims: [C, 1, 1] views nnc's [C].
    imp.set(node, Tensor(out, (t.shape[0], *(1 for _ in t.shape[1:]))))


def batchnorm(imp: Importer, node: onnx.NodeProto) -> None:
    a = attributes(
        imp,
        node,
        {"epsilon": 1e-5, "momentum": 0.9, "training_mode": 0, "spatial": 1, "is_test": 1},
    )
    if a["training_mode"] or any(imp.needed(node, k) for k in range(1, len(node.output))):
        raise imp.error(node, "only the inference form of BatchNormalization is imported")
    if a["spatial"] != 1:
        raise unsupported_value(imp, node, "spatial", a["spatial"], "statistics are per channel")
    ref, _ = imp.standard(node)
    params = {}
    for k, name in enumerate(("weight", "bias", "running_mean", "running_var"), start=1):
        array = imp.const(node, k, name.replace("_", " "))
        if array is None:
            raise imp.error(node, f"input {k} ({name}) is missing")
        params[name] = array.reshape(-1)
    momentum = clean_float(1.0 - clean_float(a["momentum"]))  # ONNX weights the old value
    out = imp.add(
        node, "batchnorm", [ref], params=params, eps=clean_float(a["epsilon"]), momentum=momentum
    )
    imp.set(node, Tensor(out, imp.types[out].shape))


def layernorm(imp: Importer, node: onnx.NodeProto) -> None:
    a = attributes(imp, node, {"axis": -1, "epsilon": 1e-5, "stash_type": 1})
    if any(imp.needed(node, k) for k in (1, 2)):
        raise imp.error(node, "its Mean and InvStdDev outputs are not imported")
    ref, t = imp.standard(node)
    if a["axis"] not in (-1, t.rank):
        raise unsupported_value(
            imp, node, "axis", a["axis"], "nnc's layernorm normalizes the last axis"
        )
    scale = imp.const(node, 1, "scale")
    if scale is None:
        raise imp.error(node, "input 1 (Scale) is missing")
    shift = imp.const(node, 2, "bias")
    params = {"weight": scale.reshape(-1)}
    options: dict[str, Any] = {"eps": clean_float(a["epsilon"])}
    if shift is None:  # no B input: nnc's layernorm(bias = false)
        options["bias"] = False
    else:
        params["bias"] = shift.reshape(-1)
    out = imp.add(node, "layernorm", [ref], params=params, **options)
    imp.set(node, Tensor(out, t.shape))


def _scale_and_bias(imp: Importer, node: onnx.NodeProto, size: int, what: str) -> dict[str, Any]:
    params = {}
    for k, name in ((1, "scale"), (2, "bias")):
        array = imp.const(node, k, name)
        if array is None:
            raise imp.error(node, f"input {k} ({name}) must be a constant")
        if array.size != size:
            raise imp.error(node, f"{name} of shape {list(array.shape)} does not fit {size} {what}")
        params["weight" if name == "scale" else "bias"] = array.reshape(-1)
    return params


def instancenorm(imp: Importer, node: onnx.NodeProto) -> None:
    a = attributes(imp, node, {"epsilon": 1e-5})
    ref, t = imp.standard(node)
    channels = t.shape[0]
    if not isinstance(channels, int):
        raise imp.error(node, f"needs a static channel count; the input is {format_shape(t.shape)}")
    params = _scale_and_bias(imp, node, channels, "channels")
    out = imp.add(node, "instancenorm", [ref], params=params, eps=clean_float(a["epsilon"]))
    imp.set(node, Tensor(out, t.shape))


def groupnorm(imp: Importer, node: onnx.NodeProto) -> None:
    """GroupNormalization-21: scale and bias per channel, as nnc's (and torch's).
    GroupNormalization-18 scaled per group; onnx deprecates it and its checker
    refuses it, so such a model stops at the checker."""
    a = attributes(imp, node, {"epsilon": 1e-5, "num_groups": None, "stash_type": 1})
    ref, t = imp.standard(node)
    channels, groups = t.shape[0], int(a["num_groups"])
    if not isinstance(channels, int) or channels % groups:
        shape = format_shape(t.shape)
        raise imp.error(node, f"num_groups={groups} does not divide the channels of {shape}")
    params = _scale_and_bias(imp, node, channels, "channels")
    eps = clean_float(a["epsilon"])
    out = imp.add(node, "groupnorm", [ref], params=params, groups=groups, eps=eps)
    imp.set(node, Tensor(out, t.shape))


def lrn(imp: Importer, node: onnx.NodeProto) -> None:
    a = attributes(imp, node, {"size": None, "alpha": 1e-4, "beta": 0.75, "bias": 1.0})
    ref, t = imp.standard(node)
    out = imp.add(
        node,
        "lrn",
        [ref],
        size=int(a["size"]),
        alpha=clean_float(a["alpha"]),
        beta=clean_float(a["beta"]),
        bias=clean_float(a["bias"]),
    )
    imp.set(node, Tensor(out, t.shape))


CONVERTERS: dict[str, Converter] = {
    **dict.fromkeys(ELEMENTWISE, elementwise),
    "Selu": selu,
    "Gelu": gelu,
    "Softmax": softmax,
    "LogSoftmax": softmax,
    "PRelu": prelu,
    "Gemm": gemm,
    "MatMul": matmul,
    "Add": add,
    "Sum": sum_,
    "Conv": conv,
    "ConvTranspose": conv_transpose,
    "MaxPool": maxpool,
    "AveragePool": avgpool,
    "GlobalAveragePool": global_avg_pool,
    "BatchNormalization": batchnorm,
    "LayerNormalization": layernorm,
    "LRN": lrn,
    "InstanceNormalization": instancenorm,
    "GroupNormalization": groupnorm,
}
