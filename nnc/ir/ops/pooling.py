"""Pooling over the spatial dims of ``[C, L]``, ``[C, H, W]`` or ``[C, D, H, W]`` inputs.

Output sizes floor unless ``ceil_mode``. ``same`` padding is TF-style (extra pad at
the end); explicit padding is ``[b0, b1, ..., e0, e1, ...]`` (ONNX order), one value
for every side or one per dim (symmetric). ``ceil_mode`` keeps the windows that start
inside the input or the begin padding (torch's rule, and ONNX's): it is extra end
padding, which :meth:`_Pool.window` folds into the pads. Max pooling ignores padding;
average pooling divides by the number of *real* elements in each window (padding of
any kind is never counted: ``count_include_pad = false``); sum pooling adds the real
elements.
"""

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Literal, NoReturn

from pydantic import Field, field_validator

from nnc.errors import ShapeError
from nnc.ir.base import Op
from nnc.ir.ops.conv import LAYOUTS
from nnc.ir.shapes import ceil_mode_extra, same_pads, window_output
from nnc.ir.types import Dim, TensorType, numel

PositiveInt = Annotated[int, Field(gt=0)]


@dataclass(frozen=True)
class Window:
    """Resolved pooling geometry for one input type; ``pads`` include ceil mode's."""

    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    pads: tuple[tuple[int, int], ...]
    dilation: tuple[int, ...] = ()

    @property
    def dilations(self) -> tuple[int, ...]:
        return self.dilation or (1,) * len(self.kernel)


def _as_tuple(v: Any) -> Any:
    if isinstance(v, int) and not isinstance(v, bool):
        return (v,)
    return tuple(v) if isinstance(v, list) else v


def _canonical_padding(v: Any) -> Any:
    """Explicit pads in their shortest spelling: one value when every side agrees, the
    begin half when the ends repeat it (as ``nnc fmt`` writes them)."""
    v = _as_tuple(v)
    if not isinstance(v, tuple) or not v:
        return v
    if len(set(v)) == 1:
        return v[:1]
    half = len(v) // 2
    if len(v) % 2 == 0 and half > 1 and v[:half] == v[half:]:
        return v[:half]
    return v


class _Pool(Op):
    """``size``, ``stride`` and ``dilation`` hold one value (used for every spatial dim)
    or one per dim."""

    size: tuple[PositiveInt, ...]
    stride: tuple[PositiveInt, ...] = ()
    padding: Literal["valid", "same"] | tuple[Annotated[int, Field(ge=0)], ...] = "valid"
    dilation: tuple[PositiveInt, ...] = (1,)
    ceil_mode: bool = False

    positional: ClassVar[tuple[str, ...]] = ("size", "stride")
    spatial_ranks: ClassVar[tuple[int, ...]] = (1, 2)

    def accumulation(
        self, ins: Sequence[TensorType], batch: int, steps: int, size: Callable[[Dim], int]
    ) -> int:
        return size(numel(ins[0].shape[1:]))

    @field_validator("size", "stride", "dilation", mode="before")
    @classmethod
    def _tuple(cls, v: Any) -> Any:
        """One value when every dim agrees (``[2, 2]`` is ``2``), as ``nnc fmt`` writes
        it, so that the formatted text reads back as the same node."""
        v = _as_tuple(v)
        if isinstance(v, tuple) and len(v) > 1 and len(set(v)) == 1:
            return v[:1]
        return v

    @field_validator("padding", mode="before")
    @classmethod
    def _pads(cls, v: Any) -> Any:
        return _canonical_padding(v)

    def window(self, x: TensorType) -> Window:
        spatial_rank = x.rank - 1
        kernel = self._per_dim(self.size, spatial_rank, "size")
        stride = self._per_dim(self.stride or self.size, spatial_rank, "stride")
        dilation = self._per_dim(self.dilation, spatial_rank, "dilation")
        spatial: tuple[Dim, ...] = x.shape[1:]
        if self.padding == "same":
            pads = tuple(
                same_pads(n, k, s, d)
                for n, k, s, d in zip(spatial, kernel, stride, dilation, strict=True)
            )
        elif self.padding == "valid":
            pads = ((0, 0),) * spatial_rank
        else:
            pads = self._explicit(self.padding, kernel, dilation)
        if self.ceil_mode:
            pads = tuple(
                (b, e + ceil_mode_extra(n, k, s, (b, e), d))
                for n, k, s, (b, e), d in zip(spatial, kernel, stride, pads, dilation, strict=True)
            )
        return Window(kernel, stride, pads, dilation if any(d != 1 for d in dilation) else ())

    def _explicit(
        self, padding: tuple[int, ...], kernel: tuple[int, ...], dilation: tuple[int, ...]
    ) -> tuple[tuple[int, int], ...]:
        rank = len(kernel)
        if len(padding) == 1:
            padding = padding * (2 * rank)
        elif len(padding) == rank and rank > 1:
            padding = padding * 2
        elif len(padding) != 2 * rank:
            raise ShapeError(
                f"explicit 'padding' needs 1, {rank} or {2 * rank} values for {rank} spatial "
                f"dim(s) ([begins..., ends...], ONNX order). Received: {list(padding)}"
            )
        pads = tuple((padding[i], padding[i + rank]) for i in range(rank))
        for (b, e), k, d in zip(pads, kernel, dilation, strict=True):
            if max(b, e) >= (k - 1) * d + 1:
                raise ShapeError(
                    f"a pad must be smaller than the window ({(k - 1) * d + 1}), so that no "
                    f"window lies wholly in the padding. Received: padding = {list(padding)}"
                )
        return pads

    def _per_dim(self, values: tuple[int, ...], rank: int, key: str) -> tuple[int, ...]:
        if len(values) == 1:
            return values * rank
        if len(values) != rank:
            raise ShapeError(f"'{key}' has {len(values)} values for {rank} spatial dims")
        return values

    def infer(self, ins: Sequence[TensorType]) -> TensorType:
        (x,) = ins
        self.expect_float(x)
        if x.rank - 1 not in self.spatial_ranks:
            layouts = " or ".join(LAYOUTS[r] for r in self.spatial_ranks)
            error = self.fail(f"expects {layouts}. Received: {x}")
            if x.rank == 4 and self.op in ("maxpool", "avgpool"):
                error.hint = f"use {self.op}3d to pool [channels, depth, height, width]"
            elif x.rank in (2, 3) and 3 in self.spatial_ranks:
                error.hint = f"use {self.op[:-2]} to pool over 1 or 2 spatial dims"
            raise error
        try:
            w = self.window(x)
            out = tuple(
                window_output(n, k, s, p, d)
                for n, k, s, p, d in zip(
                    x.shape[1:], w.kernel, w.stride, w.pads, w.dilations, strict=True
                )
            )
            for axis, (n, size) in enumerate(zip(x.shape[1:], out, strict=True)):
                _every_window_reads_the_input(axis, n, size, w)
        except ShapeError as exc:
            raise self.fail(exc.message) from None
        return x.with_shape((x.shape[0], *out))


# The most windows starting in the begin padding that the check below walks through.
MAX_PADDED_WINDOWS = 2**20


def _every_window_reads_the_input(axis: int, n: Dim, out: Dim, w: Window) -> None:
    """A dilated window's taps may straddle a short input, every one in the padding:
    such a window has no element to take the maximum or the average of.

    A window starting at 0..n-1 has its first tap inside; one starting at or after n
    (in an end padding of a kernel's length) has none. Before the input, window i starts
    u = begin - i*s before the input; its first tap at or after 0 is tap ceil(u/d),
    which exists while u <= (k-1)*d and lands inside while its offset (-u mod d) < n.
    That offset repeats every d / gcd(s, d) windows, with u smaller (the first test
    easier), so no later window misses unless an earlier one does: the walk is over
    at most that many windows, whatever the input's length."""
    if not isinstance(n, int) or not isinstance(out, int):
        return
    k, s, d, (begin, _end) = w.kernel[axis], w.stride[axis], w.dilations[axis], w.pads[axis]
    walk = min(out, -(-begin // s), d // math.gcd(s, d))
    if begin > (k - 1) * d:
        walk = 1  # window 0's every tap is in the padding
    elif n >= d:
        walk = 0  # every offset lands inside
    for i in range(min(walk, MAX_PADDED_WINDOWS)):
        u = begin - i * s
        first = -(-u // d)  # the first tap at or after position 0
        if first > k - 1 or first * d - u >= n:
            _padding_only(axis, i, -u, n, w)
    if walk > MAX_PADDED_WINDOWS:
        raise ShapeError(
            f"spatial dim {axis}: {walk:,} windows of dilation {d} start in a begin "
            f"padding of {begin}, more than the {MAX_PADDED_WINDOWS:,} nnc checks: "
            "use less padding or dilation"
        )
    past = -(-(n + begin) // s)  # the first window starting at or after position n
    if past < out:
        _padding_only(axis, past, past * s - begin, n, w)


def _padding_only(axis: int, i: int, start: int, n: int, w: Window) -> NoReturn:
    k, d = w.kernel[axis], w.dilations[axis]
    taps = ", ".join([str(start + j * d) for j in range(min(k, 6))] + ["..."] * (k > 6))
    raise ShapeError(
        f"window {i} of spatial dim {axis} reads only padding (taps at [{taps}], the "
        f"input has positions 0..{n - 1}): use less padding or dilation"
    )


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


class MaxPool3d(MaxPool):
    op: Literal["maxpool3d"] = "maxpool3d"  # type: ignore[assignment]
    spatial_ranks: ClassVar[tuple[int, ...]] = (3,)
    example: ClassVar[str] = "input x: [2, 4, 5, 5]\n    maxpool3d(2, stride = [1, 2, 2])"
    summary: ClassVar[str] = "maximum over each window of [channels, depth, height, width]"


class AvgPool3d(AvgPool):
    op: Literal["avgpool3d"] = "avgpool3d"  # type: ignore[assignment]
    spatial_ranks: ClassVar[tuple[int, ...]] = (3,)
    example: ClassVar[str] = (
        "input x: [2, 3, 4, 5]\n    avgpool3d(2, stride = 1, padding = [1, 0, 0, 0, 1, 1])"
    )
    summary: ClassVar[str] = "mean over the real elements of each window of [C, D, H, W]"


class GlobalAvgPool(Op):
    op: Literal["global_avg_pool"] = "global_avg_pool"
    example: ClassVar[str] = "input x: [3, 4, 4]\n    global_avg_pool"
    summary: ClassVar[str] = "mean over all spatial positions: [C, ...] -> [C]"

    def accumulation(
        self, ins: Sequence[TensorType], batch: int, steps: int, size: Callable[[Dim], int]
    ) -> int:
        return size(numel(ins[0].shape[1:]))

    def infer(self, ins: Sequence[TensorType]) -> TensorType:
        (x,) = ins
        self.expect_float(x)
        if x.rank not in (2, 3, 4):
            layouts = " or ".join(LAYOUTS.values())
            raise self.fail(f"expects {layouts}. Received: {x}")
        return x.with_shape((x.shape[0],))
