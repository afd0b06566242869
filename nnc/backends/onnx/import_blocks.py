"""Block recognition for imported specs: a repeated unit of the graph is written once
as a ``block`` and called at each place it occurs, instead of flat.

A *unit* is a single-entry, single-exit piece of the graph: the nodes between a value
``s`` (its input) and a node ``v`` (its output) that ``s`` dominates, when they read
nothing but ``s`` and each other and nothing outside reads them except ``v``. That
covers residual units closed by an ``add`` (with a projection or none), units
closed by a ``concat`` (inception modules, SqueezeNet's fire modules, ShuffleNet's
units, DenseNet's dense layers once each layer's concat is nested on the one before,
:func:`nest_concats`) and plain chains (a U-Net's two convolutions). A unit does not
end just before an activation that is its output's sole reader, nor begin with one.

Two units are *alike* when they have the same ops, wired the same way, with the same
attributes except integers (channel counts, strides, kernel sizes, paddings, shape
entries); those that differ between instances become the block's parameters, one
per distinct column of values. Groups of alike, disjoint units are chosen for the
lines they save (:func:`_choose`); each becomes a block ``block_a`` (``block_b``,
...) called as ``a1 = block_a(x, 64, 128)``. The IR that parsing the written spec
gives is checked to be the flat import's, node for node, with the instance's nodes
named ``<instance>_<node>`` (the order may differ: a call's nodes come together),
and the weights are renamed the same way, so outputs are identical.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from nnc.dsl import ast
from nnc.dsl.printer import format_file
from nnc.dsl.unparse import NOWHERE, model_to_ast
from nnc.errors import NncError
from nnc.ir.base import Op
from nnc.ir.program import Input, Model, Program
from nnc.ir.types import TensorType
from nnc.ir.weights import Weights

_SENTINEL = 9_000_000  # stand-in values for parameters while the block is printed
_LARGEST = 48  # nodes in one unit at most (the search is quadratic in it)


@dataclass(frozen=True)
class Unit:
    source: str  # the value the unit reads
    nodes: tuple[Op, ...]  # in model order; the last is the unit's output

    @property
    def output(self) -> str:
        return self.nodes[-1].name


def nest_concats(model: Model) -> Model:
    """``concat(a, b, c)`` where an earlier ``concat(a, b)`` (same axis) exists becomes
    ``concat(ab, c)``: the same values, copied the same way. DenseNet's exporter
    concatenates every earlier feature map again at each layer; nested, each dense
    layer reads one value and is closed by its concat."""
    seen: dict[tuple[object, ...], str] = {}
    nodes: list[Op] = []
    changed = False
    for node in model.nodes:
        if node.op == "concat" and len(node.inputs) >= 2:
            axis = getattr(node, "axis", 0)
            inputs = node.inputs
            for j in range(len(inputs) - 1, 1, -1):
                earlier = seen.get((axis, *inputs[:j]))
                if earlier is not None:
                    node = node.model_copy(update={"inputs": (earlier, *inputs[j:])})
                    changed = True
                    break
            seen[(axis, *inputs)] = node.name
        nodes.append(node)
    return model.model_copy(update={"nodes": tuple(nodes)}) if changed else model


def _units(model: Model) -> list[Unit]:
    """Every single-entry, single-exit piece of the graph up to ``_LARGEST`` nodes: for
    a node ``v`` and a value ``s`` that dominates it (every path from the inputs to
    ``v`` passes ``s``; a node without inputs, a constant, is no path of its own), the
    nodes between them, when they read nothing else and nothing outside reads them
    except ``v``."""
    order = {n.name: k for k, n in enumerate(model.nodes)}
    by_name = {n.name: n for n in model.nodes}
    readers: dict[str, set[str]] = {}
    for n in model.nodes:
        for i in n.inputs:
            readers.setdefault(i, set()).add(n.name)
    outputs = set(model.outputs)
    root = "\x00root"
    idom: dict[str, str] = {i.name: root for i in model.inputs}
    depth: dict[str, int] = {root: 0} | {i.name: 1 for i in model.inputs}

    def meet(a: str, b: str) -> str:
        while a != b:
            if depth[a] < depth[b]:
                a, b = b, a
            a = idom[a]
        return a

    for n in model.nodes:
        paths = [i for i in n.inputs if i not in by_name or by_name[i].inputs]
        if not paths or any(i not in depth for i in paths):
            idom[n.name] = root  # a constant, or it reads a multi-output alias
        else:
            d = paths[0]
            for i in paths[1:]:
                d = meet(d, i)
            idom[n.name] = d
        depth[n.name] = depth[idom[n.name]] + 1

    # between[s]: the nodes s depends on without passing idom[s], s included
    between: dict[str, frozenset[str] | None] = {}

    def local(s: str) -> frozenset[str] | None:
        if s not in between:
            between[s] = _between(idom[s], s, by_name)
        return between[s]

    def attached(value: str) -> bool:
        """Whether the sole reader of ``value`` is an activation: a unit does not end
        just before it, nor begin with it."""
        after = readers.get(value, set())
        if len(after) != 1 or value in outputs:
            return False
        (reader,) = after
        return by_name[reader].category == "activation"

    def leaking(w: str, region: frozenset[str]) -> bool:
        return w in outputs or not readers.get(w, set()) <= region

    units: list[Unit] = []
    for v in model.nodes:
        s, region = idom[v.name], local(v.name)
        if region is None:
            continue
        # the nodes but v that something outside the region reads: kept as it grows
        leaks = {w for w in region if w != v.name and leaking(w, region)}
        while s != root and len(region) <= _LARGEST:
            if not leaks and len(region) >= 2 and not attached(v.name) and not attached(s):
                members = sorted(region, key=order.__getitem__)
                units.append(Unit(s, tuple(by_name[w] for w in members)))
            if s not in by_name:
                break  # a model input
            part = local(s)
            if part is None:
                break
            region = region | part
            leaks = {w for w in leaks | part if leaking(w, region)}
            s = idom[s]
    return units


def _between(source: str, exit: str, by_name: Mapping[str, Op]) -> frozenset[str] | None:
    """The nodes ``exit`` depends on without passing ``source`` (``exit`` included);
    None where one of them reads a model input or an alias other than ``source``, or
    there are more than ``_LARGEST``."""
    seen: set[str] = set()
    stack = [exit]
    while stack:
        w = stack.pop()
        if w in seen:
            continue
        node = by_name.get(w)
        if node is None or len(seen) > _LARGEST:
            return None
        seen.add(w)
        stack.extend(i for i in node.inputs if i != source)
    return frozenset(seen)


def _fields(node: Op) -> dict[str, object]:
    return node.model_dump(exclude={"name", "inputs", "outs", "span"})


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _abstract(value: object) -> object:
    """A field's value with its integers left out: the instances of a block may differ
    in them (channel counts, strides, kernel sizes, shapes), which become parameters."""
    if _is_int(value):
        return "#"
    if isinstance(value, tuple | list) and value and all(_is_int(v) for v in value):
        return ("#",) * len(value)
    return repr(value)


def _signature(node: Op) -> tuple[object, ...]:
    """The op and its fields, integers left out."""
    attrs = {k: _abstract(v) for k, v in _fields(node).items()}
    return (node.op, *sorted(attrs.items()))


def _key(unit: Unit, signatures: dict[str, int]) -> tuple[object, ...]:
    """What alike units share: each node's signature (``signatures``: node -> the
    number of its signature) and which of the unit's values it reads."""
    local = {unit.source: 0} | {n.name: k + 1 for k, n in enumerate(unit.nodes)}
    return tuple((signatures[n.name], *(local[i] for i in n.inputs)) for n in unit.nodes)


def _local_names(unit: Unit) -> dict[str, str]:
    counters: dict[str, int] = {}
    names = {}
    for n in unit.nodes:
        counters[n.op] = counters.get(n.op, 0) + 1
        names[n.name] = f"{n.op}_{counters[n.op]}"
    return names


def _choose(units: list[Unit], model: Model) -> list[list[Unit]]:
    """Groups of alike, disjoint units to write as blocks. Units that are two or more
    alike units in a row are left out where they overlap (dense layers taken two at a
    time: the one layer is the repeated structure, not an arbitrary pairing), kept
    where they do not (a U-Net's two convolutions at each resolution).
    Each choice takes the group saving the most lines (a block of ``k`` nodes costs
    ``k + 5`` lines and each of its ``m`` calls saves ``k - 1``); the first choice is
    tried among the few best, keeping the plan that saves the most."""
    numbers: dict[tuple[object, ...], int] = {}
    signatures = {n.name: numbers.setdefault(_signature(n), len(numbers)) for n in model.nodes}
    keys = {(u.source, u.output): _key(u, signatures) for u in units}
    exits: dict[tuple[str, tuple[object, ...]], set[str]] = {}
    for (source, output), key in keys.items():
        exits.setdefault((source, key), set()).add(output)

    def repeats(unit: Unit) -> bool:
        position = {n.name: k for k, n in enumerate(unit.nodes)}
        for n in unit.nodes[:-1]:
            key = keys.get((unit.source, n.name))
            current = n.name
            while key is not None and current != unit.output:
                following = exits.get((current, key), set()) & position.keys()
                if not following:
                    break
                current = max(following, key=position.__getitem__)
            if current == unit.output:
                return True
        return False

    groups: dict[tuple[object, ...], list[Unit]] = {}
    composite: set[tuple[object, ...]] = set()
    for unit in units:
        key = keys[(unit.source, unit.output)]
        groups.setdefault(key, []).append(unit)
        if repeats(unit):
            composite.add(key)
    candidates = [
        g for key, g in groups.items() if len(g) >= 2 and not (key in composite and _overlapping(g))
    ]

    def plan(first: tuple[int, list[Unit]] | None) -> tuple[int, list[list[Unit]]]:
        """Lines saved and the groups chosen, ``first`` first, then the best each time."""
        taken: set[str] = set()
        chosen: list[list[Unit]] = []
        total = 0
        step = first
        while step is not None:
            total += step[0]
            chosen.append(step[1])
            taken |= {n.name for unit in step[1] for n in unit.nodes}
            step = _best(candidates, taken)
        return total, chosen

    ranked = sorted(
        (r for r in (_usable(g, set()) for g in candidates) if r is not None),
        key=lambda r: -r[0],
    )
    plans = [plan(r) for r in ranked[:_STARTS]] or [(0, [])]
    # the most lines saved; of equal savings, the most calls (smaller blocks)
    return max(plans, key=lambda p: (p[0], sum(len(g) for g in p[1])))[1]


_STARTS = 8  # first choices tried


def _overlapping(group: list[Unit]) -> bool:
    seen: set[str] = set()
    for unit in group:
        names = {n.name for n in unit.nodes}
        if names & seen:
            return True
        seen |= names
    return False


def _usable(group: list[Unit], taken: set[str]) -> tuple[int, list[Unit]] | None:
    """The group's units clear of ``taken`` and of each other, and the lines they
    save, if they save any."""
    usable: list[Unit] = []
    used: set[str] = set()
    for unit in group:
        names = {n.name for n in unit.nodes}
        if names & taken or names & used:
            continue
        usable.append(unit)
        used |= names
    k = len(group[0].nodes)
    saving = len(usable) * (k - 1) - (k + 5)
    return (saving, usable) if len(usable) >= 2 and saving > 0 else None


def _best(candidates: list[list[Unit]], taken: set[str]) -> tuple[int, list[Unit]] | None:
    best: tuple[int, list[Unit]] | None = None
    for group in candidates:
        found = _usable(group, taken)
        if found is not None and (best is None or found[0] > best[0]):
            best = found
    return best


def with_blocks(program: Program, model_name: str, weights: Weights) -> tuple[str, Weights]:
    """The spec text of ``program`` with repeated units as blocks, and the weights
    renamed to the names that text gives; unchanged where nothing repeats or blocks
    would not make it shorter."""
    from nnc.dsl import format_program

    flat_text = format_program(program)
    other = {k: m for k, m in program.models.items() if k != model_name}
    if other or program.recipes:
        return flat_text, weights
    model = nest_concats(program.models[model_name])
    if any(isinstance(s, ast.Stack) for s in model_to_ast(model).body):
        return flat_text, weights  # a chain, written as a stack: a line a layer already
    order = {n.name: k for k, n in enumerate(model.nodes)}
    repeated = sorted(_choose(_units(model), model), key=lambda g: order[g[0].output])
    while repeated:
        text, new_weights, renamed = _write(model, repeated, weights)
        if _same_ir(text, renamed, model):
            if len(text.splitlines()) < len(flat_text.splitlines()):
                return text, new_weights
            return flat_text, weights
        # never a spec that computes otherwise: keep the blocks that write back alone
        alone = []
        for group in repeated:
            text, _, renamed = _write(model, [group], weights)
            if _same_ir(text, renamed, model):
                alone.append(group)
        if len(alone) == len(repeated):
            break
        repeated = alone
    return flat_text, weights


def _write(
    model: Model, repeated: list[list[Unit]], weights: Weights
) -> tuple[str, Weights, dict[str, str]]:
    """The text with ``repeated``'s groups as blocks, the renamed weights, and the
    written name of each flat node."""
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
    return format_file(tree), new_weights, renamed


def _same_ir(text: str, renamed: dict[str, str], model: Model) -> bool:
    """Whether ``text`` parses to ``model``'s nodes, renamed: the same nodes reading
    the same values (a call's nodes come together, so the order may differ), the
    same inputs and outputs."""
    from nnc.dsl import parse

    try:
        written = parse(text).models[model.name]
    except NncError:  # a refusal means: not this text
        return False

    def name(v: str) -> str:
        return renamed.get(v, v)

    want = {
        name(n.name): n.model_copy(
            update={"name": name(n.name), "inputs": tuple(name(i) for i in n.inputs)}
        )
        for n in model.nodes
    }
    got = {n.name: n for n in written.nodes}
    return (
        got == want
        and len(written.nodes) == len(model.nodes)
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


Slot = tuple[int, str, int | None]  # node position, attribute, index in a tuple


def _parameters(group: list[Unit]) -> tuple[dict[Slot, int], list[tuple[int, ...]]]:
    """Each integer that differs between instances (a field, or one entry of a tuple
    field) -> its parameter; and the parameters' values, one column per parameter
    (instances in order). Integers with the same values everywhere share one."""
    slots: dict[Slot, int] = {}
    columns: list[tuple[int, ...]] = []

    def note(slot: Slot, column: tuple[int, ...]) -> None:
        if len(set(column)) == 1:
            return
        if column not in columns:
            columns.append(column)
        slots[slot] = columns.index(column)

    for position, node in enumerate(group[0].nodes):
        for attr in _fields(node):
            value = getattr(node, attr)
            values = [getattr(u.nodes[position], attr) for u in group]
            if _is_int(value):
                note((position, attr, None), tuple(int(v) for v in values))
            elif isinstance(value, tuple) and value and all(_is_int(v) for v in value):
                for j in range(len(value)):
                    note((position, attr, j), tuple(int(v[j]) for v in values))
    return slots, columns


def _block(
    name: str, unit: Unit, source: TensorType, slots: dict[Slot, int], count: int
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
        for (p, attr, j), index in slots.items():
            if p != position:
                continue
            if j is None:
                update[attr] = _SENTINEL + index
            else:
                entries = list(update.get(attr, getattr(n, attr)))  # type: ignore[call-overload]
                entries[j] = _SENTINEL + index
                update[attr] = tuple(entries)
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
