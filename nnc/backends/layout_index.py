"""Python index expressions for the layout ops, shared by the backends whose arrays
take NumPy's basic slicing (NumPy, TensorFlow; torch too for positive steps)."""

from __future__ import annotations

from nnc.ir.ops.layout import Slice
from nnc.ir.types import TensorType


def slice_index(node: Slice, x: TensorType) -> str:
    """``[:, 1:3, ::-2]``: the batch kept whole, each sliced axis resolved by Python's
    rule (:meth:`Slice.ranges`), trailing whole axes left out."""
    ranges = node.ranges(x)
    parts = [":"]
    for k in range(x.rank):
        if k not in ranges:
            parts.append(":")
            continue
        start, stop, step, _ = ranges[k]
        text = f"{start}:{'' if stop is None else stop}"
        if step != 1:
            text += f":{step}"
        parts.append(text)
    while parts[-1] == ":":
        parts.pop()
    return "[" + ", ".join(parts) + "]"


def batch_axes(axes: tuple[int, ...]) -> tuple[int, ...]:
    """Per-sample axes (non-negative) as axes of the batched array."""
    return tuple(a + 1 for a in axes)
