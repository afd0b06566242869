"""Multi-head scaled dot-product attention (see ``docs/semantics.md``, Attention).

Inputs, told apart by rank: one to three rank-2 tensors, then optionally one rank-1
key mask.

- ``attention(heads)`` on a piped ``q [t, d]``: self-attention (keys and values are q);
- ``attention(q, kv, heads)``: cross-attention, keys and values both ``kv [s, d_kv]``;
- ``attention(q, k, v, heads)``: keys ``k [s, d_k]`` and values ``v [s, d_v]``;
- a last rank-1 input ``mask [s]`` (float32): key ``j`` is attended where
  ``mask[j] != 0`` (Keras's ``attention_mask`` convention: 1 = attend).

Parameters, torch ``nn.Linear`` layouts: ``query.weight [heads·key_dim, d_q]``,
``key.weight [heads·key_dim, d_k]``, ``value.weight [heads·value_dim, d_v]``,
``output.weight [d_q, heads·value_dim]``, and a ``.bias`` for each when ``bias``.
"""

from collections.abc import Sequence
from typing import Annotated, ClassVar, Literal

from pydantic import Field

from nnc.ir.base import Op, ParamSpec
from nnc.ir.initializers import GlorotUniform, Init, Zeros
from nnc.ir.types import TensorType, format_shape

PositiveInt = Annotated[int, Field(gt=0)]


class Attention(Op):
    """``softmax(Q Kᵀ / sqrt(key_dim) + mask) V`` per head, heads concatenated and
    projected back to the query's width."""

    op: Literal["attention"] = "attention"
    heads: PositiveInt
    key_dim: PositiveInt | None = None  # None: d_q / heads
    value_dim: PositiveInt | None = None  # None: key_dim
    bias: bool = True
    dropout: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.0
    causal: bool = False
    init: Init = GlorotUniform()
    bias_init: Init = Zeros()
    trainable: bool = True

    positional: ClassVar[tuple[str, ...]] = ("heads",)
    arity: ClassVar[int | None] = None
    arity_range: ClassVar[tuple[int, int] | None] = (1, 4)
    example: ClassVar[str] = "input x: [4, 6]\n    attention(2, causal = true)"
    summary: ClassVar[str] = "multi-head scaled dot-product attention (self or cross)"
    # Exported decomposed (MatMul, Softmax, Where...); reading that graph back as one
    # attention node is a later step of issue 21.
    onnx_not_imported: ClassVar[str] = "exported decomposed; not yet read back as one node"

    def macs(self, ins: Sequence[TensorType]) -> int | None:
        """The four projections, Q Kᵀ and the weighted sum of values: with t queries and
        s keys, t·d_q·h·kd + s·d_k·h·kd + s·d_v·h·vd + t·h·vd·d_q + t·s·h·(kd + vd)."""
        (iq, ik, _), _ = self.split_inputs(ins)
        t, s = ins[iq].shape[0], ins[ik].shape[0]
        if not isinstance(t, int) or not isinstance(s, int):
            return None
        d_q, d_k, d_v, kd, vd = self.dims(ins)
        h = self.heads
        return (
            t * d_q * h * kd
            + s * (d_k * h * kd + d_v * h * vd)
            + t * h * vd * d_q
            + t * s * h * (kd + vd)
        )

    # -- inputs --------------------------------------------------------------------------

    def split_inputs(self, ins: Sequence[TensorType]) -> tuple[list[int], int | None]:
        """The indices of q, k, v among the inputs, and that of the mask (or None)."""
        n = len(ins)
        has_mask = n >= 2 and ins[-1].rank == 1
        m = n - 1 if has_mask else n
        if not 1 <= m <= 3:
            raise self.fail(
                "takes q, (q, kv) or (q, k, v), rank 2 each, and an optional rank-1 key mask. "
                "Received: " + ", ".join(format_shape(t.shape) for t in ins)
            )
        qkv = [0, 0, 0] if m == 1 else [0, 1, 1] if m == 2 else [0, 1, 2]
        return qkv, (n - 1 if has_mask else None)

    def dims(self, ins: Sequence[TensorType]) -> tuple[int, int, int, int, int]:
        """(d_q, d_k, d_v, key_dim, value_dim)."""
        (iq, ik, iv), _ = self.split_inputs(ins)
        d_q = self.static_dim(ins[iq].shape[-1], "the query features")
        d_k = self.static_dim(ins[ik].shape[-1], "the key features")
        d_v = self.static_dim(ins[iv].shape[-1], "the value features")
        key_dim = self.key_dim
        if key_dim is None:
            if d_q % self.heads:
                raise self.fail(
                    f"the query width {d_q} is not divisible by heads = {self.heads}; "
                    "give key_dim explicitly"
                )
            key_dim = d_q // self.heads
        return d_q, d_k, d_v, key_dim, self.value_dim or key_dim

    def infer(self, ins: Sequence[TensorType]) -> TensorType:
        (iq, ik, iv), im = self.split_inputs(ins)
        q, k, v = ins[iq], ins[ik], ins[iv]
        for t, what in ((q, "query"), (k, "key"), (v, "value")):
            self.expect_float(t)
            self.expect_rank(t, 2, what=f"{what} [length, features]")
        if k.shape[0] != v.shape[0]:
            raise self.fail(
                f"keys and values must have the same length. Received: keys "
                f"{format_shape(k.shape)} and values {format_shape(v.shape)}"
            )
        if im is not None:
            mask = ins[im]
            self.expect_float(mask)
            if mask.shape != (k.shape[0],):
                raise self.fail(
                    f"the key mask must be [{k.shape[0]}], one value per key. Received: mask "
                    f"{format_shape(mask.shape)} for keys {format_shape(k.shape)}"
                )
        self.dims(ins)
        return q

    def param_specs(self, ins: Sequence[TensorType]) -> tuple[ParamSpec, ...]:
        d_q, d_k, d_v, key_dim, value_dim = self.dims(ins)
        shapes = {
            "query": (self.heads * key_dim, d_q),
            "key": (self.heads * key_dim, d_k),
            "value": (self.heads * value_dim, d_v),
            "output": (d_q, self.heads * value_dim),
        }
        specs: list[ParamSpec] = []
        for name, (n_out, n_in) in shapes.items():
            specs.append(
                ParamSpec(
                    name=f"{name}.weight",
                    shape=(n_out, n_in),
                    init=self.init,
                    fan_in=n_in,
                    fan_out=n_out,
                    trainable=self.trainable,
                    decay=True,
                )
            )
            if self.bias:
                specs.append(
                    ParamSpec(
                        name=f"{name}.bias",
                        shape=(n_out,),
                        init=self.bias_init,
                        trainable=self.trainable,
                    )
                )
        return tuple(specs)
