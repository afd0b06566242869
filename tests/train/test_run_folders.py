"""A run folder holds one run: --out never overwrites or mixes runs without --force,
and only a finished run has weights.safetensors."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest

import nnc
from nnc.errors import TrainingError
from tests.train.test_checkpoints import resume
from tests.train.test_driver import IRIS, fit, iris


def test_out_that_holds_a_run_is_refused(tmp_path: Path) -> None:
    fit(iris(2), tmp_path)
    before = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "run").iterdir()}
    with pytest.raises(TrainingError) as err:
        fit(iris(3), tmp_path)
    assert (
        err.value.message
        == f"--out {tmp_path / 'run'} already holds a run; nnc does not overwrite it"
    )
    assert (
        err.value.hint is not None and "--resume" in err.value.hint and "--force" in err.value.hint
    )
    assert {p.name: p.stat().st_mtime_ns for p in (tmp_path / "run").iterdir()} == before


def test_force_replaces_the_whole_earlier_run(tmp_path: Path) -> None:
    fit(iris(4), tmp_path, checkpoint_every=1, keep=4)
    (tmp_path / "run" / "samples.png").write_bytes(b"drawn by the first run")
    result, _ = fit(iris(2), tmp_path, force=True, checkpoint_every=1, keep=4)
    folder = tmp_path / "run"
    assert sorted(p.name for p in (folder / "checkpoints").iterdir()) == [
        "epoch-000001.safetensors",
        "epoch-000002.safetensors",
    ]
    assert len(json.loads((folder / "history.json").read_text())) == 2 == len(result.history)
    assert not (folder / "samples.png").exists()


def test_out_that_holds_other_files_is_refused_even_with_force(tmp_path: Path) -> None:
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    with pytest.raises(TrainingError, match=r"is not empty and holds no run \(notes.txt\)"):
        fit(iris(2), tmp_path, force=True)
    assert (folder / "notes.txt").read_text() == "mine"
    (tmp_path / "file").write_text("x")
    with pytest.raises(TrainingError, match="is a file; a run is written into a folder"):
        fit(iris(2), tmp_path, out=tmp_path / "file")


def test_an_empty_out_folder_is_used(tmp_path: Path) -> None:
    (tmp_path / "run").mkdir()
    result, _ = fit(iris(2), tmp_path)
    assert (tmp_path / "run" / "weights.safetensors").exists() and len(result.history) == 2


def test_a_resumed_run_that_is_interrupted_has_no_weights(tmp_path: Path) -> None:
    fit(iris(2), tmp_path)
    assert (tmp_path / "run" / "weights.safetensors").exists()
    calls = itertools.count()
    result, _ = resume(iris(6), tmp_path / "run", should_stop=lambda: next(calls) >= 10)
    assert result.stopped == "interrupted"
    assert not (tmp_path / "run" / "weights.safetensors").exists()  # the 2-epoch weights are gone
    finished, _ = resume(iris(6), tmp_path / "run")
    assert finished.stopped == "completed" and (tmp_path / "run" / "weights.safetensors").exists()


def test_a_refused_resume_keeps_the_finished_weights(tmp_path: Path) -> None:
    fit(iris(2), tmp_path)
    changed = nnc.parse(IRIS.format(epochs=2).replace("lr = 0.1", "lr = 0.2"))
    with pytest.raises(TrainingError, match="the recipe changed since it was written"):
        resume(changed, tmp_path / "run")
    assert (tmp_path / "run" / "weights.safetensors").exists()
