"""The backend registry is the one place that lists backends: no literal table of
backend names (a tuple, list, set or dict naming two or more of them) appears in
nnc's source outside ``nnc/backends/``, and every spelling resolves through it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from nnc.backends.registry import BACKENDS, backends, parse_backend
from nnc.errors import BackendError

ROOT = Path(__file__).resolve().parents[2] / "nnc"
SPELLINGS = {*BACKENDS, *(a for b in BACKENDS.values() for a in b.aliases)}


def _names_in(node: ast.AST) -> set[str]:
    if isinstance(node, ast.Dict):
        elements: list[ast.expr | None] = list(node.keys)
    elif isinstance(node, ast.Tuple | ast.List | ast.Set):
        elements = list(node.elts)
    else:
        return set()
    return {
        e.value
        for e in elements
        if isinstance(e, ast.Constant) and isinstance(e.value, str) and e.value in SPELLINGS
    }


def backend_tables() -> list[str]:
    """``path:line: names`` of each literal naming two or more backends outside
    nnc/backends/."""
    found = []
    for path in sorted(ROOT.rglob("*.py")):
        if path.is_relative_to(ROOT / "backends"):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = _names_in(node)
            if len(names) >= 2:
                where = path.relative_to(ROOT.parent)
                found.append(f"{where}:{getattr(node, 'lineno', 0)}: {sorted(names)}")
    return found


def test_no_backend_name_table_outside_the_registry() -> None:
    assert backend_tables() == []


def test_the_scan_finds_a_table() -> None:
    tree = ast.parse('CD = ("numpy", "torch", "tensorflow")\nALIASES = {"pytorch": 1, "tf": 2}')
    tables = [_names_in(n) for n in ast.walk(tree) if len(_names_in(n)) >= 2]
    assert tables == [{"numpy", "torch", "tensorflow"}, {"pytorch", "tf"}]


@pytest.mark.parametrize(
    ("spelling", "name"),
    [("PyTorch", "torch"), (" tf ", "tensorflow"), ("np", "numpy"), ("onnx", "onnx")],
)
def test_every_spelling_is_normalised_by_the_registry(spelling: str, name: str) -> None:
    spec = parse_backend(spelling)
    assert spec.name == name
    assert parse_backend(spec) is spec  # a parsed spec is not normalised again


def test_capabilities_come_from_the_registry() -> None:
    assert [b.name for b in backends(trains=True)] == ["numpy", "torch", "tensorflow"]
    assert [b.name for b in backends(cd=True)] == ["numpy", "torch", "tensorflow"]
    with pytest.raises(BackendError, match="onnx backend has no contrastive divergence step"):
        parse_backend("onnx").load_cd_step()
