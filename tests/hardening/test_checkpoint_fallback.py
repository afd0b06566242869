"""Issue 26: resume falls back to the newest checkpoint that fits, for the kinds of
damage that stopped it before (a wrong-shape weight or optimizer slot, meta/batch
1e6, meta/epoch 1e9) and for a folder in place of the newest checkpoint (which
made the retrained run fail on its temporary file)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from nnc.cli.main import main
from nnc.ir.weights import read_weights_file
from nnc.train.checkpoint import read_checkpoint
from tests.tensorfiles import read_flat, write_flat

SPEC = """
model Xor {
    input x: [2]
    dense(5) sigmoid
    dense(1) sigmoid
}

train Xor {
    data      xor
    loss      sse
    optimizer sgd(lr = 0.5, momentum = 0.9)
    epochs    4
    batch     all
    seed      7
}
"""


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A spec and its run of 4 epochs with a checkpoint after each."""
    root = tmp_path_factory.mktemp("fallback")
    spec = root / "xor.nn"
    spec.write_text(SPEC)
    run = root / "run"
    args = ["train", str(spec), "--out", str(run), "--checkpoint-every", "1", "--keep", "5"]
    assert main([*args, "-q"]) == 0
    return spec, run


def _damage(checkpoint: Path, kind: str) -> None:
    if kind == "folder":
        os.remove(checkpoint)
        checkpoint.mkdir()
        (checkpoint / "keep.txt").write_text("user data")
        return
    arrays = read_flat(checkpoint)
    if kind == "weight shape":
        arrays["weights/dense_1.weight"] = np.zeros((3, 3), np.float32)
    elif kind == "optimizer shape":
        arrays["optimizer/dense_1.weight.velocity"] = np.zeros((3, 3), np.float32)
    elif kind == "batch 1e6":
        arrays["meta/batch"] = np.int64(10**6)
    elif kind == "epoch 1e9":
        arrays["meta/epoch"] = np.int64(10**9)
    write_flat(checkpoint, arrays)


@pytest.mark.parametrize(
    ("kind", "warning"),
    [
        ("weight shape", "tensor 'dense_1.weight' has shape [3, 3]; the model expects [5, 2]"),
        (
            "optimizer shape",
            "optimizer state 'dense_1.weight.velocity' has shape [3, 3]; the model expects [5, 2]",
        ),
        ("batch 1e6", "meta/epoch 4 and meta/batch 1000000 do not fit meta/step 4"),
        ("epoch 1e9", "meta/epoch 1000000000 and meta/batch 0 do not fit meta/step 4"),
        (
            "folder",
            "is a folder, not a checkpoint; it was moved to epoch-000004.safetensors.damaged",
        ),
    ],
)
def test_resume_falls_back_past_a_checkpoint_that_does_not_fit(
    kind: str,
    warning: str,
    finished: tuple[Path, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    spec, done = finished
    run = tmp_path / "run"
    shutil.copytree(done, run)
    newest = run / "checkpoints" / "epoch-000004.safetensors"
    _damage(newest, kind)
    assert main(["train", str(spec), "--resume", str(run), "-q"]) == 0
    err = capsys.readouterr().err
    assert warning in err, err
    assert "Traceback" not in err and ".tmp" not in err
    # Epoch 4 is trained again from epoch 3's checkpoint: the same weights, bitwise.
    again = read_weights_file(run / "weights.safetensors")
    before = read_weights_file(done / "weights.safetensors")
    assert sorted(again) == sorted(before)
    for name in before:
        assert np.array_equal(again[name], before[name]), name
    assert read_checkpoint(newest).state.epoch == 4
    if kind == "folder":
        assert (run / "checkpoints" / "epoch-000004.safetensors.damaged" / "keep.txt").exists()


def test_old_npz_checkpoints_fall_back_the_same_way(
    finished: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A run folder of the nnc before safetensors: its checkpoints are .npz (written
    here in that format, metadata as meta/ arrays); the newest does not fit, and
    resume falls back to the older .npz, then writes safetensors."""
    spec, done = finished
    run = tmp_path / "run"
    shutil.copytree(done, run)
    for path in sorted((run / "checkpoints").iterdir()):
        arrays = read_flat(path)
        path.unlink()
        write_flat(path.with_suffix(".npz"), arrays)
    newest = run / "checkpoints" / "epoch-000004.npz"
    _damage(newest, "weight shape")
    assert main(["train", str(spec), "--resume", str(run), "-q"]) == 0
    err = capsys.readouterr().err
    assert f"checkpoint {newest} is damaged and was skipped" in err, err
    assert "trying the previous one (epoch-000003.npz)" in err
    again = read_weights_file(run / "weights.safetensors")
    before = read_weights_file(done / "weights.safetensors")
    for name in before:
        assert np.array_equal(again[name], before[name]), name
    # The retrained epoch 4 is safetensors, after the damaged .npz of the same epoch.
    assert read_checkpoint(run / "checkpoints" / "epoch-000004.safetensors").state.epoch == 4


def test_an_epoch_past_the_recipe_is_damage(tmp_path: Path) -> None:
    """meta/epoch beyond the epochs of the recipe the checkpoint records (with a step
    count to match) was accepted silently."""
    import json

    from nnc.errors import WeightsError
    from nnc.train.checkpoint import parse_checkpoint

    meta = {
        "format": np.int64(2),
        "epoch": np.int64(9),
        "batch": np.int64(0),
        "step": np.int64(100),
        "rng": np.str_("{}"),
        "recipe_hash": np.str_("x"),
        "recipe": np.str_(json.dumps({"recipe": {"epochs": 4}})),
    }
    arrays = {f"meta/{k}": np.asarray(v) for k, v in meta.items()}
    arrays["weights/w"] = np.zeros(2, np.float32)
    with pytest.raises(WeightsError, match="meta/epoch 9 is past the 4 epochs of the recipe"):
        parse_checkpoint(arrays, tmp_path / "epoch-000009.safetensors")
