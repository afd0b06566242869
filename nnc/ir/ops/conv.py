"""Convolutions: conv1d, conv2d, conv3d and conv2d_transpose, all channels-first.

Spatial attributes are stored as full tuples (``kernel=3`` on conv2d is ``(3, 3)``).
Explicit padding is stored in ONNX order: all begin pads, then all end pads.
"""

import math
from collections.abc import Callable, Sequence
from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from nnc.errors import ShapeError
from nnc.ir.base import Op, ParamSpec, check_bias_flags
from nnc.ir.initializers import GlorotUniform, Init, Zeros
from nnc.ir.shapes import same_pads, transpose_output, transpose_same_pads, window_output
from nnc.ir.types import Dim, TensorType, numel

PositiveInt = Annotated[int, Field(gt=0)]
Padding = Literal["same", "valid"] | tuple[int, ...]
LAYOUTS = {
    1: "[channels, length]",
    2: "[channels, height, width]",
    3: "[channels, depth, height, width]",
}


def _expand(value: Any, rank: int) -> Any:
    return (value,) * rank if isinstance(value, int) and not isinstance(value, bool) else value


def _expand_padding(value: Any, rank: int) -> Any:
    """``1`` -> all sides; ``[1, 2]`` (per dim, symmetric) -> begin and end pads."""
    if isinstance(value, int) and not isinstance(value, bool):
        return (value,) * (2 * rank)
    if isinstance(value, list | tuple) and len(value) == rank and rank > 1:
        return (*value, *value)
    if isinstance(value, list | tuple) and rank == 1 and len(value) == 1:
        return (value[0], value[0])
    return value


class _Conv(Op):
    """Cross-correlation (kernels are never flipped) with a ``[out, in/groups, *k]`` weight."""

    rank: ClassVar[int] = 2

    filters: PositiveInt
    kernel: tuple[PositiveInt, ...]
    stride: tuple[PositiveInt, ...] = ()
    padding: Padding = "valid"
    dilation: tuple[PositiveInt, ...] = ()
    groups: PositiveInt = 1
    bias: bool = True
    init: Init = GlorotUniform()
    bias_init: Init = Zeros()
    trainable: bool = True
    bias_trainable: bool = True  # false: the bias keeps its initial value (weights train)

    positional: ClassVar[tuple[str, ...]] = ("filters", "kernel")

    channel_axis: ClassVar[int | None] = 0
    weight_channel_axis: ClassVar[int | None] = 0
    channels_field: ClassVar[str] = "filters"

    def accumulation(
        self, ins: Sequence[TensorType], batch: int, steps: int, size: Callable[[Dim], int]
    ) -> int:
        c = size(ins[0].shape[0]) // self.groups
        return max(c * math.prod(self.kernel), batch * size(numel(self.type.shape)))

    def macs(self, ins: Sequence[TensorType]) -> int | None:
        out = numel(self.type.shape)
        channels = ins[0].shape[0]
        if not isinstance(out, int) or not isinstance(channels, int):
            return None
        return out * (channels // self.groups) * math.prod(self.kernel)

    @field_validator("kernel", "stride", "dilation", mode="before")
    @classmethod
    def _spatial(cls, v: Any) -> Any:
        return _expand(v, cls.rank)

    @field_validator("padding", mode="before")
    @classmethod
    def _pads(cls, v: Any) -> Any:
        return _expand_padding(v, cls.rank)

    @model_validator(mode="after")
    def _lengths(self) -> "_Conv":
        for key in ("kernel", "stride", "dilation"):
            if len(getattr(self, key)) != self.rank:
                raise ValueError(f"'{key}' needs {self.rank} value(s), got {getattr(self, key)}")
        if isinstance(self.padding, tuple) and (
            len(self.padding) != 2 * self.rank or min(self.padding) < 0
        ):
            raise ValueError(
                f"explicit 'padding' needs {self.rank} or {2 * self.rank} non-negative ints, "
                f"got {list(self.padding)}"
            )
        if self.filters % self.groups:
            raise ValueError(f"filters={self.filters} is not divisible by groups={self.groups}")
        check_bias_flags(self.bias, self.bias_trainable)
        return self

    def pads(self, spatial: Sequence[Dim]) -> tuple[tuple[int, int], ...]:
        """(begin, end) padding per spatial dim, resolving ``same``."""
        if self.padding == "valid":
            return ((0, 0),) * self.rank
        if self.padding == "same":
            return tuple(
                same_pads(size, k, s, d)
                for size, k, s, d in zip(
                    spatial, self.kernel, self.stride, self.dilation, strict=True
                )
            )
        p = self.padding
        return tuple((p[i], p[i + self.rank]) for i in range(self.rank))

    def infer(self, ins: Sequence[TensorType]) -> TensorType:
        (x,) = ins
        self.expect_float(x)
        if x.rank != self.rank + 1:
            raise self.fail(
                f"expects a rank-{self.rank + 1} input {LAYOUTS[self.rank]}. Received: {x}"
            )
        channels = self.static_dim(x.shape[0], "its input channels")
        if channels % self.groups:
            raise self.fail(f"input channels {channels} are not divisible by groups={self.groups}")
        spatial = x.shape[1:]
        try:
            out = tuple(
                window_output(size, k, s, pad, d)
                for size, k, s, pad, d in zip(
                    spatial,
                    self.kernel,
                    self.stride,
                    self.pads(spatial),
                    self.dilation,
                    strict=True,
                )
            )
        except ShapeError as exc:  # from the arithmetic: re-raise with this node's span
            raise self.fail(exc.message) from None
        return TensorType(shape=(self.filters, *out))

    def param_specs(self, ins: Sequence[TensorType]) -> tuple[ParamSpec, ...]:
        channels = self.static_dim(ins[0].shape[0], "its input channels")
        receptive = math.prod(self.kernel)
        specs = [
            ParamSpec(
                name="weight",
                shape=(self.filters, channels // self.groups, *self.kernel),
                init=self.init,
                fan_in=channels // self.groups * receptive,
                fan_out=self.filters * receptive,
                trainable=self.trainable,
                decay=True,
            )
        ]
        if self.bias:
            specs.append(
                ParamSpec(
                    name="bias",
                    shape=(self.filters,),
                    init=self.bias_init,
                    trainable=self.trainable and self.bias_trainable,
                )
            )
        return tuple(specs)


class Conv1d(_Conv):
    op: Literal["conv1d"] = "conv1d"
    stride: tuple[PositiveInt, ...] = (1,)
    dilation: tuple[PositiveInt, ...] = (1,)
    rank: ClassVar[int] = 1
    folds_batchnorm: ClassVar[bool] = True
    example: ClassVar[str] = "input x: [2, 9]\n    conv1d(3, 3, padding = same)"
    summary: ClassVar[str] = "1-D convolution over [channels, length]"


class Conv2d(_Conv):
    op: Literal["conv2d"] = "conv2d"
    stride: tuple[PositiveInt, ...] = (1, 1)
    dilation: tuple[PositiveInt, ...] = (1, 1)
    rank: ClassVar[int] = 2
    folds_batchnorm: ClassVar[bool] = True
    example: ClassVar[str] = "input x: [2, 7, 7]\n    conv2d(3, 3, stride = 2, padding = same)"
    summary: ClassVar[str] = "2-D convolution over [channels, height, width]"


class Conv3d(_Conv):
    op: Literal["conv3d"] = "conv3d"
    stride: tuple[PositiveInt, ...] = (1, 1, 1)
    dilation: tuple[PositiveInt, ...] = (1, 1, 1)
    rank: ClassVar[int] = 3
    example: ClassVar[str] = (
        "input x: [2, 4, 5, 5]\n    conv3d(3, 3, stride = [1, 2, 2], padding = same)"
    )
    summary: ClassVar[str] = "3-D convolution over [channels, depth, height, width]"


class Conv2dTranspose(Op):
    """Transposed convolution; ``weight`` is ``[in, out, kh, kw]`` (PyTorch and ONNX).

    ``padding`` crops the full output: ``valid`` crops nothing, ``same`` gives
    ``out = in * stride``, explicit ints crop (top, left, bottom, right).
    """

    op: Literal["conv2d_transpose"] = "conv2d_transpose"
    filters: PositiveInt
    kernel: tuple[PositiveInt, PositiveInt]
    stride: tuple[PositiveInt, PositiveInt] = (1, 1)
    padding: Padding = "valid"
    output_padding: tuple[int, int] = (0, 0)
    bias: bool = True
    init: Init = GlorotUniform()
    bias_init: Init = Zeros()
    trainable: bool = True

    positional: ClassVar[tuple[str, ...]] = ("filters", "kernel")
    example: ClassVar[str] = (
        "input x: [3, 4, 4]\n    conv2d_transpose(2, 3, stride = 2, padding = same)"
    )
    summary: ClassVar[str] = "transposed (fractionally strided) 2-D convolution"

    channel_axis: ClassVar[int | None] = 0
    weight_channel_axis: ClassVar[int | None] = 1  # the out of its [in, out, kh, kw] weight
    channels_field: ClassVar[str] = "filters"
    folds_batchnorm: ClassVar[bool] = True

    def accumulation(
        self, ins: Sequence[TensorType], batch: int, steps: int, size: Callable[[Dim], int]
    ) -> int:
        x = ins[0].shape
        return max(size(x[0]) * math.prod(self.kernel), batch * size(numel(x)))

    def macs(self, ins: Sequence[TensorType]) -> int | None:
        n = numel(ins[0].shape)
        return n * self.filters * math.prod(self.kernel) if isinstance(n, int) else None

    @field_validator("kernel", "stride", "output_padding", mode="before")
    @classmethod
    def _spatial(cls, v: Any) -> Any:
        return _expand(v, 2)

    @field_validator("padding", mode="before")
    @classmethod
    def _pads(cls, v: Any) -> Any:
        return _expand_padding(v, 2)

    @model_validator(mode="after")
    def _check(self) -> "Conv2dTranspose":
        if isinstance(self.padding, tuple) and (len(self.padding) != 4 or min(self.padding) < 0):
            raise ValueError(
                f"explicit 'padding' needs 2 or 4 non-negative ints, got {list(self.padding)}"
            )
        for op_, s in zip(self.output_padding, self.stride, strict=True):
            if not 0 <= op_ < s:
                raise ValueError(
                    f"'output_padding' must be in [0, stride), got {op_} for stride {s}"
                )
        return self

    def pads(self) -> tuple[tuple[int, int], ...]:
        """(begin, end) crop per spatial dim."""
        if self.padding == "valid":
            return ((0, 0), (0, 0))
        if self.padding == "same":
            return tuple(
                transpose_same_pads(k, s) for k, s in zip(self.kernel, self.stride, strict=True)
            )
        p = self.padding
        return ((p[0], p[2]), (p[1], p[3]))

    def infer(self, ins: Sequence[TensorType]) -> TensorType:
        (x,) = ins
        self.expect_float(x)
        if x.rank != 3:
            raise self.fail(f"expects a rank-3 input [channels, height, width]. Received: {x}")
        self.static_dim(x.shape[0], "its input channels")
        try:
            pads = self.pads()
            out = tuple(
                transpose_output(size, k, s, pad, op_)
                for size, k, s, pad, op_ in zip(
                    x.shape[1:], self.kernel, self.stride, pads, self.output_padding, strict=True
                )
            )
        except ShapeError as exc:
            raise self.fail(exc.message) from None
        return TensorType(shape=(self.filters, *out))

    def param_specs(self, ins: Sequence[TensorType]) -> tuple[ParamSpec, ...]:
        channels = self.static_dim(ins[0].shape[0], "its input channels")
        receptive = math.prod(self.kernel)
        specs = [
            ParamSpec(
                name="weight",
                shape=(channels, self.filters, *self.kernel),
                init=self.init,
                fan_in=channels * receptive,
                fan_out=self.filters * receptive,
                trainable=self.trainable,
                decay=True,
            )
        ]
        if self.bias:
            specs.append(
                ParamSpec(
                    name="bias",
                    shape=(self.filters,),
                    init=self.bias_init,
                    trainable=self.trainable,
                )
            )
        return tuple(specs)
