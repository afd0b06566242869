"""Parameter analysis: canonical parameter specs and counts of a typed model.

Parameter names are ``<node>.<param>``; a call of another model prefixes the callee's
names with the call node's name (``encoder.dense_1.weight``).
"""

from __future__ import annotations

from dataclasses import dataclass

from nnc.ir.base import ParamSpec
from nnc.ir.ops.graph import Call
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
    for node in m.nodes:
        if isinstance(node, Call):
            out.extend(model_params(program, node.model, f"{prefix}{node.name}."))
            continue
        ins = [m.value_type(ref) for ref in node.inputs]
        for spec in node.param_specs(ins):
            out.append(Param(f"{prefix}{node.name}.{spec.name}", f"{prefix}{node.name}", spec))
    return out


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
