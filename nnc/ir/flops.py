"""Multiply-accumulates (MACs) per sample of a typed model, per node and in total.

What is counted, and why: the multiply-accumulates of the ops that multiply their
input by learned weights (dense, the convolutions, the recurrent layers), the work
that dominates a network's cost. Every other op (activations, pooling,
normalisation, add, concat, reshapes) is counted as 0, as PyTorch's
``FlopCounterMode`` counts only matrix products and convolutions. Bias additions are
not multiply-accumulates and are not counted. One MAC is one multiply plus one add;
FLOPs are about twice the MACs.

- dense: ``numel(input) * units`` (``in * units`` per position of a sequence);
- conv1d / conv2d / conv3d: ``numel(output) * (in_channels / groups) * prod(kernel)``;
- conv2d_transpose: ``numel(input) * filters * prod(kernel)``;
- rnn / gru / lstm: ``t * gates * units * (features + units)`` with 1, 3 and 4 gates;
- matmul: ``numel(output) * k`` (the inner dim);
- a call of another model: the callee's total.

A count that depends on a symbolic dim (a sequence length ``t``) is ``None``.

>>> import nnc
>>> count_macs(nnc.load("examples/mlp_4_5_5_3.nn"), "Mlp").total  # 4*5 + 5*5 + 5*3
60
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from nnc.ir.base import Op
from nnc.ir.ops.attention import Attention
from nnc.ir.ops.conv import Conv2dTranspose, _Conv
from nnc.ir.ops.dense import Dense
from nnc.ir.ops.energy import Rbm
from nnc.ir.ops.graph import Call
from nnc.ir.ops.recurrent import _Recurrent
from nnc.ir.program import Model, Program
from nnc.ir.types import Dim, TensorType, numel


@dataclass(frozen=True)
class MacCount:
    """MACs per sample: ``per_node`` by node name, ``None`` where a dim is symbolic."""

    model: str
    per_node: dict[str, int | None] = field(default_factory=dict)

    @property
    def total(self) -> int | None:
        counts = list(self.per_node.values())
        if any(c is None for c in counts):
            return None
        return sum(c for c in counts if c is not None)


def _static(n: Dim) -> int | None:
    return n if isinstance(n, int) else None


def _dense(node: Op, ins: Sequence[TensorType]) -> int | None:
    assert isinstance(node, Dense)
    n = _static(numel(ins[0].shape))
    return None if n is None else n * node.units


def _rbm(node: Op, ins: Sequence[TensorType]) -> int | None:
    """The up pass, v W: visible x hidden."""
    assert isinstance(node, Rbm)
    n = _static(numel(ins[0].shape))
    return None if n is None else n * node.hidden


def _conv(node: Op, ins: Sequence[TensorType]) -> int | None:
    assert isinstance(node, _Conv)
    out = _static(numel(node.type.shape))
    channels = ins[0].shape[0]
    if out is None or not isinstance(channels, int):
        return None
    return out * (channels // node.groups) * math.prod(node.kernel)


def _conv_transpose(node: Op, ins: Sequence[TensorType]) -> int | None:
    assert isinstance(node, Conv2dTranspose)
    n = _static(numel(ins[0].shape))
    return None if n is None else n * node.filters * math.prod(node.kernel)


def _recurrent(node: Op, ins: Sequence[TensorType]) -> int | None:
    assert isinstance(node, _Recurrent)
    steps, features = ins[0].shape
    if not isinstance(steps, int) or not isinstance(features, int):
        return None
    return steps * node.gates * node.units * (features + node.units)


def _matmul(node: Op, ins: Sequence[TensorType]) -> int | None:
    """Each output element is a dot product over the inner dim k."""
    a = ins[0].shape
    k = _static(a[-1])
    n = _static(numel(node.type.shape))
    return None if k is None or n is None else n * k


def _attention(node: Op, ins: Sequence[TensorType]) -> int | None:
    """The four projections, Q Kᵀ and the weighted sum of values: with t queries and s
    keys, t·d_q·h·kd + s·d_k·h·kd + s·d_v·h·vd + t·h·vd·d_q + t·s·h·(kd + vd)."""
    assert isinstance(node, Attention)
    (iq, ik, _), _ = node.split_inputs(ins)
    t, s = ins[iq].shape[0], ins[ik].shape[0]
    if not isinstance(t, int) or not isinstance(s, int):
        return None
    d_q, d_k, d_v, kd, vd = node.dims(ins)
    h = node.heads
    return (
        t * d_q * h * kd
        + s * (d_k * h * kd + d_v * h * vd)
        + t * h * vd * d_q
        + t * s * h * (kd + vd)
    )


def _none(node: Op, ins: Sequence[TensorType]) -> int | None:
    return 0


MacRule = Callable[[Op, Sequence[TensorType]], int | None]

# One entry per op of the registry (the tests check that each op has one), so a new
# op must say what it costs.
RULES: dict[str, MacRule] = {
    "dense": _dense,
    "attention": _attention,
    "rbm": _rbm,
    "conv1d": _conv,
    "conv2d": _conv,
    "conv3d": _conv,
    "conv2d_transpose": _conv_transpose,
    "rnn": _recurrent,
    "lstm": _recurrent,
    "gru": _recurrent,
    "matmul": _matmul,
    **dict.fromkeys(
        (
            "embedding",  # a table lookup
            "learned_positions",  # additions only
            "sinusoidal_positions",
            "maxpool",
            "avgpool",
            "sumpool",
            "maxpool3d",
            "avgpool3d",
            "global_avg_pool",
            "resize",  # interpolation weights are not learned
            "depth_to_space",
            "space_to_depth",
            "flatten",
            "reshape",
            "transpose",  # the layout ops only move values
            "squeeze",
            "unsqueeze",
            "slice",
            "pad",
            "tile",
            "broadcast_to",
            "dropout",
            "batchnorm",
            "layernorm",
            "instancenorm",
            "groupnorm",
            "lrn",
            "add",
            "concat",
            "linear",
            "step",
            "sigmoid",
            "tanh",
            "relu",
            "leaky_relu",
            "elu",
            "prelu",
            "selu",
            "gelu",
            "softplus",
            "silu",
            "softmax",
            "log_softmax",
            *("exp", "log", "sqrt", "rsqrt", "abs", "square", "clip", "erf", "relu6"),
            *("hard_sigmoid", "hard_swish", "softsign", "mish"),
            *("mean", "sum", "max", "min", "global_max_pool"),
            # element-wise arithmetic: no multiply-accumulate of learned weights
            *("sub", "mul", "div", "pow", "maximum", "minimum", "neg", "constant"),
            "param",  # a learned tensor: no arithmetic
        ),
        _none,
    ),
}


def count_macs(program: Program, model: Model | str) -> MacCount:
    """MACs per sample of each node of a checked model (see the module for the rules).

    >>> import nnc
    >>> c = count_macs(nnc.load("examples/digits_cnn.nn"), "DigitsCNN")
    >>> c.per_node["conv2d_1"], c.total
    (9216, 36480)
    """
    m = program.models[model] if isinstance(model, str) else model
    per_node: dict[str, int | None] = {}
    for node in m.nodes:
        if isinstance(node, Call):
            per_node[node.name] = count_macs(program, node.model).total
            continue
        rule = RULES.get(node.op)
        if rule is None:
            raise KeyError(f"no MAC rule for op '{node.op}' (add one to nnc.ir.flops.RULES)")
        per_node[node.name] = rule(node, [m.value_type(ref) for ref in node.inputs])
    return MacCount(model=m.name, per_node=per_node)
