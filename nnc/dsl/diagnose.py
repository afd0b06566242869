"""Every independent error of a spec, in source order: what ``nnc check`` reports.

:func:`nnc.dsl.parse` stops at the first error. :func:`diagnose` goes on as a
compiler does: each model, block and recipe is lowered on its own
(:func:`~nnc.dsl.lower.lower` with ``collect``), then each model is typed, checked
against its blocks' declared shapes, validated and held to the memory budget on its
own, then each recipe against the models it trains. A definition that fails only
because one it uses failed adds no error of its own, so every error reported is one
to fix. A syntax error ends the file there: the parser cannot know where the next
definition starts; so does an input the parser refuses to build (a literal or a
nesting past nnc's limits). The file is parsed once: the syntax tree is kept in the
:class:`Diagnosis` for tools that answer from it (the language server).

>>> found = diagnose("model A { input x: [4]  dense(0) }\\n"
...                  "model B { input y: [2, 2, 2]  dense(3) }\\n"
...                  "model C { input z: [3]  desne(2) }\\n", "f.nn")
>>> [f"{e.span.line}:{e.span.col}" for e in found.errors]
['1:31', '2:31', '3:25']
"""

from __future__ import annotations

from dataclasses import dataclass, field

from nnc.dsl import ast
from nnc.dsl.lower import BlockCheck, lower
from nnc.dsl.lower_graph import SplitCheck
from nnc.dsl.parser import parse_file
from nnc.errors import NncError
from nnc.ir.ops.graph import Call
from nnc.ir.passes import check_resources, infer_shapes, validate
from nnc.ir.program import Model, Program


@dataclass
class Diagnosis:
    """The checked program when the spec has no error, else every error found; the
    syntax tree when the file parses."""

    program: Program | None
    errors: list[NncError] = field(default_factory=list)
    tree: ast.File | None = None


def diagnose(text: str, filename: str = "<string>", memory_budget: int | None = None) -> Diagnosis:
    """Check ``text`` and report every independent error it holds (see the module)."""
    from nnc.collector import fewer_collections

    with fewer_collections():
        return _diagnose(text, filename, memory_budget)


def _diagnose(text: str, filename: str, memory_budget: int | None) -> Diagnosis:
    from nnc.dsl import program_of

    try:
        tree = parse_file(text, filename)
    except NncError as err:  # the parser stops here: nothing after it can be read
        return Diagnosis(None, [err.with_source(text)])
    try:
        return Diagnosis(program_of(tree, memory_budget=memory_budget), tree=tree)
    except NncError as first:
        errors = _every_error(tree, memory_budget) or [first]
    errors.sort(key=_position)
    return Diagnosis(None, [e.with_source(text) for e in errors], tree)


def _every_error(tree: ast.File, memory_budget: int | None) -> list[NncError]:
    lowered = lower(tree, collect=True)
    errors = list(lowered.errors)
    program = lowered.program
    ok: dict[str, Model] = {}
    failed = set(lowered.failed)

    def record(err: NncError) -> None:
        if not any(str(e) == str(err) for e in errors):
            errors.append(err)

    for name in program.models:
        needed = _callees(program, name)
        if needed & failed:
            failed.add(name)
            continue
        try:
            sub = program.model_copy(
                update={"models": {n: program.models[n] for n in needed | {name}}, "recipes": {}}
            )
            typed = infer_shapes(sub)
            _blocks(typed, [c for c in lowered.block_checks if c.model == name])
            _splits(typed, [c for c in lowered.split_checks if c.model == name])
            check_resources(validate(typed), memory_budget)
            ok[name] = typed.models[name]
        except NncError as err:
            record(err)
            failed.add(name)
    for recipe in program.recipes.values():
        if set(recipe.models) & failed:
            continue
        recipes = {recipe.name: recipe}  # with the recipe it pretrains with
        pretrain = getattr(recipe, "pretrain", None)
        if pretrain in program.recipes:
            recipes[pretrain] = program.recipes[pretrain]
        try:
            # the memory budget again, with the recipe's batch size and optimizer
            check_resources(validate(Program(models=ok, recipes=recipes)), memory_budget)
        except NncError as err:
            record(err)
    return errors


def _callees(program: Program, name: str) -> set[str]:
    """Every model ``name`` uses as a layer, directly or not."""
    found: set[str] = set()
    stack = [name]
    while stack:
        model = program.models.get(stack.pop())
        for node in model.nodes if model else ():
            if isinstance(node, Call) and node.model not in found:
                found.add(node.model)
                stack.append(node.model)
    found.discard(name)
    return found


def _blocks(program: Program, checks: list[BlockCheck]) -> None:
    from nnc.dsl import _check_blocks

    _check_blocks(program, checks)


def _splits(program: Program, checks: list[SplitCheck]) -> None:
    from nnc.dsl import check_splits

    check_splits(program, checks)


def _position(err: NncError) -> tuple[int, int, int]:
    if err.span is None:
        return (1, 0, 0)
    return (0, err.span.line, err.span.col)
