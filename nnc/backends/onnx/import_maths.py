"""ONNX -> IR converters for the element-wise maths and the reductions.

Each converter imports an ONNX op only where its attributes mean nnc's op, and
refuses otherwise, naming the attribute: HardSigmoid needs alpha = 1/6 and
beta = 0.5; Clip needs constant min and max; Clip(0, 6) is relu6.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import onnx

from nnc.backends.onnx.import_common import attributes, clean_float, unsupported_value
from nnc.backends.onnx.import_patterns import _finish, _next, _other
from nnc.backends.onnx.importer import Converter, Importer, Tensor

SIMPLE: dict[str, str] = {
    "Exp": "exp",
    "Log": "log",
    "Sqrt": "sqrt",
    "Abs": "abs",
    "Erf": "erf",
    "Softsign": "softsign",
    "Mish": "mish",
    "HardSwish": "hard_swish",
}
REDUCTIONS = {"ReduceSum": "sum", "ReduceMean": "mean", "ReduceMax": "max", "ReduceMin": "min"}


def _same_view(imp: Importer, node: onnx.NodeProto, op: str, **arguments: Any) -> None:
    t = imp.tensor(node)
    ref = imp.add(node, op, [t.ref], **arguments)
    imp.set(node, Tensor(ref, t.shape, t.batch_axis))


def simple(imp: Importer, node: onnx.NodeProto) -> None:
    attributes(imp, node, {})
    _same_view(imp, node, SIMPLE[node.op_type])


def hard_sigmoid(imp: Importer, node: onnx.NodeProto) -> None:
    a = attributes(imp, node, {"alpha": 0.2, "beta": 0.5})
    if not math.isclose(a["alpha"], 1 / 6, rel_tol=1e-6):
        raise unsupported_value(imp, node, "alpha", a["alpha"], "nnc's hard_sigmoid uses 1/6")
    if not math.isclose(a["beta"], 0.5, rel_tol=1e-6):
        raise unsupported_value(imp, node, "beta", a["beta"], "nnc's hard_sigmoid uses 0.5")
    _same_view(imp, node, "hard_sigmoid")


# float32's largest finite value, written short: a bound no finite input reaches.
UNBOUNDED = 3.402823e38


def clip(imp: Importer, node: onnx.NodeProto) -> None:
    attributes(imp, node, {})
    bounds = []
    for k, what in ((1, "min"), (2, "max")):
        array = imp.const(node, k, what)
        if array is None:
            # An absent bound is no bound; float32's extreme is one for every finite value.
            bounds.append(UNBOUNDED if k == 2 else -UNBOUNDED)
            continue
        if np.asarray(array).size != 1:
            raise imp.error(node, f"input {k} ({what}) must be a one-value constant for nnc's clip")
        bounds.append(clean_float(float(np.asarray(array).reshape(-1)[0])))
    low, high = bounds
    if (low, high) == (-UNBOUNDED, UNBOUNDED):
        imp.set(node, imp.tensor(node))
        return
    if (low, high) == (0.0, 6.0):
        _same_view(imp, node, "relu6")
    else:
        _same_view(imp, node, "clip", min=low, max=high)


def reduce(imp: Importer, node: onnx.NodeProto) -> None:
    from_input = imp.graph.opset >= (13 if node.op_type == "ReduceSum" else 18)
    known: dict[str, object] = {"keepdims": 1, "noop_with_empty_axes": 0}
    if not from_input:
        known["axes"] = None
    a = attributes(imp, node, known)
    ref, t = imp.standard(node)
    rank = t.rank + 1
    if from_input:
        array = imp.const(node, 1, "axes")
        axes = None if array is None else [int(v) for v in np.asarray(array).reshape(-1)]
    else:
        axes = None if a["axes"] is None else [int(v) for v in a["axes"]]
    if not axes:
        if a["noop_with_empty_axes"]:
            imp.set(node, Tensor(ref, t.shape))
            return
        raise unsupported_value(
            imp, node, "axes", axes, "reducing every axis reduces the batch axis too"
        )
    sample = []
    for axis in axes:
        batched = axis + rank if axis < 0 else axis
        if batched == 0:
            raise unsupported_value(imp, node, "axes", axes, "nnc never reduces the batch axis")
        sample.append(batched - 1)
    out = imp.add(
        node, REDUCTIONS[node.op_type], [ref], axis=tuple(sample), keepdims=bool(a["keepdims"])
    )
    imp.set(node, Tensor(out, imp.types[out].shape))


def global_max_pool(imp: Importer, node: onnx.NodeProto) -> None:
    attributes(imp, node, {})
    ref, t = imp.standard(node)
    out = imp.add(node, "global_max_pool", [ref])
    # ONNX keeps unit spatial dims: [C, 1, 1] views nnc's [C].
    imp.set(node, Tensor(out, (t.shape[0], *(1 for _ in t.shape[1:]))))


# Chains that nnc's exporter (and torch's) writes for one op below the opset that has it.
def rsqrt_pattern(imp: Importer, node: onnx.NodeProto) -> None:
    """``Sqrt(x) -> Reciprocal``: rsqrt."""
    x = imp.value(node, 0)
    inverse = _next(imp, node, "Reciprocal")
    if isinstance(x, Tensor) and inverse is not None:
        _finish(imp, [node, inverse], "rsqrt", x)


def mish_pattern(imp: Importer, node: onnx.NodeProto) -> None:
    """``Softplus(x) -> Tanh -> Mul(x, .)``: mish (ONNX has Mish from opset 18)."""
    x = imp.value(node, 0)
    tanh = _next(imp, node, "Tanh")
    mul = _next(imp, tanh, "Mul") if tanh is not None else None
    if not isinstance(x, Tensor) or tanh is None or mul is None:
        return
    if _other(mul, tanh.output[0]) == node.input[0]:
        _finish(imp, [node, tanh, mul], "mish", x)


def square_pattern(imp: Importer, node: onnx.NodeProto) -> None:
    """``Mul(x, x)``: square."""
    x = imp.value(node, 0)
    if isinstance(x, Tensor) and len(node.input) == 2 and node.input[0] == node.input[1]:
        _finish(imp, [node], "square", x)


PATTERNS: dict[str, list[Converter]] = {
    "Sqrt": [rsqrt_pattern],
    "Softplus": [mish_pattern],
    "Mul": [square_pattern],
}

CONVERTERS: dict[str, Converter] = {
    **dict.fromkeys(SIMPLE, simple),
    "HardSigmoid": hard_sigmoid,
    "Clip": clip,
    **dict.fromkeys(REDUCTIONS, reduce),
    "GlobalMaxPool": global_max_pool,
}
