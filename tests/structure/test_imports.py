"""Module-level imports inside nnc form no cycle (beyond a shrinking allow-list) and
run downward: the IR never imports the driver, the data layer or the CLI.

Only imports that run when a module is imported count: those at its top level
(inside ``try`` or ``if`` too), not those inside functions, nor under
``if TYPE_CHECKING:``. ``from package import name`` counts as an import of
``package.name`` when that is a module, else of ``package`` (its ``__init__``);
the parent packages Python runs on the way are not counted, as a package importing
its own modules is no circle unless a module imports from the package's
``__init__`` in turn.
"""

from __future__ import annotations

import ast
import functools
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "nnc"

# Module-level cycles still to break, each as its modules in order from the
# alphabetically first: none.
ALLOWED_CYCLES: set[tuple[str, ...]] = set()

# Circles closed only by an import inside a function (a deferred import that hides
# the circle from Python, not from the design), each as one shortest cycle; this list
# only shrinks. Issue 18 listed nine; train/session <-> distributed/launch (and
# cd_session, pretrain), builder/model <-> program, onnx/__init__ <-> onnx/runtime,
# the root's __version__, onnx graph <-> lower_* (onnx/builder.py), importer <->
# import_* (onnx/importing.py) and verify harness <-> compare (verify/cases.py) are gone,
# and so is ir.program -> notebook -> draw (the reprs go through the hook of
# nnc/ir/display.py, which the root package wires to the notebook layer; toposort and
# callee_first live in nnc/ir/graph.py, which the passes and the summary share).
# What is left is the TensorFlow backend's.
DEFERRED_CYCLES: set[tuple[str, ...]] = {
    (
        "nnc.backends.tensorflow.arith",
        "nnc.backends.tensorflow.graph",
        "nnc.backends.tensorflow.ops",
    ),
    ("nnc.backends.tensorflow.emit", "nnc.backends.tensorflow.gan"),
}

# Imports against the layering still to undo (importer, imported): none.
ALLOWED_UPWARD: set[tuple[str, str]] = set()


def module_names() -> dict[str, Path]:
    names = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        names[".".join(parts)] = path
    return names


def _type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _everywhere(body: list[ast.stmt]) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import of a module, in functions too, except under TYPE_CHECKING."""
    for node in body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        elif isinstance(node, ast.If) and _type_checking(node.test):
            yield from _everywhere(node.orelse)
        else:
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.stmt):
                    yield from _everywhere([child])
                elif isinstance(child, ast.excepthandler):
                    yield from _everywhere(child.body)


def _top_level(body: list[ast.stmt]) -> Iterator[ast.Import | ast.ImportFrom]:
    for node in body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        elif isinstance(node, ast.If):
            if not _type_checking(node.test):
                yield from _top_level(node.body)
            yield from _top_level(node.orelse)
        elif isinstance(node, ast.Try):
            for block in (node.body, node.orelse, node.finalbody):
                yield from _top_level(block)
            for handler in node.handlers:
                yield from _top_level(handler.body)
        elif isinstance(node, ast.With):
            yield from _top_level(node.body)


def imports_of(module: str, path: Path, known: dict[str, Path], deferred: bool = False) -> set[str]:
    """The nnc modules that importing ``module`` runs directly (with ``deferred``,
    also those its functions import)."""
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    body = ast.parse(path.read_text(encoding="utf-8")).body
    for node in (_everywhere if deferred else _top_level)(body):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        else:
            if node.level:
                anchor = module.split(".")
                anchor = anchor[: len(anchor) - node.level + (1 if is_package else 0)]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            else:
                base = node.module or ""
            targets = [
                f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names
            ]
        found.update(t for t in targets if t in known and t != module)
    return found


@functools.cache
def import_graph(deferred: bool = False) -> dict[str, set[str]]:
    known = module_names()
    return {m: imports_of(m, p, known, deferred) for m, p in known.items()}


def cycles(graph: dict[str, set[str]]) -> set[tuple[str, ...]]:
    """Each strongly connected component of two or more modules (Tarjan), as one
    shortest cycle through its first module, rotated to start there."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return {_shortest_cycle(graph, c) for c in components}


def _shortest_cycle(graph: dict[str, set[str]], component: list[str]) -> tuple[str, ...]:
    inside = set(component)
    start = component[0]
    paths = {start: (start,)}
    frontier = [start]
    while frontier:
        nxt = []
        for v in frontier:
            for w in sorted(graph[v] & inside):
                if w == start:
                    return paths[v]
                if w not in paths:
                    paths[w] = (*paths[v], w)
                    nxt.append(w)
        frontier = nxt
    raise AssertionError(f"no cycle through {start}")


def test_the_scanner_sees_a_cycle_and_ignores_function_and_type_checking_imports() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == {("a", "b", "c")}
    code = ast.parse(
        "import nnc.x\nif TYPE_CHECKING:\n    import nnc.y\ndef f():\n    import nnc.z\n"
    )
    assert [n.names[0].name for n in _top_level(code.body)] == ["nnc.x"]  # type: ignore[union-attr]


def test_import_cycles_inside_nnc() -> None:
    found = cycles(import_graph())
    assert found - ALLOWED_CYCLES == set(), "new import cycles"
    assert ALLOWED_CYCLES - found == set(), "broken cycles: remove them from ALLOWED_CYCLES"


def test_deferred_import_circles_only_shrink() -> None:
    found = cycles(import_graph(deferred=True))
    outside_tensorflow = {c for c in found if not c[0].startswith("nnc.backends.tensorflow.")}
    assert outside_tensorflow == set(), "circles outside the TensorFlow backend"
    assert len(found) == 2, sorted(found)  # the TensorFlow backend's two
    assert found - DEFERRED_CYCLES == set(), "new circles through imports inside functions"
    assert DEFERRED_CYCLES - found == set(), "broken circles: remove them from DEFERRED_CYCLES"


def upward(graph: dict[str, set[str]]) -> set[tuple[str, str]]:
    """Imports against the layers: the IR of the driver, the data layer or the CLI;
    a backend of the driver or the CLI; anything of the package's root."""
    return {
        (m, t)
        for m, targets in graph.items()
        for t in targets
        if (m.startswith("nnc.ir") and t.startswith(("nnc.train", "nnc.data", "nnc.cli")))
        or (m.startswith("nnc.backends") and t.startswith(("nnc.train", "nnc.cli")))
        or (m != "nnc" and t == "nnc")
    }


def test_imports_run_downward() -> None:
    assert upward(import_graph()) == ALLOWED_UPWARD


def test_imports_run_downward_inside_functions_too() -> None:
    found = upward(import_graph(deferred=True))
    assert {(m, t) for m, t in found if m.startswith("nnc.ir")} == set()
    assert found == ALLOWED_UPWARD
