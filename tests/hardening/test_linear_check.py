"""Issue 26: `nnc check` grows linearly with the text (10k-1M characters, one line or
many; ``benchmarks/check_long_lines.py`` times it). Timing is too noisy to assert on,
so these count what the front end does instead: the function calls (Python and C)
made while checking, and the peak of the memory it allocates. When the work is
linear, the calls follow ``a + b * n`` for n repeated layers exactly, so the growth
from 2N to 4N layers is twice that from N to 2N; a per-layer pass over the layers
before it would make it four times."""

from __future__ import annotations

import sys
import tracemalloc
from collections.abc import Callable
from types import FrameType
from typing import Any

import pytest

from nnc.dsl import parse

LAYER = "dense(4, activation = relu)"
# name -> (head, separator, tail) around the repeated layers
SHAPES = {
    "one line": ("model M { input x: [4] ", " ", " }\n"),
    "a line each": ("model M {\n    input x: [4]\n    ", "\n    ", "\n}\n"),
    "chained on one line": ("model M { input x: [4] output x |> ", " |> ", " }\n"),
}
N = 40  # layers: N, 2N and 4N are checked (about 1.1k, 2.3k and 4.5k characters)


def spec(shape: str, layers: int) -> str:
    head, sep, tail = SHAPES[shape]
    return head + sep.join([LAYER] * layers) + tail


def calls(text: str) -> int:
    """The function calls (Python and built-in) made while checking ``text``."""
    count = 0

    def tally(frame: FrameType, event: str, arg: Any) -> None:
        nonlocal count
        if event in ("call", "c_call"):
            count += 1

    sys.setprofile(tally)
    try:
        parse(text)
    finally:
        sys.setprofile(None)
    return count


def peak_bytes(text: str) -> int:
    """The peak of the memory allocated while checking ``text``."""
    tracemalloc.start()
    try:
        parse(text)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def growth(measure: Callable[[str], int], shape: str) -> tuple[int, int]:
    """``(f(2N) - f(N), f(4N) - f(2N))`` for the measure f."""
    parse(spec(shape, 2))  # the one-time work (pydantic schemas, parse tables) first
    one, two, four = (measure(spec(shape, k * N)) for k in (1, 2, 4))
    return two - one, four - two


@pytest.mark.parametrize("shape", SHAPES)
def test_checking_makes_a_fixed_number_of_calls_per_layer(shape: str) -> None:
    first, second = growth(calls, shape)
    assert first > 0
    # linear: the second doubling adds twice the calls of the first (to 5%); quadratic
    # work would add four times as many
    assert second == pytest.approx(2 * first, rel=0.05)


@pytest.mark.parametrize("shape", ["one line", "a line each"])
def test_checking_holds_a_fixed_amount_of_memory_per_layer(shape: str) -> None:
    # The peak moves by about 10% per layer around its mean as lists and dicts grow in
    # steps, so compare 8N layers with N instead of differences: linear stays under
    # eight times (the fixed part only lowers the ratio), quadratic would be 64.
    parse(spec(shape, 2))
    small, large = peak_bytes(spec(shape, N)), peak_bytes(spec(shape, 8 * N))
    assert 4 * small < large < 1.3 * 8 * small
