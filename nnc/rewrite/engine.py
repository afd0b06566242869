"""The rewrite engine: replace nodes of a model, keep the IR valid and the weights in step.

Everything that changes a program goes through :func:`apply_edits`: a set of edits,
each replacing some nodes of one model by new ones (a :class:`Replacement`). Readers
of a replaced node are redirected to the value that stands for it, parameters follow
their nodes, and the result is checked again (:func:`finish`), so a rewrite always
returns a new, valid IR; the input program is never changed (it is immutable).

:func:`rewrite` is the generic traversal built on it: a function sees each node and
says what replaces it.

>>> import nnc
>>> from nnc.ir.ops.activations import Gelu
>>> def gelu_for_sigmoid(node, ctx):
...     if node.op == "sigmoid":
...         return Gelu(name=ctx.fresh("gelu"), inputs=node.inputs)
...     return None
>>> program = rewrite(nnc.load("examples/xor.nn"), gelu_for_sigmoid).program
>>> [n.name for n in program.models["Xor"].nodes]
['dense_1', 'gelu_1', 'dense_2', 'gelu_2']
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from nnc.errors import NameResolutionError, NncError, RewriteError, WeightsError, did_you_mean
from nnc.ir.base import Op
from nnc.ir.graph import base_name, consumers, is_output, producers
from nnc.ir.ops import Node
from nnc.ir.ops.graph import Call
from nnc.ir.passes import check, model_params
from nnc.ir.program import Model, Program
from nnc.ir.types import TensorType
from nnc.rewrite.weights import Instance, NodeWeights, Weights, flatten, instances, split

if TYPE_CHECKING:
    import numpy as np

# What replaces the old parameters: ``fn(old, prefix)`` gets the tensors of the
# replaced nodes of one model instance (``prefix`` names the instance, "" at the top)
# and returns tensors for the new nodes. Nodes it leaves out keep their tensors when
# a replaced node of the same name (or the only one with parameters) had them.
WeightFn = Callable[[NodeWeights, str], NodeWeights]


@dataclass(frozen=True)
class Replacement:
    """New nodes for old ones. ``value`` stands for the old (last) node's output
    (default: the last new node); with no nodes, it bypasses the old node."""

    nodes: tuple[Node, ...] = ()
    value: str | None = None
    weights: WeightFn | None = None

    @property
    def result(self) -> str:
        """The value that stands for the replaced output."""
        if self.value is not None:
            return self.value
        if not self.nodes:
            raise RewriteError("a replacement needs new nodes or the value that replaces")
        return self.nodes[-1].name


# What a rewrite function may return for a node: None (keep it), a node, several
# nodes (the last one's output replaces), a value name (bypass), or a Replacement.
Result = Replacement | Node | Sequence[Node] | str | None


def as_replacement(result: Result, old: Node) -> Replacement | None:
    """Normalise what a rewrite function returned; None when nothing changes."""
    if result is None or result is old:
        return None
    if isinstance(result, Replacement):
        return result
    if isinstance(result, str):
        return Replacement(value=result)
    if isinstance(result, Op):
        return None if result == old else Replacement(nodes=(result,))
    return Replacement(nodes=tuple(result))


class Context:
    """What a rewrite function may look at: the checked program and model being
    rewritten, value types, producers and consumers, and fresh node names."""

    def __init__(self, program: Program, model: Model):
        self.program = program
        self.model = model
        self._taken = {i.name for i in model.inputs} | {n.name for n in model.nodes}
        self._readers: dict[str, list[Node]] = {}
        for node in model.nodes:
            for ref in dict.fromkeys(base_name(r) for r in node.inputs):
                self._readers.setdefault(ref, []).append(node)

    def type_of(self, value: str) -> TensorType:
        """The type of a value (an input, a node, or ``node:k``)."""
        return self.model.value_type(value)

    def producers(self, node: str) -> list[Node]:
        """The nodes whose outputs ``node`` reads."""
        return producers(self.model, node)

    def consumers(self, value: str) -> list[Node]:
        """The nodes that read ``value`` (an input, a node, or ``node:k``)."""
        return consumers(self.model, value)

    def readers(self, name: str) -> list[Node]:
        """The nodes that read any output of node (or input) ``name``; indexed, for
        pattern matching over large models."""
        return self._readers.get(name, [])

    def is_output(self, value: str) -> bool:
        """Whether ``value`` is (one of) the model's outputs."""
        return is_output(self.model, value)

    def fresh(self, base: str) -> str:
        """The next free ``<base>_<k>`` name of the model, counting from 1, as the
        parser names nodes."""
        k = 1
        while f"{base}_{k}" in self._taken:
            k += 1
        name = f"{base}_{k}"
        self._taken.add(name)
        return name


@dataclass(frozen=True)
class LogEntry:
    """What a rule or pass did at one place: applied, or skipped with the reason."""

    source: str
    model: str
    nodes: tuple[str, ...]
    reason: str | None = None

    @property
    def applied(self) -> bool:
        return self.reason is None

    def __str__(self) -> str:
        where = f"{self.model}: {' -> '.join(self.nodes)}"
        if self.reason is None:
            return f"{self.source}: {where}: applied"
        return f"{self.source}: {where}: skipped: {self.reason}"


@dataclass
class Rewritten:
    """A rewritten program, its weights (when weights were given) and what happened.

    It unpacks as a pair: ``program, weights = fold_batchnorm(program, weights)``.
    """

    program: Program
    weights: Weights | None = None
    log: list[LogEntry] = field(default_factory=list)

    def __iter__(self) -> Iterator[Any]:
        yield self.program
        yield self.weights

    @property
    def applied(self) -> list[LogEntry]:
        """Where a rule or pass applied."""
        return [e for e in self.log if e.applied]

    @property
    def skipped(self) -> list[LogEntry]:
        """Where a rule matched but did not apply, with the reason."""
        return [e for e in self.log if not e.applied]

    def explain(self) -> str:
        """One line per place a rule applied or was skipped, with the reason."""
        return "\n".join(str(e) for e in self.log) or "nothing to rewrite"


@dataclass(frozen=True)
class Edit:
    """Replace ``nodes`` (of one model; the last one's output is replaced)."""

    nodes: tuple[str, ...]
    replacement: Replacement


class WeightState:
    """The weights being rewritten, as a tree of instances of ``root``."""

    def __init__(self, program: Program, root: str, weights: Mapping[str, np.ndarray]):
        from nnc.ir.weights import check_weights

        self.root = root
        self.tree = split(program, root, check_weights(program, root, weights))

    def instances(self, program: Program, model: str) -> list[tuple[str, Instance]]:
        """Every use of ``model`` in the weights' tree, with its name prefix."""
        return instances(program, self.root, self.tree, model)

    def weights(self, program: Program, source: str) -> Weights:
        """The rewritten weights, checked against the rewritten model."""
        from nnc.ir.weights import check_weights

        try:
            flat = flatten(program, self.root, self.tree)
            return check_weights(program, self.root, flat, source="the weights")
        except WeightsError as err:
            raise RewriteError(f"{source}: {err.message}") from None


def start(
    program: Program, weights: Mapping[str, np.ndarray] | None, model: str | None
) -> tuple[Program, WeightState | None]:
    """Check the program, and the weights against the model they belong to: ``model``
    (or the trained, or first, model), unless they are exactly the parameters (names
    and shapes) of another model, such as one that calls it."""
    program = check(program)
    if weights is None:
        return program, None
    return program, WeightState(program, weights_model(program, weights, model), weights)


def weights_model(
    program: Program, weights: Mapping[str, np.ndarray], model: str | None = None
) -> str:
    """The model canonical weights belong to (see :func:`start`)."""
    default = program.model(model).name
    given = {k: tuple(getattr(v, "shape", ())) for k, v in weights.items()}
    for name in (default, *program.models):
        if {p.name: p.shape for p in model_params(program, name)} == given:
            return name
    return default  # checking against it says what is missing or extra


def targets(program: Program, model: str | None) -> list[str]:
    """The models a pass rewrites: the named one, or all."""
    return list(program.models) if model is None else [program.model(model).name]


def finish(program: Program, source: str) -> Program:
    """Check a rewritten program; a failure is the rewrite's fault and says so."""
    try:
        return check(program)
    except NncError as err:
        raise RewriteError(
            f"{source} produced a program that does not check: {err.message}",
            err.span,
            hint=err.hint,
        ) from None


def rewrite(
    program: Program,
    fn: Callable[[Node, Context], Result],
    *,
    model: str | None = None,
    weights: Mapping[str, np.ndarray] | None = None,
    name: str = "rewrite",
) -> Rewritten:
    """Call ``fn(node, context)`` on every node (topological order) of every model, or
    of ``model``, and apply what it returns (see :data:`Result`). The result is
    checked; ``weights`` (see :func:`start` for whose) follow the nodes."""
    program, state = start(program, weights, model)
    log: list[LogEntry] = []
    for target in targets(program, model):
        m = program.models[target]
        ctx = Context(program, m)
        edits = []
        for node in m.nodes:
            replacement = as_replacement(fn(node, ctx), node)
            if replacement is not None:
                edits.append(Edit((node.name,), replacement))
                log.append(LogEntry(name, target, (node.name,)))
        if edits:
            program = finish(apply_edits(program, target, edits, state, name), name)
    return Rewritten(program, state.weights(program, name) if state else None, log)


def apply_edits(
    program: Program, model: str, edits: Sequence[Edit], state: WeightState | None, source: str
) -> Program:
    """Apply non-overlapping edits to one model of a checked program (unchecked result)."""
    m = program.models[model]
    by_last = {e.nodes[-1]: e for e in edits}
    replaced = {n for e in edits for n in e.nodes}
    known = {n.name for n in m.nodes}
    for n in replaced - known:
        raise NameResolutionError(
            f"{source}: model '{model}' has no node '{n}'", hint=did_you_mean(n, known)
        )
    value_map: dict[str, str] = {}

    def remap(ref: str) -> str:
        return value_map.get(ref, ref)

    nodes: list[Node] = []
    for node in m.nodes:
        edit = by_last.get(node.name)
        if edit is None:
            if node.name not in replaced:
                nodes.append(node.model_copy(update={"inputs": tuple(map(remap, node.inputs))}))
            continue
        # Inside a replacement, a name of one of its earlier new nodes means that node;
        # any other name means the value of the model before the edit.
        local: set[str] = set()
        for new in edit.replacement.nodes:
            inputs = tuple(r if base_name(r) in local else remap(r) for r in new.inputs)
            nodes.append(new.model_copy(update={"inputs": inputs}))
            local.add(new.name)
        result = edit.replacement.result
        value = result if base_name(result) in local else remap(result)
        value_map[node.name] = value
        if isinstance(node, Call):
            for k in range(1, len(node.outs)):
                value_map[f"{node.name}:{k}"] = f"{base_name(value)}:{k}"
    new_model = m.model_copy(
        update={"nodes": tuple(nodes), "outputs": tuple(map(remap, m.outputs))}
    )
    if state is not None:
        for prefix, tree in state.instances(program, model):
            # Take every replaced node's tensors out first, so that renames which
            # swap names cannot overwrite each other.
            taken = [_take(tree, edit) for edit in edits]
            for edit, (old, old_calls) in zip(edits, taken, strict=True):
                _give(tree, edit, old, old_calls, prefix, source)
    return program.model_copy(update={"models": {**program.models, model: new_model}})


def _take(tree: Instance, edit: Edit) -> tuple[NodeWeights, dict[str, Instance]]:
    old = {n: tree.params.pop(n) for n in edit.nodes if n in tree.params}
    old_calls = {n: tree.calls.pop(n) for n in edit.nodes if n in tree.calls}
    return old, old_calls


def _give(
    tree: Instance,
    edit: Edit,
    old: NodeWeights,
    old_calls: dict[str, Instance],
    prefix: str,
    source: str,
) -> None:
    """Give the new nodes of ``edit`` their tensors in one instance."""
    new = edit.replacement.weights(old, prefix) if edit.replacement.weights else {}
    holders = [n for n in edit.replacement.nodes if n.has_params]
    for node in edit.replacement.nodes:
        if isinstance(node, Call):
            callee = old_calls.get(node.name)
            if callee is None and len(old_calls) == 1:
                callee = next(iter(old_calls.values()))
            if callee is None:
                raise RewriteError(
                    f"{source}: new call '{prefix}{node.name}' has no weights for its model"
                )
            tree.calls[node.name] = callee
        elif node.name in new:
            tree.params[node.name] = new[node.name]
        elif node.name in old:
            tree.params[node.name] = old[node.name]
        elif node in holders and len(holders) == 1 and len(old) == 1:
            tree.params[node.name] = next(iter(old.values()))
