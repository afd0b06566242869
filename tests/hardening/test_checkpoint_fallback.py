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
    arrays = dict(np.load(checkpoint))
    if kind == "weight shape":
        arrays["weights/dense_1.weight"] = np.zeros((3, 3), np.float32)
    elif kind == "optimizer shape":
        arrays["optimizer/dense_1.weight.velocity"] = np.zeros((3, 3), np.float32)
    elif kind == "batch 1e6":
        arrays["meta/batch"] = np.int64(10**6)
    elif kind == "epoch 1e9":
        arrays["meta/epoch"] = np.int64(10**9)
    np.savez(checkpoint, **arrays)


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
        ("folder", "is a folder, not a checkpoint; it was moved to epoch-000004.npz.damaged"),
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
    newest = run / "checkpoints" / "epoch-000004.npz"
    _damage(newest, kind)
    assert main(["train", str(spec), "--resume", str(run), "-q"]) == 0
    err = capsys.readouterr().err
    assert warning in err, err
    assert "Traceback" not in err and ".tmp" not in err
    # Epoch 4 is trained again from epoch 3's checkpoint: the same weights, bitwise.
    again, before = np.load(run / "weights.npz"), np.load(done / "weights.npz")
    assert sorted(again.files) == sorted(before.files)
    for name in before.files:
        assert np.array_equal(again[name], before[name]), name
    assert np.load(newest)["meta/epoch"] == 4
    if kind == "folder":
        assert (run / "checkpoints" / "epoch-000004.npz.damaged" / "keep.txt").exists()


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
        parse_checkpoint(arrays, tmp_path / "epoch-000009.npz")
