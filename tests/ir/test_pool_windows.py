"""The check that every pooling window reads the input, against the definition."""

from __future__ import annotations

import itertools
import time

import pytest

import nnc
from nnc.errors import ShapeError
from nnc.ir.ops.pooling import Window, _every_window_reads_the_input
from nnc.ir.shapes import window_output


def _first_padding_only_window(n: int, out: int, k: int, s: int, d: int, begin: int) -> int | None:
    """The definition: window i's taps are at i*s - begin + j*d, j < k."""
    for i in range(out):
        if not any(0 <= i * s - begin + j * d < n for j in range(k)):
            return i
    return None


def test_the_closed_form_finds_the_same_window_as_every_window_walked() -> None:
    checked = 0
    for n, k, s, d, begin, end in itertools.product(
        range(1, 6), range(1, 4), range(1, 4), range(1, 6), range(0, 9), range(0, 4)
    ):
        try:
            out = window_output(n, k, s, (begin, end), d)
        except ShapeError:
            continue
        if not isinstance(out, int) or out < 1:
            continue
        expected = _first_padding_only_window(n, out, k, s, d, begin)
        w = Window((k,), (s,), ((begin, end),), (d,))
        try:
            _every_window_reads_the_input(0, n, out, w)
            found = None
        except ShapeError as exc:
            found = int(exc.message.split()[1])
        assert found == expected, (n, k, s, d, begin, end)
        checked += 1
    assert checked > 3000


def test_a_pool_over_a_trillion_positions_is_checked_without_walking_them() -> None:
    # Soak finding (scripts/fuzz_frontend.py --seed 27, a mutated lenet5.nn): an input
    # of [1, 999999999999, 32] made `nnc check` walk every pooling window (past the
    # fuzzer's 5 s CPU limit; 54 s of CPU and no answer at 2 minutes).
    source = (
        "model M {\n    input x: [1, 999999999999, 32]\n"
        "    avgpool(2, padding = [1, 1])\n    maxpool(3, dilation = 2, padding = 2)\n}\n"
    )
    start = time.process_time()
    with pytest.raises(nnc.NncError):  # the resource check refuses the tensor's size
        nnc.parse(source, "big.nn")
    assert time.process_time() - start < 1.0


def test_a_walk_past_the_limit_is_refused_at_the_pool() -> None:
    # Stride 3, dilation 2^22 over 2^22 - 1 positions: only windows whose start is 1
    # below a multiple of the dilation miss, and the first is window 1,398,101, past
    # the 2^20 windows the check walks.
    source = (
        "model M {\n    input x: [1, 4194303]\n"
        "    maxpool(2, stride = 3, dilation = 4194304, padding = [4194304, 3])\n}\n"
    )
    start = time.process_time()
    with pytest.raises(ShapeError) as caught:
        nnc.parse(source, "walk.nn")
    assert time.process_time() - start < 2.0
    assert "1,398,102 windows of dilation 4194304 start in a begin padding" in str(caught.value)
    span = caught.value.span
    assert span is not None and (span.line, span.col) == (3, 5)
