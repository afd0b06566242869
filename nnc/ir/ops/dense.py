"""Fully connected and embedding layers."""

from collections.abc import Callable, Sequence
from typing import Annotated, ClassVar, Literal

from pydantic import Field, model_validator

from nnc.ir.base import Op, ParamSpec, check_bias_flags
from nnc.ir.initializers import GlorotUniform, Init, Uniform, Zeros
from nnc.ir.types import Dim, TensorType, numel

PositiveInt = Annotated[int, Field(gt=0)]


class Dense(Op):
    """``y = x Wᵀ + b`` over the last axis; ``weight`` is ``[out, in]``."""

    op: Literal["dense"] = "dense"
    units: PositiveInt
    bias: bool = True
    init: Init = GlorotUniform()
    bias_init: Init = Zeros()
    trainable: bool = True
    bias_trainable: bool = True  # false: the bias keeps its initial value (weights train)

    positional: ClassVar[tuple[str, ...]] = ("units",)
    example: ClassVar[str] = "input x: [6]\n    dense(4)"
    summary: ClassVar[str] = "fully connected layer: y = x W^T + b"

    channel_axis: ClassVar[int | None] = -1
    weight_channel_axis: ClassVar[int | None] = 0
    channels_field: ClassVar[str] = "units"
    folds_batchnorm: ClassVar[bool] = True

    def accumulation(
        self, ins: Sequence[TensorType], batch: int, steps: int, size: Callable[[Dim], int]
    ) -> int:
        return max(size(ins[0].shape[-1]), batch)  # weight gradients sum over the batch

    def macs(self, ins: Sequence[TensorType]) -> int | None:
        n = numel(ins[0].shape)
        return n * self.units if isinstance(n, int) else None

    def infer(self, ins: Sequence[TensorType]) -> TensorType:
        (x,) = ins
        self.expect_float(x)
        if x.rank not in (1, 2):
            raise self.fail(
                f"expects a vector [features] or a sequence [t, features]. Received: {x}"
                + ("; insert flatten after convolution or pooling layers" if x.rank > 2 else "")
            )
        self.static_dim(x.shape[-1], "its input features")
        return x.with_shape((*x.shape[:-1], self.units))

    @model_validator(mode="after")
    def _bias_flags(self) -> "Dense":
        check_bias_flags(self.bias, self.bias_trainable)
        return self

    def param_specs(self, ins: Sequence[TensorType]) -> tuple[ParamSpec, ...]:
        n_in = self.static_dim(ins[0].shape[-1], "its input features")
        specs = [
            ParamSpec(
                name="weight",
                shape=(self.units, n_in),
                init=self.init,
                fan_in=n_in,
                fan_out=self.units,
                trainable=self.trainable,
                decay=True,
            )
        ]
        if self.bias:
            specs.append(
                ParamSpec(
                    name="bias",
                    shape=(self.units,),
                    init=self.bias_init,
                    trainable=self.trainable and self.bias_trainable,
                )
            )
        return tuple(specs)


class Embedding(Op):
    """Row lookup: ``int64[t]`` indices into ``weight [vocab, dim]`` give ``[t, dim]``."""

    op: Literal["embedding"] = "embedding"
    vocab: PositiveInt
    dim: PositiveInt
    init: Init = Uniform(lo=-0.05, hi=0.05)
    trainable: bool = True

    positional: ClassVar[tuple[str, ...]] = ("vocab", "dim")
    example: ClassVar[str] = "input tokens: int64[5]\n    embedding(7, 3)"
    summary: ClassVar[str] = "lookup table of learned vectors for integer ids"

    def infer(self, ins: Sequence[TensorType]) -> TensorType:
        (x,) = ins
        if x.dtype != "int64":
            raise self.fail(f"expects int64 indices (declare the input as int64[t]). Received: {x}")
        self.expect_rank(x, 1)
        return TensorType(shape=(*x.shape, self.dim))

    def param_specs(self, ins: Sequence[TensorType]) -> tuple[ParamSpec, ...]:
        return (
            ParamSpec(
                name="weight",
                shape=(self.vocab, self.dim),
                init=self.init,
                fan_in=self.vocab,
                fan_out=self.dim,
                trainable=self.trainable,
                decay=True,
            ),
        )
