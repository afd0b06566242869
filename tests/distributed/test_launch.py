"""Launching data-parallel runs, without starting workers: the settings nnc refuses
(with the reason and what to do), torchrun's command line, TF_CONFIG, and how the
launcher turns what the workers left behind into one error naming the failed rank."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from nnc.cli.main import main
from nnc.errors import BackendError, DataError, TrainingError, WorkerError
from nnc.train.checkpoint import Checkpoint, TrainState, write_checkpoint
from nnc.train.distributed.failures import Exit, failure
from nnc.train.distributed.job import WorkerReport
from nnc.train.distributed.settings import Launch
from nnc.train.distributed.supervisor import supervise, tf_config
from nnc.train.distributed.torchrun import torchrun_arguments
from tests.conftest import EXAMPLES, require


@pytest.mark.parametrize(
    ("launch", "backend", "message"),
    [
        (Launch(nproc=2), "numpy", "the numpy backend trains in one process"),
        (Launch(nproc=2, nnodes=2, master_port=29500), "tensorflow", "on this machine only"),
        (Launch(nproc=2, nnodes=2, node_rank=2, master_port=1), "torch", "[0, 2)"),
        (Launch(nproc=1, nnodes=2), "torch", "needs --master-port"),
        (Launch(nproc=2, master_addr="10.0.0.7"), "torch", "over the loopback interface only"),
        (Launch(nproc=2, timeout=0), "torch", "the timeout must be positive"),
    ],
)
def test_settings_that_cannot_run_are_refused(launch: Launch, backend: str, message: str) -> None:
    with pytest.raises((BackendError, TrainingError)) as err:
        launch.check(backend)
    assert message in err.value.message


def test_the_cli_refuses_workers_on_numpy_before_starting_any(capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["train", str(EXAMPLES / "xor.nn"), "--nproc", "2"]) == 1
    err = capsys.readouterr().err
    assert "error: data-parallel training runs on torch or tensorflow; the numpy backend " in err
    assert "Received: --backend numpy with 2 workers" in err


def test_gan_recipes_train_in_one_process(capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["train", str(EXAMPLES / "gan.nn"), "-b", "torch", "--nproc", "2"]) == 1
    err = capsys.readouterr().err
    assert "gan.nn:18:7: error: recipe 'DigitsGAN' trains a GAN; data-parallel training" in err
    assert "hint: train the GAN in one process (drop --nproc)" in err


def test_cuda_workers_need_a_gpu_each(capsys, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    require("torch")
    import torch

    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    workers = max(2, gpus + 1)  # more workers than GPUs
    args = ["train", str(EXAMPLES / "digits_mlp.nn"), "-b", "torch", "--device", "cuda"]
    assert main([*args, "--nproc", str(workers), "--out", str(tmp_path / "run")]) == 1
    err = capsys.readouterr().err
    if gpus:
        assert f"so --nproc {workers} needs {workers} GPUs; torch sees {gpus}" in err
    else:
        assert "error: device 'cuda' was requested but CUDA is not available to torch" in err
    assert not (tmp_path / "run").exists()  # refused before anything started


def test_torchrun_command_line() -> None:
    single = torchrun_arguments(Path("/jobs/job.json"), Launch(nproc=2, timeout=60), 29511)
    assert single == [
        "--nnodes", "1", "--nproc-per-node", "2", "--node-rank", "0",
        "--master-addr", "127.0.0.1", "--master-port", "29511",
        "--max-restarts", "0", "--monitor-interval", "0.1", "--shutdown-timeout", "30",
        "--rdzv-conf", "timeout=60", "--local-addr", "127.0.0.1",
        "--module", "nnc.train.distributed.worker", "/jobs/job.json",
    ]  # fmt: skip
    launch = Launch(nproc=4, nnodes=2, node_rank=1, master_addr="10.0.0.7", master_port=29500)
    several = torchrun_arguments(Path("job.json"), launch, 29500)
    assert several[:10] == [
        "--nnodes", "2", "--nproc-per-node", "4", "--node-rank", "1",
        "--master-addr", "10.0.0.7", "--master-port", "29500",
    ]  # fmt: skip
    assert "--local-addr" not in several


def test_tf_config_names_every_worker_on_the_loopback() -> None:
    config = json.loads(tf_config([4001, 4002, 4003], 2))
    assert config == {
        "cluster": {"worker": ["127.0.0.1:4001", "127.0.0.1:4002", "127.0.0.1:4003"]},
        "task": {"type": "worker", "index": 2},
    }


def checkpointed_run(tmp_path: Path) -> Path:
    run = tmp_path / "run"
    weights = {"dense_1.weight": np.zeros((1, 2), np.float32)}
    write_checkpoint(
        run / "checkpoints", Checkpoint(weights, {}, TrainState(epoch=3), "h", "{}", "torch")
    )
    return run


def test_a_killed_worker_is_the_root_cause_not_the_ones_stopped_after_it(tmp_path: Path) -> None:
    run = checkpointed_run(tmp_path)
    # rank 0 lost rank 1 in a collective, then the launcher terminated it
    WorkerReport(0, "peer", "LostPeer", "Connection closed by peer").write(tmp_path)
    exits = [Exit(0, 100, -signal.SIGTERM), Exit(1, 101, -signal.SIGKILL)]
    err = failure(exits, tmp_path, range(2), run)
    assert isinstance(err, WorkerError) and err.rank == 1
    assert err.message == (
        "worker rank 1 (pid 101) was killed by SIGKILL; every worker has stopped; the last "
        f"checkpoint is {run / 'checkpoints' / 'epoch-000003.safetensors'}"
    )
    assert err.hint == f"continue from the last checkpoint with --resume {run}"


def test_an_nnc_error_of_the_workers_is_raised_as_it_is(tmp_path: Path) -> None:
    span = {"file": "spec.nn", "line": 4, "col": 5, "end_line": 4, "end_col": 9}
    report = WorkerReport(1, "nnc", "DataError", "no such file: x.csv", "check the path", span)
    report.write(tmp_path)
    err = failure([Exit(1, 7, 1)], tmp_path, range(2), None)
    assert type(err) is DataError and err.hint == "check the path"
    assert str(err.span) == "spec.nn:4:5" and err.message == "no such file: x.csv"


def test_a_worker_that_only_lost_its_peers_points_elsewhere(tmp_path: Path) -> None:
    WorkerReport(2, "peer", "LostPeer", "Connection reset by peer\nmore").write(tmp_path)
    err = failure([Exit(2, 9, 1)], tmp_path, range(2, 4), None)
    # it exited with status 1 after writing its report: the report explains it
    assert isinstance(err, WorkerError) and err.rank == 2
    assert err.message.startswith(
        "worker rank 2 lost contact with the other workers (Connection reset by peer)"
    )
    assert err.hint == "a worker failed elsewhere (on another machine?): see its output"


def sleeper(folder: Path, rank: int, then: str = "time.sleep(60)") -> subprocess.Popen[bytes]:
    """A stand-in worker: it says it joined the others, then runs ``then``."""
    ready = folder / f"rank-{rank}.ready"
    code = f"import os, signal, time; open({str(ready)!r}, 'w').close(); {then}"
    return subprocess.Popen([sys.executable, "-c", code], start_new_session=True)


def test_the_supervisor_stops_every_worker_when_one_dies(tmp_path: Path) -> None:
    suicide = "time.sleep(0.3); os.kill(os.getpid(), signal.SIGKILL)"
    workers = [sleeper(tmp_path, 0), sleeper(tmp_path, 1, suicide)]
    started = time.monotonic()
    exits = supervise(workers, tmp_path, timeout=30)
    assert exits == [Exit(1, workers[1].pid, -signal.SIGKILL)]
    assert workers[0].poll() == -signal.SIGTERM  # rank 0 terminated, not left waiting
    assert time.monotonic() - started < 10


def test_the_supervisor_bounds_the_wait_for_workers_to_connect(tmp_path: Path) -> None:
    silent = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    workers = [sleeper(tmp_path, 0), silent]
    with pytest.raises(WorkerError) as err:
        supervise(workers, tmp_path, timeout=1.0)
    assert err.value.rank == 1
    assert err.value.message == (
        "worker rank 1 did not connect to the others within 1 s; every worker has stopped"
    )
    assert all(w.poll() is not None for w in workers)
