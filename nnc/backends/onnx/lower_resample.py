"""ONNX lowerings of resize, depth_to_space and space_to_depth (valid from opset 11).

``Resize`` takes the scales as an input: ``[1, 1, *scale]`` (batch and channels kept).
Its ``roi`` input is required (and ignored by these coordinate modes) before opset 13,
so an empty tensor fills it there. nnc's rules are ONNX's ``asymmetric`` + ``floor``
(nearest) and ``half_pixel`` or ``align_corners`` (linear).
"""

from __future__ import annotations

import numpy as np

from nnc.backends.onnx.builder import GraphBuilder, Lowering
from nnc.ir.ops.resample import DepthToSpace, Resize, SpaceToDepth


def resize_attributes(node: Resize) -> dict[str, str]:
    if node.mode == "nearest":
        return {
            "mode": "nearest",
            "coordinate_transformation_mode": "asymmetric",
            "nearest_mode": "floor",
        }
    transform = "align_corners" if node.align_corners else "half_pixel"
    return {"mode": "linear", "coordinate_transformation_mode": transform}


def resize(b: GraphBuilder, node: Resize) -> None:
    scales = node.scales(b.input_type(node).rank - 1)
    scale_input = b.initializer(
        f"{node.name}/scales", np.array([1.0, 1.0, *scales], dtype=np.float32)
    )
    empty = np.zeros(0, dtype=np.float32)
    roi = "" if b.opset >= 13 else b.initializer(f"{node.name}/roi", empty)
    inputs = [b.value(node.inputs[0]), roi, scale_input]
    b.bind(node, b.op("Resize", inputs, node.name, **resize_attributes(node)))


def depth_to_space(b: GraphBuilder, node: DepthToSpace) -> None:
    x = b.value(node.inputs[0])
    b.bind(node, b.op("DepthToSpace", [x], node.name, blocksize=node.block, mode="DCR"))


def space_to_depth(b: GraphBuilder, node: SpaceToDepth) -> None:
    x = b.value(node.inputs[0])
    b.bind(node, b.op("SpaceToDepth", [x], node.name, blocksize=node.block))


LOWERINGS: dict[str, Lowering] = {
    "resize": resize,
    "depth_to_space": depth_to_space,
    "space_to_depth": space_to_depth,
}
