"""PyTorch data-parallel training through torchrun and DistributedDataParallel (gloo,
on this machine's CPU): two workers make the updates of one process, batchnorm sees
the global batch (nnc's runtime adapter swaps in GlobalBatchNorm), and a killed worker
stops the run with its rank while the last checkpoint resumes (in one process:
checkpoints do not depend on the worker count)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import nnc
from nnc.cli.main import main
from nnc.ir.weights import read_weights_file
from nnc.train import RunOptions, train
from nnc.train.checkpoint import read_checkpoint
from tests.conftest import EXAMPLES, ROOT, require
from tests.distributed.helpers import SMOOTHER, absolute, check_smoother, deviations, workers_of


@pytest.fixture(autouse=True)
def _torch() -> None:
    require("torch")


def test_two_gloo_workers_make_the_updates_of_one_process(tmp_path: Path) -> None:
    # Dropout masks come from each worker's generator, so the comparison runs without.
    program, _ = nnc.rewrite.strip_dropout(nnc.load(EXAMPLES / "digits_mlp.nn"))
    settings = {"backend": "torch", "epochs": 1, "batch": 64, "base": EXAMPLES}
    alone = train(program, options=RunOptions(save=False, **settings))  # type: ignore[arg-type]
    pair = train(program, options=RunOptions(nproc=2, timeout=60, out=tmp_path / "run", **settings))  # type: ignore[arg-type]
    # 1,438 training samples: 23 steps, 32 + 32 samples each, the last 15 + 15.
    two, one = pair.runtime.get_weights(), alone.runtime.get_weights()
    gaps = deviations(two, one)
    assert max(gaps.values()) < 1e-5, f"relative |2 workers - 1 process| per tensor: {gaps}"
    print(f"max |2 workers - 1 process| over the weights: {absolute(two, one):.1e}")
    (row,) = pair.history
    for name in ("loss", "accuracy", "val_loss", "val_accuracy"):
        assert row[name] == pytest.approx(alone.history[0][name], rel=1e-5), name
    # rank 0 wrote the run folder: canonical weights and a checkpoint that records 2 workers
    saved = read_weights_file(tmp_path / "run" / "weights.safetensors")
    assert max(deviations(saved, pair.runtime.get_weights()).values()) == 0.0
    checkpoint = read_checkpoint(tmp_path / "run" / "checkpoints" / "epoch-000001.safetensors")
    assert (checkpoint.workers, checkpoint.state.step) == (2, 23)


def test_two_workers_train_batchnorm_over_the_global_batch(tmp_path: Path) -> None:
    """nnc's runtime adapter under torchrun swaps batchnorm for GlobalBatchNorm: two
    workers move the weights and running statistics as one process does."""
    # batch 449: slices of 225 and 224 samples, and the last global batch of 1 sample
    # leaves rank 1 an empty slice; sse is a sum, so each worker's share is 1.
    program = nnc.parse(SMOOTHER.format(batch=449))
    settings = {"backend": "torch", "base": EXAMPLES}
    alone = train(program, options=RunOptions(save=False, **settings))  # type: ignore[arg-type]
    pair = train(program, options=RunOptions(nproc=2, timeout=60, out=tmp_path / "run", **settings))  # type: ignore[arg-type]
    check_smoother(deviations(pair.runtime.get_weights(), alone.runtime.get_weights(), floor=1e-2))
    losses = [row["loss"] for row in alone.history]
    assert [row["loss"] for row in pair.history] == pytest.approx(losses, rel=1e-5)
    assert losses[1] < 0.5 * losses[0]  # it learns: the summed loss falls by half


def test_a_killed_worker_stops_every_worker_and_the_checkpoint_resumes(tmp_path: Path) -> None:
    spec = EXAMPLES / "digits_mlp.nn"
    run = tmp_path / "run"
    # batch 4: an epoch is 360 steps, each with collectives; a kill right after the
    # first checkpoint lands inside epoch 2
    settings = ["--backend", "torch", "--batch", "4", "--epochs", "2", "-q"]
    command = [sys.executable, "-m", "nnc.cli.main", "train", str(spec), "--out", str(run)]
    first = run / "checkpoints" / "epoch-000001.safetensors"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with subprocess.Popen(
        [*command, *settings, "--nproc", "2", "--timeout", "60"],
        cwd=ROOT,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    ) as launcher:
        try:
            deadline = time.monotonic() + 180
            while not first.exists() and launcher.poll() is None and time.monotonic() < deadline:
                time.sleep(0.01)
            workers = workers_of(launcher.pid, 2, time.monotonic() + 10)
            assert sorted(workers) == [0, 1], f"workers found: {workers}"
            os.kill(workers[1], signal.SIGKILL)
            killed = time.monotonic()
            _, err = launcher.communicate(timeout=120)
            seconds = time.monotonic() - killed
        finally:
            if launcher.poll() is None:  # a failed check above: end the run (its workers follow)
                launcher.kill()
    assert launcher.returncode == 1, err
    assert (
        f"error: worker rank 1 (pid {workers[1]}) was killed by SIGKILL; every worker has "
        f"stopped; the last checkpoint is {first}\n"
        f"  hint: continue from the last checkpoint with --resume {run}"
    ) in err
    # bounded: torchrun's agent notices within 0.1 s and stops rank 0
    assert seconds < 30, f"the run took {seconds:.1f} s to end after the kill"
    print(f"time from SIGKILL to the launcher's exit: {seconds:.2f} s")
    checkpoints = sorted(p.name for p in (run / "checkpoints").glob("*.safetensors"))
    assert (
        checkpoints == ["epoch-000001.safetensors"] and not (run / "weights.safetensors").exists()
    )
    checkpoint = read_checkpoint(first)
    assert (checkpoint.state.epoch, checkpoint.state.step, checkpoint.workers) == (1, 360, 2)

    # Checkpoints are canonical: the run resumes with any worker count (here one).
    assert main(["train", str(spec), "--resume", str(run), *settings]) == 0
    history = json.loads((run / "history.json").read_text())
    assert [row["epoch"] for row in history] == [1, 2]
    assert history[1]["val_loss"] < history[0]["val_loss"]
    final = read_weights_file(run / "weights.safetensors")
    assert all(np.all(np.isfinite(v)) for v in final.values())
