"""TensorFlow lowerings of the layout ops, on the canonical (channels-first) layout,
so that the axes are nnc's shifted past the batch. TensorFlow's autodiff computes
the backward passes.

Slicing takes Python's rule (negative steps included) as NumPy does. ``tf.pad``
has ``CONSTANT`` and ``REFLECT`` (the borders not repeated, as nnc's reflect) but no
edge mode: edge padding gathers each padded axis at the clamped positions
(:func:`nnc.ir.ops.layout.pad_source`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from nnc.backends.layout_index import batch_axes, slice_index
from nnc.backends.tensorflow.graph import FIRST, ModelEmitter
from nnc.ir.ops.layout import (
    BroadcastTo,
    Pad,
    Slice,
    Squeeze,
    Tile,
    Transpose,
    Unsqueeze,
    pad_source,
)

Lowered = tuple[str, str]


def _list(values: tuple[int, ...] | list[int]) -> str:
    return "[" + ", ".join(str(v) for v in values) + "]"


def _transpose(e: ModelEmitter, node: Transpose) -> Lowered:
    x = e.input(node, 0, FIRST)
    perm = (0, *batch_axes(node.permutation(x.type.rank)))
    return f"tf.transpose({x.local}, {_list(perm)})", FIRST


def _squeeze(e: ModelEmitter, node: Squeeze) -> Lowered:
    x = e.input(node, 0, FIRST)
    axes = batch_axes(node.removed(x.type))
    if not axes:
        return x.local, FIRST
    return f"tf.squeeze({x.local}, axis={_list(axes)})", FIRST


def _unsqueeze(e: ModelEmitter, node: Unsqueeze) -> Lowered:
    x = e.input(node, 0, FIRST)
    out = x.local
    for axis in batch_axes(node.inserted(x.type.rank)):  # ascending: each lands in place
        out = f"tf.expand_dims({out}, {axis})"
    return out, FIRST


def _slice(e: ModelEmitter, node: Slice) -> Lowered:
    x = e.input(node, 0, FIRST)
    return f"{x.local}{slice_index(node, x.type)}", FIRST


def _pad(e: ModelEmitter, node: Pad) -> Lowered:
    x = e.input(node, 0, FIRST)
    pairs = node.pairs(x.type.rank)
    if node.mode == "edge":
        out = x.local
        for k, (begin, end) in enumerate(pairs):
            if begin or end:
                n = x.type.shape[k]
                assert isinstance(n, int)
                out = f"tf.gather({out}, {pad_source(n, begin, end, 'edge')}, axis={k + 1})"
        return out, FIRST
    paddings = _list([0, 0]) + "".join(f", [{b}, {a}]" for b, a in pairs)
    options = ", mode='REFLECT'" if node.mode == "reflect" else ""
    if node.value:
        options += f", constant_values={node.value!r}"
    return f"tf.pad({x.local}, [{paddings}]{options})", FIRST


def _tile(e: ModelEmitter, node: Tile) -> Lowered:
    x = e.input(node, 0, FIRST)
    return f"tf.tile({x.local}, {_list((1, *node.repeats))})", FIRST


def _broadcast_to(e: ModelEmitter, node: BroadcastTo) -> Lowered:
    x = e.input(node, 0, FIRST)
    lead = len(node.shape) - x.type.rank
    source = x.local if not lead else f"{x.local}[:, {', '.join(['None'] * lead)}]"
    shape = ", ".join(str(d) for d in node.shape)
    return f"tf.broadcast_to({source}, (tf.shape({x.local})[0], {shape}))", FIRST


LAYOUT: dict[str, Callable[[ModelEmitter, Any], Lowered]] = {
    "transpose": _transpose,
    "squeeze": _squeeze,
    "unsqueeze": _unsqueeze,
    "slice": _slice,
    "pad": _pad,
    "tile": _tile,
    "broadcast_to": _broadcast_to,
}
