"""Graph queries on one model: topological order, lookups, producers and consumers.

A value reference is the name of a model input, of a node, or ``node:k`` for output
``k`` of a call. These functions back the methods of :class:`~nnc.ir.program.Model`
(``model.find(op="dense")``, ``model.consumers("dense_1")``...).

>>> import nnc
>>> m = nnc.load("examples/resnet_block.nn").model()
>>> [n.name for n in consumers(m, "relu_1")]
['residual_1_conv2d_1', 'residual_1_add_1']
>>> [n.name for n in producers(m, "residual_1_add_1")]
['relu_1', 'residual_1_y_2']
>>> [n.name for n in find(m, op="batchnorm", name="residual_2_*")]
['residual_2_batchnorm_1', 'residual_2_y_2']
"""

from __future__ import annotations

from fnmatch import fnmatchcase
from typing import TYPE_CHECKING

from nnc.errors import NameResolutionError, did_you_mean

if TYPE_CHECKING:
    from nnc.ir.ops import Node
    from nnc.ir.program import Model


def base_name(ref: str) -> str:
    """The node or input a value reference belongs to: ``call_1:1`` -> ``call_1``."""
    return ref.partition(":")[0]


def topological(model: Model) -> list[Node]:
    """The nodes in dependency order (stable: already ordered nodes keep their order)."""
    from nnc.ir.passes.infer import toposort

    return toposort(model)


def find(model: Model, op: str | None = None, name: str | None = None) -> list[Node]:
    """Nodes whose op is ``op`` and whose name matches ``name`` (a glob such as
    ``residual_1_*``); either filter may be left out. Topological order."""
    if op is not None:
        from nnc.ir.ops import OPS

        if op not in OPS:
            raise NameResolutionError(
                f"unknown op '{op}'. Ops: {', '.join(OPS)}", hint=did_you_mean(op, OPS)
            )
    return [
        n
        for n in topological(model)
        if (op is None or n.op == op) and (name is None or fnmatchcase(n.name, name))
    ]


def producers(model: Model, node: str) -> list[Node]:
    """The nodes whose outputs ``node`` reads (model inputs are not nodes)."""
    target = _node(model, node)
    by_name = {n.name: n for n in model.nodes}
    seen: list[Node] = []
    for ref in target.inputs:
        source = by_name.get(base_name(ref))
        if source is not None and source not in seen:
            seen.append(source)
    return seen


def consumers(model: Model, value: str) -> list[Node]:
    """The nodes that read ``value`` (an input, a node, or ``node:k``). For a node
    name, readers of any of its outputs count."""
    known = {i.name for i in model.inputs} | {n.name for n in model.nodes}
    if base_name(value) not in known:
        raise NameResolutionError(
            f"model '{model.name}' has no value '{value}'", hint=did_you_mean(value, known)
        )
    whole = ":" not in value
    return [
        n
        for n in topological(model)
        if any(ref == value or (whole and base_name(ref) == value) for ref in n.inputs)
    ]


def is_output(model: Model, value: str) -> bool:
    """Whether ``value`` (or, for a node name, any of its outputs) is a model output."""
    whole = ":" not in value
    return any(o == value or (whole and base_name(o) == value) for o in model.outputs)


def _node(model: Model, name: str) -> Node:
    for n in model.nodes:
        if n.name == name:
            return n
    raise NameResolutionError(
        f"model '{model.name}' has no node '{name}'",
        hint=did_you_mean(name, [n.name for n in model.nodes]),
    )
