"""Ops that only rearrange or mask values: flatten, reshape, dropout."""

import math
from collections.abc import Sequence
from typing import Annotated, ClassVar, Literal

from pydantic import Field, field_validator

from nnc.ir.base import Op
from nnc.ir.types import TensorType, numel


class Flatten(Op):
    """``[d0, d1, ...] -> [d0*d1*...]`` in row-major (channels-first) order."""

    op: Literal["flatten"] = "flatten"
    example: ClassVar[str] = "input x: [2, 3, 3]\n    flatten"
    summary: ClassVar[str] = "collapse all per-sample dims into one, channels-first order"

    def infer(self, ins: Sequence[TensorType]) -> TensorType:
        (x,) = ins
        return x.with_shape((numel(x.shape),))


class Reshape(Op):
    """Reshape each sample; one entry may be ``-1``."""

    op: Literal["reshape"] = "reshape"
    shape: tuple[int, ...]

    positional: ClassVar[tuple[str, ...]] = ("shape",)
    example: ClassVar[str] = "input x: [12]\n    reshape([3, -1])"
    summary: ClassVar[str] = "reshape each sample (row-major); one dim may be -1"

    @field_validator("shape")
    @classmethod
    def _valid(cls, v: tuple[int, ...]) -> tuple[int, ...]:
        if not v:
            raise ValueError("'shape' must have at least one dim")
        if sum(d == -1 for d in v) > 1 or any(d == 0 or d < -1 for d in v):
            raise ValueError(f"'shape' may hold positive dims and one -1, got {list(v)}")
        return v

    def infer(self, ins: Sequence[TensorType]) -> TensorType:
        (x,) = ins
        total = numel(x.shape)
        if isinstance(total, str):
            raise self.fail(
                f"cannot resolve symbolic dims of {x} to reshape them; reshape needs a static input"
            )
        known = math.prod(d for d in self.shape if d != -1)
        if -1 in self.shape:
            if total % known:
                raise self.fail(f"cannot reshape {x} ({total} values) to {list(self.shape)}")
            shape = tuple(total // known if d == -1 else d for d in self.shape)
        else:
            if known != total:
                raise self.fail(f"cannot reshape {x} ({total} values) to {list(self.shape)}")
            shape = self.shape
        return x.with_shape(shape)


class Dropout(Op):
    """Inverted dropout: in training, zero with probability ``rate`` and scale by
    ``1/(1-rate)``; identity in evaluation."""

    op: Literal["dropout"] = "dropout"
    rate: Annotated[float, Field(ge=0.0, lt=1.0)]

    positional: ClassVar[tuple[str, ...]] = ("rate",)
    example: ClassVar[str] = "input x: [6]\n    dropout(0.5)"
    summary: ClassVar[str] = "inverted dropout (identity at inference)"
    onnx_imports_as: ClassVar[tuple[str, ...] | None] = ()  # the identity: nothing exported

    def infer(self, ins: Sequence[TensorType]) -> TensorType:
        (x,) = ins
        self.expect_float(x)
        return x
