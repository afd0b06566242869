"""Linear algebra inside a graph: ``matmul`` (``a @ b``) and the learned tensor ``param``.

``matmul`` is NumPy's ``matmul`` on per-sample shapes (the batch axis is implicit and
never taken as a matrix row): a rank-1 operand is a vector (a row on the left, a
column on the right, the added axis removed from the result), the last two axes are
the matrices and the leading axes broadcast as NumPy broadcasts.

``param(shape, init = glorot_uniform)`` is a node with no tensor input whose value is
one parameter, ``<node>.value``. Its initializer sees ``fan_in = shape[-2]`` and
``fan_out = shape[-1]`` (a matrix that right-multiplies, as a dense kernel
``[in, out]``; leading axes are a stack of such matrices and do not count), and
``fan_in = fan_out = shape[0]`` for a vector. L2 decay applies to params of rank 2
and above (weights), not to vectors (biases, scales).
"""

from collections.abc import Sequence
from typing import Annotated, ClassVar, Literal

from pydantic import Field

from nnc.errors import ShapeError
from nnc.ir.base import Op, ParamSpec
from nnc.ir.broadcast import broadcast_shapes
from nnc.ir.initializers import GlorotUniform, Init
from nnc.ir.types import Dim, TensorType, format_shape, numel

PositiveInt = Annotated[int, Field(gt=0)]


def matmul_shape(a: tuple[Dim, ...], b: tuple[Dim, ...]) -> tuple[Dim, ...] | None:
    """The per-sample result shape of ``a @ b``, or None when the inner dims differ
    (the broadcast of the leading axes raises its own ShapeError).

    >>> matmul_shape((3, 4), (4, 5)), matmul_shape((4,), (2, 4, 5)), matmul_shape((4,), (4,))
    ((3, 5), (2, 5), ())
    """
    left = (1, *a) if len(a) == 1 else a
    right = (*b, 1) if len(b) == 1 else b
    if left[-1] != right[-2]:
        return None
    lead = broadcast_shapes(left[:-2], right[:-2])
    out: tuple[Dim, ...] = (*lead, left[-2], right[-1])
    if len(b) == 1:
        out = out[:-1]
    if len(a) == 1:
        out = (*out[:-2], out[-1]) if len(b) != 1 else out[:-1]
    return out


class Matmul(Op):
    """``a @ b``: NumPy's matmul on per-sample shapes (vectors and broadcasting)."""

    op: Literal["matmul"] = "matmul"
    arity: ClassVar[int | None] = 2
    category: ClassVar[str] = "graph"
    example: ClassVar[str] = (
        "input x: [3, 4]\n    y = x |> dense(3)\n    output matmul(y, x |> dense(2))"
    )
    summary: ClassVar[str] = "matrix product a @ b, batched and broadcast like np.matmul"

    def macs(self, ins: Sequence[TensorType]) -> int | None:
        """Each output element is a dot product over the inner dim k."""
        k, n = ins[0].shape[-1], numel(self.type.shape)
        return n * k if isinstance(k, int) and isinstance(n, int) else None

    def infer(self, ins: Sequence[TensorType]) -> TensorType:
        a, b = ins
        for t in (a, b):
            self.expect_float(t)
        if a.rank == 0 or b.rank == 0:
            raise self.fail(
                f"'@' needs operands of rank 1 or more. Received: {format_shape(a.shape)} "
                f"@ {format_shape(b.shape)}"
            )
        try:
            out = matmul_shape(a.shape, b.shape)
        except ShapeError as exc:
            raise ShapeError(
                f"matmul: {format_shape(a.shape)} @ {format_shape(b.shape)}: leading axes: "
                f"{exc.message}",
                self.span,
                hint=exc.hint,
            ) from None
        if out is None:
            k_a = a.shape[-1]
            k_b = b.shape[-2] if b.rank > 1 else b.shape[0]
            raise self.fail(
                f"inner dims differ: {format_shape(a.shape)} @ {format_shape(b.shape)} "
                f"contracts {k_a} with {k_b}"
            )
        return a.with_shape(out)


class Param(Op):
    """A learned tensor of a fixed per-sample shape: ``w = param([k, n])``."""

    op: Literal["param"] = "param"
    shape: tuple[PositiveInt, ...]
    init: Init = GlorotUniform()
    trainable: bool = True

    positional: ClassVar[tuple[str, ...]] = ("shape",)
    arity: ClassVar[int | None] = 0
    category: ClassVar[str] = "graph"
    example: ClassVar[str] = "input x: [4]\n    w = param([4, 3])\n    output x @ w"
    summary: ClassVar[str] = "a learned tensor (no input), e.g. w = param([64, 64])"

    def infer(self, ins: Sequence[TensorType]) -> TensorType:
        return TensorType(shape=self.shape)

    def fans(self) -> tuple[int, int]:
        """``(fan_in, fan_out)`` for the initializer (see the module docstring)."""
        if len(self.shape) >= 2:
            return self.shape[-2], self.shape[-1]
        if len(self.shape) == 1:
            return self.shape[0], self.shape[0]
        return 1, 1

    def param_specs(self, ins: Sequence[TensorType]) -> tuple[ParamSpec, ...]:
        fan_in, fan_out = self.fans()
        return (
            ParamSpec(
                name="value",
                shape=self.shape,
                init=self.init,
                fan_in=fan_in,
                fan_out=fan_out,
                trainable=self.trainable,
                decay=len(self.shape) >= 2,
            ),
        )
