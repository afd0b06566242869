"""Parameter analysis: canonical parameter specs and counts of a typed model.

Parameter names are ``<node>.<param>``; a call of another model prefixes the callee's
names with the call node's name (``encoder.dense_1.weight``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from nnc.ir.base import ParamSpec
from nnc.ir.graph import callee_first
from nnc.ir.ops import Node
from nnc.ir.ops.graph import Call

if TYPE_CHECKING:
    from nnc.ir.program import Model, Program


@dataclass(frozen=True)
class Param:
    """A parameter of a model with its qualified name, owning node and spec."""

    name: str
    node: str
    spec: ParamSpec

    @property
    def shape(self) -> tuple[int, ...]:
        return self.spec.shape


def model_params(program: Program, model: Model | str, prefix: str = "") -> list[Param]:
    """Every parameter and buffer of a typed model, in node order.

    >>> import nnc
    >>> p = nnc.parse("model M { input x: [4]  dense(3) }")
    >>> [(q.name, q.shape) for q in model_params(p, "M")]
    [('dense_1.weight', (3, 4)), ('dense_1.bias', (3,))]
    """
    m = program.models[model] if isinstance(model, str) else model
    out: list[Param] = []
    # Depth first through the calls with an explicit stack: a chain of calls may be
    # thousands of models long.
    stack: list[tuple[Model, str, Iterator[Node]]] = [(m, prefix, iter(m.nodes))]
    while stack:
        current, at, rest = stack[-1]
        node = next(rest, None)
        if node is None:
            stack.pop()
        elif isinstance(node, Call):
            callee = program.models[node.model]
            stack.append((callee, f"{at}{node.name}.", iter(callee.nodes)))
        else:
            ins = [current.value_type(ref) for ref in node.inputs]
            for spec in node.param_specs(ins):
                out.append(Param(f"{at}{node.name}.{spec.name}", f"{at}{node.name}", spec))
    return out


def param_totals(program: Program) -> dict[str, int]:
    """Each model's parameter and buffer values with every call unfolded, totalled
    once per model (callees first), so the cost follows the program's text, not its
    unfolded call tree.

    >>> import nnc
    >>> param_totals(nnc.load("examples/autoencoder.nn"))
    {'Encoder': 2344, 'Decoder': 2400, 'Autoencoder': 4744}
    """
    totals: dict[str, int] = {}
    for name in callee_first(program):
        m = program.models[name]
        totals[name] = sum(node_param_values(m, n, totals) for n in m.nodes)
    return totals


def node_param_values(model: Model, node: Node, totals: dict[str, int]) -> int:
    """The parameter and buffer values of one node (a call: its callee's total)."""
    if isinstance(node, Call):
        return totals[node.model]
    ins = [model.value_type(ref) for ref in node.inputs]
    return sum(spec.size for spec in node.param_specs(ins))


def count_params(program: Program, model: Model | str, trainable_only: bool = False) -> int:
    """The number of parameters (buffers such as running statistics excluded).

    >>> import nnc
    >>> count_params(nnc.load("examples/mlp_4_5_5_3.nn"), "Mlp")
    73
    """
    return sum(
        p.spec.size
        for p in model_params(program, model)
        if not p.spec.buffer and (p.spec.trainable or not trainable_only)
    )
