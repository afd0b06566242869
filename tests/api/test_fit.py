"""nnc.fit: train a recipe of a program or of a .nn file, whose relative data paths
start from the file's folder (as with nnc train FILE), wherever Python runs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import nnc
from nnc.train import RunOptions, train

SPEC = """\
model Line {
    input x: [2]
    dense(1)
}

train Line {
    data      "points.npz"   # relative to this file
    loss      mse
    optimizer sgd(lr = 0.1)
    epochs    40
    batch     all
    seed      3
}
"""


@pytest.fixture
def spec(tmp_path: Path) -> Path:
    folder = tmp_path / "project"
    folder.mkdir()
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 2)).astype(np.float32)
    y = (x @ np.array([[2.0], [-1.0]], dtype=np.float32) + 0.5).astype(np.float32)
    np.savez(folder / "points.npz", x=x, y=y)
    path = folder / "line.nn"
    path.write_text(SPEC, encoding="utf-8")
    return path


def test_fit_a_file_reads_its_data_beside_it_and_converges(
    spec: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # not the spec's folder
    result = nnc.fit(spec, save=False)
    assert len(result.history) == 40
    assert result.history[0]["loss"] > 1.0
    assert result.history[-1]["loss"] < 1e-3  # y is linear in x: the fit is exact


def test_fit_a_program_is_train(spec: Path) -> None:
    program = nnc.load(spec)
    by_fit = nnc.fit(program, "Line", save=False, base=spec.parent)
    by_train = train(program, "Line", RunOptions(save=False, base=spec.parent))
    losses = [[row["loss"] for row in r.history] for r in (by_fit, by_train)]
    assert losses[0] == losses[1]
