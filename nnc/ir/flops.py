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

A count that depends on a symbolic dim (a sequence length ``t``) is ``None``. Each
rule is its op's :meth:`~nnc.ir.base.Op.macs`; an op that does not override it costs 0.

>>> import nnc
>>> count_macs(nnc.load("examples/mlp_4_5_5_3.nn"), "Mlp").total  # 4*5 + 5*5 + 5*3
60
"""

from __future__ import annotations

from dataclasses import dataclass, field

from nnc.ir.ops.graph import Call
from nnc.ir.program import Model, Program


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
        per_node[node.name] = node.macs([m.value_type(ref) for ref in node.inputs])
    return MacCount(model=m.name, per_node=per_node)
