"""Normalization layers: batchnorm, layernorm, instancenorm, groupnorm and AlexNet's
local response norm."""

from collections.abc import Callable, Sequence
from typing import Annotated, ClassVar, Literal

from pydantic import Field

from nnc.ir.base import Op, ParamSpec
from nnc.ir.initializers import Ones, Zeros
from nnc.ir.types import Dim, TensorType, numel

PositiveFloat = Annotated[float, Field(gt=0)]


class BatchNorm(Op):
    """Normalize each channel (axis 0 of the sample) over the batch and spatial dims.

    Training uses the biased batch variance; the running statistics update as
    ``running = (1 - momentum) * running + momentum * batch`` with the *unbiased*
    batch variance (PyTorch's convention). Evaluation uses the running statistics.
    """

    op: Literal["batchnorm"] = "batchnorm"
    momentum: Annotated[float, Field(ge=0.0, le=1.0)] = 0.1
    eps: PositiveFloat = 1e-5
    trainable: bool = True

    example: ClassVar[str] = "input x: [3, 4, 4]\n    batchnorm"
    summary: ClassVar[str] = "batch normalization over axis 0 (channels)"

    centres_batch: ClassVar[bool] = True

    def accumulation(
        self, ins: Sequence[TensorType], batch: int, steps: int, size: Callable[[Dim], int]
    ) -> int:
        return batch * size(numel(ins[0].shape[1:]))

    def infer(self, ins: Sequence[TensorType]) -> TensorType:
        (x,) = ins
        self.expect_float(x)
        self.expect_rank(x, 1, 2, 3, 4)
        self.static_dim(x.shape[0], "its channels")
        return x

    def param_specs(self, ins: Sequence[TensorType]) -> tuple[ParamSpec, ...]:
        c = self.static_dim(ins[0].shape[0], "its channels")
        return (
            ParamSpec(name="weight", shape=(c,), init=Ones(), trainable=self.trainable),
            ParamSpec(name="bias", shape=(c,), init=Zeros(), trainable=self.trainable),
            ParamSpec(name="running_mean", shape=(c,), init=Zeros(), trainable=False, buffer=True),
            ParamSpec(name="running_var", shape=(c,), init=Ones(), trainable=False, buffer=True),
        )


class LayerNorm(Op):
    """Normalize each position over the last axis, then scale and shift."""

    op: Literal["layernorm"] = "layernorm"
    eps: PositiveFloat = 1e-5
    bias: bool = True  # false: scale only (torch's LayerNorm(bias=False))
    trainable: bool = True

    example: ClassVar[str] = "input x: [3, 5]\n    layernorm"
    summary: ClassVar[str] = "layer normalization over the last axis"

    def accumulation(
        self, ins: Sequence[TensorType], batch: int, steps: int, size: Callable[[Dim], int]
    ) -> int:
        return size(ins[0].shape[-1])

    def infer(self, ins: Sequence[TensorType]) -> TensorType:
        (x,) = ins
        self.expect_float(x)
        self.expect_rank(x, 1, 2, 3)
        self.static_dim(x.shape[-1], "its last axis")
        return x

    def param_specs(self, ins: Sequence[TensorType]) -> tuple[ParamSpec, ...]:
        d = self.static_dim(ins[0].shape[-1], "its last axis")
        weight = ParamSpec(name="weight", shape=(d,), init=Ones(), trainable=self.trainable)
        if not self.bias:
            return (weight,)
        return (weight, ParamSpec(name="bias", shape=(d,), init=Zeros(), trainable=self.trainable))


class _GroupedNorm(Op):
    """Normalize each sample over groups of channels and all positions, then scale and
    shift per channel:

    ``y[c, ...] = weight[c] * (x[c, ...] - mean_g) / sqrt(var_g + eps) + bias[c]``,
    the mean and the biased variance taken over the channels of c's group ``g`` and
    every spatial position, for each sample on its own (no running statistics).
    """

    eps: PositiveFloat = 1e-5
    trainable: bool = True

    ranks: ClassVar[tuple[int, ...]] = (1, 2, 3, 4)

    def accumulation(
        self, ins: Sequence[TensorType], batch: int, steps: int, size: Callable[[Dim], int]
    ) -> int:
        x = ins[0].shape
        return max(size(numel(x)), batch * size(numel(x[1:])))

    def channel_groups(self, channels: int) -> int:
        """How many groups the channels fall into."""
        return channels

    def infer(self, ins: Sequence[TensorType]) -> TensorType:
        (x,) = ins
        self.expect_float(x)
        self.expect_rank(x, *self.ranks)
        c = self.static_dim(x.shape[0], "its channels")
        if c % self.channel_groups(c):
            raise self.fail(f"{c} channels are not divisible by groups={self.channel_groups(c)}")
        return x

    def param_specs(self, ins: Sequence[TensorType]) -> tuple[ParamSpec, ...]:
        c = self.static_dim(ins[0].shape[0], "its channels")
        return (
            ParamSpec(name="weight", shape=(c,), init=Ones(), trainable=self.trainable),
            ParamSpec(name="bias", shape=(c,), init=Zeros(), trainable=self.trainable),
        )


class GroupNorm(_GroupedNorm):
    """torch.nn.GroupNorm: ``groups`` groups of ``C / groups`` consecutive channels."""

    op: Literal["groupnorm"] = "groupnorm"
    groups: Annotated[int, Field(gt=0)]

    positional: ClassVar[tuple[str, ...]] = ("groups",)
    example: ClassVar[str] = "input x: [4, 3, 3]\n    groupnorm(2)"
    summary: ClassVar[str] = "group normalization: per sample, over groups of channels"

    def channel_groups(self, channels: int) -> int:
        return self.groups


class InstanceNorm(_GroupedNorm):
    """One channel per group: each channel of each sample is normalized over its
    spatial positions (torch.nn.InstanceNorm*d(affine=True), ONNX
    InstanceNormalization)."""

    op: Literal["instancenorm"] = "instancenorm"

    example: ClassVar[str] = "input x: [3, 2, 4]\n    instancenorm"
    summary: ClassVar[str] = "instance normalization: per sample and channel"
    ranks: ClassVar[tuple[int, ...]] = (2, 3, 4)


class LocalResponseNorm(Op):
    """AlexNet's LRN across channels, in ONNX's convention (PyTorch's for odd sizes):

    ``y_c = x_c / (bias + alpha / size * sum_{c' in window(c)} x_c'^2) ** beta``, the
    window spanning ``size`` channels centred on ``c`` (``floor((size-1)/2)`` before,
    ``ceil((size-1)/2)`` after), zero-padded at the edges.
    """

    op: Literal["lrn"] = "lrn"
    size: Annotated[int, Field(gt=0)] = 5
    alpha: float = 1e-4
    beta: float = 0.75
    bias: float = 1.0

    positional: ClassVar[tuple[str, ...]] = ("size",)
    example: ClassVar[str] = "input x: [4, 3, 3]\n    lrn(3, alpha = 0.1)"
    summary: ClassVar[str] = "local response normalization across channels (AlexNet)"

    def infer(self, ins: Sequence[TensorType]) -> TensorType:
        (x,) = ins
        self.expect_float(x)
        self.expect_rank(x, 2, 3)
        return x
