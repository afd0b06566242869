"""Syntax tree -> IR: resolve names, expand blocks, bind arguments, name nodes.

Naming rules (the formatter relies on them):

- a node gets the name it is assigned to (``h = x |> dense(5)`` names the dense
  ``h``), or ``name = ...`` among its arguments, or else ``<op>_<k>``, counting per op
  from 1 and skipping names written elsewhere in the model;
- a call of another model is named like ``encoder_1`` (the model's name in
  snake_case); a block instance prefixes the names of its nodes with its own name,
  ``residual_1_conv2d_1``;
- an assignment of a name to an existing tensor (``y = x``) is an alias;
- ``repeat N { ... }`` lowers as its body written out N times.

A search distribution (``choice(64, 128)``) lowers to whatever ``choose`` puts in its
place (see :mod:`nnc.dsl.space`); without ``choose`` it is an error.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field

from nnc.dsl import ast
from nnc.dsl.bind import Chooser
from nnc.dsl.library import library_blocks
from nnc.dsl.lower_graph import (
    MAX_BLOCK_DEPTH,
    MAX_NODES,
    BlockCheck,
    Graph,
    Scope,
    SplitCheck,
    snake_case,
)
from nnc.dsl.lower_recipe import lower_recipe
from nnc.dsl.unfold import BlockSizes, callee_first, used_names
from nnc.errors import (
    GraphError,
    NameResolutionError,
    NncError,
    ResourceError,
)
from nnc.ir.ops import OPS
from nnc.ir.ops.graph import Call
from nnc.ir.passes.validate import check_identifier
from nnc.ir.program import Model, Program


@dataclass
class Lowered:
    """The lowered program; with ``collect``, also every independent error, and the
    names of the models and recipes those errors (or a failed dependency) left out."""

    program: Program
    block_checks: list[BlockCheck] = field(default_factory=list)
    errors: list[NncError] = field(default_factory=list)
    failed: set[str] = field(default_factory=set)
    split_checks: list[SplitCheck] = field(default_factory=list)


def lower(tree: ast.File, choose: Chooser | None = None, collect: bool = False) -> Lowered:
    """Lower a parsed file to an (unchecked) IR program; ``choose`` stands in for its
    search distributions.

    The first error is raised; with ``collect``, every definition is lowered on its
    own, and the errors are gathered instead (a definition that fails only because
    another one did adds no error of its own): what ``nnc check`` reports."""
    return _Lowerer(tree, choose, collect).run()


class _DependencyFailed(Exception):
    """A model uses a model that failed to lower: no error of its own."""


class _Lowerer:
    def __init__(self, tree: ast.File, choose: Chooser | None = None, collect: bool = False):
        self.tree = tree
        self.choose = choose
        self.collect = collect
        self.model_defs: dict[str, ast.ModelDef] = {}
        self.block_defs: dict[str, ast.BlockDef] = {}
        self.models: dict[str, Model] = {}
        self.checks: list[BlockCheck] = []
        self.split_checks: list[SplitCheck] = []
        self.errors: list[NncError] = []
        self.failed: set[str] = set()
        self._lowering: list[str] = []
        # Each model's node count with every call unfolded, totalled once per model.
        self.unfolded: dict[str, int] = {}
        self.block_sizes = BlockSizes(self.block_defs, self.model_defs)

    def _attempt(self, name: str, lower: Callable[[], object]) -> bool:
        """Run ``lower()``; when collecting, record its error (once) and mark ``name``
        failed instead of raising."""
        if not self.collect:
            lower()
            return True
        try:
            lower()
            return True
        except _DependencyFailed:
            pass
        except NncError as err:
            if not any(str(e) == str(err) for e in self.errors):
                self.errors.append(err)
        self.failed.add(name)
        self._lowering.clear()
        return False

    def run(self) -> Lowered:
        recipes: list[ast.TrainDef] = []
        for item in self.tree.items:
            if isinstance(item, ast.TrainDef):
                recipes.append(item)
                continue
            self._attempt(item.name, functools.partial(self._define, item))
        # The standard library's blocks (nnc/stdlib/*.nn), unless the file defines the
        # name; parsed only when the file uses a name that is neither its own nor an op
        # (most files use none, and `nnc check` then skips parsing the library).
        if self._uses_unknown_name():
            for name, block in library_blocks().items():
                if name not in self.model_defs and name not in self.block_defs:
                    self.block_defs[name] = block
        # Callees first, so lowering a model never recurses into another (a chain of
        # thousands of models lowers in a loop).
        for name in callee_first(self.model_defs, self.block_defs):
            if name not in self.models and name not in self.failed:
                self._attempt(name, functools.partial(self._model, name))
        lowered_recipes = {}
        for r in recipes:

            def add(r: ast.TrainDef = r) -> None:
                if r.name in lowered_recipes:
                    raise NameResolutionError(
                        f"train recipe '{r.name}' is defined twice", r.name_span
                    )
                lowered_recipes[r.name] = lower_recipe(r, self.models, self.choose)

            self._attempt(r.name, add)
        # Built from values already validated (models, recipes): no second validation,
        # which would build the schema of every op (the Node union) on each `nnc check`.
        program = Program.model_construct(
            models={n: self.models[n] for n in self.model_defs if n in self.models},
            recipes=lowered_recipes,
        )
        return Lowered(program, self.checks, self.errors, self.failed, self.split_checks)

    def _uses_unknown_name(self) -> bool:
        """Whether a body in the file names a layer the file does not define and no op
        is: only then can a library block be what it means (library blocks never take
        an op's name: tests/dsl/test_library.py)."""
        defined = self.model_defs.keys() | self.block_defs.keys()
        for item in self.tree.items:
            if isinstance(item, ast.ModelDef | ast.BlockDef):
                for used, _, _ in used_names(item.body):
                    if used not in defined and used not in OPS:
                        return True
        return False

    def _define(self, item: ast.ModelDef | ast.BlockDef) -> None:
        """Register a model or block definition under its (checked) name."""
        problem = check_identifier(item.name, "name")
        if problem:
            raise NameResolutionError(problem, item.name_span)
        if item.name in self.model_defs or item.name in self.block_defs:
            raise NameResolutionError(
                f"'{item.name}' is defined twice (models and blocks share one namespace)",
                item.name_span,
            )
        if item.name in OPS:
            raise NameResolutionError(
                f"'{item.name}' is the name of a built-in op; choose another name",
                item.name_span,
            )
        if isinstance(item, ast.ModelDef):
            self.model_defs[item.name] = item
        else:
            self.block_defs[item.name] = item

    # -- models -------------------------------------------------------------------

    def _model(self, name: str) -> Model:
        if name in self.models:
            return self.models[name]
        if name in self.failed:
            raise _DependencyFailed(name)
        d = self.model_defs[name]
        if name in self._lowering:
            chain = " -> ".join((*self._lowering[self._lowering.index(name) :], name))
            raise GraphError(f"model '{name}' uses itself: {chain}", d.name_span)
        self._lowering.append(name)
        scope = Scope(self, model=name, graph=Graph())
        scope.run(d.body)
        if not scope.inputs:
            raise GraphError(f"model '{name}' declares no input", d.name_span)
        outputs = scope.outputs if scope.outputs is not None else [scope.need_current(d.span)]
        model = Model.model_construct(  # of validated nodes and inputs, as Program's
            name=name,
            inputs=tuple(scope.inputs),
            nodes=tuple(scope.nodes),
            outputs=tuple(outputs),
            span=d.name_span,
            blocks=tuple(scope.graph.blocks),
        )
        self._lowering.pop()
        self.unfolded[name] = self._unfolded_size(model)
        self.models[name] = model
        return model

    def _unfolded_size(self, model: Model) -> int:
        """The nodes ``model`` has with every call unfolded (its callees' totals are
        known already); past MAX_NODES, a ResourceError at the call that passes it."""
        total = 0
        for node in model.nodes:
            total += self.unfolded[node.model] if isinstance(node, Call) else 1
            if total > MAX_NODES:
                what = (
                    f"the call of model '{node.model}' ({self.unfolded[node.model]:,} nodes "
                    "unfolded)"
                    if isinstance(node, Call)
                    else f"node '{node.name}'"
                )
                raise ResourceError(
                    f"model '{model.name}' would unfold to more than {MAX_NODES:,} nodes: "
                    f"{what} passes the limit",
                    node.span,
                )
        return total


__all__ = ["MAX_BLOCK_DEPTH", "MAX_NODES", "BlockCheck", "Lowered", "lower", "snake_case"]
