"""Element-wise arithmetic with NumPy-style broadcasting, and constant tensors.

The binary ops (``add``, ``sub``, ``mul``, ``div``, ``pow``, ``maximum``,
``minimum``) broadcast their operands' per-sample shapes by NumPy's rule
(:mod:`nnc.ir.broadcast`); the batch axis is never broadcast against a sample axis.
One operand may be a number instead of a tensor: ``x * 0.5`` is ``mul`` with
``scalar = 0.5`` and one input, ``1 - g`` is ``sub`` with the scalar on the left.
``constant`` is a tensor from a literal; it has no inputs. docs/semantics.md
(Arithmetic) defines each op and its gradients.
"""

import math
from collections.abc import Sequence
from typing import Any, ClassVar, Literal

from pydantic import model_validator

from nnc.errors import ShapeError
from nnc.ir.base import Op
from nnc.ir.broadcast import broadcast_all
from nnc.ir.ops.activations import _Activation
from nnc.ir.types import FLOAT32_MAX, TensorType


def check_float32(value: float, what: str) -> None:
    """A number that float32 holds (finite, at most FLOAT32_MAX in magnitude)."""
    if not math.isfinite(value) or abs(value) > FLOAT32_MAX:
        raise ValueError(
            f"{what} {value!r} does not fit float32 (largest magnitude {FLOAT32_MAX:.7g})"
        )


class _Broadcasting(Op):
    """Shared shape rule: float32 operands whose per-sample shapes broadcast."""

    arity: ClassVar[int | None] = 2  # 1 with a number operand (expected_inputs)
    category: ClassVar[str] = "graph"
    symbol: ClassVar[str] = ""  # the infix operator, or "" for a call (pow, maximum...)

    scalar: float | None = None
    scalar_side: Literal["left", "right"] = "right"

    def expected_inputs(self) -> int | None:
        return 1 if self.scalar is not None else 2

    @model_validator(mode="after")
    def _fits(self) -> "_Broadcasting":
        if self.scalar is not None:
            check_float32(self.scalar, "the number")
        return self

    @property
    def label(self) -> str:
        return f"'{self.symbol}'" if self.symbol else self.op

    def infer(self, ins: Sequence[TensorType]) -> TensorType:
        for t in ins:
            if t.dtype != "float32":
                raise self.fail(
                    "expects float32 operands. Received: " + ", ".join(str(i) for i in ins)
                )
        try:
            shape = broadcast_all([t.shape for t in ins], self.span)
        except ShapeError as err:
            raise ShapeError(f"{self.label} {err.message}", self.span, hint=err.hint) from None
        return ins[0].with_shape(shape)

    def fail(self, message: str) -> ShapeError:
        return ShapeError(f"{self.label}: {message}", self.span)


class Add(_Broadcasting):
    """``a + b + ...``: the element-wise sum of two or more broadcasting tensors, or of
    one tensor and a number (``x + 1``)."""

    op: Literal["add"] = "add"
    symbol: ClassVar[str] = "+"
    arity: ClassVar[int | None] = None
    example: ClassVar[str] = "input x: [3, 4]\n    s = x |> mean(axis = 0)\n    output x + s + x"
    summary: ClassVar[str] = "element-wise sum, broadcasting (x + y, x + 1)"

    def expected_inputs(self) -> int | None:
        return 1 if self.scalar is not None else None


class Sub(_Broadcasting):
    op: Literal["sub"] = "sub"
    symbol: ClassVar[str] = "-"
    example: ClassVar[str] = (
        "input x: [3, 4]\n    m = x |> mean(axis = 1, keepdims = true)\n    output x - m"
    )
    summary: ClassVar[str] = "element-wise difference, broadcasting (x - y, 1 - x)"


class Mul(_Broadcasting):
    op: Literal["mul"] = "mul"
    symbol: ClassVar[str] = "*"
    example: ClassVar[str] = (
        "input x: [2, 3, 4]\n    g = x |> mean(axis = [0, 2], keepdims = true) |> sigmoid\n"
        "    output x * g"
    )
    summary: ClassVar[str] = "element-wise product, broadcasting (x * y, x * 0.5)"


# Denominators and bases kept away from 0: 1.5 + a sigmoid lies in (1.5, 2.5).
_AWAY_FROM_ZERO = "input x: [2, 3]\n    b = x |> mean(axis = 0) |> sigmoid\n    output {expr}"


class Div(_Broadcasting):
    op: Literal["div"] = "div"
    symbol: ClassVar[str] = "/"
    example: ClassVar[str] = _AWAY_FROM_ZERO.format(expr="x / (b + 1.5)")
    summary: ClassVar[str] = "element-wise quotient, broadcasting; IEEE for division by 0"


class Pow(_Broadcasting):
    """``pow(a, b) = a ** b``. d/da = b * a^(b-1); d/db = a^b * ln(a) where a > 0 and 0
    where a <= 0 (no real logarithm there)."""

    op: Literal["pow"] = "pow"
    positional: ClassVar[tuple[str, ...]] = ("scalar",)
    example: ClassVar[str] = (
        "input x: [2, 3]\n    e = x |> mean(axis = 0)\n    a = x |> sigmoid\n"
        "    output pow(a + 0.5, e)"
    )
    summary: ClassVar[str] = "a ** b, broadcasting; d/db is 0 where a <= 0"


class Maximum(_Broadcasting):
    """The larger of two operands; on a tie the gradient goes to the left operand."""

    op: Literal["maximum"] = "maximum"
    positional: ClassVar[tuple[str, ...]] = ("scalar",)
    example: ClassVar[str] = (
        "input x: [2, 3]\n    m = x |> mean(axis = 1, keepdims = true)\n    output maximum(x, m)"
    )
    summary: ClassVar[str] = "element-wise larger value, broadcasting; ties: gradient to a"


class Minimum(_Broadcasting):
    """The smaller of two operands; on a tie the gradient goes to the left operand."""

    op: Literal["minimum"] = "minimum"
    positional: ClassVar[tuple[str, ...]] = ("scalar",)
    example: ClassVar[str] = "input x: [2, 3]\n    s = x |> sum(axis = 0)\n    output minimum(s, x)"
    summary: ClassVar[str] = "element-wise smaller value, broadcasting; ties: gradient to a"


class Neg(_Activation):
    """``-x``."""

    op: Literal["neg"] = "neg"
    summary: ClassVar[str] = "-x"


def _nested_shape(value: Any, where: str = "") -> tuple[tuple[int, ...], list[float]]:
    """The shape and the row-major values of a number or a rectangular nested list."""
    if isinstance(value, bool):
        raise ValueError("a constant holds numbers, not booleans")
    if isinstance(value, int | float):
        return (), [float(value)]
    if not isinstance(value, list | tuple):
        raise ValueError(f"a constant holds numbers or lists of numbers. Received: {value!r}")
    if not value:
        raise ValueError("a constant cannot have an empty axis")
    parts = [_nested_shape(v) for v in value]
    inner = parts[0][0]
    for shape, _ in parts[1:]:
        if shape != inner:
            raise ValueError(
                "a constant must be rectangular: its rows have different shapes "
                f"({list(inner)} and {list(shape)})"
            )
    return (len(value), *inner), [x for _, values in parts for x in values]


class ConstantTensor(Op):
    """A tensor fixed by a literal: ``constant([[1, 0.5], [2, 3]])``, ``constant(0.5)``.

    Its per-sample type is the literal's shape (float32); ``value`` holds the numbers
    in row-major order. It has no inputs and does not depend on the batch: at run time
    every backend holds it with a leading batch axis of size 1, which broadcasts.
    """

    op: Literal["constant"] = "constant"
    value: tuple[float, ...]
    shape: tuple[int, ...] = ()

    arity: ClassVar[int | None] = 0
    category: ClassVar[str] = "graph"
    positional: ClassVar[tuple[str, ...]] = ("value",)
    example: ClassVar[str] = (
        "input x: [2, 3]\n    c = constant([[1, 0.5, -2], [0.25, 3, 1]])\n    output x * c"
    )
    summary: ClassVar[str] = "a constant float32 tensor from a literal (no inputs)"

    @model_validator(mode="before")
    @classmethod
    def _from_literal(cls, data: Any) -> Any:
        """A nested list (or a number) without ``shape``: its shape and flat values."""
        if isinstance(data, dict) and "shape" not in data and "value" in data:
            shape, values = _nested_shape(data["value"])
            return {**data, "value": tuple(values), "shape": shape}
        return data

    @model_validator(mode="after")
    def _consistent(self) -> "ConstantTensor":
        if any(d <= 0 for d in self.shape):
            raise ValueError(f"constant dims must be positive. Received: shape {self.shape}")
        if len(self.value) != math.prod(self.shape):
            raise ValueError(
                f"a constant of shape {list(self.shape)} holds {math.prod(self.shape)} "
                f"values. Received: {len(self.value)}"
            )
        for v in self.value:
            check_float32(v, "the constant value")
        return self

    def nested(self) -> Any:
        """The value as a nested list (a float for shape ())."""
        if not self.shape:
            return self.value[0]
        flat: list[Any] = list(self.value)
        for d in reversed(self.shape[1:]):
            flat = [flat[i : i + d] for i in range(0, len(flat), d)]
        return flat

    def infer(self, ins: Sequence[TensorType]) -> TensorType:
        return TensorType(dtype="float32", shape=self.shape)


BINARY_OPS: tuple[str, ...] = ("add", "sub", "mul", "div", "pow", "maximum", "minimum")
INFIX: dict[str, str] = {"+": "add", "-": "sub", "*": "mul", "/": "div"}
CALLED: frozenset[str] = frozenset({"pow", "maximum", "minimum"})
