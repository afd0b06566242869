"""Block recognition for imported specs: a repeated residual unit is written once as
a ``block`` and called at each place it occurs, instead of flat.

A *unit* is what a residual ``add`` closes: the nodes on the paths from the value
both of its inputs come from (the unit's input) to the ``add``, with a ``relu``
that is the add's sole reader. Its nodes may read nothing else and nothing outside
may read their values. Two units are *alike* when they have the same ops, wired
the same way, with the same attributes except integer counts (filters, units,
groups); those that differ between instances become the block's parameters, one
per distinct column of values. Units alike to at least one other become a block
``block_a`` (``block_b``, ...) called as ``a1 = block_a(x, 64, 128)``; the IR that
parsing the written spec gives is the flat import's, node for node, with the
instance's nodes named ``<instance>_<node>``, and the weights are renamed the same
way, so outputs are identical.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from nnc.dsl import ast
from nnc.dsl.printer import format_file
from nnc.dsl.unparse import NOWHERE, model_to_ast
from nnc.ir.base import Op
from nnc.ir.program import Input, Model, Program
from nnc.ir.types import TensorType
from nnc.ir.weights import Weights

_SENTINEL = 9_000_000  # stand-in values for parameters while the block is printed
_COUNTS = frozenset({"filters", "units", "groups", "channels", "features"})


@dataclass(frozen=True)
class Unit:
    source: str  # the value the unit reads
    nodes: tuple[Op, ...]  # in model order; the last is the unit's output

    @property
    def output(self) -> str:
        return self.nodes[-1].name


def _units(model: Model) -> list[Unit]:
    order = {n.name: k for k, n in enumerate(model.nodes)}
    by_name = {n.name: n for n in model.nodes}
    readers: dict[str, list[str]] = {}
    for n in model.nodes:
        for i in n.inputs:
            readers.setdefault(i, []).append(n.name)

    def ancestors(value: str) -> set[str]:
        seen: set[str] = set()
        stack = [value]
        while stack:
            v = stack.pop()
            if v in seen:
                continue
            seen.add(v)
            if v in by_name:
                stack.extend(by_name[v].inputs)
        return seen

    units: list[Unit] = []
    taken: set[str] = set()
    for node in model.nodes:
        if node.op != "add" or len(node.inputs) != 2 or node.name in taken:
            continue
        a, b = (ancestors(i) for i in node.inputs)
        common = a & b
        if not common:
            continue
        source = max(common, key=lambda v: order.get(v, -1))
        inside = {v for v in (a | b) if v in by_name and order[v] > order.get(source, -1)} | {
            node.name
        }
        last: Op = node
        after = readers.get(node.name, [])
        if len(after) == 1 and by_name[after[0]].op == "relu" and node.name not in model.outputs:
            last = by_name[after[0]]
            inside.add(last.name)
        members = sorted(inside, key=lambda v: order[v])
        closed = all(
            i == source or i in inside for v in members for i in by_name[v].inputs
        ) and all(r in inside for v in members if v != last.name for r in readers.get(v, []))
        if not closed or any(v in model.outputs for v in members if v != last.name):
            continue
        if inside & taken or len(members) < 3:
            continue
        taken |= inside
        units.append(Unit(source, tuple(by_name[v] for v in members)))
    return units


def _fields(node: Op) -> dict[str, object]:
    return node.model_dump(exclude={"name", "inputs", "outs", "span"})


def _key(unit: Unit) -> tuple[object, ...]:
    local = {unit.source: 0} | {n.name: k + 1 for k, n in enumerate(unit.nodes)}
    parts: list[object] = []
    for n in unit.nodes:
        attrs = {
            k: ("#" if k in _COUNTS and isinstance(v, int) else repr(v))
            for k, v in _fields(n).items()
        }
        parts.append((n.op, tuple(local[i] for i in n.inputs), tuple(sorted(attrs.items()))))
    return tuple(parts)


def _local_names(unit: Unit) -> dict[str, str]:
    counters: dict[str, int] = {}
    names = {}
    for n in unit.nodes:
        counters[n.op] = counters.get(n.op, 0) + 1
        names[n.name] = f"{n.op}_{counters[n.op]}"
    return names


def with_blocks(program: Program, model_name: str, weights: Weights) -> tuple[str, Weights]:
    """The spec text of ``program`` with repeated units as blocks, and the weights
    renamed to the names that text gives; unchanged where nothing repeats."""
    model = program.models[model_name]
    groups: dict[tuple[object, ...], list[Unit]] = {}
    for unit in _units(model):
        groups.setdefault(_key(unit), []).append(unit)
    repeated = [g for g in groups.values() if len(g) >= 2]
    other = {k: m for k, m in program.models.items() if k != model_name}
    if not repeated or other or program.recipes:
        from nnc.dsl import format_program

        return format_program(program), weights
    types = {i.name: i.type for i in model.inputs} | {n.name: n.type for n in model.nodes}
    blocks: list[ast.BlockDef] = []
    calls: dict[str, tuple[Unit, str, str, tuple[int, ...]]] = {}  # output -> the call
    renamed: dict[str, str] = {}  # flat node name -> written name
    used = {i.name for i in model.inputs} | {n.name for n in model.nodes}
    for index, group in enumerate(repeated):
        letter = chr(ord("a") + index) if index < 26 else f"z{index}"
        name = f"block_{letter}"
        slots, columns = _parameters(group)
        blocks.append(_block(name, group[0], types[group[0].source], slots, len(columns)))
        for k, unit in enumerate(group):
            instance = _fresh(f"{letter}{k + 1}", used)
            local = _local_names(unit)
            for n in unit.nodes:
                renamed[n.name] = f"{instance}_{local[n.name]}"
            calls[unit.output] = (unit, instance, name, tuple(c[k] for c in columns))
    flat = model_to_ast(model)
    hidden = {n.name for unit, *_ in calls.values() for n in unit.nodes}
    outputs_of = {unit.output: instance for unit, instance, *_ in calls.values()}
    body: list[ast.Stmt] = []
    for stmt in flat.body:
        if isinstance(stmt, ast.Assign) and stmt.targets[0] in hidden:
            if stmt.targets[0] in calls:
                unit, instance, block, values = calls[stmt.targets[0]]
                source = outputs_of.get(unit.source, unit.source)
                body.append(_call(instance, block, source, values))
            continue
        body.append(_rename_refs(stmt, outputs_of))
    tree = ast.File(
        items=(
            *blocks,
            ast.ModelDef(name=model.name, body=tuple(body), span=NOWHERE, name_span=NOWHERE),
        )
    )
    new_weights: Weights = {}
    for key, array in weights.items():
        node, _, param = key.partition(".")
        new_weights[f"{renamed.get(node, node)}.{param}"] = array
    text = format_file(tree)
    if not _same_ir(text, model, renamed):
        from nnc.dsl import format_program

        return format_program(program), weights  # never a spec that computes otherwise
    return text, new_weights


def _same_ir(text: str, model: Model, renamed: dict[str, str]) -> bool:
    """Whether ``text`` parses to ``model``'s nodes, renamed, in the same order."""
    from nnc.dsl import parse

    written = parse(text).models[model.name]

    def name(v: str) -> str:
        return renamed.get(v, v)

    want = [
        n.model_copy(update={"name": name(n.name), "inputs": tuple(name(i) for i in n.inputs)})
        for n in model.nodes
    ]
    return (
        list(written.nodes) == want
        and written.inputs == model.inputs
        and tuple(written.outputs) == tuple(name(o) for o in model.outputs)
    )


def _call(instance: str, block: str, source: str, values: tuple[int, ...]) -> ast.Assign:
    """``instance = block(source, *values)``."""
    args = [ast.Arg(name=None, value=ast.Ref(name=source, span=NOWHERE), span=NOWHERE)]
    args += [ast.Arg(name=None, value=ast.Int(value=v, span=NOWHERE), span=NOWHERE) for v in values]
    call = ast.Call(name=block, args=tuple(args), span=NOWHERE)
    return ast.Assign(targets=(instance,), value=call, span=NOWHERE)


def _fresh(name: str, used: set[str]) -> str:
    candidate, k = name, 1
    while candidate in used:
        k += 1
        candidate = f"{name}_{k}"
    used.add(candidate)
    return candidate


def _parameters(group: list[Unit]) -> tuple[dict[tuple[int, str], int], list[tuple[int, ...]]]:
    """Each count that differs between instances, (node position, attribute) -> its
    parameter; and the parameters' values, one column per parameter (instances in
    order). Counts with the same values everywhere share a parameter."""
    slots: dict[tuple[int, str], int] = {}
    columns: list[tuple[int, ...]] = []
    for position, node in enumerate(group[0].nodes):
        for attr, value in _fields(node).items():
            if attr not in _COUNTS or not isinstance(value, int):
                continue
            column = tuple(int(getattr(u.nodes[position], attr)) for u in group)
            if len(set(column)) == 1:
                continue
            if column not in columns:
                columns.append(column)
            slots[(position, attr)] = columns.index(column)
    return slots, columns


def _block(
    name: str, unit: Unit, source: TensorType, slots: dict[tuple[int, str], int], count: int
) -> ast.BlockDef:
    """The block's text: the first instance with a sentinel where each parameter goes,
    then the sentinels replaced by the parameter names ``n1``, ``n2``, ..."""
    local = _local_names(unit)
    nodes = []
    for position, n in enumerate(unit.nodes):
        update: dict[str, object] = {
            "name": local[n.name],
            "inputs": tuple("x" if i == unit.source else local[i] for i in n.inputs),
        }
        for (p, attr), index in slots.items():
            if p == position:
                update[attr] = _SENTINEL + index
        nodes.append(n.model_copy(update=update))
    template = Model(
        name="Block",
        inputs=(Input(name="x", type=source),),
        nodes=tuple(nodes),
        outputs=(local[unit.output],),
    )
    body = model_to_ast(template).body
    rank = len(source.shape)
    dims = ["c", "h", "w"] if rank == 3 else [f"d{k + 1}" for k in range(rank)]
    first = body[0]
    if not isinstance(first, ast.InputDecl):
        raise TypeError("a model's text starts with its inputs")
    declared = ast.InputDecl(
        name="x",
        dtype=first.dtype,
        shape=ast.ListExpr(items=tuple(ast.Ref(name=d, span=NOWHERE) for d in dims), span=NOWHERE),
        span=NOWHERE,
        name_span=NOWHERE,
    )
    names = {_SENTINEL + k: f"n{k + 1}" for k in range(count)}
    stmts = tuple(_replace_sentinels(s, names) for s in body[1:])
    return ast.BlockDef(
        name=name,
        params=tuple(names.values()),
        body=(declared, *stmts),
        span=NOWHERE,
        name_span=NOWHERE,
    )


def _rename_refs(node: ast.Stmt, names: dict[str, str]) -> ast.Stmt:
    return _map(
        node,
        lambda e: (
            ast.Ref(name=names[e.name], span=e.span)
            if isinstance(e, ast.Ref) and e.name in names
            else None
        ),
    )


def _replace_sentinels(node: ast.Stmt, names: dict[int, str]) -> ast.Stmt:
    return _map(
        node,
        lambda e: (
            ast.Ref(name=names[e.value], span=e.span)
            if isinstance(e, ast.Int) and e.value in names
            else None
        ),
    )


def _map(node: Any, f: Callable[[Any], Any]) -> Any:
    """A copy of an AST node with ``f`` applied bottom-up where it returns a node."""
    import dataclasses

    replaced = f(node)
    if replaced is not None:
        return replaced
    if isinstance(node, tuple):
        return tuple(_map(v, f) for v in node)
    if dataclasses.is_dataclass(node) and not isinstance(node, type):
        changes = {
            field.name: _map(getattr(node, field.name), f)
            for field in dataclasses.fields(node)
            if field.name != "span"
        }
        return dataclasses.replace(node, **changes)
    return node
