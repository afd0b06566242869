"""Search spaces in ``.nn`` files: find the distributions, check every value they take,
and write the plain file that one trial trains.

A distribution is a call of ``choice``, ``uniform``, ``loguniform`` or ``integer``
written where a value goes. The binder hands each one it meets to a chooser
(:data:`nnc.dsl.bind.Chooser`) while it lowers the file; here the chooser is a
:class:`Walk`, which reads the distribution once (:func:`read_hole`: its bounds, its
options, its name) and stands a value in for it, picked by ``nnc check`` (every value
in turn) or by a trial (Optuna's suggestion). The values then go back into the syntax
tree by the position of their call (:func:`substitute`), and the printer writes the
plain file, comments, blocks and ``repeat`` kept.

A distribution met more than once (in a block used twice, in a repeated body) is one
parameter with one value. A distribution inside a choice's option (``choice(adam(lr =
loguniform(1e-4, 1e-2)), sgd)``) exists only when that option is chosen.

>>> space = parse_space("model M { input x: [4]  dense(choice(8, 16)) relu  dense(3) }"
...                     "train M { data iris  loss cross_entropy "
...                     "optimizer adam(lr = loguniform(1e-4, 1e-1)) }")
>>> [(p.name, p.distribution.kind) for p in space.space.parameters]
[('dense_1.units', 'choice'), ('optimizer.lr', 'loguniform')]
>>> print(space.sample({"dense_1.units": 16, "optimizer.lr": 0.01}).text)
model M {
    input x: [4]
    dense(16) relu
    dense(3)
}
<BLANKLINE>
train M {
    data      iris
    loss      cross_entropy
    optimizer adam(lr = 0.01)
}
<BLANKLINE>
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from nnc.dsl import ast, program_of, read_spec
from nnc.dsl.bind import Binder, DistributionRefused, is_distribution
from nnc.dsl.diagnose import Diagnosis, diagnose
from nnc.dsl.lower import lower
from nnc.dsl.lower_graph import LayerChoice, RepeatCount, as_stage
from nnc.dsl.parser import parse_file
from nnc.dsl.printer import expr_text, float_text, format_file, string_text
from nnc.errors import ArgumentError, NncError, Span
from nnc.ir.program import Program
from nnc.ir.space import (
    DISTRIBUTIONS,
    Choice,
    ChoiceValue,
    Integer,
    Parameter,
    SearchSpace,
)

Key = tuple[int, int, int, int]


def key_of(span: Span) -> Key:
    """Where a distribution is written: it names the parameter across lowerings."""
    return (span.line, span.col, span.end_line, span.end_col)


@dataclass(frozen=True)
class Hole:
    """One distribution of a file: the parameter it defines and its call as written."""

    parameter: Parameter
    call: ast.Call
    options: tuple[ast.Expr, ...] = ()  # a choice's options, as written
    repeat_count: bool = False

    @property
    def key(self) -> Key:
        return key_of(self.call.span)

    @property
    def first(self) -> ChoiceValue:
        """The value the base program uses: the first option, or the low end; a repeat
        count at least 1 where it can be, so ``nnc check`` sees the repeated body."""
        probes = self.parameter.distribution.probes()
        d = self.parameter.distribution
        if self.repeat_count and isinstance(d, Integer) and d.low < 1 <= d.high:
            return d.low + d.step * -(-(1 - d.low) // d.step)
        if self.repeat_count:
            counts = [v for v in probes if isinstance(v, int) and v >= 1]
            return counts[0] if counts else probes[0]
        return probes[0]

    def expr(self, value: ChoiceValue) -> ast.Expr:
        """The expression that stands for ``value`` in the file."""
        d = self.parameter.distribution
        span = self.call.span
        if isinstance(d, Choice):
            return self.options[_index(d.options, value)]
        if isinstance(d, Integer):
            return ast.Int(value=int(value), span=span)
        number = float(value)
        return ast.Float(value=number, text=float_text(number), span=span)

    def span_of(self, value: ChoiceValue) -> Span:
        """Where ``value`` is written: a choice's option, or a range's bound."""
        d = self.parameter.distribution
        if isinstance(d, Choice):
            return self.options[_index(d.options, value)].span
        ends = {"low": getattr(d, "low", None), "high": getattr(d, "high", None)}
        positional = ("low", "high")
        for i, arg in enumerate(self.call.args):
            name = arg.name or (positional[i] if i < 2 else "")
            if name in ends and ends[name] == value:
                return arg.span
        return self.call.span


def _index(options: tuple[ChoiceValue, ...], value: ChoiceValue) -> int:
    for i, option in enumerate(options):
        if type(option) is type(value) and option == value:
            return i
    for i, option in enumerate(options):  # an int option sampled back as a float
        if option == value and not isinstance(option, bool):
            return i
    raise ArgumentError(f"{value!r} is not one of the options {list(options)}")


def option_label(expr: ast.Expr) -> ChoiceValue:
    """How an option is named in the space (and in Optuna): numbers and booleans as
    themselves, a name as itself, anything else as its source text."""
    if isinstance(expr, ast.Bool | ast.Int | ast.Float):
        return expr.value
    if isinstance(expr, ast.Ref):
        return expr.name
    if isinstance(expr, ast.String):
        return string_text(expr.value)
    return expr_text(expr)


def read_hole(call: ast.Call, annotation: Any, where: str, label: str) -> Hole:
    """The parameter a distribution call defines, or an error that points into it."""
    name = label or f"{call.name}@{call.span.line}:{call.span.col}"
    if annotation is LayerChoice and call.name != "choice":
        raise ArgumentError(
            f"{where}: a layer is drawn with choice(...). Received: {expr_text(call)}",
            call.span,
            hint="choice(relu, tanh) draws one of the layers",
        )
    if call.name == "choice":
        return _read_choice(call, annotation, where, name)
    for arg in call.args:
        if is_distribution(arg.value):
            raise ArgumentError(
                f"{call.name}: the bounds of a range are numbers, not distributions. "
                f"Received: {expr_text(arg.value)}",
                arg.value.span,
            )
    cls = DISTRIBUTIONS[call.name]
    distribution = Binder().bind(cls, call.args, call.name, call.span)
    if call.name in ("uniform", "loguniform") and annotation not in (Any, RepeatCount):
        binder = Binder()
        low = distribution.low
        real = ast.Float(value=low, text=float_text(low), span=call.span)
        whole = ast.Int(value=int(low), span=call.span)
        if not binder.fits(real, annotation) and binder.fits(whole, annotation):
            raise ArgumentError(
                f"{where} takes a whole number, and {call.name} draws real numbers. "
                f"Received: {expr_text(call)}",
                call.span,
                hint=f"integer(low, high) draws whole numbers"
                f"{'; add log = true for a log scale' if call.name == 'loguniform' else ''}",
            )
    parameter = Parameter(name=name, distribution=distribution, span=call.span)
    return Hole(parameter, call, repeat_count=annotation is RepeatCount)


def _read_choice(call: ast.Call, annotation: Any, where: str, name: str) -> Hole:
    if not call.args:
        raise ArgumentError(
            f"{where}: choice needs at least one option. Received: choice()", call.span
        )
    labels: list[ChoiceValue] = []
    for arg in call.args:
        if arg.name is not None:
            raise ArgumentError(
                f"choice takes its options as they are, without names. Received: "
                f"{arg.name} = {expr_text(arg.value)}",
                arg.span,
            )
        if is_distribution(arg.value):
            raise ArgumentError(
                "an option of choice is a value, not another distribution. Received: "
                f"{expr_text(arg.value)}",
                arg.value.span,
                hint="a distribution may sit inside an option, such as adam(lr = uniform(...))",
            )
        if annotation is LayerChoice and not isinstance(arg.value, ast.Ref | ast.Call):
            raise ArgumentError(
                f"{where}: the options are layers such as relu or leaky_relu(0.2). Received: "
                f"{expr_text(arg.value)}",
                arg.value.span,
            )
        label = option_label(arg.value)
        if any(label == seen for seen in labels):
            raise ArgumentError(
                f"choice: option {expr_text(arg.value)} is given twice", arg.value.span
            )
        labels.append(label)
    parameter = Parameter(name=name, distribution=Choice(options=tuple(labels)), span=call.span)
    return Hole(
        parameter,
        call,
        tuple(a.value for a in call.args),
        repeat_count=annotation is RepeatCount,
    )


class _HoleError(Exception):
    """Internal: a distribution is itself wrong (not a value it draws)."""

    def __init__(self, error: NncError):
        super().__init__(str(error))
        self.error = error


class Walk:
    """A chooser for one lowering: reads each distribution it meets (once, into
    ``holes``, shared between walks) and stands in the value ``pick`` gives it."""

    def __init__(self, pick: Callable[[Hole], ChoiceValue], holes: dict[Key, Hole] | None = None):
        self.pick = pick
        self.holes: dict[Key, Hole] = holes if holes is not None else {}
        self.values: dict[Key, ChoiceValue] = {}

    def __call__(self, call: ast.Call, annotation: Any, where: str, label: str) -> ast.Expr:
        key = key_of(call.span)
        hole = self.holes.get(key)
        if hole is None:
            try:
                hole = read_hole(call, annotation, where, label)
            except NncError as err:
                raise _HoleError(err) from None
            taken = {h.parameter.name for h in self.holes.values()}
            if hole.parameter.name in taken:
                unique = f"{hole.parameter.name}@{call.span.line}:{call.span.col}"
                hole = replace(hole, parameter=hole.parameter.model_copy(update={"name": unique}))
            self.holes[key] = hole
        if key not in self.values:
            self.values[key] = self.pick(hole)
        return hole.expr(self.values[key])


def substitute(
    tree: ast.File, holes: Mapping[Key, Hole], values: Mapping[Key, ChoiceValue]
) -> ast.File:
    """The tree with each distribution that has a value replaced by that value (and
    the distributions inside a chosen option by theirs)."""

    def visit(node: Any) -> Any:
        if isinstance(node, tuple):
            mapped = tuple(visit(n) for n in node)
            return mapped if any(a is not b for a, b in zip(mapped, node, strict=True)) else node
        if isinstance(node, ast.Call | ast.Stage) and key_of(node.span) in values:
            key = key_of(node.span)
            chosen = visit(holes[key].expr(values[key]))
            return as_stage(chosen) if isinstance(node, ast.Stage) else chosen
        if isinstance(node, ast.Node | ast.File):
            changes = {}
            for f in fields(node):
                if f.name.endswith("span") or f.name == "comments":
                    continue
                value = getattr(node, f.name)
                new = visit(value)
                if new is not value:
                    changes[f.name] = new
            return replace(node, **changes) if changes else node
        return node

    result: ast.File = visit(tree)
    return result


@dataclass(frozen=True)
class Sample:
    """One point of a space: the values by parameter name, and the plain file."""

    values: dict[str, ChoiceValue]
    tree: ast.File
    text: str


@dataclass(frozen=True)
class SpaceFile:
    """A ``.nn`` file read as a search space: its syntax tree, the parameters, and the
    checked base program (every distribution at its first value; for a file without
    distributions, simply its program)."""

    filename: str
    source: str
    tree: ast.File
    program: Program
    space: SearchSpace
    holes: dict[Key, Hole] = field(repr=False)

    def draw(self, suggest: Callable[[Parameter], ChoiceValue]) -> Sample:
        """A sample with each value from ``suggest``, asked as the file uses the
        parameter (define-by-run: one inside an option not chosen is never asked)."""
        walk = Walk(lambda hole: suggest(hole.parameter), dict(self.holes))
        try:
            lower(self.tree, walk)
        except _HoleError as exc:
            raise exc.error.with_source(self.source) from None
        except NncError as err:
            raise err.with_source(self.source) from None
        return self._sample(walk)

    def sample(self, values: Mapping[str, ChoiceValue]) -> Sample:
        """A sample with the given values by parameter name (first values elsewhere)."""
        by_name = {h.parameter.name: h for h in self.holes.values()}
        unknown = sorted(set(values) - set(by_name))
        if unknown:
            raise ArgumentError(
                f"the space of {self.filename} has no parameter {', '.join(unknown)}. "
                f"Parameters: {', '.join(by_name) or 'none'}"
            )

        def pick(hole: Hole) -> ChoiceValue:
            return values.get(hole.parameter.name, hole.first)

        return self.draw(lambda p: pick(by_name[p.name]))

    def _sample(self, walk: Walk) -> Sample:
        tree = substitute(self.tree, walk.holes, walk.values)
        named = {walk.holes[k].parameter.name: v for k, v in walk.values.items()}
        return Sample(values=named, tree=tree, text=format_file(tree))


def parse_space(
    text: str, filename: str = "<string>", *, memory_budget: int | None = None
) -> SpaceFile:
    """Read ``text`` as a search space and check it: every value of every
    distribution (each choice option, both ends of each range, every value of a
    short integer range), the others at their first value, must give a valid spec.
    An error that one value causes points at that value and names it."""
    try:
        tree = parse_file(text, filename)
        program, holes = _explore(tree, memory_budget)
    except NncError as err:
        raise err.with_source(text) from None
    space = SearchSpace(parameters=tuple(h.parameter for h in holes.values()))
    return SpaceFile(filename, text, tree, program, space, holes)


def load_space(path: str | Path, *, memory_budget: int | None = None) -> SpaceFile:
    """Read and check the search space of a ``.nn`` file."""
    return parse_space(read_spec(path), str(path), memory_budget=memory_budget)


def diagnose_space(
    text: str, filename: str = "<string>", *, memory_budget: int | None = None
) -> tuple[Diagnosis, SearchSpace]:
    """What ``nnc check`` reports: a plain spec's every independent error
    (:func:`~nnc.dsl.diagnose.diagnose`); a spec with distributions checked as a space
    (:func:`parse_space`: its first error, named by the value that causes it)."""
    found = diagnose(text, filename, memory_budget)
    if found.program is not None or not _mentions_distribution(found.errors):
        return found, SearchSpace()
    try:
        checked = parse_space(text, filename, memory_budget=memory_budget)
    except NncError as err:
        return Diagnosis(None, [err]), SearchSpace()
    return Diagnosis(checked.program), checked.space


def _mentions_distribution(errors: list[NncError]) -> bool:
    """Whether a plain check failed on a search distribution (the binder refuses them
    without a chooser, pointing at the call)."""
    return any(isinstance(e, DistributionRefused) for e in errors)


def _explore(tree: ast.File, budget: int | None) -> tuple[Program, dict[Key, Hole]]:
    holes: dict[Key, Hole] = {}
    # The values under which each distribution was found: an option's inner
    # distribution is probed with that option chosen.
    found_under: dict[Key, dict[Key, ChoiceValue]] = {}

    def attempt(assignment: dict[Key, ChoiceValue]) -> Program | NncError:
        known = set(holes)
        walk = Walk(lambda hole: assignment.get(hole.key, hole.first), holes)
        try:
            try:
                lower(tree, walk)
            finally:
                for key in holes.keys() - known:
                    found_under[key] = dict(assignment)
            return program_of(substitute(tree, holes, walk.values), memory_budget=budget)
        except _HoleError as exc:
            raise exc.error from None
        except NncError as err:
            return err

    base = attempt({})
    if isinstance(base, NncError):
        raise _blame_first_values(base, holes, attempt)
    index = 0
    while index < len(holes):  # probing an option may find the distributions inside it
        hole = list(holes.values())[index]
        for value in hole.parameter.distribution.probes():
            if value == hole.first and type(value) is type(hole.first):
                continue
            outcome = attempt({**found_under.get(hole.key, {}), hole.key: value})
            if isinstance(outcome, NncError):
                raise _blamed(outcome, hole, value)
        index += 1
    return base, holes


def _blame_first_values(
    error: NncError,
    holes: dict[Key, Hole],
    attempt: Callable[[dict[Key, ChoiceValue]], Program | NncError],
) -> NncError:
    """The base program (every distribution at its first value) failed: blame the
    first distribution whose other values make it pass, else report the error as is."""
    for hole in list(holes.values()):
        for value in hole.parameter.distribution.probes():
            if value == hole.first:
                continue
            if not isinstance(attempt({hole.key: value}), NncError):
                return _blamed(error, hole, hole.first)
    return error


def _blamed(error: NncError, hole: Hole, value: ChoiceValue) -> NncError:
    """``error`` restated as caused by ``hole`` taking ``value``, pointing at it."""
    where = hole.span_of(value)
    shown = expr_text(hole.expr(value))
    message = f"{hole.parameter.name} = {shown} makes the spec invalid: {error.message}"
    if error.span is not None and key_of(error.span) != key_of(where):
        message += f" (at line {error.span.line}, column {error.span.col})"
    blamed = copy.copy(error)
    blamed.message = message
    blamed.args = (message,)
    blamed.span = where
    blamed.source = None
    return blamed


def rewrite_data_paths(tree: ast.File, rewrite: Callable[[str], str]) -> ast.File:
    """The tree with the file names of its ``data`` and ``validation`` settings
    rewritten (a trial's file lives in another folder than the space's)."""
    items = []
    for item in tree.items:
        if isinstance(item, ast.TrainDef):
            settings = []
            for s in item.settings:
                first = s.args[0] if s.args else None
                if (
                    s.key in ("data", "validation")
                    and first is not None
                    and first.name is None
                    and isinstance(first.value, ast.String)
                ):
                    path = replace(first.value, value=rewrite(first.value.value))
                    s = replace(s, args=(replace(first, value=path), *s.args[1:]))
                settings.append(s)
            item = replace(item, settings=tuple(settings))
        items.append(item)
    return replace(tree, items=tuple(items))


__all__ = [
    "Hole",
    "Sample",
    "SpaceFile",
    "Walk",
    "diagnose_space",
    "key_of",
    "load_space",
    "option_label",
    "parse_space",
    "read_hole",
    "rewrite_data_paths",
    "substitute",
]
