"""Element-wise maths and the piecewise activations of mobile networks.

Each op is one function applied to every element (``docs/semantics.md``, Element-wise
maths). They are activations in the DSL's sense, so ``dense(8) relu6`` and
``dense(8, activation = hard_swish)`` work, and so does ``clip(x, 0.0, 6.0)``.
"""

from typing import ClassVar, Literal

from pydantic import model_validator

from nnc.ir.ops.activations import _Activation

# An example whose input is positive: the softplus of a normal draw lies in
# (0.02, 5) for |x| < 4, so log, sqrt and rsqrt stay in their domain and smooth.
_POSITIVE_EXAMPLE = "input x: [2, 5]\n    softplus\n    {op}"


class Exp(_Activation):
    op: Literal["exp"] = "exp"
    summary: ClassVar[str] = "e^x"


class Log(_Activation):
    op: Literal["log"] = "log"
    example: ClassVar[str] = _POSITIVE_EXAMPLE
    summary: ClassVar[str] = "natural logarithm (nan below 0, -inf at 0)"


class Sqrt(_Activation):
    op: Literal["sqrt"] = "sqrt"
    example: ClassVar[str] = _POSITIVE_EXAMPLE
    summary: ClassVar[str] = "square root (nan below 0)"


class Rsqrt(_Activation):
    op: Literal["rsqrt"] = "rsqrt"
    example: ClassVar[str] = _POSITIVE_EXAMPLE
    summary: ClassVar[str] = "1 / sqrt(x)"


class Abs(_Activation):
    op: Literal["abs"] = "abs"
    summary: ClassVar[str] = "|x|; its gradient at 0 is 0"


class Square(_Activation):
    op: Literal["square"] = "square"
    summary: ClassVar[str] = "x * x"


class Erf(_Activation):
    op: Literal["erf"] = "erf"
    summary: ClassVar[str] = "the error function 2/sqrt(pi) * integral of e^(-t^2) from 0 to x"


class Clip(_Activation):
    """``min(max(x, min), max)``. The gradient is 1 on the closed interval
    ``[min, max]`` (the bounds belong to the inside) and 0 outside."""

    op: Literal["clip"] = "clip"
    min: float
    max: float

    positional: ClassVar[tuple[str, ...]] = ("min", "max")
    example: ClassVar[str] = "input x: [2, 5]\n    clip(-0.5, 0.75)"
    summary: ClassVar[str] = "min(max(x, min), max); gradient 1 on [min, max] inclusive"

    @model_validator(mode="after")
    def _ordered(self) -> "Clip":
        if self.min > self.max:
            raise ValueError("'min' must not exceed 'max'")
        return self


class Relu6(_Activation):
    op: Literal["relu6"] = "relu6"
    example: ClassVar[str] = "input x: [2, 5]\n    {op}"
    summary: ClassVar[str] = "min(max(x, 0), 6); gradient 1 on the open interval (0, 6)"


class HardSigmoid(_Activation):
    op: Literal["hard_sigmoid"] = "hard_sigmoid"
    example: ClassVar[str] = "input x: [3, 4]\n    {op}"
    summary: ClassVar[str] = "relu6(x + 3) / 6 (PyTorch's and Keras 3's, ONNX alpha = 1/6)"


class HardSwish(_Activation):
    op: Literal["hard_swish"] = "hard_swish"
    example: ClassVar[str] = "input x: [3, 4]\n    {op}"
    summary: ClassVar[str] = "x * relu6(x + 3) / 6"


class Softsign(_Activation):
    op: Literal["softsign"] = "softsign"
    summary: ClassVar[str] = "x / (1 + |x|)"


class Mish(_Activation):
    op: Literal["mish"] = "mish"
    summary: ClassVar[str] = "x * tanh(softplus(x))"
