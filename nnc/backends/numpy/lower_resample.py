"""Lowerings of resize, depth_to_space and space_to_depth (``kernels/resample.py``).

The kernels take the scale per spatial dim as a literal resolved here from the IR.
"""

from __future__ import annotations

from nnc.backends.codegen import py_literal
from nnc.backends.numpy.walk import Lowering, NodeContext
from nnc.ir.ops.resample import Resize, _Blocks


def _resize_node(c: NodeContext) -> Resize:
    assert isinstance(c.node, Resize)
    return c.node


def _resize_args(c: NodeContext) -> list[str]:
    node = _resize_node(c)
    args = [py_literal(node.scales(c.in_types[0].rank - 1))]
    if node.align_corners:
        args.append("align_corners=True")
    return args


def _kernel_name(c: NodeContext) -> str:
    return "resize_nearest" if _resize_node(c).mode == "nearest" else "resize_linear"


def _resize_forward(c: NodeContext) -> None:
    if _resize_node(c).mode == "bilinear" and not _resize_node(c).align_corners:
        c.line("# half-pixel centres: output o reads input (o + 0.5) / scale - 0.5, clamped")
    c.call(c.y, c.kernel(_kernel_name(c)), [c.x(), *_resize_args(c)])


def _resize_backward(c: NodeContext) -> None:
    function = c.kernel(_kernel_name(c) + "_backward")
    c.grad_input(0, f"{function}({', '.join([c.dy, *_resize_args(c)])})")


def _block(c: NodeContext) -> int:
    assert isinstance(c.node, _Blocks)
    return c.node.block


def _depth_to_space_forward(c: NodeContext) -> None:
    c.call(c.y, c.kernel("depth_to_space"), [c.x(), str(_block(c))])


def _depth_to_space_backward(c: NodeContext) -> None:
    c.grad_input(0, f"{c.kernel('space_to_depth')}({c.dy}, {_block(c)})")


def _space_to_depth_forward(c: NodeContext) -> None:
    c.call(c.y, c.kernel("space_to_depth"), [c.x(), str(_block(c))])


def _space_to_depth_backward(c: NodeContext) -> None:
    c.grad_input(0, f"{c.kernel('depth_to_space')}({c.dy}, {_block(c)})")


LOWERINGS: dict[str, Lowering] = {
    "resize": Lowering(_resize_forward, _resize_backward),
    "depth_to_space": Lowering(_depth_to_space_forward, _depth_to_space_backward),
    "space_to_depth": Lowering(_space_to_depth_forward, _space_to_depth_backward),
}
