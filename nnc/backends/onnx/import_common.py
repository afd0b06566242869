"""Helpers shared by the ONNX op converters: attributes, constants, padding."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import onnx
from onnx import helper

from nnc.backends.onnx.importer import Const, Importer
from nnc.errors import ShapeError
from nnc.ir.shapes import same_pads
from nnc.ir.types import Dim

Padding = str | tuple[int, ...]


def attributes(imp: Importer, node: onnx.NodeProto, known: dict[str, Any]) -> dict[str, Any]:
    """The node's attributes over ``known``'s defaults; any other attribute is an error
    naming it (nnc would otherwise silently ignore what it means)."""
    values = dict(known)
    for a in node.attribute:
        if a.name not in known:
            raise imp.error(
                node,
                f"attribute '{a.name}' is not supported"
                + (f" (nnc reads {', '.join(sorted(known))})" if known else ""),
            )
        value = helper.get_attribute_value(a)
        if isinstance(value, bytes):
            value = value.decode("utf-8", errors="replace")
        elif isinstance(value, list):
            value = [
                v.decode("utf-8", errors="replace") if isinstance(v, bytes) else v for v in value
            ]
        values[a.name] = value
    return values


def unsupported_value(
    imp: Importer, node: onnx.NodeProto, name: str, value: Any, why: str
) -> Exception:
    return imp.error(node, f"attribute {name}={value!r} is not supported: {why}")


def clean_float(x: float) -> float:
    """A float32 attribute as the short decimal it was written as (1e-05, not
    9.999999747378752e-06), so imported specs read like hand-written ones."""
    return float(f"{float(x):.7g}")


def axes_input(imp: Importer, node: onnx.NodeProto, attribute_axes: Any) -> list[int] | None:
    """``axes`` of Squeeze/Unsqueeze: an attribute before opset 13, an input since."""
    if attribute_axes is not None:
        return [int(a) for a in attribute_axes]
    array = imp.const(node, 1, "axes")
    return None if array is None else [int(a) for a in np.asarray(array).reshape(-1)]


def static(dims: Sequence[Dim]) -> bool:
    return all(isinstance(d, int) for d in dims)


def resolve_padding(
    imp: Importer,
    node: onnx.NodeProto,
    a: dict[str, Any],
    spatial: Sequence[Dim],
    kernel: Sequence[int],
    strides: Sequence[int],
    dilations: Sequence[int],
) -> Padding:
    """ONNX ``auto_pad``/``pads`` as nnc padding: ``valid``, ``same`` (TF/ONNX
    SAME_UPPER) or explicit pads in ONNX order."""
    rank = len(kernel)
    auto_pad = a.get("auto_pad", "NOTSET")
    same: list[tuple[int, int]] | None
    try:
        same = [
            same_pads(n, k, s, d)
            for n, k, s, d in zip(spatial, kernel, strides, dilations, strict=True)
        ]
    except ShapeError:
        same = None  # symbolic size with stride > 1
    if auto_pad == "SAME_UPPER":
        if same is None:
            raise unsupported_value(
                imp, node, "auto_pad", auto_pad, "it needs static sizes with stride > 1"
            )
        return "same"
    if auto_pad == "SAME_LOWER":
        if same is None:
            raise unsupported_value(
                imp, node, "auto_pad", auto_pad, "it needs static sizes with stride > 1"
            )
        pairs = [(e, b) for b, e in same]  # the extra pad goes first
    elif auto_pad == "VALID":
        pairs = [(0, 0)] * rank
    elif auto_pad == "NOTSET":
        pads = [int(p) for p in a.get("pads") or [0] * (2 * rank)]
        if len(pads) != 2 * rank or min(pads) < 0:
            raise imp.error(node, f"attribute pads={pads} needs {2 * rank} non-negative values")
        pairs = list(zip(pads[:rank], pads[rank:], strict=True))
    else:
        raise unsupported_value(imp, node, "auto_pad", auto_pad, "unknown padding mode")
    if all(p == (0, 0) for p in pairs):
        return "valid"
    if same is not None and pairs == same:
        return "same"
    return tuple(b for b, _ in pairs) + tuple(e for _, e in pairs)


def spatial_attribute(
    imp: Importer, node: onnx.NodeProto, a: dict[str, Any], name: str, rank: int, default: int
) -> tuple[int, ...]:
    values = a.get(name)
    if values is None:
        return (default,) * rank
    values = tuple(int(v) for v in values)
    if len(values) != rank:
        raise imp.error(node, f"attribute {name}={list(values)} needs {rank} values")
    return values


def scalar_const(imp: Importer, name: str) -> float | None:
    """The value of a one-element constant input, else None."""
    value = imp.env.get(name)
    if isinstance(value, Const) and value.array.size == 1:
        return float(np.asarray(value.array).reshape(-1)[0])
    return None
