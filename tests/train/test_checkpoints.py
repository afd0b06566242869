"""Checkpoints with a fake runtime: contents, atomic writes, pruning, resume (from a
damaged newest file, inside an epoch, after a recipe change) and Ctrl-C."""

from __future__ import annotations

import itertools
import json
import os
import signal
from pathlib import Path

import numpy as np
import pytest

import nnc
from nnc.errors import TrainingError
from nnc.ir.weights import read_tensor_file, read_weights_file, save_npz, save_safetensors
from nnc.train.progress import QuietReporter
from nnc.train.recipes import fingerprint, recipe_document
from nnc.train.run import sigint_requests_stop
from tests.tensorfiles import read_flat, write_flat
from tests.train.fakes import FakeBackend
from tests.train.test_driver import IRIS, fit, iris


class Collect(QuietReporter):
    def __init__(self) -> None:
        super().__init__()
        self.warnings: list[str] = []

    def warn(self, message: str) -> None:
        self.warnings.append(message)


def resume(program: nnc.Program, run: Path, **kwargs: object):  # type: ignore[no-untyped-def]
    backend = FakeBackend()
    result = nnc.fit(program, resume=run, build=backend, **kwargs)
    return result, backend


def same_weights(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> float:
    assert a.keys() == b.keys()
    return max(float(np.max(np.abs(a[k] - b[k]))) for k in a)


def test_checkpoint_contents(tmp_path: Path) -> None:
    program = iris(5)
    result, backend = fit(program, tmp_path, checkpoint_every=2, keep=10)
    folder = tmp_path / "run" / "checkpoints"
    assert sorted(p.name for p in folder.iterdir()) == [
        "epoch-000002.safetensors",
        "epoch-000004.safetensors",
        "epoch-000005.safetensors",
    ]
    arrays = read_flat(folder / "epoch-000005.safetensors")
    assert sorted(k for k in arrays if not k.startswith("meta/")) == [
        "optimizer/dense_1.bias.velocity",
        "optimizer/dense_1.weight.velocity",
        "optimizer/step",
        "standardize/mean",
        "standardize/std",
        "weights/dense_1.bias",
        "weights/dense_1.weight",
    ]
    weights = result.runtime.get_weights()
    assert np.array_equal(arrays["weights/dense_1.weight"], weights["dense_1.weight"])
    assert int(arrays["optimizer/step"]) == 5 * 8 == backend.last.step
    assert int(arrays["meta/epoch"]) == 5 and int(arrays["meta/batch"]) == 0
    assert int(arrays["meta/step"]) == 40
    # The batch-order generator's state: after five permutations of the 120 samples.
    rng = np.random.default_rng(3)
    for _ in range(5):
        rng.permutation(120)
    assert json.loads(str(arrays["meta/rng"])) == rng.bit_generator.state
    recipe = program.recipes["Soft"]
    assert str(arrays["meta/recipe_hash"]) == fingerprint(recipe_document(program, recipe))
    assert "meta/history" not in arrays  # the run folder's history.json holds it
    assert len(json.loads((tmp_path / "run" / "history.json").read_text())) == 5
    assert str(arrays["meta/backend"]) == "numpy"
    # nnc eval/predict read a checkpoint's weights directly; weights.safetensors holds
    # the same.
    assert read_weights_file(folder / "epoch-000005.safetensors").keys() == weights.keys()
    final = read_weights_file(tmp_path / "run" / "weights.safetensors")
    assert same_weights(final, weights) == 0.0


def test_keep_prunes_old_checkpoints(tmp_path: Path) -> None:
    fit(iris(6), tmp_path, checkpoint_every=1, keep=2)
    names = sorted(p.name for p in (tmp_path / "run" / "checkpoints").iterdir())
    assert names == ["epoch-000005.safetensors", "epoch-000006.safetensors"]


def test_atomic_write_never_shows_a_partial_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "epoch-000001.safetensors"
    save_safetensors(path, {"a": np.zeros(3)})
    before = path.read_bytes()
    real_fsync = os.fsync

    def failing(fd: int) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", failing)
    with pytest.raises(OSError, match="disk full"):
        save_safetensors(path, {"a": np.ones(3), "b": np.ones(3)})
    assert path.read_bytes() == before  # the old file is intact
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary left

    # While writing, only a temporary name exists; the rename publishes a complete file.
    monkeypatch.setattr(os, "fsync", real_fsync)
    real_replace = os.replace
    seen: list[tuple[bool, list[str]]] = []

    def replace(src: str, dst: str) -> None:
        seen.append((Path(dst).exists(), sorted(read_tensor_file(src).arrays)))
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    save_safetensors(tmp_path / "new.safetensors", {"a": np.ones(3), "b": np.ones(3)})
    save_npz(tmp_path / "new.npz", {"a": np.ones(3)})  # predictions, statistics: the same
    assert seen == [(False, ["a", "b"]), (False, ["a"])]


def test_corrupt_newest_checkpoint_falls_back_with_a_warning(tmp_path: Path) -> None:
    fit(iris(4), tmp_path, checkpoint_every=1, keep=4)
    newest = tmp_path / "run" / "checkpoints" / "epoch-000004.safetensors"
    newest.write_bytes(newest.read_bytes()[:300])  # truncated, as by a crash
    reporter = Collect()
    result, backend = resume(iris(6), tmp_path / "run", reporter=reporter)
    assert len(reporter.warnings) == 1
    assert reporter.warnings[0].startswith(f"checkpoint {newest} is damaged and was skipped")
    assert "trying the previous one (epoch-000003.safetensors)" in reporter.warnings[0]
    assert backend.last.seeds[0] != 0 and len(backend.last.seeds) == 3  # epochs 4, 5, 6
    assert [int(r["epoch"]) for r in result.history] == [1, 2, 3, 4, 5, 6]
    straight, _ = fit(iris(6), tmp_path, out=tmp_path / "straight")
    assert same_weights(result.runtime.get_weights(), straight.runtime.get_weights()) == 0.0
    losses = [r["loss"] for r in result.history]
    assert losses == [r["loss"] for r in straight.history]


def test_resume_inside_an_epoch_matches_an_uninterrupted_run(tmp_path: Path) -> None:
    calls = itertools.count()
    # Stop requests are polled between batches and after each epoch: 8 per epoch of 8
    # batches, so the 11th comes after batch 3 of epoch 2.
    first, _ = fit(iris(4), tmp_path, should_stop=lambda: next(calls) >= 10)
    assert first.stopped == "interrupted"
    assert first.checkpoint is not None
    assert first.checkpoint.name == "epoch-000001-batch-000003.safetensors"
    assert not (tmp_path / "run" / "weights.safetensors").exists()
    result, backend = resume(iris(4), tmp_path / "run")
    assert len(backend.last.batches) == 5 + 2 * 8  # the rest of epoch 2, then 3 and 4
    straight, _ = fit(iris(4), tmp_path, out=tmp_path / "straight")
    assert same_weights(result.runtime.get_weights(), straight.runtime.get_weights()) == 0.0
    assert [r["loss"] for r in result.history] == pytest.approx(
        [r["loss"] for r in straight.history], rel=1e-12
    )


def test_changed_recipe_is_refused_unless_forced(tmp_path: Path) -> None:
    fit(iris(3), tmp_path)
    changed = nnc.parse(IRIS.format(epochs=3).replace("lr = 0.1", "lr = 0.2"))
    with pytest.raises(TrainingError) as err:
        resume(changed, tmp_path / "run")
    assert "the recipe changed since it was written (optimizer sgd(lr = 0.1, momentum = 0.9, " in (
        err.value.message
    )
    assert "-> sgd(lr = 0.2, momentum = 0.9, nesterov = false)" in err.value.message
    assert err.value.hint is not None and "--force" in err.value.hint
    reporter = Collect()
    result, _ = resume(changed, tmp_path / "run", force=True, epochs=5, reporter=reporter)
    assert "continuing (--force)" in reporter.warnings[0]
    assert [row["lr"] for row in result.history] == [0.1, 0.1, 0.1, 0.2, 0.2]


def test_more_epochs_is_not_a_change(tmp_path: Path) -> None:
    fit(iris(3), tmp_path)
    result, _ = resume(iris(5), tmp_path / "run")
    straight, _ = fit(iris(5), tmp_path, out=tmp_path / "straight")
    assert len(result.history) == 5
    assert same_weights(result.runtime.get_weights(), straight.runtime.get_weights()) == 0.0


def test_resume_needs_a_run_folder_with_a_checkpoint(tmp_path: Path) -> None:
    with pytest.raises(TrainingError, match="is not a run folder"):
        resume(iris(3), tmp_path / "nothing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(TrainingError, match="checkpoints holds no readable checkpoint"):
        resume(iris(3), tmp_path / "empty")


def test_first_ctrl_c_asks_to_stop_the_second_interrupts() -> None:
    before = signal.getsignal(signal.SIGINT)  # SIG_IGN in a job started in the background
    with sigint_requests_stop() as should_stop:
        assert not should_stop()
        os.kill(os.getpid(), signal.SIGINT)
        assert should_stop()
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
    assert signal.getsignal(signal.SIGINT) is before


def test_a_checkpoint_does_not_grow_with_the_epochs(tmp_path: Path) -> None:
    fit(iris(300), tmp_path, checkpoint_every=100, keep=3)
    sizes = [p.stat().st_size for p in sorted((tmp_path / "run" / "checkpoints").iterdir())]
    assert len(sizes) == 3  # epochs 100, 200 and 300
    assert max(sizes) - min(sizes) <= 16, sizes  # a number's digits, not 100 epochs' rows


def test_resume_takes_the_history_from_the_run_folder(tmp_path: Path) -> None:
    fit(iris(3), tmp_path, checkpoint_every=1)
    history = tmp_path / "run" / "history.json"
    history.write_text(json.dumps(json.loads(history.read_text())[:2]))
    with pytest.raises(
        TrainingError,
        match=r"history.json holds 2 epochs, and the checkpoint "
        r"was written after epoch 3",
    ):
        resume(iris(5), tmp_path / "run")
    history.unlink()
    with pytest.raises(TrainingError, match=r"history.json is missing; the run's history of 3"):
        resume(iris(5), tmp_path / "run")


def test_a_format_1_checkpoint_with_its_history_still_resumes(tmp_path: Path) -> None:
    fit(iris(3), tmp_path, checkpoint_every=3)
    (tmp_path / "run" / "history.json").unlink()
    newest = tmp_path / "run" / "checkpoints" / "epoch-000003.safetensors"
    arrays = read_flat(newest)
    rows = [{"epoch": e, "loss": 1.0 / e} for e in (1, 2, 3)]
    arrays["meta/history"] = np.asarray(np.str_(json.dumps(rows)))
    arrays["meta/format"] = np.asarray(np.int64(1))
    # Format 1 was an .npz: the checkpoint is written in that format, as it was then.
    newest.unlink()
    write_flat(newest.with_suffix(".npz"), arrays)
    result, _ = resume(iris(4), tmp_path / "run")
    assert [r["loss"] for r in result.history[:3]] == [1.0, 0.5, 1.0 / 3]
    assert len(result.history) == 4
