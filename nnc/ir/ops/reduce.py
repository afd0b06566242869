"""Reductions over named per-sample axes, and the global max pool.

Axes are per-sample: 0 is the first axis after the batch, negatives count from the
end. The batch axis is never reduced. ``max`` and ``min`` send their gradient to the
first extreme element in row-major order of the reduced axes (``docs/semantics.md``,
Reductions).
"""

import math
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, Literal

from pydantic import field_validator

from nnc.ir.base import Op
from nnc.ir.types import Dim, TensorType, format_shape


class _Reduce(Op):
    axis: tuple[int, ...] | None = None  # None: every per-sample axis
    keepdims: bool = False

    positional: ClassVar[tuple[str, ...]] = ("axis", "keepdims")
    example: ClassVar[str] = "input x: [3, 4, 5]\n    {op}(axis = [0, 2])"

    def accumulation(
        self, ins: Sequence[TensorType], batch: int, steps: int, size: Callable[[Dim], int]
    ) -> int:
        return math.prod(size(ins[0].shape[a]) for a in self.axes(ins[0]))

    @field_validator("axis", mode="before")
    @classmethod
    def _one_axis(cls, v: Any) -> Any:
        return (v,) if isinstance(v, int) and not isinstance(v, bool) else v

    def axes(self, x: TensorType) -> tuple[int, ...]:
        """The reduced per-sample axes, non-negative and ascending (checked by infer)."""
        if self.axis is None:
            return tuple(range(x.rank))
        return tuple(sorted(a % x.rank for a in self.axis))

    def infer(self, ins: Sequence[TensorType]) -> TensorType:
        (x,) = ins
        self.expect_float(x)
        if self.axis is not None:
            seen: set[int] = set()
            for a in self.axis:
                if not -x.rank <= a < x.rank:
                    raise self.fail(
                        f"axis {a} is out of range for {format_shape(x.shape)}: per-sample axes "
                        f"are 0 to {x.rank - 1} (or -{x.rank} to -1), and the batch axis "
                        "cannot be reduced"
                    )
                if a % x.rank in seen:
                    raise self.fail(
                        f"axis {a} is named twice in {list(self.axis)} "
                        f"(for {format_shape(x.shape)})"
                    )
                seen.add(a % x.rank)
        axes = self.axes(x)
        if self.keepdims:
            return x.with_shape(tuple(1 if i in axes else d for i, d in enumerate(x.shape)))
        return x.with_shape(tuple(d for i, d in enumerate(x.shape) if i not in axes))


class Mean(_Reduce):
    op: Literal["mean"] = "mean"
    summary: ClassVar[str] = "mean over per-sample axes (default: all), keepdims optional"


class Sum(_Reduce):
    op: Literal["sum"] = "sum"
    summary: ClassVar[str] = "sum over per-sample axes (default: all), keepdims optional"


class Max(_Reduce):
    op: Literal["max"] = "max"
    summary: ClassVar[str] = "maximum over per-sample axes; gradient to the first maximum"


class Min(_Reduce):
    op: Literal["min"] = "min"
    summary: ClassVar[str] = "minimum over per-sample axes; gradient to the first minimum"


class GlobalMaxPool(Op):
    """The maximum over every spatial position of each channel: ``[C, ...] -> [C]``,
    ``max(x, axis = [1, ..., r-1])``; the gradient goes to the first maximum."""

    op: Literal["global_max_pool"] = "global_max_pool"
    example: ClassVar[str] = "input x: [3, 4, 4]\n    global_max_pool"
    summary: ClassVar[str] = "maximum over all spatial positions: [C, ...] -> [C]"

    def accumulation(
        self, ins: Sequence[TensorType], batch: int, steps: int, size: Callable[[Dim], int]
    ) -> int:
        return math.prod(size(ins[0].shape[a]) for a in self.axes(ins[0]))

    def axes(self, x: TensorType) -> tuple[int, ...]:
        return tuple(range(1, x.rank))

    def infer(self, ins: Sequence[TensorType]) -> TensorType:
        (x,) = ins
        self.expect_float(x)
        if x.rank < 2:
            raise self.fail(
                f"expects [channels, spatial...] (at least one spatial axis). Received: {x}"
            )
        return x.with_shape((x.shape[0],))
