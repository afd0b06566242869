"""TensorFlow data-parallel training under MultiWorkerMirroredStrategy, two worker
processes that nnc launches and supervises on the loopback: they make the updates of
one process, batchnorm included (its statistics are the global batch's)."""

from __future__ import annotations

from pathlib import Path

import pytest

import nnc
from nnc.train import RunOptions, train
from nnc.train.checkpoint import read_checkpoint
from tests.conftest import EXAMPLES, require
from tests.distributed.helpers import SMOOTHER, absolute, check_smoother, deviations


@pytest.fixture(autouse=True)
def _tensorflow() -> None:
    require("tensorflow")


def test_two_workers_make_the_updates_of_one_process(tmp_path: Path) -> None:
    program, _ = nnc.rewrite.strip_dropout(nnc.load(EXAMPLES / "digits_mlp.nn"))
    settings = {"backend": "tensorflow", "epochs": 1, "batch": 64, "base": EXAMPLES}
    alone = train(program, options=RunOptions(save=False, **settings))  # type: ignore[arg-type]
    pair = train(program, options=RunOptions(nproc=2, timeout=60, out=tmp_path / "run", **settings))  # type: ignore[arg-type]
    two, one = pair.runtime.get_weights(), alone.runtime.get_weights()
    gaps = deviations(two, one)
    assert max(gaps.values()) < 1e-5, f"relative |2 workers - 1 process| per tensor: {gaps}"
    print(f"max |2 workers - 1 process| over the weights: {absolute(two, one):.1e}")
    for name in ("loss", "accuracy", "val_loss", "val_accuracy"):
        assert pair.history[0][name] == pytest.approx(alone.history[0][name], rel=1e-5), name
    checkpoint = read_checkpoint(tmp_path / "run" / "checkpoints" / "epoch-000001.safetensors")
    assert (checkpoint.workers, checkpoint.state.step) == (2, 23)


def test_batchnorm_normalises_with_the_global_batch(tmp_path: Path) -> None:
    # batch 450: slices of 225 + 225 samples, and 224 + 223 in the last global batch
    program = nnc.parse(SMOOTHER.format(batch=450))
    alone = train(program, options=RunOptions(backend="tensorflow", save=False))
    pair = train(program, options=RunOptions(backend="tensorflow", nproc=2, timeout=60, save=False))
    gaps = deviations(pair.runtime.get_weights(), alone.runtime.get_weights(), floor=1e-2)
    check_smoother(gaps)
    # a loss of thousands, summed in float32
    assert [r["loss"] for r in pair.history] == pytest.approx(
        [r["loss"] for r in alone.history], rel=1e-4
    )
