"""ONNX -> IR converters for the layout ops that move data within samples:
Transpose (one that reorders data axes; the others are views, in ``import_views``),
Slice, Split, Pad, Tile and Expand.

The ONNX tensor's axis 0 is the batch. An op may leave it alone (a full slice, a
zero pad, a repeat of 1, an expand of 1) and do anything to the other axes; touching
the batch is refused, naming the batch axis. Slices are stored resolved by Python's
rule (``docs/semantics.md``), so ``ends = INT64_MAX`` imports as the axis size.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx

from nnc.backends.onnx.import_common import attributes, unsupported_value
from nnc.backends.onnx.importer import Converter, Importer, Tensor
from nnc.errors import ShapeError
from nnc.ir.broadcast import broadcast_shapes
from nnc.ir.types import format_shape

# |start| at least this large reads as "from the very end/beginning" (INT_MIN and
# friends), and an end at least this large as "to the end".
HUGE = 2**31 - 1


def _ints(values: Any) -> list[int]:
    return [int(v) for v in np.asarray(values).reshape(-1)]


def _input_ints(imp: Importer, node: onnx.NodeProto, k: int, what: str) -> list[int] | None:
    array = imp.const(node, k, what)
    return None if array is None else _ints(array)


def _add(imp: Importer, node: onnx.NodeProto, op: str, ref: str, **attrs: Any) -> None:
    _add_output(imp, node, 0, op, ref, **attrs)


def _add_output(
    imp: Importer, node: onnx.NodeProto, k: int, op: str, ref: str, **attrs: Any
) -> None:
    """An IR node of ``op`` on ``ref`` holding output ``k`` of the ONNX node."""
    out = imp.add(node, op, [ref], **attrs)
    imp.set(node, Tensor(out, imp.types[out].shape), k)


def _batch_first(imp: Importer, node: onnx.NodeProto) -> tuple[str, Tensor]:
    t = imp.tensor(node)
    return imp.shaped(t, node), t


def transpose_data(imp: Importer, node: onnx.NodeProto, perm: list[int]) -> None:
    """A Transpose that reorders data axes: nnc's transpose, the batch kept first."""
    t = imp.tensor(node)
    if t.batch_axis != 0 or perm[0] != 0:
        raise unsupported_value(
            imp,
            node,
            "perm",
            perm,
            f"it moves the batch axis (axis {t.batch_axis}) to axis {perm.index(t.batch_axis)}; "
            "nnc's transpose permutes the axes of each sample and keeps the batch first",
        )
    ref = imp.shaped(t, node)
    _add(imp, node, "transpose", ref, perm=tuple(p - 1 for p in perm[1:]))


def slice_(imp: Importer, node: onnx.NodeProto) -> None:
    a = attributes(imp, node, {"starts": None, "ends": None, "axes": None})
    given_starts: list[int] | None
    given_ends: list[int] | None
    given_steps: list[int] | None = None
    if a["starts"] is not None:  # opset 1-9: attributes
        given_starts, given_ends, given_axes = _ints(a["starts"]), _ints(a["ends"]), a["axes"]
    else:
        given_starts = _input_ints(imp, node, 1, "starts")
        given_ends = _input_ints(imp, node, 2, "ends")
        given_axes = _input_ints(imp, node, 3, "axes")
        given_steps = _input_ints(imp, node, 4, "steps")
    if given_starts is None or given_ends is None:
        raise imp.error(node, "needs constant starts and ends")
    starts, ends = given_starts, given_ends
    ref, t = _batch_first(imp, node)
    shape = imp.types[ref].shape
    rank = len(shape) + 1
    axes = list(range(len(starts))) if given_axes is None else _ints(given_axes)
    steps = [1] * len(starts) if given_steps is None else given_steps
    if not len(axes) == len(ends) == len(steps) == len(starts):
        raise imp.error(node, "starts, ends, axes and steps differ in length")
    resolved: dict[str, list[int]] = {"axes": [], "starts": [], "stops": [], "steps": []}
    for axis, start, end, step in zip(axes, starts, ends, steps, strict=True):
        k = axis + rank if axis < 0 else axis
        if k == 0:
            if step == 1 and (start == 0 or start <= -HUGE) and end >= HUGE:
                continue  # the whole batch: nothing to do
            raise imp.error(
                node,
                f"slices the batch axis (axis 0: starts {start}, ends {end}, steps {step}); "
                "nnc slices within samples only",
            )
        if not 0 < k < rank:
            raise imp.error(node, f"axis {axis} is out of range for rank {rank}")
        n = shape[k - 1]
        if not isinstance(n, int):
            raise imp.error(node, f"slices the symbolic axis {axis} ('{n}'); nnc needs a size")
        first, stop, s = slice(start, end, step).indices(n)
        resolved["axes"].append(k - 1)
        resolved["starts"].append(first)
        resolved["stops"].append(stop if stop >= 0 else -n - 1)
        resolved["steps"].append(s)
    if not resolved["axes"]:
        imp.set(node, t)
        return
    options = {key: tuple(v) for key, v in resolved.items()}
    if all(s == 1 for s in resolved["steps"]):
        del options["steps"]
    _add(imp, node, "slice", ref, **options)


def split(imp: Importer, node: onnx.NodeProto) -> None:
    a = attributes(imp, node, {"axis": 0, "split": None, "num_outputs": None})
    ref, _ = _batch_first(imp, node)
    shape = imp.types[ref].shape
    rank = len(shape) + 1
    axis = a["axis"] + rank if a["axis"] < 0 else a["axis"]
    if axis == 0:
        raise unsupported_value(
            imp, node, "axis", a["axis"], "it splits the batch axis (axis 0); nnc splits samples"
        )
    n = shape[axis - 1]
    if not isinstance(n, int):
        raise imp.error(node, f"splits the symbolic axis {a['axis']} ('{n}'); nnc needs a size")
    count = len(node.output)
    sizes = _ints(a["split"]) if a["split"] is not None else _input_ints(imp, node, 1, "split")
    if sizes is None:  # equal pieces; the last one smaller when they do not divide (opset 18)
        piece = -(-n // count)
        sizes = [min(piece, n - k * piece) for k in range(count)]
    if len(sizes) != count or sum(sizes) != n or min(sizes) <= 0:
        raise imp.error(
            node,
            f"split sizes {sizes} do not cut axis {axis} of size {n} into {count} outputs",
        )
    offset = 0
    for k, size in enumerate(sizes):
        options = {"axes": (axis - 1,), "starts": (offset,), "stops": (offset + size,)}
        _add_output(imp, node, k, "slice", ref, **options)
        offset += size


def pad(imp: Importer, node: onnx.NodeProto) -> None:
    a = attributes(imp, node, {"mode": "constant", "pads": None, "value": 0.0})
    if a["mode"] not in ("constant", "reflect", "edge"):
        raise unsupported_value(imp, node, "mode", a["mode"], "nnc pads constant, reflect or edge")
    pads = _ints(a["pads"]) if a["pads"] is not None else _input_ints(imp, node, 1, "pads")
    if pads is None:
        raise imp.error(node, "needs constant pads")
    value = a["value"]
    constant = imp.const(node, 2, "constant_value")
    if constant is not None and np.asarray(constant).size:
        value = float(np.asarray(constant).reshape(-1)[0])
    ref, t = _batch_first(imp, node)
    rank = len(imp.types[ref].shape) + 1
    axes = _input_ints(imp, node, 3, "axes")
    axes = list(range(rank)) if axes is None else [x + rank if x < 0 else x for x in axes]
    if len(pads) != 2 * len(axes):
        raise imp.error(node, f"pads {pads} need {2 * len(axes)} values")
    full = [0] * (2 * rank)
    for i, axis in enumerate(axes):
        full[axis], full[rank + axis] = pads[i], pads[len(axes) + i]
    if full[0] or full[rank]:
        raise imp.error(
            node, f"pads {pads} pad the batch axis (axis 0); nnc pads within samples only"
        )
    if min(full) < 0:
        raise imp.error(node, f"pads {pads} crop (negative pads); nnc pads only (use Slice)")
    if not any(full):
        imp.set(node, t)
        return
    options: dict[str, Any] = {"pads": tuple(full[1:rank] + full[rank + 1 :]), "mode": a["mode"]}
    if a["mode"] == "constant" and value:
        options["value"] = float(value)
    _add(imp, node, "pad", ref, **options)


def tile(imp: Importer, node: onnx.NodeProto) -> None:
    attributes(imp, node, {})
    repeats = _input_ints(imp, node, 1, "repeats")
    if repeats is None:
        raise imp.error(node, "needs constant repeats")
    ref, t = _batch_first(imp, node)
    if repeats[0] != 1:
        raise imp.error(
            node, f"repeats {repeats} repeat the batch axis (axis 0); nnc tiles samples only"
        )
    if all(r == 1 for r in repeats):
        imp.set(node, t)
        return
    _add(imp, node, "tile", ref, repeats=tuple(repeats[1:]))


def expand(imp: Importer, node: onnx.NodeProto) -> None:
    attributes(imp, node, {})
    target = _input_ints(imp, node, 1, "shape")
    if target is None:
        raise imp.error(node, "needs a constant shape")
    ref, t = _batch_first(imp, node)
    shape = imp.types[ref].shape
    rank = len(shape) + 1
    if len(target) > rank:
        raise imp.error(
            node,
            f"shape {target} has more axes than the input's {rank}: new axes would go before "
            "the batch axis (axis 0); nnc broadcasts within samples",
        )
    target = [1] * (rank - len(target)) + target
    if target[0] != 1:
        raise imp.error(
            node, f"shape {target} broadcasts the batch axis (axis 0); it must be 1 there"
        )
    try:
        out = broadcast_shapes(shape, tuple(target[1:]))
    except ShapeError as err:
        raise imp.error(node, err.message) from None
    if out == shape:
        imp.set(node, t)
        return
    if not all(isinstance(d, int) for d in out):
        raise imp.error(node, f"broadcasts to the symbolic shape {format_shape(out)}")
    _add(imp, node, "broadcast_to", ref, shape=tuple(int(d) for d in out))


CONVERTERS: dict[str, Converter] = {
    "Slice": slice_,
    "Split": split,
    "Pad": pad,
    "Tile": tile,
    "Expand": expand,
}
