"""Multi-node ONNX patterns that are one nnc op, and constant folding.

Each pattern starts at a root node and follows sole consumers; it converts the
chain and marks its nodes done when it matches, and does nothing otherwise (the
root is then converted alone, or reported as unsupported):

- ``Greater(x, 0) -> Cast(float)``: step;
- ``Sigmoid(x) -> Mul(x, .)``: silu;
- ``Div(x, √2) -> Erf -> Add(1) -> Mul(x) -> Mul(0.5)``: gelu (PyTorch's and nnc's
  export before opset 20; ``Mul(x, 1/√2)`` also starts it);
- ``AveragePool(count_include_pad) -> Mul(window size)``: sumpool;
- ``Reshape(x, [0, G, -1]) -> InstanceNormalization(ones, zeros) -> Reshape(x's
  shape) -> Mul(scale [C, 1, ...]) -> Add(bias [C, 1, ...])``: groupnorm (nnc's
  export before opset 21).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import onnx
from onnx import TensorProto, helper

from nnc.backends.onnx.import_common import attributes, clean_float, scalar_const
from nnc.backends.onnx.import_layers import pool_arguments
from nnc.backends.onnx.importer import Const, Converter, Importer, Tensor


def _next(imp: Importer, node: onnx.NodeProto, op_type: str) -> onnx.NodeProto | None:
    reader = imp.graph.sole_consumer(node.output[0])
    if reader is None or reader.op_type != op_type or reader.domain not in ("", "ai.onnx"):
        return None
    return reader


def _other(node: onnx.NodeProto, name: str) -> str | None:
    """The other input of a binary node that reads ``name``."""
    if len(node.input) != 2 or name not in node.input:
        return None
    return node.input[1] if node.input[0] == name else node.input[0]


def _close(value: float | None, want: float) -> bool:
    return value is not None and math.isclose(value, want, rel_tol=1e-5)


def _finish(imp: Importer, chain: list[onnx.NodeProto], op: str, x: Tensor) -> None:
    last = chain[-1]
    ref = imp.add(last, op, [x.ref])
    imp.env[last.output[0]] = Tensor(ref, x.shape, x.batch_axis)
    imp.done.update(id(n) for n in chain)


def step(imp: Importer, node: onnx.NodeProto) -> None:
    x = imp.value(node, 0)
    if not isinstance(x, Tensor) or len(node.input) != 2:
        return
    if scalar_const(imp, node.input[1]) != 0.0:
        return
    cast = _next(imp, node, "Cast")
    to = (
        next((helper.get_attribute_value(a) for a in cast.attribute if a.name == "to"), None)
        if cast
        else None
    )
    if cast is None or to != TensorProto.FLOAT:
        return
    _finish(imp, [node, cast], "step", x)


def silu(imp: Importer, node: onnx.NodeProto) -> None:
    x = imp.value(node, 0)
    mul = _next(imp, node, "Mul")
    if not isinstance(x, Tensor) or mul is None or _other(mul, node.output[0]) != node.input[0]:
        return
    _finish(imp, [node, mul], "silu", x)


def gelu(imp: Importer, node: onnx.NodeProto) -> None:
    x = imp.value(node, 0)
    if not isinstance(x, Tensor) or len(node.input) != 2:
        return
    scale = scalar_const(imp, node.input[1])
    if not (
        _close(scale, math.sqrt(2.0)) if node.op_type == "Div" else _close(scale, math.sqrt(0.5))
    ):
        return
    erf = _next(imp, node, "Erf")
    plus = _next(imp, erf, "Add") if erf is not None else None
    if erf is None or plus is None:
        return
    if not _close(scalar_const(imp, _other(plus, erf.output[0]) or ""), 1.0):
        return
    times_x = _next(imp, plus, "Mul")
    if times_x is None or _other(times_x, plus.output[0]) != node.input[0]:
        return
    half = _next(imp, times_x, "Mul")
    if half is None or not _close(scalar_const(imp, _other(half, times_x.output[0]) or ""), 0.5):
        return
    _finish(imp, [node, erf, plus, times_x, half], "gelu", x)


def sumpool(imp: Importer, node: onnx.NodeProto) -> None:
    mul = _next(imp, node, "Mul")
    if mul is None or not isinstance(imp.value(node, 0), Tensor):
        return
    kernel = [int(k) for a in node.attribute if a.name == "kernel_shape" for k in a.ints]
    factor = scalar_const(imp, _other(mul, node.output[0]) or "")
    if not kernel or not _close(factor, float(math.prod(kernel))):
        return
    a = attributes(
        imp,
        node,
        {
            "kernel_shape": None,
            "strides": None,
            "pads": None,
            "auto_pad": "NOTSET",
            "ceil_mode": 0,
            "dilations": None,
            "count_include_pad": 0,
        },
    )
    ref, t = imp.standard(node)
    arguments = pool_arguments(imp, node, a, t)
    if arguments["padding"] != "valid" and not a["count_include_pad"]:
        return  # mean over the real elements times k is not a sum at the borders
    out = imp.add(mul, "sumpool", [ref], **arguments)
    imp.env[mul.output[0]] = Tensor(out, imp.types[out].shape)
    imp.done.update((id(node), id(mul)))


def standardization(imp: Importer, node: onnx.NodeProto) -> None:
    """On the graph's only input, ``Div(Sub(x, mean), std)`` (a trained run's input
    standardisation), ``Add(Mul(x, a), b)`` (a built-in set's ``scale``, as ``nnc
    export`` writes it), or the second followed by the first: kept as statistics,
    not as layers. ``(a·x + b - mean) / std`` is ``(x - (mean - b)/a) / (std/a)``."""
    inputs = {i.name for i in imp.graph.inputs}
    x = imp.value(node, 0)
    if (
        not isinstance(x, Tensor)
        or len(inputs) != 1
        or node.input[0] not in inputs
        or imp.graph.sole_consumer(node.input[0]) is not node
        or x.batch_axis != 0
    ):
        return
    chain = [node]
    scale, shift = 1.0, 0.0
    if node.op_type == "Mul":
        add = _next(imp, node, "Add")
        a = scalar_const(imp, node.input[1])
        b = scalar_const(imp, _other(add, node.output[0]) or "") if add is not None else None
        if add is None or a is None or b is None or a <= 0:
            return
        scale, shift = a, b
        chain.append(add)
    sub = node if node.op_type == "Sub" else _next(imp, chain[-1], "Sub")
    div = _next(imp, sub, "Div") if sub is not None else None
    full = (1, *(d if isinstance(d, int) else 1 for d in x.shape))
    mean, std = np.zeros(full, np.float32), np.ones(full, np.float32)
    if sub is not None and div is not None and div.input[0] == sub.output[0]:
        found = imp.value(sub, 1), imp.value(div, 1)
        if sub.input[0] != chain[-1].output[0] and sub is not node:
            return
        if not isinstance(found[0], Const) or not isinstance(found[1], Const):
            return
        try:
            mean = np.array(np.broadcast_to(found[0].array, full), dtype=np.float32)
            std = np.array(np.broadcast_to(found[1].array, full), dtype=np.float32)
        except ValueError:
            return
        chain += [n for n in (sub, div) if n is not node]
    elif node.op_type == "Sub":
        return
    if not np.all(std > 0):
        return
    imp.standardize = (
        ((mean - shift) / scale).astype(np.float32),
        (std / scale).astype(np.float32),
    )
    what = "(x - mean) / std" if scale == 1.0 and shift == 0.0 else "a·x + b, then (x - mean) / std"
    imp.notes.append(
        f"the graph standardises its input '{node.input[0]}' first, {what}; the imported "
        "model takes standardised data and the statistics are kept apart"
    )
    imp.env[chain[-1].output[0]] = x
    imp.done.update(id(n) for n in chain)


def groupnorm_decomposition(imp: Importer, node: onnx.NodeProto) -> None:
    x = imp.value(node, 0)
    target = imp.value(node, 1)
    if not isinstance(x, Tensor) or not isinstance(target, Const) or not x.shape:
        return
    dims = [int(d) for d in target.array.reshape(-1)]
    channels = x.shape[0]
    if len(dims) != 3 or dims[0] != 0 or dims[2] != -1 or not isinstance(channels, int):
        return
    groups = dims[1]
    norm = _next(imp, node, "InstanceNormalization")
    back = _next(imp, norm, "Reshape") if norm is not None else None
    mul = _next(imp, back, "Mul") if back is not None else None
    add = _next(imp, mul, "Add") if mul is not None else None
    if norm is None or back is None or mul is None or add is None:
        return
    unit, zero = imp.value(norm, 1), imp.value(norm, 2)
    if not (isinstance(unit, Const) and isinstance(zero, Const)):
        return
    if not (np.all(unit.array == 1) and np.all(zero.array == 0) and unit.array.size == groups):
        return
    # Back to x's shape: a constant (nnc's export), or Shape(x) (torch's and nnc's with
    # several symbolic dims), which then belongs to the chain.
    restored = imp.env.get(back.input[1])
    shape_of_x = _shape_of(imp, back.input[1], node.input[0])
    if isinstance(restored, Const):
        # nnc's export writes [0, *shape]; a Shape(x) target folded at import time
        # (fold_shapes) reads [-1, *shape] or [0, -1]: each is x's own shape again
        sizes = [d if isinstance(d, int) else -1 for d in x.shape]
        got = [int(d) for d in restored.array.reshape(-1)]
        if got not in ([0, *sizes], [-1, *sizes], [0, -1]):
            return
    elif shape_of_x is None:
        return
    scale = imp.value(mul, 1 if mul.input[0] == back.output[0] else 0)
    shift = imp.value(add, 1 if add.input[0] == mul.output[0] else 0)
    if not isinstance(scale, Const) or not isinstance(shift, Const):
        return
    if scale.array.size != channels or shift.array.size != channels:
        return
    epsilon = attributes(imp, norm, {"epsilon": 1e-5})["epsilon"]
    params = {"weight": scale.array.reshape(-1), "bias": shift.array.reshape(-1)}
    ref = imp.add(add, "groupnorm", [x.ref], params=params, groups=groups, eps=clean_float(epsilon))
    imp.env[add.output[0]] = Tensor(ref, x.shape, x.batch_axis)
    imp.done.update(id(n) for n in (node, norm, back, mul, add))
    if shape_of_x is not None:
        imp.done.add(id(shape_of_x))


def groupnorm_from_shape(imp: Importer, node: onnx.NodeProto) -> None:
    """The same chain met at its ``Shape(x)`` (visited before the first Reshape)."""
    back = _next(imp, node, "Reshape")
    norm = _producer(imp, back.input[0]) if back is not None else None
    root = _producer(imp, norm.input[0]) if norm is not None else None
    if norm is None or root is None or norm.op_type != "InstanceNormalization":
        return
    if root.op_type == "Reshape" and root.input[0] == node.input[0] and id(root) not in imp.done:
        groupnorm_decomposition(imp, root)


def _producer(imp: Importer, tensor: str) -> onnx.NodeProto | None:
    return next((n for n in imp.graph.nodes if n.output and n.output[0] == tensor), None)


def _shape_of(imp: Importer, tensor: str, x: str) -> onnx.NodeProto | None:
    """The not yet converted ``Shape(x)`` node (no start or end) whose sole use is
    ``tensor``, or None."""
    candidate = _producer(imp, tensor)
    if candidate is None or candidate.op_type != "Shape" or candidate.input[0] != x:
        return None
    if candidate.attribute or imp.graph.sole_consumer(tensor) is None:
        return None
    return candidate


# Constant folding: ops on constants only are computed here, in NumPy.
def _reshape(x: np.ndarray, shape: np.ndarray) -> np.ndarray:
    dims = [x.shape[k] if d == 0 else int(d) for k, d in enumerate(shape.reshape(-1))]
    return x.reshape(dims)


FOLDABLE: dict[str, Callable[..., np.ndarray]] = {
    "Add": np.add,
    "Sub": np.subtract,
    "Mul": np.multiply,
    "Div": np.divide,
    "Sqrt": np.sqrt,
    "Neg": np.negative,
    "Reshape": _reshape,
}


def fold(imp: Importer, node: onnx.NodeProto) -> None:
    values = [imp.value(node, k) for k in range(len(node.input))]
    if not values or not all(isinstance(v, Const) for v in values) or node.attribute:
        return
    arrays = [v.array for v in values if isinstance(v, Const)]
    with np.errstate(all="ignore"):
        result = FOLDABLE[node.op_type](*arrays)
    imp.env[node.output[0]] = Const(np.asarray(result))
    imp.done.add(id(node))


PATTERNS: dict[str, list[Converter]] = {
    "Greater": [step],
    "Sigmoid": [silu],
    "Div": [gelu],
    "Mul": [gelu, standardization],
    "AveragePool": [sumpool],
    "Sub": [standardization],
    "Reshape": [groupnorm_decomposition],
    "Shape": [groupnorm_from_shape],
}
for _op in FOLDABLE:
    PATTERNS.setdefault(_op, []).insert(0, fold)
