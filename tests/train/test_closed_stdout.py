"""Issue 17: `nnc train examples/xor.nn --out D | head -2` ended the run after two epochs
with exit status 0 and no weights. A closed standard output now stops the printing only:
the run trains to the end and writes its whole folder."""

from __future__ import annotations

import subprocess
from pathlib import Path

from nnc.ir.weights import read_weights_file
from tests.conftest import EXAMPLES, ROOT, nnc_argv, nnc_env


def test_training_goes_on_quietly_when_stdout_is_closed(tmp_path: Path) -> None:
    out = tmp_path / "run"
    proc = subprocess.Popen(
        nnc_argv("train", str(EXAMPLES / "xor.nn"), "--out", str(out)),
        cwd=ROOT,
        env=nnc_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stderr is not None
    first = [proc.stdout.readline(), proc.stdout.readline()]
    proc.stdout.close()  # what `| head -2` does once it has its two lines
    stderr = proc.stderr.read()
    proc.stderr.close()
    assert proc.wait(timeout=300) == 0, stderr
    assert first[0].startswith("training Xor on numpy")
    assert "standard output was closed; training goes on without printing" in stderr
    assert "Traceback" not in stderr and "Exception ignored" not in stderr
    rows = (out / "history.csv").read_text().splitlines()
    assert len(rows) == 1 + 5000  # header and every one of xor.nn's 5000 epochs
    weights = read_weights_file(out / "weights.safetensors")
    assert sorted(weights) == ["dense_1.bias", "dense_1.weight", "dense_2.bias", "dense_2.weight"]
