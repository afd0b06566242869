"""Energy-based layers: the restricted Boltzmann machine.

An RBM is trained by contrastive divergence (``optimizer cd(...)``, see
``docs/semantics.md``, "RBM and contrastive divergence"); as a layer of a model it
computes its deterministic up pass, the hidden units' probabilities, so a trained RBM
(or a stack of them, a deep belief network) feeds a classifier like a sigmoid dense
layer.
"""

from collections.abc import Sequence
from typing import Annotated, ClassVar, Literal

from pydantic import Field

from nnc.ir.base import Op, ParamSpec
from nnc.ir.initializers import Init, Normal, Zeros
from nnc.ir.types import TensorType, numel

PositiveInt = Annotated[int, Field(gt=0)]


class Rbm(Op):
    """``h = sigmoid(v W + c)``; ``weight`` is ``[visible, hidden]``, ``visible_bias``
    ``b`` is ``[visible]``, ``hidden_bias`` ``c`` is ``[hidden]``.

    ``visible`` names the visible units' distribution, which only contrastive
    divergence uses: ``bernoulli`` (``p(v=1|h) = sigmoid(h Wᵀ + b)``) or ``gaussian``
    with unit variance (``v|h ~ N(h Wᵀ + b, 1)``). The visible bias takes no part in
    the up pass, so backprop leaves it as CD trained it (it is not trainable there).
    """

    op: Literal["rbm"] = "rbm"
    hidden: PositiveInt
    visible: Literal["bernoulli", "gaussian"] = "bernoulli"
    init: Init = Normal(mean=0.0, std=0.01)
    trainable: bool = True

    positional: ClassVar[tuple[str, ...]] = ("hidden",)
    example: ClassVar[str] = "input x: [6]\n    rbm(4)"
    summary: ClassVar[str] = "restricted Boltzmann machine; as a layer: h = sigmoid(v W + c)"
    onnx_imports_as: ClassVar[tuple[str, ...] | None] = ("dense", "sigmoid")  # its up pass

    def macs(self, ins: Sequence[TensorType]) -> int | None:
        """The up pass, v W: visible x hidden."""
        n = numel(ins[0].shape)
        return n * self.hidden if isinstance(n, int) else None

    def infer(self, ins: Sequence[TensorType]) -> TensorType:
        (x,) = ins
        self.expect_float(x)
        if x.rank != 1:
            raise self.fail(
                f"expects a vector of visible units [features]. Received: {x}"
                + ("; insert flatten before it" if x.rank > 1 else "")
            )
        self.static_dim(x.shape[0], "its visible units")
        return x.with_shape((self.hidden,))

    def param_specs(self, ins: Sequence[TensorType]) -> tuple[ParamSpec, ...]:
        visible = self.static_dim(ins[0].shape[0], "its visible units")
        return (
            ParamSpec(
                name="weight",
                shape=(visible, self.hidden),
                init=self.init,
                fan_in=visible,
                fan_out=self.hidden,
                trainable=self.trainable,
                decay=True,
            ),
            ParamSpec(name="visible_bias", shape=(visible,), init=Zeros(), trainable=False),
            ParamSpec(
                name="hidden_bias", shape=(self.hidden,), init=Zeros(), trainable=self.trainable
            ),
        )
