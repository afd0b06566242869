"""Pattern rules: pattern, then check, then rewrite (in the style of onnxscript's
rewriter), grouped into rule sets.

A :class:`Rule`'s pattern is a chain of ops, each node feeding the next as its only
input: ``("conv2d|dense", "batchnorm")`` matches a conv2d or dense followed by a
batchnorm. Each match is checked, first for what any chain rewrite needs (the inner
values are read by nothing else), then by the rule's own ``check``, which returns
None when the rule applies or the *reason* it does not. A :class:`RuleSet` applies its
rules until none applies any more, and its result logs every place a rule applied
or was skipped, with the reason.

>>> import nnc
>>> def drop(match):
...     return match.nodes[0].inputs[0]          # readers of the dropout read its input
>>> def not_named_keep(match):
...     return "it is named keep" if match.nodes[0].name == "keep" else None
>>> rules = RuleSet("inference", [Rule("drop-dropout", ("dropout",), drop, not_named_keep)])
>>> p = nnc.parse("model M { input x: [4]  dense(4)  dropout(0.5)  dropout(0.2, name = keep) }")
>>> result = rules.apply(p)
>>> [n.op for n in result.program.models["M"].nodes]
['dense', 'dropout']
>>> print(result.explain())
drop-dropout: M: dropout_1: applied
drop-dropout: M: keep: skipped: it is named keep
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from nnc.errors import ArgumentError, NameResolutionError, RewriteError, did_you_mean
from nnc.ir.ops import OPS, Node
from nnc.ir.program import Model, Program
from nnc.ir.types import TensorType
from nnc.rewrite.engine import (
    Context,
    Edit,
    LogEntry,
    Result,
    Rewritten,
    apply_edits,
    as_replacement,
    finish,
    start,
    targets,
)

if TYPE_CHECKING:
    import numpy as np

MAX_ROUNDS = 32


@dataclass(frozen=True)
class Match:
    """One place a rule's pattern matched: its nodes in chain order."""

    rule: Rule
    nodes: tuple[Node, ...]
    context: Context

    @property
    def model(self) -> Model:
        """The (checked) model the match is in."""
        return self.context.model

    @property
    def names(self) -> tuple[str, ...]:
        """The matched nodes' names, in chain order."""
        return tuple(n.name for n in self.nodes)

    def type_of(self, value: str) -> TensorType:
        """The type of a value of the model (``match.type_of(match.nodes[0].inputs[0])``)."""
        return self.context.type_of(value)


Check = Callable[[Match], str | None]
Rewrite = Callable[[Match], Result]


@dataclass(frozen=True)
class Rule:
    """``pattern`` (a chain of op names; ``a|b`` for either), ``rewrite`` (what
    replaces the matched chain, as for :func:`nnc.rewrite.rewrite`), and ``check``
    (None when the rule applies, else the reason it does not)."""

    name: str
    pattern: tuple[str, ...]
    rewrite: Rewrite
    check: Check | None = None
    description: str = ""

    def __post_init__(self) -> None:
        if not self.pattern:
            raise ArgumentError(f"rule '{self.name}' needs a pattern of at least one op")
        for element in self.pattern:
            for op in element.split("|"):
                if op not in OPS:
                    raise NameResolutionError(
                        f"rule '{self.name}': unknown op '{op}' in its pattern",
                        hint=did_you_mean(op, OPS),
                    )

    def find(self, context: Context) -> Iterator[tuple[Node, ...]]:
        """Every chain of the model that matches the pattern, in topological order."""
        steps = [frozenset(element.split("|")) for element in self.pattern]
        for first in context.model.nodes:
            if first.op not in steps[0]:
                continue
            chain = [first]
            for ops in steps[1:]:
                following = [
                    n
                    for n in context.readers(chain[-1].name)
                    if n.op in ops and n.inputs == (chain[-1].name,)
                ]
                if not following:
                    break
                chain.append(following[0])
            if len(chain) == len(steps):
                yield tuple(chain)


def chain_reason(match: Match) -> str | None:
    """Why a chain cannot be replaced as a whole: an inner value is read elsewhere."""
    ctx = match.context
    for inner, following in zip(match.nodes, match.nodes[1:], strict=False):
        others = [n.name for n in ctx.readers(inner.name) if n is not following]
        if others:
            return f"the output of '{inner.name}' is also read by {', '.join(others)}"
        if ctx.is_output(inner.name):
            return f"the output of '{inner.name}' is also a model output"
    return None


@dataclass(frozen=True)
class RuleSet:
    """Rules applied together, round after round, until none applies."""

    name: str
    rules: tuple[Rule, ...]

    def __init__(self, name: str, rules: Iterable[Rule]):
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "rules", tuple(rules))

    def apply(
        self,
        program: Program,
        weights: Mapping[str, np.ndarray] | None = None,
        *,
        model: str | None = None,
    ) -> Rewritten:
        """Rewrite every model (or ``model``); ``weights`` belong to ``model`` or to the
        program's trained (or only) model and are rewritten with it."""
        program, state = start(program, weights, model)
        log: list[LogEntry] = []
        source = f"rule set '{self.name}'"
        for _ in range(MAX_ROUNDS):
            skipped: list[LogEntry] = []
            changed = False
            for target in targets(program, model):
                ctx = Context(program, program.models[target])
                edits, entries = self._edits(ctx)
                log += [e for e in entries if e.applied]
                skipped += [e for e in entries if not e.applied]
                if edits:
                    program = finish(apply_edits(program, target, edits, state, source), source)
                    changed = True
            if not changed:
                log += skipped
                return Rewritten(program, state.weights(program, source) if state else None, log)
        raise RewriteError(
            f"{source} still rewrote after {MAX_ROUNDS} rounds; a rule probably undoes another"
        )

    def _edits(self, ctx: Context) -> tuple[list[Edit], list[LogEntry]]:
        used: set[str] = set()
        edits: list[Edit] = []
        entries: list[LogEntry] = []
        for rule in self.rules:
            for chain in rule.find(ctx):
                match = Match(rule, chain, ctx)
                if used & set(match.names):
                    continue
                reason = chain_reason(match) or (rule.check(match) if rule.check else None)
                if reason is not None:
                    entries.append(LogEntry(rule.name, ctx.model.name, match.names, reason))
                    continue
                replacement = as_replacement(rule.rewrite(match), chain[-1])
                if replacement is None:
                    continue
                edits.append(Edit(match.names, replacement))
                used |= set(match.names)
                entries.append(LogEntry(rule.name, ctx.model.name, match.names))
        return edits, entries


__all__ = ["Check", "Match", "Rewrite", "Rule", "RuleSet", "chain_reason"]
