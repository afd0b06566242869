"""End to end on the real NumPy backend: nnc train/eval/predict on XOR, and a run
killed with SIGKILL in the middle of an epoch, then resumed."""

from __future__ import annotations

import json
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from nnc.cli.main import main
from nnc.dsl import load
from nnc.ir.weights import read_weights_file
from nnc.train import RunOptions, train
from tests.conftest import EXAMPLES, ROOT


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_xor_trains_evaluates_and_predicts(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    run = tmp_path / "xor"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "nnc.cli.main",
            "train",
            str(EXAMPLES / "xor.nn"),
            "--out",
            str(run),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "training Xor on numpy -> " in result.stdout
    assert "\n21 parameters; 4 samples\n" in result.stdout
    assert "epoch 5000/5000" in result.stdout
    history = json.loads((run / "history.json").read_text())
    assert len(history) == 5000 and history[-1]["loss"] < 0.01
    assert png_size(run / "loss.png") == (700, 420)

    assert main(["eval", str(EXAMPLES / "xor.nn"), "--weights", str(run), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["data"] == "training set" and report["loss"] < 0.01
    assert report["accuracy"] == 1.0 and report["confusion_matrix"] == [[2, 0], [0, 2]]

    inputs = tmp_path / "inputs.csv"
    inputs.write_text("a,b\n0,0\n0,1\n1,0\n1,1\n")
    out = tmp_path / "out.npz"
    args = ["predict", str(EXAMPLES / "xor.nn"), "-w", str(run), "-i", str(inputs), "-o", str(out)]
    assert main([*args, "--labels"]) == 0
    with np.load(out, allow_pickle=False) as f:
        assert np.round(f["outputs"][:, 0]).tolist() == [0, 1, 1, 0]
        assert f["labels"].tolist() == [0, 1, 1, 0]


def test_sigkill_mid_epoch_then_resume_matches_an_uninterrupted_run(tmp_path: Path) -> None:
    spec = EXAMPLES / "digits_mlp.nn"  # Adam, dropout, a validation split
    # batch 1: an epoch is 1,437 steps (about a second), so a kill shortly after the
    # second checkpoint lands inside epoch 3 however fast or loaded the machine is
    settings = ["--epochs", "4", "--batch", "1", "--checkpoint-every", "1", "--keep", "4"]
    run = tmp_path / "run"
    command = [sys.executable, "-m", "nnc.cli.main", "train", str(spec), "--out", str(run)]
    second = run / "checkpoints" / "epoch-000002.safetensors"
    with subprocess.Popen(
        [*command, "--quiet", *settings],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    ) as process:
        deadline = time.monotonic() + 240
        while not second.exists() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.005)
        time.sleep(0.05)
        process.send_signal(signal.SIGKILL)
        _, err = process.communicate(timeout=30)
    assert process.returncode == -signal.SIGKILL, err.decode()
    # Killed inside epoch 3: two checkpoints and two history rows, no final weights.
    names = sorted(p.name for p in (run / "checkpoints").iterdir() if p.suffix == ".safetensors")
    assert names == ["epoch-000001.safetensors", "epoch-000002.safetensors"]
    assert len((run / "history.csv").read_text().splitlines()) == 1 + 2
    assert not (run / "weights.safetensors").exists()

    assert main(["train", str(spec), "--resume", str(run), "--quiet", *settings]) == 0
    resumed = read_weights_file(run / "weights.safetensors")
    straight = train(
        load(spec), options=RunOptions(epochs=4, batch=1, save=False, base=EXAMPLES)
    ).runtime.get_weights()
    deviation = max(float(np.max(np.abs(resumed[k] - straight[k]))) for k in straight)
    assert deviation == 0.0, f"max |resumed - uninterrupted| = {deviation}"
    history = json.loads((run / "history.json").read_text())
    assert [int(row["epoch"]) for row in history] == [1, 2, 3, 4]
