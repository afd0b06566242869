"""What a definition unfolds to, found from the syntax tree before it is lowered.

Two facts about the models and blocks of a file, each computed once per definition
(memoised over the call graph, callees first), so their cost follows the size of
the text and never the size of the unfolded call tree:

- :func:`callee_first`: the models in an order where every model comes after the
  models it uses (directly or through its blocks), so lowering never recurses;
- :meth:`BlockSizes.at_least`: a lower bound on the nodes one instance of a block
  emits, so an instance that would pass ``MAX_NODES`` is refused at its call, before
  anything is expanded.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

from nnc.dsl import ast
from nnc.errors import Span
from nnc.ir.ops import OPS


def used_names(body: Sequence[ast.Stmt]) -> Iterator[tuple[str, int, Span]]:
    """Every layer, block or model name written in a body as ``(name, times, span)``:
    ``times`` multiplies the literal counts of the repeats around it (0 when a count
    is not a literal: then nothing is known). An explicit stack: a chain may have
    thousands of links."""
    todo: list[tuple[object, int]] = [(s, 1) for s in reversed(body)]
    while todo:
        item, times = todo.pop()
        if isinstance(item, ast.Repeat):
            count = item.count.value if isinstance(item.count, ast.Int) else 0
            todo += [(s, times * max(count, 0)) for s in reversed(item.body)]
        elif isinstance(item, ast.Stack):
            todo.append((item.stage, times))
        elif isinstance(item, ast.Assign):
            todo.append((item.value, times))
        elif isinstance(item, ast.Output):
            todo += [(v, times) for v in reversed(item.values)]
        elif isinstance(item, ast.Stage | ast.Call):
            yield item.name, times, item.span
            todo += [(a.value, times) for a in reversed(item.args)]
        elif isinstance(item, ast.Pipe):
            todo += [(item.stage, times), (item.value, times)]
        elif isinstance(item, ast.BinOp):
            todo += [(item.right, times), (item.left, times)]
        elif isinstance(item, ast.Neg):
            todo.append((item.value, times))


def callee_first(
    models: Mapping[str, ast.ModelDef], blocks: Mapping[str, ast.BlockDef]
) -> list[str]:
    """The models, each after every model it uses (directly or inside its blocks), in
    the order a depth-first lowering from the first model would reach them. A cycle
    is left for the lowering to report; the order then only breaks it somewhere."""
    deps: dict[str, list[str]] = {}
    bodies: dict[str, Sequence[ast.Stmt]] = {n: d.body for n, d in blocks.items()}
    bodies.update({n: d.body for n, d in models.items()})
    for name, body in bodies.items():
        seen: dict[str, None] = {}
        for used, _, _ in used_names(body):
            if used != name and (used in models or used in blocks):
                seen.setdefault(used)
        deps[name] = list(seen)
    order: list[str] = []
    state: dict[str, int] = {}  # 1: on the stack, 2: done
    for root in models:
        if root in state:
            continue
        stack: list[tuple[str, Iterator[str]]] = [(root, iter(deps[root]))]
        state[root] = 1
        while stack:
            name, rest = stack[-1]
            nxt = next((d for d in rest if d not in state), None)
            if nxt is not None:
                state[nxt] = 1
                stack.append((nxt, iter(deps[nxt])))
                continue
            stack.pop()
            state[name] = 2
            if name in models:
                order.append(name)
    return order


class BlockSizes:
    """Lower bounds on the nodes a block instance emits, memoised per block.

    Every op written in the body emits at least one node, a block at least its own
    bound, a model call one node; a repeat multiplies its body by a literal count
    (an unknown count, a block parameter or a search distribution, counts 0). The
    bound is exact for plain bodies without activation sugar."""

    def __init__(self, blocks: Mapping[str, ast.BlockDef], models: Mapping[str, ast.ModelDef]):
        self.blocks = blocks
        self.models = models
        self._known: dict[str, int] = {}
        self._state: dict[str, int] = {}  # 1: being counted, 2: done

    def at_least(self, block: str) -> int:
        if self._state.get(block) == 2:
            return self._known[block]
        # Callees first, with an explicit stack (blocks may nest up to the depth limit;
        # a cycle, which the lowering reports, counts 0 here).
        self._state[block] = 1
        stack = [(block, self._inner(block))]
        while stack:
            name, rest = stack[-1]
            nxt = next((n for n in rest if n not in self._state), None)
            if nxt is not None:
                self._state[nxt] = 1
                stack.append((nxt, self._inner(nxt)))
                continue
            stack.pop()
            self._known[name] = self._count(name)
            self._state[name] = 2
        return self._known[block]

    def _inner(self, block: str) -> Iterator[str]:
        return (n for n, _, _ in used_names(self.blocks[block].body) if n in self.blocks)

    def _count(self, block: str) -> int:
        d = self.blocks[block]
        total = 0
        for name, times, _ in used_names(d.body):
            if name in d.params:
                continue
            if name in self.blocks:
                total += times * self._known.get(name, 0)
            elif name in OPS or name in self.models:
                total += times
        return total
