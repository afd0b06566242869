"""NumPy's broadcasting rule on per-sample shapes, with symbolic dims.

Shapes align on the right; a dim of 1 stretches; missing leading dims are 1. A symbol
matches only itself or 1 (``t`` with ``u``, or ``t`` with 5, is an error), because
nothing says two symbols stand for the same size.

>>> broadcast_shapes((4, 1), (3,))
(4, 3)
>>> broadcast_shapes(("t", 4), (1, 4))
('t', 4)
"""

from __future__ import annotations

from nnc.errors import ShapeError, Span
from nnc.ir.types import Dim, format_shape


def broadcast_shapes(
    a: tuple[Dim, ...], b: tuple[Dim, ...], span: Span | None = None
) -> tuple[Dim, ...]:
    """The broadcast of two per-sample shapes, or a ShapeError showing both and the dim."""
    rank = max(len(a), len(b))
    pa = (1,) * (rank - len(a)) + tuple(a)
    pb = (1,) * (rank - len(b)) + tuple(b)
    out: list[Dim] = []
    for i, (x, y) in enumerate(zip(pa, pb, strict=True)):
        if x == y or y == 1:
            out.append(x)
        elif x == 1:
            out.append(y)
        else:
            raise ShapeError(
                f"cannot broadcast {format_shape(a)} with {format_shape(b)}: "
                f"dim {i - rank} is {x} against {y}",
                span,
                hint="a dim broadcasts when both sides are equal or one of them is 1",
            )
    return tuple(out)


def broadcast_all(shapes: list[tuple[Dim, ...]], span: Span | None = None) -> tuple[Dim, ...]:
    """The broadcast of several shapes, left to right (the rule is associative)."""
    out = shapes[0]
    for s in shapes[1:]:
        out = broadcast_shapes(out, s, span)
    return out


def reduced_axes(shape: tuple[Dim, ...], result: tuple[Dim, ...]) -> tuple[int, ...]:
    """The axes of ``result`` that a gradient sums over to get back to ``shape``
    (the inserted leading axes and the stretched size-1 axes), counted from 0."""
    lead = len(result) - len(shape)
    stretched = [
        lead + i
        for i, (d, r) in enumerate(zip(shape, result[lead:], strict=True))
        if d == 1 and r != 1
    ]
    return (*range(lead), *stretched)
