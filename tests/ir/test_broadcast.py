"""The per-sample broadcasting rule: size-1 axes on either side, rank mismatch, scalars,
symbols, and a broadcast that does not fit."""

from __future__ import annotations

import numpy as np
import pytest

from nnc.errors import ShapeError, Span
from nnc.ir.broadcast import broadcast_all, broadcast_shapes, reduced_axes


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ((4, 1), (1, 3)),  # size-1 axes on either side
        ((2, 3, 4), (4,)),  # rank mismatch
        ((), (2, 3)),  # a scalar
        ((5,), ()),
        ((1,), (7,)),
        ((2, 1, 4), (3, 1)),
    ],
)
def test_static_shapes_follow_numpy(a: tuple[int, ...], b: tuple[int, ...]) -> None:
    want = np.broadcast_shapes(a, b)
    assert broadcast_shapes(a, b) == want
    assert broadcast_shapes(b, a) == want


def test_symbols_match_themselves_and_one() -> None:
    assert broadcast_shapes(("t", 4), ("t", 1)) == ("t", 4)
    assert broadcast_shapes((1, 4), ("t", 4)) == ("t", 4)
    assert broadcast_all([("t", 1), (4,), ()]) == ("t", 4)


@pytest.mark.parametrize(
    ("a", "b", "message"),
    [
        (("t", 4), (5, 4), "cannot broadcast [t, 4] with [5, 4]: dim -2 is t against 5"),
        (("t",), ("u",), "cannot broadcast [t] with [u]: dim -1 is t against u"),
        ((3, 4), (2, 3, 5), "cannot broadcast [3, 4] with [2, 3, 5]: dim -1 is 4 against 5"),
    ],
)
def test_a_broadcast_that_does_not_fit_shows_both_shapes(
    a: tuple[int | str, ...], b: tuple[int | str, ...], message: str
) -> None:
    span = Span(file="m.nn", line=3, col=12, end_line=3, end_col=17)
    with pytest.raises(ShapeError) as info:
        broadcast_shapes(a, b, span)
    assert info.value.message == message
    assert info.value.span == span


def test_reduced_axes_sum_a_gradient_back_to_the_operand() -> None:
    result = (2, 3, 4)
    for shape in [(4,), (3, 1), (1, 3, 1), (), (2, 3, 4)]:
        axes = reduced_axes(shape, result)
        g = np.ones(result).sum(axis=axes).reshape(shape)
        assert g.shape == shape
        assert g.sum() == 24.0
    assert reduced_axes((3, 1), result) == (0, 2)
