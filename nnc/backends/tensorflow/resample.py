"""TensorFlow lowerings of resize, depth_to_space and space_to_depth, channels-last.

Nearest resize is ``tf.repeat`` per spatial axis (exactly ``floor(o / scale)``).
Bilinear is ``tf.image.resize``, whose TF2 form uses half-pixel centres and clamps at
the edges, as nnc's rule; ``align_corners = true`` is the raw ResizeBilinear op
with ``align_corners=True``. A 1-D input resizes as an image of width 1. TensorFlow's
depth_to_space and space_to_depth use the DCR order, as nnc does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from nnc.backends.codegen import py_literal
from nnc.backends.tensorflow.graph import LAST, ModelEmitter
from nnc.ir.ops.resample import DepthToSpace, Resize, SpaceToDepth

Lowered = tuple[str, str]


def _resize(e: ModelEmitter, node: Resize) -> Lowered:
    x = e.input(node, 0, LAST)
    t = e.model.value_type(node.inputs[0])
    scales = node.scales(t.rank - 1)
    if node.mode == "nearest":
        out = x.local
        for axis, s in enumerate(scales, start=1):
            if s != 1:
                out = f"tf.repeat({out}, {s}, axis={axis})"
        return out, LAST
    spatial = t.shape[1:]
    sizes = [
        str(n * s) if isinstance(n, int) else f"tf.shape({x.local})[{axis}] * {s}"
        for axis, (n, s) in enumerate(zip(spatial, scales, strict=True), start=1)
    ]
    image = x.local if t.rank == 3 else f"{x.local}[:, :, None, :]"
    size = f"({sizes[0]}, {sizes[1] if t.rank == 3 else 1})"
    if node.align_corners:
        call = f"tf.raw_ops.ResizeBilinear(images={image}, size={size}, align_corners=True)"
    else:
        call = f"tf.image.resize({image}, {size}, method='bilinear')"
    return (call if t.rank == 3 else f"{call}[:, :, 0, :]"), LAST


def _depth_to_space(e: ModelEmitter, node: DepthToSpace) -> Lowered:
    x = e.input(node, 0, LAST)
    return f"tf.nn.depth_to_space({x.local}, {py_literal(node.block)})", LAST


def _space_to_depth(e: ModelEmitter, node: SpaceToDepth) -> Lowered:
    x = e.input(node, 0, LAST)
    return f"tf.nn.space_to_depth({x.local}, {py_literal(node.block)})", LAST


RESAMPLE: dict[str, Callable[[ModelEmitter, Any], Lowered]] = {
    "resize": _resize,
    "depth_to_space": _depth_to_space,
    "space_to_depth": _space_to_depth,
}
