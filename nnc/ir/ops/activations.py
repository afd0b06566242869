"""Element-wise activations and the softmax family.

Each activation is an op of its own. Writing ``dense(5, activation = relu)`` is sugar
for ``dense(5) relu``: the IR always holds a separate activation node.
"""

from collections.abc import Callable, Sequence
from typing import ClassVar, Literal

from nnc.ir.base import Op, ParamSpec
from nnc.ir.initializers import Constant
from nnc.ir.types import Dim, TensorType


class _Activation(Op):
    category: ClassVar[str] = "activation"
    example: ClassVar[str] = "input x: [2, 5]\n    {op}"

    def infer(self, ins: Sequence[TensorType]) -> TensorType:
        (x,) = ins
        self.expect_float(x)
        return x


class Linear(_Activation):
    op: Literal["linear"] = "linear"
    summary: ClassVar[str] = "identity: y = x"
    onnx_imports_as: ClassVar[tuple[str, ...] | None] = ()  # the identity: nothing exported


class Step(_Activation):
    """Heaviside: ``y = 1 if x > 0 else 0``. Its gradient is straight-through
    (``dy/dx = 1``), so step + sse + sgd with batch 1 is Rosenblatt's perceptron rule."""

    op: Literal["step"] = "step"
    summary: ClassVar[str] = "Heaviside step (x > 0), straight-through gradient"


class Sigmoid(_Activation):
    op: Literal["sigmoid"] = "sigmoid"
    summary: ClassVar[str] = "logistic: 1 / (1 + exp(-x))"


class Tanh(_Activation):
    op: Literal["tanh"] = "tanh"
    summary: ClassVar[str] = "hyperbolic tangent"


class Relu(_Activation):
    op: Literal["relu"] = "relu"
    summary: ClassVar[str] = "max(x, 0)"


class LeakyRelu(_Activation):
    op: Literal["leaky_relu"] = "leaky_relu"
    alpha: float = 0.01
    positional: ClassVar[tuple[str, ...]] = ("alpha",)
    summary: ClassVar[str] = "x if x > 0 else alpha * x"


class Elu(_Activation):
    op: Literal["elu"] = "elu"
    alpha: float = 1.0
    positional: ClassVar[tuple[str, ...]] = ("alpha",)
    summary: ClassVar[str] = "x if x > 0 else alpha * (exp(x) - 1)"


class Selu(_Activation):
    """``scale * elu(x, alpha)`` with alpha = 1.6732632423543772,
    scale = 1.0507009873554805."""

    op: Literal["selu"] = "selu"
    summary: ClassVar[str] = "scaled elu with the self-normalizing constants"


class Gelu(_Activation):
    """The exact form ``x * Φ(x) = 0.5 x (1 + erf(x / √2))``."""

    op: Literal["gelu"] = "gelu"
    summary: ClassVar[str] = "x * Phi(x), exact erf form"


class Softplus(_Activation):
    op: Literal["softplus"] = "softplus"
    summary: ClassVar[str] = "log(1 + exp(x)), computed stably"


class Silu(_Activation):
    op: Literal["silu"] = "silu"
    summary: ClassVar[str] = "x * sigmoid(x) (swish)"


class PRelu(_Activation):
    """``x if x > 0 else alpha_c * x`` with a learned ``alpha [C]`` per channel (axis 0)."""

    op: Literal["prelu"] = "prelu"
    trainable: bool = True
    summary: ClassVar[str] = "leaky relu with a learned slope per channel (axis 0)"

    def infer(self, ins: Sequence[TensorType]) -> TensorType:
        (x,) = ins
        if x.rank == 0:
            raise self.fail(
                f"expects an input with a channel axis (axis 0) for its slopes. Received: {x}"
            )
        return super().infer(ins)

    def param_specs(self, ins: Sequence[TensorType]) -> tuple[ParamSpec, ...]:
        c = self.static_dim(ins[0].shape[0], "its channels")
        return (
            ParamSpec(
                name="alpha", shape=(c,), init=Constant(value=0.25), trainable=self.trainable
            ),
        )


class _SoftmaxFamily(_Activation):
    axis: int = -1
    positional: ClassVar[tuple[str, ...]] = ("axis",)

    def accumulation(
        self, ins: Sequence[TensorType], batch: int, steps: int, size: Callable[[Dim], int]
    ) -> int:
        return size(ins[0].shape[self.axis])

    def infer(self, ins: Sequence[TensorType]) -> TensorType:
        (x,) = ins
        self.expect_float(x)
        if not -x.rank <= self.axis < x.rank:
            raise self.fail(f"axis {self.axis} is out of range for {x}")
        return x


class Softmax(_SoftmaxFamily):
    op: Literal["softmax"] = "softmax"
    summary: ClassVar[str] = "exp(x) / sum(exp(x)) along an axis (default: last)"


class LogSoftmax(_SoftmaxFamily):
    op: Literal["log_softmax"] = "log_softmax"
    summary: ClassVar[str] = "x - logsumexp(x) along an axis (default: last)"
