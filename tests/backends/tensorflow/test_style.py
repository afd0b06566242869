"""Generated TensorFlow modules are ``ruff format``- and ``ruff check``-clean with nnc's
own settings (line length 100, the rules of pyproject.toml), without any config file."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import nnc
from nnc.backends import tensorflow as backend
from tests.conftest import ROOT, require

# supervised, recurrent, residual with batchnorm, a GAN, L2, a frozen bias, grouped
# convolutions, transposed convolutions, attention with dropout lines to wrap, and a
# model without numpy in it
EXAMPLES = (
    "digits_cnn",
    "sequence_lstm",
    "resnet_block",
    "gan",
    "alexnet",
    "xor_from_scratch",
    "conv_autoencoder",
    "char_transformer",
    "rbm_digits",
)
SETTINGS = ["--isolated", "--line-length", "100"]
RULES = ["--select", "E,F,W,I,B,UP,SIM,RUF", "--ignore", "E741,RUF001,RUF002,RUF003"]


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require("ruff")  # in nnc[dev]; a failure in CI, a skip elsewhere
    folder = tmp_path_factory.mktemp("generated")
    for name in EXAMPLES:
        source = f"examples/{name}.nn"
        code = backend.emit(nnc.load(ROOT / source), source=source)
        (folder / f"{name}.py").write_text(code, encoding="utf-8")
    return folder


def ruff(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ruff", *args], capture_output=True, text=True, timeout=60
    )


def test_generated_modules_are_ruff_formatted(generated: Path) -> None:
    result = ruff("format", *SETTINGS, "--diff", str(generated))
    assert result.returncode == 0, result.stdout + result.stderr


def test_generated_modules_pass_ruff_check(generated: Path) -> None:
    result = ruff("check", *SETTINGS, *RULES, "--output-format", "concise", str(generated))
    assert result.returncode == 0, result.stdout + result.stderr
