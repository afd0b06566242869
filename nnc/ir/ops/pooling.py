"""Pooling over the spatial dims of ``[C, L]`` or ``[C, H, W]`` inputs.

Output sizes floor (no ceil mode). ``same`` padding is TF-style (extra pad at the end).
Max pooling ignores padding; average pooling divides by the number of *real* elements
in each window (``count_include_pad = false``); sum pooling adds the real elements.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, field_validator

from nnc.errors import ShapeError
from nnc.ir.base import Op
from nnc.ir.shapes import same_pads, window_output
from nnc.ir.types import Dim, TensorType

PositiveInt = Annotated[int, Field(gt=0)]


@dataclass(frozen=True)
class Window:
    """Resolved pooling geometry for one input type."""

    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    pads: tuple[tuple[int, int], ...]


def _as_tuple(v: Any) -> Any:
    if isinstance(v, int) and not isinstance(v, bool):
        return (v,)
    return tuple(v) if isinstance(v, list) else v


class _Pool(Op):
    """``size`` and ``stride`` hold one value (used for every spatial dim) or one per dim."""

    size: tuple[PositiveInt, ...]
    stride: tuple[PositiveInt, ...] = ()
    padding: Literal["valid", "same"] = "valid"

    positional: ClassVar[tuple[str, ...]] = ("size", "stride")

    @field_validator("size", "stride", mode="before")
    @classmethod
    def _tuple(cls, v: Any) -> Any:
        return _as_tuple(v)

    def window(self, x: TensorType) -> Window:
        spatial_rank = x.rank - 1
        kernel = self._per_dim(self.size, spatial_rank, "size")
        stride = self._per_dim(self.stride or self.size, spatial_rank, "stride")
        spatial: tuple[Dim, ...] = x.shape[1:]
        if self.padding == "same":
            pads = tuple(
                same_pads(n, k, s) for n, k, s in zip(spatial, kernel, stride, strict=True)
            )
        else:
            pads = ((0, 0),) * spatial_rank
        return Window(kernel, stride, pads)

    def _per_dim(self, values: tuple[int, ...], rank: int, key: str) -> tuple[int, ...]:
        if len(values) == 1:
            return values * rank
        if len(values) != rank:
            raise self.fail(f"'{key}' has {len(values)} values for {rank} spatial dims")
        return values

    def infer(self, ins: Sequence[TensorType]) -> TensorType:
        (x,) = ins
        self.expect_float(x)
        if x.rank not in (2, 3):
            raise self.fail(
                f"expects [channels, length] or [channels, height, width]. Received: {x}"
            )
        try:
            w = self.window(x)
            out = tuple(
                window_output(n, k, s, p)
                for n, k, s, p in zip(x.shape[1:], w.kernel, w.stride, w.pads, strict=True)
            )
        except ShapeError as exc:
            raise self.fail(exc.message) from None
        return x.with_shape((x.shape[0], *out))


class MaxPool(_Pool):
    op: Literal["maxpool"] = "maxpool"
    example: ClassVar[str] = "input x: [2, 6, 6]\n    maxpool(2)"
    summary: ClassVar[str] = "maximum over each window"


class AvgPool(_Pool):
    op: Literal["avgpool"] = "avgpool"
    example: ClassVar[str] = "input x: [2, 5, 5]\n    avgpool(2, padding = same)"
    summary: ClassVar[str] = "mean over the real (unpadded) elements of each window"


class SumPool(_Pool):
    op: Literal["sumpool"] = "sumpool"
    example: ClassVar[str] = "input x: [2, 6]\n    sumpool(3, stride = 2)"
    summary: ClassVar[str] = "sum over each window"


class GlobalAvgPool(Op):
    op: Literal["global_avg_pool"] = "global_avg_pool"
    example: ClassVar[str] = "input x: [3, 4, 4]\n    global_avg_pool"
    summary: ClassVar[str] = "mean over all spatial positions: [C, ...] -> [C]"

    def infer(self, ins: Sequence[TensorType]) -> TensorType:
        (x,) = ins
        self.expect_float(x)
        if x.rank not in (2, 3):
            raise self.fail(
                f"expects [channels, length] or [channels, height, width]. Received: {x}"
            )
        return x.with_shape((x.shape[0],))
