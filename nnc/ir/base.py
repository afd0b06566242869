"""The base classes every IR node derives from.

IR objects are frozen pydantic models with ``extra="forbid"``. Each carries an
optional source :class:`~nnc.errors.Span` that takes no part in equality or hashing,
so a program parsed from reformatted text equals the original.
"""

from abc import abstractmethod
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

from nnc.errors import ArgumentError, ShapeError, Span
from nnc.ir.initializers import Init
from nnc.ir.types import Dim, TensorType, format_shape


class IRModel(BaseModel):
    """A frozen pydantic model whose source locations (``span``, ``*_spans``) and
    fields excluded from serialization are ignored by ``==`` and ``hash``."""

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True, allow_inf_nan=False)

    def _key(self) -> tuple[Any, ...]:
        return tuple(
            getattr(self, f)
            for f, info in type(self).model_fields.items()
            if f != "span" and not f.endswith("_spans") and not info.exclude
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, IRModel) or type(self) is not type(other):
            return False
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash((type(self).__name__, *self._key()))


class ParamSpec(IRModel):
    """A parameter (or buffer) of a node, in nnc's canonical layout.

    ``fan_in``/``fan_out`` feed the variance-scaling initializers; ``decay`` says
    whether L2 regularisation applies (weights yes, biases and norm scales no);
    ``trainable`` is False for buffers such as batchnorm's running statistics and for
    frozen layers.
    """

    name: str
    shape: tuple[int, ...]
    init: Init
    fan_in: int = 1
    fan_out: int = 1
    trainable: bool = True
    decay: bool = False
    buffer: bool = False

    @property
    def size(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n


class Op(IRModel):
    """One node of a model graph.

    Subclasses set ``op`` to a ``Literal`` (the discriminator), declare typed
    attributes, and implement :meth:`infer` (the shape rule) and, when they own
    parameters, :meth:`param_specs` (canonical layouts).

    Class-level metadata drives the DSL and the registry-wide tests:

    - ``positional``: the order in which positional DSL arguments bind to fields;
    - ``arity``: the number of tensor inputs, or None for two or more;
    - ``arity_range``: (fewest, most) tensor inputs, where that is not ``arity``'s;
    - ``category``: ``"layer"``, ``"activation"`` or ``"graph"``;
    - ``example``: a tiny model body using the op, compiled by the gradient and
      equivalence tests for every op in the registry.

    Facts other passes read from the op rather than testing its name:

    - ``channel_axis``: the per-sample output axis holding the layer's output channels
      (``-1`` for dense's units, ``0`` for a conv's filters), None where there are none;
    - ``weight_channel_axis``: the axis of the canonical ``weight`` holding them (``1``
      for conv2d_transpose's ``[in, out, kh, kw]``);
    - ``channels_field``: the attribute counting them (``units``, ``filters``);
    - ``folds_batchnorm``: whether ``fold_batchnorm`` folds a following batchnorm in;
    - ``centres_batch``: whether the op subtracts its input's batch mean (batchnorm),
      which makes a bias added just before it a no-op with a zero gradient;
    - ``onnx_imports_as``: the ops the ONNX importer reads this op's export back as,
      when not the op itself (``()``: the export is the identity);
    - ``onnx_not_imported``: why the importer cannot read the export back, if it cannot;
    - ``inlined``: the op is inlined before lowering (``call``), so no backend lowers it;
    - ``semantics``: its heading in ``docs/semantics.md`` where that does not name it;
    - :meth:`accumulation` (the tolerance class) and :meth:`macs` (the cost).
    """

    op: str
    name: str
    inputs: tuple[str, ...]
    outs: tuple[TensorType, ...] = ()
    span: Span | None = None

    positional: ClassVar[tuple[str, ...]] = ()
    arity: ClassVar[int | None] = 1
    arity_range: ClassVar[tuple[int, int] | None] = None
    category: ClassVar[str] = "layer"
    example: ClassVar[str] = ""
    summary: ClassVar[str] = ""

    channel_axis: ClassVar[int | None] = None
    weight_channel_axis: ClassVar[int | None] = None
    channels_field: ClassVar[str] = ""
    folds_batchnorm: ClassVar[bool] = False
    centres_batch: ClassVar[bool] = False
    onnx_imports_as: ClassVar[tuple[str, ...] | None] = None
    onnx_not_imported: ClassVar[str] = ""
    inlined: ClassVar[bool] = False
    semantics: ClassVar[str] = ""

    @property
    def type(self) -> TensorType:
        """The (first) output type; available after shape inference."""
        if not self.outs:
            raise ShapeError(f"node '{self.name}' has not been shape-checked yet", self.span)
        return self.outs[0]

    def attributes(self) -> dict[str, Any]:
        """The op's own attributes, without name, inputs, types or span."""
        skip = {"op", "name", "inputs", "outs", "span"}
        return {f: getattr(self, f) for f in type(self).model_fields if f not in skip}

    @abstractmethod
    def infer(self, ins: Sequence[TensorType]) -> TensorType:
        """The shape rule: output type from input types, or a ShapeError."""

    def param_specs(self, ins: Sequence[TensorType]) -> tuple[ParamSpec, ...]:
        return ()

    def accumulation(
        self, ins: Sequence[TensorType], batch: int, steps: int, size: Callable[[Dim], int]
    ) -> int:
        """The longest float32 sum this node accumulates over in a forward pass, its
        gradient on ``batch`` samples or ``steps`` recurrent steps (the verifier's
        tolerance class, :mod:`nnc.verify.tolerance`); 1 for an element-wise op.
        ``size`` gives a dim's size, a symbolic one's stand-in included."""
        return 1

    def macs(self, ins: Sequence[TensorType]) -> int | None:
        """Multiply-accumulates per sample with learned weights (:mod:`nnc.ir.flops`):
        0 for ops that only move, compare or combine values; None when a symbolic dim
        decides."""
        return 0

    def expected_inputs(self) -> int | None:
        """How many tensor inputs this node takes (None: two or more). The class's
        ``arity`` unless an attribute decides (``x * 0.5`` has one input)."""
        return type(self).arity

    @property
    def has_params(self) -> bool:
        return "trainable" in type(self).model_fields

    # -- helpers for shape rules -------------------------------------------------

    def fail(self, message: str) -> ShapeError:
        return ShapeError(f"{self.op}: {message}", self.span)

    def expect_rank(self, t: TensorType, *ranks: int, what: str = "input") -> None:
        if t.rank not in ranks:
            want = " or ".join(str(r) for r in ranks)
            raise self.fail(
                f"expects a rank-{want} {what} (batch dim excluded). "
                f"Received: {format_shape(t.shape)}"
            )

    def expect_float(self, t: TensorType) -> None:
        if t.dtype != "float32":
            raise self.fail(f"expects a float32 input. Received: {t}")

    def static_dim(self, d: Dim, what: str) -> int:
        """A dim that a parameter shape depends on, which therefore must be static."""
        if isinstance(d, str):
            raise ShapeError(
                f"{self.op}: cannot resolve symbolic dim '{d}' for {what}; "
                f"parameter shapes must be static",
                self.span,
                hint="declare the input with a number instead of a symbol, or insert a "
                "layer that fixes this dim",
            )
        return d


def check_positive(owner: str, field: str, value: int | float) -> None:
    if value <= 0:
        raise ArgumentError(f"{owner}: argument '{field}' must be positive. Received: {value}")


def check_bias_flags(bias: bool, bias_trainable: bool) -> None:
    """``bias_trainable = false`` freezes a bias, so the layer must have one."""
    if not bias and not bias_trainable:
        raise ValueError(
            "bias_trainable = false freezes the bias, but bias = false removes it; "
            "drop one of the two"
        )
