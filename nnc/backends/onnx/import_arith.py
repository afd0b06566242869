"""ONNX -> IR converters for the broadcasting arithmetic: Add, Sum, Sub, Mul, Div,
Pow, Max, Min and Neg.

ONNX broadcasts over whole tensors, batch axis included; nnc broadcasts per-sample
shapes with the batch axes lined up. Two computed operands must therefore have the
same rank (batch included), which makes the two rules agree. A constant operand:

- with one element, becomes the op's ``scalar`` (``x * 0.5``), on its side;
- with the full rank (batch included), must have 1 on its batch axis, which is
  dropped: ``[1, C, 1, 1]`` is the per-sample constant ``[C, 1, 1]``;
- with a lower rank, is right-aligned against the per-sample shape as it is.

It becomes a ``constant`` node. ``Add`` of a constant to the sole output of a
bias-free Gemm/MatMul/Conv still becomes that layer's bias (``import_layers``), and
the patterns (``Mul(x, x)`` is square, gelu, silu, mish...) are tried first.
"""

from __future__ import annotations

import numpy as np
import onnx

from nnc.backends.onnx import import_layers
from nnc.backends.onnx.import_common import attributes, clean_float
from nnc.backends.onnx.importer import Const, Converter, Importer, Tensor
from nnc.backends.onnx.reader import OnnxImportError
from nnc.ir.ops.arith import FLOAT32_MAX

OPS = {
    "Add": "add",
    "Sum": "add",
    "Sub": "sub",
    "Mul": "mul",
    "Div": "div",
    "Pow": "pow",
    "Max": "maximum",
    "Min": "minimum",
}


def _full(t: Tensor) -> str:
    return "[" + ", ".join("N" if d is None else str(d) for d in t.full_shape()) + "]"


def _number(imp: Importer, node: onnx.NodeProto, array: np.ndarray) -> float:
    value = float(np.asarray(array, dtype=np.float64).reshape(-1)[0])
    if not np.isfinite(value) or abs(value) > FLOAT32_MAX:
        raise imp.error(node, f"the constant operand {value} is not a finite float32")
    return clean_float(value)


def _constant(imp: Importer, node: onnx.NodeProto, array: np.ndarray, rank: int) -> str:
    """A constant operand of a tensor of full rank ``rank`` as a ``constant`` node."""
    if array.dtype.kind not in "fiu":
        raise imp.error(node, f"a constant operand of type {array.dtype} is not a number")
    shape = tuple(array.shape)
    if len(shape) > rank:
        raise imp.error(
            node,
            f"the constant operand {list(shape)} has more axes than the tensor (rank {rank}); "
            "nnc would broadcast it over the batch",
        )
    if len(shape) == rank:
        if shape[0] != 1:
            raise imp.error(
                node,
                f"the constant operand {list(shape)} has {shape[0]} on the batch axis; nnc's "
                "constants broadcast over the batch (size 1 there)",
            )
        shape = shape[1:]
    values = np.asarray(array, dtype=np.float64).reshape(-1)
    if not np.all(np.isfinite(values)) or np.any(np.abs(values) > FLOAT32_MAX):
        raise imp.error(node, "the constant operand holds values that are not finite float32")
    return imp.add(node, "constant", [], value=tuple(float(v) for v in values), shape=shape)


def _binary(imp: Importer, node: onnx.NodeProto, op: str, k0: int, k1: int) -> Tensor:
    """``op`` of inputs k0 and k1: tensors, or one tensor and one constant."""
    a, b = imp.value(node, k0), imp.value(node, k1)
    tensors = [v for v in (a, b) if isinstance(v, Tensor)]
    if not tensors:
        raise imp.error(node, "both operands are constants; nnc computes tensors")
    if len(tensors) == 1:
        t = tensors[0]
        index = 1 if isinstance(a, Tensor) else 0
        const = imp.const(node, k1 if index == 1 else k0, "operand")
        assert const is not None
        side = "right" if index == 1 else "left"
        if np.asarray(const).size == 1 and np.ndim(const) <= t.rank:
            # an element-wise op with a number keeps the tensor's view (layout)
            number = _number(imp, node, const)
            ref = imp.add(node, op, [t.ref], scalar=number, scalar_side=side)
            return Tensor(ref, t.shape, t.batch_axis)
        c = _constant(imp, node, np.asarray(const), t.rank)
        x = imp.shaped(t, node)
        ref = imp.add(node, op, [x, c] if side == "right" else [c, x])
        return Tensor(ref, imp.types[ref].shape)
    ta, tb = tensors
    if ta.rank != tb.rank:
        raise imp.error(
            node,
            f"broadcasts {_full(ta)} with {_full(tb)}: ONNX lines up the batch axis of one "
            "with a sample axis of the other, which nnc does not (give both the same rank)",
        )
    if ta.shape == tb.shape and ta.batch_axis == tb.batch_axis:
        # equal views: element-wise on the values as they are laid out
        refs = [imp.shaped(t, node, batch_first=False) for t in (ta, tb)]
        ref = imp.add(node, op, refs)
        return Tensor(ref, ta.shape, ta.batch_axis)
    refs = [imp.shaped(t, node) for t in (ta, tb)]
    ref = imp.add(node, op, refs)
    return Tensor(ref, imp.types[ref].shape)


def binary(imp: Importer, node: onnx.NodeProto) -> None:
    attributes(imp, node, {})
    if len(node.input) != 2:
        raise imp.error(node, f"takes 2 inputs. Received: {len(node.input)}")
    imp.set(node, _binary(imp, node, OPS[node.op_type], 0, 1))


def add(imp: Importer, node: onnx.NodeProto) -> None:
    """``Add``: the bias of a bias-free layer where it can be (import_layers), else a
    broadcasting add."""
    attributes(imp, node, {})
    values = [imp.value(node, k) for k in range(len(node.input))]
    consts = [k for k, v in enumerate(values) if isinstance(v, Const)]
    if len(values) == 2 and len(consts) == 1 and isinstance(values[1 - consts[0]], Tensor):
        try:
            import_layers.add(imp, node)
            return
        except OnnxImportError:
            pass  # not a layer's bias: an ordinary add of a constant
    imp.set(node, _binary(imp, node, "add", 0, 1))


def variadic(imp: Importer, node: onnx.NodeProto) -> None:
    """``Sum``/``Max``/``Min`` of one or more inputs, folded left to right."""
    attributes(imp, node, {})
    op = OPS[node.op_type]
    if len(node.input) == 1:
        imp.set(node, imp.tensor(node, 0))
        return
    if op == "add" and all(isinstance(imp.value(node, k), Tensor) for k in range(len(node.input))):
        terms = [imp.tensor(node, k) for k in range(len(node.input))]
        if all(t.shape == terms[0].shape and t.batch_axis == 0 for t in terms):
            refs = [imp.shaped(t, node) for t in terms]
            imp.set(node, Tensor(imp.add(node, "add", refs), terms[0].shape))
            return
    result = _binary(imp, node, op, 0, 1)
    for k in range(2, len(node.input)):
        imp.env[f"{node.output[0]}/partial"] = result
        step = onnx.helper.make_node(
            node.op_type, [f"{node.output[0]}/partial", node.input[k]], node.output, name=node.name
        )
        result = _binary(imp, step, op, 0, 1)
    imp.set(node, result)


def neg(imp: Importer, node: onnx.NodeProto) -> None:
    attributes(imp, node, {})
    t = imp.tensor(node)
    imp.set(node, Tensor(imp.add(node, "neg", [t.ref]), t.shape, t.batch_axis))


CONVERTERS: dict[str, Converter] = {
    "Add": add,
    "Sum": variadic,
    "Max": variadic,
    "Min": variadic,
    "Sub": binary,
    "Mul": binary,
    "Div": binary,
    "Pow": binary,
    "Neg": neg,
}
