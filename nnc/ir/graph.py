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

import heapq
from collections.abc import Iterator, Mapping
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING

from nnc.errors import GraphError, NameResolutionError, did_you_mean
from nnc.ir.ops.graph import Call

if TYPE_CHECKING:
    from nnc.ir.ops import Node
    from nnc.ir.program import Model, Program


def base_name(ref: str) -> str:
    """The node or input a value reference belongs to: ``call_1:1`` -> ``call_1``."""
    return ref.partition(":")[0]


def topological(model: Model) -> list[Node]:
    """The nodes in dependency order (stable: already ordered nodes keep their order)."""
    return toposort(model)


def toposort(model: Model) -> list[Node]:
    """Nodes in dependency order, stable with respect to their current order (Kahn's
    algorithm with a heap of positions: O(n log n))."""
    names = {n.name for n in model.nodes}
    known = names | {i.name for i in model.inputs}
    position = {n.name: i for i, n in enumerate(model.nodes)}
    deps: dict[str, set[str]] = {}
    users: dict[str, list[str]] = {n: [] for n in names}
    for node in model.nodes:
        deps[node.name] = set()
        for ref in node.inputs:
            base = ref.partition(":")[0]
            if base not in known:
                raise NameResolutionError(
                    f"undefined name '{base}' used as input of '{node.name}'",
                    node.span,
                    hint=did_you_mean(base, known),
                )
            if base in names and base not in deps[node.name]:
                deps[node.name].add(base)
                users[base].append(node.name)
    waiting = {name: len(d) for name, d in deps.items()}
    ready = [position[name] for name, count in waiting.items() if count == 0]
    heapq.heapify(ready)
    ordered: list[Node] = []
    while ready:
        node = model.nodes[heapq.heappop(ready)]
        ordered.append(node)
        for user in users[node.name]:
            waiting[user] -= 1
            if waiting[user] == 0:
                heapq.heappush(ready, position[user])
    if len(ordered) < len(model.nodes):
        placed = {n.name for n in ordered}
        raise _cycle_error([n for n in model.nodes if n.name not in placed], deps)
    return ordered


def _cycle_error(pending: list[Node], deps: Mapping[str, set[str]]) -> GraphError:
    by_name = {n.name: n for n in pending}
    start = pending[0].name
    path = [start]
    seen = {start}
    current = start
    while True:
        current = sorted(d for d in deps[current] if d in by_name)[0]
        if current in seen:
            cycle = [*path[path.index(current) :], current]
            break
        path.append(current)
        seen.add(current)
    first = by_name[cycle[0]]
    return GraphError(f"graph cycle: {' -> '.join(reversed(cycle))}", first.span)


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


def callee_first(program: Program) -> list[str]:
    """The program's models, each after the models it calls (depth-first from the
    first model, in call order; an explicit stack, so chains of any length work).
    A cycle is left for the typing to report."""
    order: list[str] = []
    state: dict[str, int] = {}  # 1: on the stack, 2: done
    for root in program.models:
        if root in state:
            continue
        state[root] = 1
        stack = [(root, _callees(program, root))]
        while stack:
            name, rest = stack[-1]
            nxt = next((c for c in rest if c not in state), None)
            if nxt is not None:
                state[nxt] = 1
                stack.append((nxt, _callees(program, nxt)))
                continue
            stack.pop()
            state[name] = 2
            order.append(name)
    return order


def _callees(program: Program, name: str) -> Iterator[str]:
    return (
        n.model
        for n in program.models[name].nodes
        if isinstance(n, Call) and n.model in program.models
    )
