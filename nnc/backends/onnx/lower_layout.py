"""ONNX lowerings of the layout ops, valid from opset 11 (every input-form op here
takes its integers as inputs from opset 10 or 11; Squeeze and Unsqueeze move their
axes from an attribute to an input at opset 13, which :class:`GraphBuilder` handles).

Axes are nnc's per-sample axes plus one (the batch is axis 0). A slice is written
with its resolved ranges (:meth:`Slice.ranges`); a backward slice that runs through
index 0 ends at INT64_MIN, as the ONNX specification recommends.
"""

from __future__ import annotations

import numpy as np

from nnc.backends.onnx.builder import GraphBuilder, Lowering
from nnc.ir.ops.layout import BroadcastTo, Pad, Slice, Squeeze, Tile, Transpose, Unsqueeze

INT64_MIN = int(np.iinfo(np.int64).min)


def transpose(b: GraphBuilder, node: Transpose) -> None:
    perm = [0, *(p + 1 for p in node.permutation(b.input_type(node).rank))]
    b.bind(node, b.op("Transpose", [b.value(node.inputs[0])], node.name, perm=perm))


def squeeze(b: GraphBuilder, node: Squeeze) -> None:
    axes = [a + 1 for a in node.removed(b.input_type(node))]
    if not axes:
        b.alias(node)
        return
    b.bind(node, b.squeeze(b.value(node.inputs[0]), axes, node.name))


def unsqueeze(b: GraphBuilder, node: Unsqueeze) -> None:
    axes = [a + 1 for a in node.inserted(b.input_type(node).rank)]
    b.bind(node, b.unsqueeze(b.value(node.inputs[0]), axes, node.name))


def slice_(b: GraphBuilder, node: Slice) -> None:
    ranges = sorted(node.ranges(b.input_type(node)).items())
    starts = [start for _, (start, _, _, _) in ranges]
    ends = [INT64_MIN if stop is None else stop for _, (_, stop, _, _) in ranges]
    axes = [k + 1 for k, _ in ranges]
    steps = [step for _, (_, _, step, _) in ranges]
    inputs = [
        b.value(node.inputs[0]),
        b.ints(f"{node.name}/starts", starts),
        b.ints(f"{node.name}/ends", ends),
        b.ints(f"{node.name}/axes", axes),
    ]
    if any(s != 1 for s in steps):
        inputs.append(b.ints(f"{node.name}/steps", steps))
    b.bind(node, b.op("Slice", inputs, node.name))


def pad(b: GraphBuilder, node: Pad) -> None:
    pairs = node.pairs(b.input_type(node).rank)
    pads = [0, *(p for p, _ in pairs), 0, *(q for _, q in pairs)]
    inputs = [b.value(node.inputs[0]), b.ints(f"{node.name}/pads", pads)]
    if node.mode == "constant" and node.value:
        inputs.append(b.scalar(f"{node.name}/value", node.value))
    b.bind(node, b.op("Pad", inputs, node.name, mode=node.mode))


def tile(b: GraphBuilder, node: Tile) -> None:
    repeats = b.ints(f"{node.name}/repeats", [1, *node.repeats])
    b.bind(node, b.op("Tile", [b.value(node.inputs[0]), repeats], node.name))


def broadcast_to(b: GraphBuilder, node: BroadcastTo) -> None:
    x = b.value(node.inputs[0])
    lead = len(node.shape) - b.input_type(node).rank
    if lead:  # size-1 axes right after the batch: Expand aligns shapes on the right
        x = b.unsqueeze(x, list(range(1, lead + 1)), f"{node.name}/aligned")
    shape = b.ints(f"{node.name}/shape", [1, *node.shape])
    b.bind(node, b.op("Expand", [x, shape], node.name))


LOWERINGS: dict[str, Lowering] = {
    "transpose": transpose,
    "squeeze": squeeze,
    "unsqueeze": unsqueeze,
    "slice": slice_,
    "pad": pad,
    "tile": tile,
    "broadcast_to": broadcast_to,
}
