"""Every op of the registry is complete: its entry in docs/semantics.md, a lowering on
NumPy, PyTorch, TensorFlow and ONNX, and an importer for what its ONNX export holds
(or a reason, stated on the op, why the importer cannot read it back).

Ops that are ``inlined`` before lowering (``call``) need no lowering of their own.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from nnc.ir.ops import OPS
from tests.backends.onnx.helpers import op_program, random_weights
from tests.conftest import require

ROOT = Path(__file__).resolve().parents[2]
LOWERED = sorted(op for op, cls in OPS.items() if not cls.inlined)


def documented_ops(text: str) -> set[str]:
    """The op names a ``###`` heading of docs/semantics.md or a table row's first
    cell (`` | `relu` | ``, `` | `clip(min, max)` | ``) names."""
    names: set[str] = set()
    for line in text.splitlines():
        if line.startswith("### "):
            names.update(re.findall(r"[a-z][a-z0-9_]*", line[4:]))
        elif cell := re.match(r"\| `([a-z][a-z0-9_]*)", line):
            names.add(cell.group(1))
    return names


def test_the_scanner_reads_headings_and_table_rows() -> None:
    text = "### dense(units)\n### maxpool / avgpool(size)\n| `clip(min, max)` | x |\n| a | `b` |"
    assert documented_ops(text) >= {"dense", "maxpool", "avgpool", "clip"}
    assert "b" not in documented_ops(text)


def test_every_op_has_its_semantics_entry() -> None:
    text = (ROOT / "docs" / "semantics.md").read_text(encoding="utf-8")
    headings = {line[4:].strip() for line in text.splitlines() if line.startswith("### ")}
    documented = documented_ops(text)
    missing = [
        op
        for op, cls in OPS.items()
        if op not in documented and (not cls.semantics or cls.semantics not in headings)
    ]
    assert missing == [], f"ops without an entry in docs/semantics.md: {missing}"


def backend_lowerings() -> dict[str, set[str]]:
    from nnc.backends.numpy.module import LOWERINGS as NUMPY
    from nnc.backends.onnx.graph import lowerings as onnx_lowerings
    from nnc.backends.tensorflow.ops import LOWERINGS as TENSORFLOW
    from nnc.backends.torch.module import has_lowering

    return {
        "numpy": set(NUMPY),
        "torch": {op for op in OPS if has_lowering(op)},
        "tensorflow": set(TENSORFLOW),
        "onnx": set(onnx_lowerings()),
    }


def test_every_op_has_a_lowering_on_every_backend() -> None:
    missing = {
        backend: [op for op in LOWERED if op not in table]
        for backend, table in backend_lowerings().items()
    }
    assert missing == {"numpy": [], "torch": [], "tensorflow": [], "onnx": []}


def test_inlined_ops_are_documented_by_heading() -> None:
    inlined = {op: cls.semantics for op, cls in OPS.items() if cls.inlined}
    assert inlined == {"call": "A model used as a layer"}


@pytest.mark.parametrize("op", LOWERED)
def test_every_op_export_has_an_importer_or_a_reason(op: str) -> None:
    """The importer reads the op's exported example back into ops of the registry, as
    the op says (itself, or ``onnx_imports_as``); an op that says why it is not
    imported is refused by the importer, naming the ONNX op it lacks."""
    require("onnx")
    from nnc.backends import onnx as backend
    from nnc.backends.onnx.reader import OnnxImportError

    program = op_program(op)
    data = backend.emit(program, "M", weights=random_weights(program, program.models["M"]))
    if OPS[op].onnx_not_imported:
        with pytest.raises(OnnxImportError, match=r"ONNX op \w+ is not supported"):
            backend.import_model(data)
        return
    imported = backend.import_model(data)
    ops = {n.op for n in imported.program.models[imported.model].nodes}
    expected = OPS[op].onnx_imports_as
    assert ops == set(expected) if expected is not None else op in ops, ops
