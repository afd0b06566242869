"""ONNX -> IR converters for ops that only move or relabel values (Flatten,
Reshape, Squeeze, Unsqueeze, Transpose, Identity), for Dropout, Concat, Gather and
the constant makers. Most of them change the :class:`Tensor` view and create no IR
node; see ``nnc.backends.onnx.importer``."""

from __future__ import annotations

import math

import numpy as np
import onnx
from onnx import TensorProto, helper

from nnc.backends.onnx.import_common import (
    attributes,
    axes_input,
    clean_float,
    unsupported_value,
)
from nnc.backends.onnx.import_layout import transpose_data
from nnc.backends.onnx.importer import Const, Converter, Fill, Importer, Tensor
from nnc.backends.onnx.reader import MAX_ELEMENTS
from nnc.errors import ResourceError
from nnc.ir.types import Dim, numel


def identity(imp: Importer, node: onnx.NodeProto) -> None:
    attributes(imp, node, {})
    value = imp.value(node, 0)
    if value is None:
        raise imp.error(node, "has no input")
    imp.set(node, value)


def dropout(imp: Importer, node: onnx.NodeProto) -> None:
    a = attributes(imp, node, {"seed": 0, "ratio": 0.5, "is_test": 0})
    if imp.needed(node, 1):
        raise imp.error(node, "its mask output is used; nnc's dropout has none")
    training = imp.const(node, 2, "training_mode")
    if training is not None and bool(np.asarray(training).reshape(-1)[0]):
        raise imp.error(node, "training_mode is true; the imported graph is for inference")
    ratio = imp.const(node, 1, "ratio")
    rate = clean_float(a["ratio"] if ratio is None else float(np.asarray(ratio).reshape(-1)[0]))
    t = imp.tensor(node)
    if rate == 0.0:
        imp.set(node, t)
        return
    # Kept as nnc's dropout (the identity at inference) so that retraining uses it.
    imp.set(node, Tensor(imp.add(node, "dropout", [t.ref], rate=rate), t.shape, t.batch_axis))


def flatten(imp: Importer, node: onnx.NodeProto) -> None:
    a = attributes(imp, node, {"axis": 1})
    t = imp.tensor(node)
    axis = a["axis"] + t.rank if a["axis"] < 0 else a["axis"]
    if t.batch_axis != 0 or axis != 1:
        raise unsupported_value(
            imp, node, "axis", a["axis"], "nnc flattens each sample (batch first, axis 1)"
        )
    imp.set(node, Tensor(t.ref, (numel(t.shape),)))


def reshape(imp: Importer, node: onnx.NodeProto) -> None:
    a = attributes(imp, node, {"allowzero": 0})
    t = imp.tensor(node)
    target = imp.const(node, 1, "target shape")
    if target is None:
        raise imp.error(node, "needs a constant target shape")
    dims = [int(d) for d in np.asarray(target).reshape(-1)]
    if t.batch_axis != 0:
        raise imp.error(node, "reshapes a tensor whose batch is not on axis 0")
    if a["allowzero"] and 0 in dims:
        raise unsupported_value(imp, node, "allowzero", 1, "a zero-sized dim")
    if not dims or dims[0] < -1:
        raise imp.error(node, f"target shape {dims} has no batch dim")
    total = numel(t.shape)
    if not isinstance(total, int):
        if dims[1:] == [-1] or dims[1:] == [total]:
            imp.set(node, Tensor(t.ref, (total,)))
            return
        raise imp.error(node, f"reshapes {list(t.shape)} with symbolic dims to {dims}")
    sample = [t.shape[k - 1] if d == 0 and k - 1 < len(t.shape) else d for k, d in enumerate(dims)][
        1:
    ]
    if dims[0] > 0:
        imp.notes.append(
            f"Reshape {node.name or node.output[0]} fixes the batch size to {dims[0]}; the "
            "imported model takes any batch size"
        )
    if (dims[0] == -1 and -1 in sample) or sample.count(-1) > 1:
        raise imp.error(node, f"target shape {dims} leaves more than one dim to infer")
    known = math.prod(int(d) for d in sample if d != -1)
    if -1 in sample:
        if known == 0 or total % known:
            raise imp.error(node, f"cannot reshape {list(t.shape)} to {dims}")
        sample = [total // known if d == -1 else d for d in sample]
    if math.prod(int(d) for d in sample) != total:
        raise imp.error(
            node, f"cannot reshape {list(t.shape)} ({total} values per sample) to {dims}"
        )
    imp.set(node, Tensor(t.ref, tuple(int(d) for d in sample)))


def squeeze(imp: Importer, node: onnx.NodeProto) -> None:
    a = attributes(imp, node, {"axes": None})
    t = imp.tensor(node)
    axes = axes_input(imp, node, a["axes"])
    full = t.full_shape()
    if axes is None:
        drop = {k for k, d in enumerate(full) if d == 1}
    else:
        drop = {ax + len(full) if ax < 0 else ax for ax in axes}
    for ax in drop:
        if not 0 <= ax < len(full):
            raise imp.error(node, f"axis {ax} is out of range for rank {len(full)}")
        if full[ax] is None:
            raise imp.error(node, f"squeezes axis {ax}, the batch axis")
        if full[ax] != 1:
            raise imp.error(node, f"squeezes axis {ax} of size {full[ax]}")
    imp.set(node, _view(t.ref, [d for k, d in enumerate(full) if k not in drop]))


def unsqueeze(imp: Importer, node: onnx.NodeProto) -> None:
    a = attributes(imp, node, {"axes": None})
    t = imp.tensor(node)
    axes = axes_input(imp, node, a["axes"])
    if not axes:
        raise imp.error(node, "needs axes")
    full: list[Dim | None] = t.full_shape()
    rank = len(full) + len(axes)
    for ax in sorted(ax + rank if ax < 0 else ax for ax in axes):
        if not 0 <= ax < rank:
            raise imp.error(node, f"axis {ax} is out of range for rank {rank}")
        full.insert(ax, 1)
    imp.set(node, _view(t.ref, full))


def transpose(imp: Importer, node: onnx.NodeProto) -> None:
    a = attributes(imp, node, {"perm": None})
    t = imp.tensor(node)
    full = t.full_shape()
    perm = list(a["perm"]) if a["perm"] is not None else list(reversed(range(len(full))))
    if sorted(perm) != list(range(len(full))):
        raise imp.error(node, f"perm {perm} is not a permutation of {len(full)} axes")
    # A transpose that keeps the data axes (all but the batch and unit axes) in order
    # only relabels the tensor; one that reorders them is nnc's transpose.
    moved = [k for k in perm if full[k] is not None and full[k] != 1]
    if moved != sorted(moved):  # data axes reordered: nnc's transpose op
        transpose_data(imp, node, perm)
        return
    imp.set(node, _view(t.ref, [full[k] for k in perm]))


def _view(ref: str, full: list[Dim | None]) -> Tensor:
    axis = full.index(None)
    return Tensor(ref, tuple(d for d in full if d is not None), axis)


def concat(imp: Importer, node: onnx.NodeProto) -> None:
    a = attributes(imp, node, {"axis": None})
    parts = [imp.tensor(node, k) for k in range(len(node.input))]
    if len(parts) == 1:
        imp.set(node, parts[0])
        return
    rank = parts[0].rank
    axis = a["axis"] + rank if a["axis"] < 0 else a["axis"]
    if axis == 0 or not 0 < axis < rank:
        raise unsupported_value(imp, node, "axis", a["axis"], "nnc concatenates within samples")
    refs = [imp.shaped(p, node) for p in parts]
    out = imp.add(node, "concat", refs, axis=axis - 1)
    imp.set(node, Tensor(out, imp.types[out].shape))


def gather(imp: Importer, node: onnx.NodeProto) -> None:
    a = attributes(imp, node, {"axis": 0})
    data, indices = imp.value(node, 0), imp.value(node, 1)
    if isinstance(data, Const) and isinstance(indices, Tensor):
        # A lookup table indexed by the graph's integer input: an embedding.
        if a["axis"] != 0 or data.array.ndim != 2:
            raise imp.error(node, "nnc imports Gather of rows of a constant 2-D table only")
        ref = imp.shaped(indices, node)
        if imp.types[ref].dtype != "int64":
            raise imp.error(node, "the indices must be an int64 graph input")
        vocab, dim = data.array.shape
        out = imp.add(node, "embedding", [ref], params={"weight": data.array}, vocab=vocab, dim=dim)
        imp.set(node, Tensor(out, imp.types[out].shape))
        return
    if isinstance(data, Tensor) and isinstance(indices, Const) and indices.array.size == 1:
        # x[0] or x[-1] along an axis of size 1 only relabels the tensor.
        full = data.full_shape()
        axis = a["axis"] + len(full) if a["axis"] < 0 else a["axis"]
        index = int(np.asarray(indices.array).reshape(-1)[0])
        if 0 <= axis < len(full) and full[axis] == 1 and index in (0, -1):
            if indices.array.ndim == 0:
                del full[axis]
            imp.set(node, _view(data.ref, full))
            return
    raise imp.error(
        node,
        "nnc imports Gather as an embedding (constant table, int64 indices) or as a pick "
        "from an axis of size 1",
    )


def constant_of_shape(imp: Importer, node: onnx.NodeProto) -> None:
    a = attributes(imp, node, {"value": None})
    fill = 0.0
    if a["value"] is not None:
        fill = float(np.asarray(onnx.numpy_helper.to_array(a["value"])).reshape(-1)[0])
    shape = imp.env.get(node.input[0]) if node.input else None
    if isinstance(shape, Const):
        dims = [int(d) for d in np.asarray(shape.array).reshape(-1)]
        if any(d < 0 for d in dims) or math.prod(dims) > MAX_ELEMENTS:
            raise ResourceError(f"ConstantOfShape {node.name!r} makes an absurd shape {dims}")
        imp.set(node, Const(np.full(dims, fill, dtype=np.float32)))
        return
    imp.set(node, Fill(fill))


def cast(imp: Importer, node: onnx.NodeProto) -> None:
    a = attributes(imp, node, {"to": None, "saturate": 1})
    value = imp.value(node, 0)
    if isinstance(value, Const):
        target = helper.tensor_dtype_to_np_dtype(a["to"])
        imp.set(node, Const(value.array.astype(target)))
        return
    t = imp.tensor(node)
    dtype = imp.types[t.ref].dtype
    wanted = {TensorProto.FLOAT: "float32", TensorProto.INT64: "int64"}.get(a["to"])
    if wanted != dtype:
        raise unsupported_value(
            imp, node, "to", a["to"], f"nnc imports Cast only where it changes nothing ({dtype})"
        )
    imp.set(node, t)


CONVERTERS: dict[str, Converter] = {
    "Identity": identity,
    "Dropout": dropout,
    "Flatten": flatten,
    "Reshape": reshape,
    "Squeeze": squeeze,
    "Unsqueeze": unsqueeze,
    "Transpose": transpose,
    "Concat": concat,
    "Gather": gather,
    "ConstantOfShape": constant_of_shape,
    "Cast": cast,
}
