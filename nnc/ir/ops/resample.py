"""Resampling the spatial dims: ``resize`` and the block rearrangements
``depth_to_space`` / ``space_to_depth``.

``resize`` has one coordinate rule per mode (see ``docs/semantics.md``):

- ``nearest``: ONNX ``asymmetric`` with ``nearest_mode = floor``: output index ``o``
  reads input ``floor(o / scale)``, so every input element is repeated ``scale`` times
  (torch ``F.interpolate(mode='nearest')`` with an integer scale);
- ``bilinear``: ONNX ``half_pixel`` (torch ``align_corners=False``): output ``o`` sits at
  input coordinate ``(o + 0.5) / scale - 0.5``, clamped to ``[0, n - 1]``; with
  ``align_corners = true``, at ``o * (n - 1) / (n * scale - 1)`` (ONNX ``align_corners``).

``depth_to_space`` and ``space_to_depth`` use the DCR order (ONNX's default and
TensorFlow's): channel ``(i * block + j) * C' + c`` holds the pixel at offset ``(i, j)``
of output channel ``c``.
"""

from collections.abc import Sequence
from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, field_validator

from nnc.ir.base import Op
from nnc.ir.types import TensorType, format_shape, mul_const

PositiveInt = Annotated[int, Field(gt=0)]


class Resize(Op):
    """Upsample ``[C, L]`` or ``[C, H, W]`` by an integer ``scale`` per spatial dim."""

    op: Literal["resize"] = "resize"
    scale: tuple[PositiveInt, ...] = (2,)
    mode: Literal["nearest", "bilinear"] = "nearest"
    align_corners: bool = False

    positional: ClassVar[tuple[str, ...]] = ("scale",)
    example: ClassVar[str] = "input x: [2, 3, 4]\n    resize(2, mode = bilinear)"
    summary: ClassVar[str] = (
        "upsample by an integer scale: nearest (asymmetric, floor) or bilinear (half-pixel)"
    )

    @field_validator("scale", mode="before")
    @classmethod
    def _tuple(cls, v: Any) -> Any:
        if isinstance(v, int) and not isinstance(v, bool):
            return (v,)
        return tuple(v) if isinstance(v, list) else v

    def scales(self, spatial_rank: int) -> tuple[int, ...]:
        """One scale per spatial dim."""
        if len(self.scale) == 1:
            return self.scale * spatial_rank
        if len(self.scale) != spatial_rank:
            raise self.fail(f"'scale' has {len(self.scale)} values for {spatial_rank} spatial dims")
        return self.scale

    def infer(self, ins: Sequence[TensorType]) -> TensorType:
        (x,) = ins
        self.expect_float(x)
        if x.rank not in (2, 3):
            raise self.fail(
                f"expects [channels, length] or [channels, height, width]. Received: {x}"
            )
        if self.align_corners and self.mode != "bilinear":
            raise self.fail("align_corners = true applies to mode = bilinear only")
        scales = self.scales(x.rank - 1)
        out = tuple(mul_const(n, s) for n, s in zip(x.shape[1:], scales, strict=True))
        return x.with_shape((x.shape[0], *out))


class _Blocks(Op):
    block: Annotated[int, Field(gt=1)]

    positional: ClassVar[tuple[str, ...]] = ("block",)

    def _image(self, x: TensorType) -> tuple[int, int, int]:
        """The static [C, H, W] of the input (a block move needs every dim)."""
        self.expect_float(x)
        if x.rank != 3:
            raise self.fail(f"expects [channels, height, width]. Received: {x}")
        c, h, w = x.shape
        return (
            self.static_dim(c, "its channels"),
            self.static_dim(h, "its height"),
            self.static_dim(w, "its width"),
        )


class DepthToSpace(_Blocks):
    """``[C * b², H, W] -> [C, H * b, W * b]`` in DCR order."""

    op: Literal["depth_to_space"] = "depth_to_space"
    example: ClassVar[str] = "input x: [8, 2, 3]\n    depth_to_space(2)"
    summary: ClassVar[str] = "move channel blocks into b x b pixel blocks (DCR order)"

    def infer(self, ins: Sequence[TensorType]) -> TensorType:
        (x,) = ins
        c, h, w = self._image(x)
        square = self.block * self.block
        if c % square:
            raise self.fail(
                f"channels {c} are not a multiple of block² = {square}. "
                f"Received: {format_shape(x.shape)}"
            )
        return x.with_shape((c // square, h * self.block, w * self.block))


class SpaceToDepth(_Blocks):
    """``[C, H * b, W * b] -> [C * b², H, W]``, the inverse of ``depth_to_space``."""

    op: Literal["space_to_depth"] = "space_to_depth"
    example: ClassVar[str] = "input x: [2, 4, 6]\n    space_to_depth(2)"
    summary: ClassVar[str] = "move b x b pixel blocks into channels (DCR order)"

    def infer(self, ins: Sequence[TensorType]) -> TensorType:
        (x,) = ins
        c, h, w = self._image(x)
        b = self.block
        if h % b or w % b:
            raise self.fail(
                f"height and width must be multiples of block {b}. "
                f"Received: {format_shape(x.shape)}"
            )
        return x.with_shape((c * b * b, h // b, w // b))
