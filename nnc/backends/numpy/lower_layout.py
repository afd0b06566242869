"""Lowerings of the layout ops (transpose, squeeze, unsqueeze, slice, pad, tile,
broadcast_to): each forward pass is one NumPy call or index; each backward pass moves
the gradient back (the inverse permutation, a reshape, a scatter into zeros, the sum
over copies or over broadcast axes). The pad and tile backward passes are kernels
(``kernels/layout.py``)."""

from __future__ import annotations

from nnc.backends.codegen import py_literal
from nnc.backends.layout_index import batch_axes, slice_index
from nnc.backends.numpy.walk import Lowering, NodeContext
from nnc.ir.broadcast import reduced_axes
from nnc.ir.ops.layout import BroadcastTo, Pad, Slice, Squeeze, Tile, Transpose, Unsqueeze


def _transpose_forward(c: NodeContext) -> None:
    assert isinstance(c.node, Transpose)
    perm = (0, *batch_axes(c.node.permutation(c.in_types[0].rank)))
    c.line(f"{c.y} = {c.x()}.transpose{py_literal(perm)}")


def _transpose_backward(c: NodeContext) -> None:
    assert isinstance(c.node, Transpose)
    perm = (0, *batch_axes(c.node.permutation(c.in_types[0].rank)))
    inverse = tuple(perm.index(k) for k in range(len(perm)))
    c.grad_input(0, f"{c.dy}.transpose{py_literal(inverse)}")


def _squeeze_forward(c: NodeContext) -> None:
    assert isinstance(c.node, Squeeze)
    axes = batch_axes(c.node.removed(c.in_types[0]))
    c.line(f"{c.y} = np.squeeze({c.x()}, axis={py_literal(axes)})")


def _unsqueeze_forward(c: NodeContext) -> None:
    assert isinstance(c.node, Unsqueeze)
    axes = batch_axes(c.node.inserted(c.in_types[0].rank))
    c.line(f"{c.y} = np.expand_dims({c.x()}, {py_literal(axes)})")


def _reshape_back(c: NodeContext) -> None:
    c.grad_input(0, f"{c.dy}.reshape({c.x()}.shape)")


def _slice_forward(c: NodeContext) -> None:
    assert isinstance(c.node, Slice)
    c.line(f"{c.y} = {c.x()}{slice_index(c.node, c.in_types[0])}")


def _slice_backward(c: NodeContext) -> None:
    assert isinstance(c.node, Slice)
    target = c.input_gradient_name(0)
    setup = [
        f"{target} = np.zeros_like({c.x()})",
        f"{target}{slice_index(c.node, c.in_types[0])} = {c.dy}",
    ]
    c.grad_input(0, target, setup)


def _pads(c: NodeContext) -> tuple[tuple[int, int], ...]:
    assert isinstance(c.node, Pad)
    return ((0, 0), *c.node.pairs(c.in_types[0].rank))


def _pad_forward(c: NodeContext) -> None:
    assert isinstance(c.node, Pad)
    if c.node.mode == "constant":
        value = f", constant_values={py_literal(c.node.value)}" if c.node.value else ""
        c.line(f"{c.y} = np.pad({c.x()}, {py_literal(_pads(c))}{value})")
    else:
        c.line(f"{c.y} = np.pad({c.x()}, {py_literal(_pads(c))}, mode={c.node.mode!r})")


def _pad_backward(c: NodeContext) -> None:
    assert isinstance(c.node, Pad)
    kernel = c.kernel("pad_backward")
    if c.node.mode != "constant":
        c.line("# each padded element's gradient goes back to the element it copies")
    c.grad_input(0, f"{kernel}({c.dy}, {py_literal(_pads(c))}, {c.node.mode!r})")


def _repeats(c: NodeContext) -> tuple[int, ...]:
    assert isinstance(c.node, Tile)
    return (1, *c.node.repeats)


def _tile_forward(c: NodeContext) -> None:
    c.line(f"{c.y} = np.tile({c.x()}, {py_literal(_repeats(c))})")


def _tile_backward(c: NodeContext) -> None:
    c.grad_input(0, f"{c.kernel('tile_backward')}({c.dy}, {py_literal(_repeats(c))})")


def _broadcast_forward(c: NodeContext) -> None:
    assert isinstance(c.node, BroadcastTo)
    x, lead = c.x(), len(c.node.shape) - c.in_types[0].rank
    if lead:  # size-1 axes right after the batch, so that the batch axes align
        x = f"np.expand_dims({x}, {py_literal(tuple(range(1, lead + 1)))})"
    shape = ", ".join(str(d) for d in c.node.shape)
    c.line(f"{c.y} = np.broadcast_to({x}, (len({c.x()}), {shape}))")


def _broadcast_backward(c: NodeContext) -> None:
    assert isinstance(c.node, BroadcastTo)
    axes = batch_axes(reduced_axes(c.in_types[0].shape, c.node.shape))
    if not axes:
        c.grad_input(0, c.dy)
        return
    c.grad_input(0, f"{c.dy}.sum(axis={py_literal(axes)}).reshape({c.x()}.shape)")


LOWERINGS: dict[str, Lowering] = {
    "transpose": Lowering(_transpose_forward, _transpose_backward),
    "squeeze": Lowering(_squeeze_forward, _reshape_back),
    "unsqueeze": Lowering(_unsqueeze_forward, _reshape_back),
    "slice": Lowering(_slice_forward, _slice_backward),
    "pad": Lowering(_pad_forward, _pad_backward),
    "tile": Lowering(_tile_forward, _tile_backward),
    "broadcast_to": Lowering(_broadcast_forward, _broadcast_backward),
}
