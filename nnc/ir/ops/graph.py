"""Ops that join tensors, and the call of one model inside another."""

from collections.abc import Sequence
from typing import ClassVar, Literal

from nnc.errors import ShapeError
from nnc.ir.base import Op
from nnc.ir.ops.arith import Add  # noqa: F401  (its home was here; imported from here)
from nnc.ir.types import TensorType, format_shape


class Concat(Op):
    """Join two or more tensors along ``axis`` (0 = channels / features)."""

    op: Literal["concat"] = "concat"
    axis: int = 0
    arity: ClassVar[int | None] = None
    category: ClassVar[str] = "graph"
    example: ClassVar[str] = (
        "input x: [2, 3]\n    y = x |> conv1d(3, 1)\n    output concat(x, y, axis = 0)"
    )
    summary: ClassVar[str] = "join tensors along an axis (default 0: channels)"

    def infer(self, ins: Sequence[TensorType]) -> TensorType:
        rank = ins[0].rank
        if not -rank <= self.axis < rank:
            raise self.fail(f"axis {self.axis} is out of range for rank-{rank} inputs")
        axis = self.axis % rank
        total: int | str | None = None
        for t in ins:
            if (
                t.rank != rank
                or t.dtype != ins[0].dtype
                or any(
                    a != b
                    for i, (a, b) in enumerate(zip(t.shape, ins[0].shape, strict=True))
                    if i != axis
                )
            ):
                raise self.fail(
                    f"inputs must match except along axis {self.axis}. Received: "
                    + ", ".join(format_shape(i.shape) for i in ins)
                )
            d = t.shape[axis]
            if total is None:
                total = d
            elif isinstance(total, int) and isinstance(d, int):
                total += d
            else:
                total = f"{total}+{d}"
        shape = list(ins[0].shape)
        shape[axis] = total if total is not None else 0
        return ins[0].with_shape(tuple(shape))


class Call(Op):
    """Run another model of the program as a layer; its outputs become this node's.

    Its parameters are the callee's, prefixed with this node's name
    (``encoder.dense_1.weight``).
    """

    op: Literal["call"] = "call"
    model: str
    arity: ClassVar[int | None] = None
    category: ClassVar[str] = "graph"
    summary: ClassVar[str] = "use another model as a layer"
    inlined: ClassVar[bool] = True
    semantics: ClassVar[str] = "A model used as a layer"

    def infer(self, ins: Sequence[TensorType]) -> TensorType:
        # Calls need the whole program; nnc.ir.passes.infer_shapes types them.
        raise ShapeError(f"call of '{self.model}' can only be typed within its program", self.span)
