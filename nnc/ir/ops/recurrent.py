"""Recurrent layers over ``[t, features]`` sequences; ``t`` may be symbolic.

Canonical layouts (see ``docs/semantics.md`` for the backend mappings):

- ``rnn``:  ``weight_ih [H, F]``, ``weight_hh [H, H]``, ``bias [H]``
- ``lstm``: gates in order i, f, g, o; ``weight_ih [4H, F]``, ``weight_hh [4H, H]``,
  one ``bias [4H]`` (Keras' count: ``4(H(F+H)+H)``)
- ``gru``:  gates in order r, z, n; ``weight_ih [3H, F]``, ``weight_hh [3H, H]``,
  ``bias_ih [3H]`` and ``bias_hh [3H]``, because the candidate gate needs
  ``r * (W_hn h + b_hn)``
"""

from collections.abc import Callable, Sequence
from typing import Annotated, ClassVar, Literal

from pydantic import Field

from nnc.ir.base import Op, ParamSpec
from nnc.ir.initializers import GlorotUniform, Init, Orthogonal, Zeros
from nnc.ir.types import Dim, TensorType

PositiveInt = Annotated[int, Field(gt=0)]


class _Recurrent(Op):
    units: PositiveInt
    return_sequences: bool = False
    init: Init = GlorotUniform()
    recurrent_init: Init = Orthogonal()
    bias_init: Init = Zeros()
    trainable: bool = True

    gates: ClassVar[int] = 1
    positional: ClassVar[tuple[str, ...]] = ("units",)

    def accumulation(
        self, ins: Sequence[TensorType], batch: int, steps: int, size: Callable[[Dim], int]
    ) -> int:
        t, features = ins[0].shape
        return (size(features) + self.units) * max(size(t), steps)

    def macs(self, ins: Sequence[TensorType]) -> int | None:
        steps, features = ins[0].shape
        if not isinstance(steps, int) or not isinstance(features, int):
            return None
        return steps * self.gates * self.units * (features + self.units)

    def infer(self, ins: Sequence[TensorType]) -> TensorType:
        (x,) = ins
        self.expect_float(x)
        if x.rank != 2:
            raise self.fail(f"expects a sequence [t, features]. Received: {x}")
        self.static_dim(x.shape[1], "its input features")
        if self.return_sequences:
            return x.with_shape((x.shape[0], self.units))
        return x.with_shape((self.units,))

    def _weights(self, ins: Sequence[TensorType]) -> list[ParamSpec]:
        features = self.static_dim(ins[0].shape[1], "its input features")
        rows = self.gates * self.units
        return [
            ParamSpec(
                name="weight_ih",
                shape=(rows, features),
                init=self.init,
                fan_in=features,
                fan_out=rows,
                trainable=self.trainable,
                decay=True,
            ),
            ParamSpec(
                name="weight_hh",
                shape=(rows, self.units),
                init=self.recurrent_init,
                fan_in=self.units,
                fan_out=rows,
                trainable=self.trainable,
                decay=True,
            ),
        ]

    def _bias(self, name: str) -> ParamSpec:
        return ParamSpec(
            name=name,
            shape=(self.gates * self.units,),
            init=self.bias_init,
            trainable=self.trainable,
        )


class SimpleRNN(_Recurrent):
    """``h_t = tanh(W_ih x_t + W_hh h_{t-1} + b)``, ``h_0 = 0``."""

    op: Literal["rnn"] = "rnn"
    example: ClassVar[str] = "input x: [t, 3]\n    rnn(4, return_sequences = true)"
    summary: ClassVar[str] = "simple (Elman) recurrent layer with tanh"

    def param_specs(self, ins: Sequence[TensorType]) -> tuple[ParamSpec, ...]:
        return (*self._weights(ins), self._bias("bias"))


class LSTM(_Recurrent):
    """Long short-term memory; gates i, f, g, o; ``h_0 = c_0 = 0``."""

    op: Literal["lstm"] = "lstm"
    gates: ClassVar[int] = 4
    example: ClassVar[str] = "input x: [t, 3]\n    lstm(4)"
    summary: ClassVar[str] = "long short-term memory layer"

    def param_specs(self, ins: Sequence[TensorType]) -> tuple[ParamSpec, ...]:
        return (*self._weights(ins), self._bias("bias"))


class GRU(_Recurrent):
    """Gated recurrent unit, PyTorch's formulation (gates r, z, n)."""

    op: Literal["gru"] = "gru"
    gates: ClassVar[int] = 3
    example: ClassVar[str] = "input x: [t, 3]\n    gru(4, return_sequences = true)"
    summary: ClassVar[str] = "gated recurrent unit (reset applied after the matmul)"

    def param_specs(self, ins: Sequence[TensorType]) -> tuple[ParamSpec, ...]:
        return (*self._weights(ins), self._bias("bias_ih"), self._bias("bias_hh"))
