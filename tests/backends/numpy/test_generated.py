"""The generated modules themselves: golden files for every example, initial weights
equal to nnc's, standalone use with NumPy only, the CLI, and lazy imports."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

import nnc
from nnc.backends.codegen import load_module, select
from nnc.backends.numpy import emit
from nnc.ir.training import GanRecipe
from nnc.ir.weights import init_gan_weights, init_weights
from tests.conftest import EXAMPLE_FILES, ROOT, load_example, run_nnc


def generated(path: Path) -> str:
    return emit(nnc.load(path), source=f"examples/{path.name}")


def test_golden(example: Path, golden: Any) -> None:
    golden(f"numpy/{example.stem}.py", generated(example))


def test_initial_weights_equal_nnc(example: Path) -> None:
    program = load_example(example)
    model, recipe = select(program)
    module = load_module(emit(program), example.stem)
    for seed in (recipe.seed if recipe else 0, 12345):
        if isinstance(recipe, GanRecipe):  # the GAN's module: both models, under their roles
            expected = init_gan_weights(program, recipe, seed)
        else:
            expected = init_weights(program, model, seed)
        drawn = module.initial_weights(seed)
        assert list(drawn) == list(expected)
        for name, value in expected.items():
            assert drawn[name].dtype == np.float32
            np.testing.assert_array_equal(drawn[name], value, err_msg=name)


def test_cli_prints_the_module() -> None:
    result = run_nnc("compile", "examples/xor.nn", "--backend", "numpy")
    assert result.returncode == 0, result.stderr
    assert result.stdout == generated(ROOT / "examples" / "xor.nn")
    assert "def backpropagate(self, cache, d_sigmoid_2, input_gradients=False):" in result.stdout


def test_emit_imports_no_framework() -> None:
    code = textwrap.dedent(
        """
        import sys
        import nnc
        from nnc.backends import get_backend
        for name in ("resnet_block", "sequence_lstm", "digits_cnn"):
            get_backend("numpy").emit(nnc.load(f"examples/{name}.nn"))
        heavy = {"torch", "tensorflow", "onnx", "onnxruntime", "keras"} & set(sys.modules)
        assert not heavy, heavy
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr


STANDALONE = """
import importlib.util
import sys

import numpy as np


def load(name):
    spec = importlib.util.spec_from_file_location(name, f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


xor = load("xor")
x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
y = np.array([[0], [1], [1], [0]], dtype=np.float32)
model, history = xor.fit(x, y, verbose=False)
print("xor", history[0], history[-1], model.forward(x).dtype)

mlp = load("digits_mlp")
rng = np.random.default_rng(0)
centres = rng.normal(size=(10, 64))
labels = rng.integers(0, 10, size=512)
pixels = (centres[labels] + 0.5 * rng.normal(size=(512, 64))).astype(np.float32)
_, history = mlp.fit(pixels, np.eye(10, dtype=np.float32)[labels], epochs=5, verbose=False)
print("mlp", history[0], history[-1])

loaded = {"nnc", "torch", "tensorflow", "onnx"} & set(sys.modules)
print("loaded", sorted(loaded))
"""


def test_standalone_module_trains_with_numpy_only(tmp_path: Path) -> None:
    """Generated modules run in an isolated interpreter (no nnc on the path): fit
    trains XOR (5000 full-batch epochs, the recipe's) and the digits MLP (5 epochs on
    separable synthetic clusters)."""
    for name in ("xor", "digits_mlp"):
        (tmp_path / f"{name}.py").write_text(generated(ROOT / "examples" / f"{name}.nn"))
    (tmp_path / "run.py").write_text(STANDALONE)
    result = subprocess.run(
        [sys.executable, "-I", "run.py"], cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    lines = {ln.split()[0]: ln.split()[1:] for ln in result.stdout.splitlines()}
    first, last, dtype = lines["xor"]
    assert dtype == "float32"
    assert float(last) < float(first) / 20, lines["xor"]  # 0.5 sum of squares: ~0.5 -> < 0.025
    first, last = map(float, lines["mlp"])
    assert last < first / 5, lines["mlp"]
    assert lines["loaded"] == ["[]"]


def _module(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_golden_files_are_the_examples(tmp_path: Path) -> None:
    """Every example has a golden file, and no golden file outlives its example."""
    goldens = {p.stem for p in (ROOT / "tests" / "golden" / "numpy").glob("*.py")}
    assert goldens == {p.stem for p in EXAMPLE_FILES}
    # A golden file is a working module on its own.
    copy = tmp_path / "perceptron.py"
    shutil.copy(ROOT / "tests" / "golden" / "numpy" / "perceptron.py", copy)
    module = _module(copy)
    x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
    runtime, _ = module.fit(x, np.array([[0], [0], [0], [1]], dtype=np.float32), verbose=False)
    np.testing.assert_array_equal(runtime.forward(x)[:, 0], [0, 0, 0, 1])  # AND, learned


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda p: p.stem)
def test_generated_code_compiles_cleanly(path: Path) -> None:
    """No line longer than 100 characters, no trailing whitespace, valid Python."""
    source = generated(path)
    compile(source, path.stem, "exec")
    for number, line in enumerate(source.splitlines(), start=1):
        assert len(line) <= 100, f"line {number} is {len(line)} characters"
        assert line == line.rstrip(), f"line {number} has trailing whitespace"
