"""Code generation for the PyTorch backend without running torch: golden files for
every example, lazy imports, full coverage of the op registry, refusals."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import nnc
from nnc.backends import get_backend
from nnc.backends import torch as backend
from nnc.backends.torch import layers
from nnc.backends.torch.emit import lower_module
from nnc.backends.torch.module import has_lowering
from nnc.errors import UnsupportedOpError
from nnc.ir.ops import OPS
from tests.conftest import ROOT, run_nnc


def test_golden(example: Path, golden) -> None:  # type: ignore[no-untyped-def]
    source = f"examples/{example.name}"
    golden(f"torch/{example.stem}.py", backend.emit(nnc.load(example), source=source))


def test_generated_module_imports_only_torch_numpy_and_the_standard_library(
    example: Path,
) -> None:
    tree = ast.parse(backend.emit(nnc.load(example)))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add((node.module or "").split(".")[0])
    assert imported <= {"datetime", "gc", "math", "os", "zlib", "numpy", "torch"}, imported


def test_importing_the_backend_and_emitting_do_not_import_torch() -> None:
    script = (
        "import sys\n"
        "import nnc\n"
        "from nnc.backends import get_backend\n"
        "backend = get_backend('torch')\n"
        "for name in ('digits_cnn', 'sequence_lstm', 'resnet_block'):\n"
        "    backend.emit(nnc.load(f'examples/{name}.nn'))\n"
        "heavy = sorted(m for m in ('torch', 'tensorflow', 'onnx') if m in sys.modules)\n"
        "print('heavy:', heavy)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "heavy: []"


def test_every_op_of_the_registry_has_a_lowering() -> None:
    missing = [op for op in OPS if not has_lowering(op)]
    assert not missing, f"ops without a torch lowering: {missing}"
    assert get_backend("torch") is backend


def test_an_op_without_lowering_is_refused_with_its_name_and_place(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delitem(layers.LAYERS, "conv1d")
    program = nnc.parse("model M {\n    input x: [2, 9]\n    conv1d(3, 3)\n}\n")
    with pytest.raises(UnsupportedOpError) as info:
        backend.emit(program)
    assert "op 'conv1d' is not supported by the torch backend" in str(info.value)
    assert info.value.span is not None and (info.value.span.line, info.value.span.col) == (3, 5)


def test_compile_from_the_command_line() -> None:
    result = run_nnc("compile", "examples/xor.nn", "--backend", "torch")
    assert result.returncode == 0, result.stderr
    assert result.stdout == backend.emit(
        nnc.load(ROOT / "examples/xor.nn"), source="examples/xor.nn"
    )


def test_spec_names_never_shadow_torch_or_the_module() -> None:
    """Node names equal to nn.Module attributes or module-level names get a suffix;
    the canonical names stay the spec's (the runtime adapter maps them)."""
    program = nnc.parse(
        "model Runtime {\n input torch: [3]\n training = torch |> dense(4)\n"
        " forward = training |> dense(2)\n F = training |> dense(2)\n output forward + F\n}\n"
    )
    code = backend.emit(program)
    assert "class Runtime_(nn.Module):" in code
    assert "self.training_layer = nn.Linear(3, 4)" in code
    assert "self.forward_layer = nn.Linear(4, 2)" in code
    assert lower_module(program).torch_names["training.weight"] == "training_layer.weight"
    assert "def forward(self, torch_):" in code
    compile(code, "<generated>", "exec")


def test_a_line_free_node_keeps_its_input_alive() -> None:
    """An all-zero pad emits no line, so its value is its input's variable; the called
    model after it must not overwrite that variable while the input is still read
    (fuzz soak seed 2778030961 of --seed 19 gave torch.cat((x, x)))."""
    import numpy as np

    source = """
model Part {
    input a: [2]
    dense(3)
}

model M {
    input x: [2]
    v1 = x |> pad([0, 0])
    v2 = v1 |> Part
    output concat(v2, x)
}
"""
    program = nnc.parse(source)
    x = np.array([[1.0, -2.0], [0.5, 3.0]], dtype=np.float32)
    want = nnc.runtime(program, "numpy", "M").forward(x)
    got = nnc.runtime(program, "torch", "M").forward(x)
    assert got.shape == (2, 5)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(got[:, 3:], x)
