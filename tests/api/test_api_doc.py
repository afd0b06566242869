"""docs/api.md walks through a session; its Python blocks run here, in order, in one
namespace, from the repository root."""

from __future__ import annotations

import re

import pytest

from tests.conftest import ROOT, require

FENCE = re.compile(r"```python\n(.*?)```", re.S)


def test_api_doc_session_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    for module in ("torch", "onnx", "onnxruntime", "nnc.backends.torch", "nnc.backends.onnx"):
        require(module)
    monkeypatch.chdir(ROOT)
    blocks = FENCE.findall((ROOT / "docs" / "api.md").read_text(encoding="utf-8"))
    assert len(blocks) >= 8
    namespace: dict[str, object] = {"__name__": "api_doc"}
    for i, block in enumerate(blocks):
        code = compile(block, f"docs/api.md#python-{i}", "exec")
        exec(code, namespace)


def test_readme_python_example_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    blocks = FENCE.findall((ROOT / "README.md").read_text(encoding="utf-8"))
    assert blocks
    for i, block in enumerate(blocks):
        exec(compile(block, f"README.md#python-{i}", "exec"), {"__name__": "readme"})
