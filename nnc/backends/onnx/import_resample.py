"""ONNX -> IR converters for Resize, DepthToSpace and SpaceToDepth.

A Resize is imported when it is one of nnc's two rules with an integer scale >= 1 on
each spatial dim (1 on batch and channels): nearest with ``asymmetric`` + ``floor``
(or ``half_pixel``/``pytorch_half_pixel`` with a ``round_prefer_*`` mode, which pick
the same element for an integer scale: ``(o + 0.5) / s - 0.5`` lies strictly within
0.5 of ``floor(o / s)``), and linear with ``half_pixel``, ``pytorch_half_pixel``
(equal to it for outputs longer than 1) or ``align_corners``. Anything else is
refused, naming the attribute.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx

from nnc.backends.onnx.import_common import attributes, unsupported_value
from nnc.backends.onnx.importer import Converter, Importer, Tensor

RESIZE_ATTRIBUTES: dict[str, Any] = {
    "mode": "nearest",
    "coordinate_transformation_mode": "half_pixel",
    "nearest_mode": "round_prefer_floor",
    "cubic_coeff_a": -0.75,
    "exclude_outside": 0,
    "extrapolation_value": 0.0,
    "antialias": 0,
    "axes": None,
    "keep_aspect_ratio_policy": "stretch",
}
HALF_PIXEL = ("half_pixel", "pytorch_half_pixel")


def _scales(imp: Importer, node: onnx.NodeProto, shape: tuple[Any, ...]) -> list[int]:
    """The integer scale of each spatial dim, from the scales or the sizes input."""
    scales = imp.const(node, 2, "scales")
    if scales is not None and scales.size:
        factors = [float(s) for s in np.asarray(scales).reshape(-1)]
    else:
        sizes = imp.const(node, 3, "sizes")
        if sizes is None:
            raise imp.error(node, "neither scales nor sizes is given")
        full = [None, *shape]
        factors = []
        for n, out in zip(full, np.asarray(sizes).reshape(-1), strict=False):
            if n is None:
                factors.append(1.0)
            elif isinstance(n, str):
                raise imp.error(node, f"sizes on the symbolic dim '{n}' are not supported")
            else:
                factors.append(float(out) / n)
    if len(factors) != len(shape) + 1:
        raise imp.error(node, f"has {len(factors)} scales for a rank-{len(shape) + 1} input")
    if factors[0] != 1.0 or factors[1] != 1.0:
        raise imp.error(
            node, f"scales {factors} resize the batch or channels; nnc resizes spatial dims only"
        )
    spatial = factors[2:]
    if any(f < 1.0 or f != int(f) for f in spatial):
        raise imp.error(
            node, f"spatial scales {spatial} are not integers >= 1; nnc's resize upsamples only"
        )
    return [int(f) for f in spatial]


def resize(imp: Importer, node: onnx.NodeProto) -> None:
    a = attributes(imp, node, RESIZE_ATTRIBUTES)
    transform, mode = a["coordinate_transformation_mode"], a["mode"]
    for key, allowed in (("antialias", 0), ("axes", None), ("keep_aspect_ratio_policy", "stretch")):
        if a[key] != allowed:
            raise unsupported_value(imp, node, key, a[key], f"nnc reads only {allowed!r}")
    options: dict[str, Any] = {}
    if mode == "nearest":
        floor = transform == "asymmetric" and a["nearest_mode"] == "floor"
        rounded = transform in HALF_PIXEL and a["nearest_mode"].startswith("round_prefer")
        if not (floor or rounded):
            which = "nearest_mode" if transform in ("asymmetric", *HALF_PIXEL) else None
            key = which or "coordinate_transformation_mode"
            raise unsupported_value(
                imp, node, key, a[key], "nnc's nearest resize reads input floor(o / scale)"
            )
    elif mode == "linear":
        if transform == "align_corners":
            options["align_corners"] = True
        elif transform not in HALF_PIXEL:
            raise unsupported_value(
                imp,
                node,
                "coordinate_transformation_mode",
                transform,
                "nnc's bilinear resize is half_pixel or align_corners",
            )
        options["mode"] = "bilinear"
    else:
        raise unsupported_value(imp, node, "mode", mode, "nnc resizes nearest or linear")
    ref, t = imp.standard(node)
    scales = _scales(imp, node, t.shape)
    scale = scales[:1] if len(set(scales)) == 1 else scales
    out = imp.add(node, "resize", [ref], scale=tuple(scale), **options)
    imp.set(node, Tensor(out, imp.types[out].shape))


def depth_to_space(imp: Importer, node: onnx.NodeProto) -> None:
    a = attributes(imp, node, {"blocksize": None, "mode": "DCR"})
    if a["mode"] != "DCR":
        raise unsupported_value(imp, node, "mode", a["mode"], "nnc's depth_to_space is DCR")
    ref, _ = imp.standard(node)
    out = imp.add(node, "depth_to_space", [ref], block=int(a["blocksize"]))
    imp.set(node, Tensor(out, imp.types[out].shape))


def space_to_depth(imp: Importer, node: onnx.NodeProto) -> None:
    a = attributes(imp, node, {"blocksize": None})
    ref, _ = imp.standard(node)
    out = imp.add(node, "space_to_depth", [ref], block=int(a["blocksize"]))
    imp.set(node, Tensor(out, imp.types[out].shape))


CONVERTERS: dict[str, Converter] = {
    "Resize": resize,
    "DepthToSpace": depth_to_space,
    "SpaceToDepth": space_to_depth,
}
