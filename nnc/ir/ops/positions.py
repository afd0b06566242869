"""Position information added to a sequence ``[t, d]``: ``learned_positions`` (a
trained table, one row per position) and ``sinusoidal_positions`` (the fixed
encoding of "Attention Is All You Need").

Both add to their input, so they chain after an embedding:
``embedding(vocab, d) |> sinusoidal_positions``. The exact formulas are in
``docs/semantics.md`` (Positions):

- ``learned_positions(max_len)``: ``y[p, j] = x[p, j] + weight[p, j]``, ``weight`` is
  ``[max_len, d]`` and ``t <= max_len``;
- ``sinusoidal_positions(base = 10000)``: ``y[p, j] = x[p, j] + PE[p, j]`` with
  ``PE[p, 2i] = sin(p / base^(2i/d))`` and ``PE[p, 2i+1] = cos(p / base^(2i/d))``.
"""

from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated, ClassVar, Literal

from pydantic import Field

from nnc.ir.base import Op, ParamSpec
from nnc.ir.initializers import Init, Normal
from nnc.ir.types import TensorType

if TYPE_CHECKING:  # numpy is imported where a table is built: `nnc check` never needs it
    import numpy as np

PositiveInt = Annotated[int, Field(gt=0)]


class _Positions(Op):
    def _sequence(self, x: TensorType) -> int:
        """The static feature dim of a sequence ``[t, d]``."""
        self.expect_float(x)
        self.expect_rank(x, 2, what="sequence [t, features]")
        return self.static_dim(x.shape[1], "its features")


class LearnedPositions(_Positions):
    """``x + weight[:t]``: one learned vector per position, ``weight`` is ``[max_len, d]``."""

    op: Literal["learned_positions"] = "learned_positions"
    max_len: PositiveInt
    init: Init = Normal(std=0.02)
    trainable: bool = True

    positional: ClassVar[tuple[str, ...]] = ("max_len",)
    example: ClassVar[str] = "input x: [4, 3]\n    learned_positions(6)"
    summary: ClassVar[str] = "add a learned vector per position: x + weight[:t]"
    # Slice of a constant table at a static length folds to the rows used: a param
    # [t, d] added to the input, the same numbers.
    onnx_imports_as: ClassVar[tuple[str, ...] | None] = ("param", "add")

    def infer(self, ins: Sequence[TensorType]) -> TensorType:
        (x,) = ins
        self._sequence(x)
        t = x.shape[0]
        if isinstance(t, int) and t > self.max_len:
            raise self.fail(
                f"a sequence of {t} positions is longer than max_len = {self.max_len}. "
                f"Received: {x}"
            )
        return x

    def param_specs(self, ins: Sequence[TensorType]) -> tuple[ParamSpec, ...]:
        d = self._sequence(ins[0])
        return (
            ParamSpec(
                name="weight",
                shape=(self.max_len, d),
                init=self.init,
                fan_in=self.max_len,
                fan_out=d,
                trainable=self.trainable,
            ),
        )


class SinusoidalPositions(_Positions):
    """``x + PE[:t]``, the fixed sine/cosine encoding (no parameters)."""

    op: Literal["sinusoidal_positions"] = "sinusoidal_positions"
    base: Annotated[float, Field(gt=1)] = 10000.0

    positional: ClassVar[tuple[str, ...]] = ("base",)
    example: ClassVar[str] = "input x: [4, 6]\n    sinusoidal_positions"
    summary: ClassVar[str] = "add the sine/cosine position encoding (even dims sin, odd cos)"
    onnx_not_imported: ClassVar[str] = "its table is built in the graph (Range, Sin, Cos)"

    def infer(self, ins: Sequence[TensorType]) -> TensorType:
        (x,) = ins
        self._sequence(x)
        return x


def sinusoid_frequencies(d: int, base: float) -> "np.ndarray":
    """``ω_j = base^(-2⌊j/2⌋/d)`` for j in [0, d), float64: dims 2i and 2i+1 share
    ``ω``; PE[p, j] is sin(p ω_j) for even j and cos(p ω_j) for odd j."""
    import numpy as np

    pairs = 2 * (np.arange(d) // 2)
    return np.power(float(base), -pairs / d)


def sinusoid_table(t: int, d: int, base: float) -> "np.ndarray":
    """``PE[:t]``, float64 ``[t, d]``."""
    import numpy as np

    angles = np.arange(t, dtype=np.float64)[:, None] * sinusoid_frequencies(d, base)
    return np.where(np.arange(d) % 2 == 0, np.sin(angles), np.cos(angles))
