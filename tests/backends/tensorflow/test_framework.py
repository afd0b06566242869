"""How nnc imports TensorFlow: full float32, TensorFlow's own oneDNN choice, and no
C++ start-up notices (nnc/backends/tensorflow/framework.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.conftest import EXAMPLES, ROOT


def test_tensorfloat32_is_off_once_nnc_builds_a_runtime(tf: Any) -> None:
    import nnc
    from nnc.backends import tensorflow as backend

    backend.build(nnc.load(EXAMPLES / "xor.nn"))
    assert not tf.config.experimental.tensor_float_32_execution_enabled()


def _train_quietly(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("TF_", "NNC_"))}
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "nnc.cli.main",
            "train",
            str(EXAMPLES / "xor.nn"),
            "-b",
            "tensorflow",
            "--quiet",
            "--epochs",
            "2",
            "--out",
            str(tmp_path / "run"),
        ],
        cwd=ROOT,
        env={**clean, "PYTHONPATH": str(ROOT), **env},
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_quiet_training_prints_nothing_not_even_tensorflows_notices(
    tf: Any, tmp_path: Path
) -> None:
    # Before nnc set TF_CPP_MIN_LOG_LEVEL, this printed six lines of C++ notices
    # ("oneDNN custom operations are on", the CPU features), twice.
    result = _train_quietly(tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert result.stderr == ""


def test_the_users_log_level_wins(tf: Any, tmp_path: Path) -> None:
    result = _train_quietly(tmp_path, TF_CPP_MIN_LOG_LEVEL="0", TF_ENABLE_ONEDNN_OPTS="1")
    assert result.returncode == 0, result.stderr
    assert "oneDNN custom operations are on" in result.stderr
