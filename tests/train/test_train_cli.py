"""``nnc train / eval / predict`` in-process, with the fake runtime standing in for the
backend (the end-to-end runs on the real NumPy backend are in test_numpy_e2e.py)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from nnc.cli.main import main
from tests.train.fakes import FakeBackend
from tests.train.test_driver import IRIS


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeBackend:
    backend = FakeBackend()
    monkeypatch.setattr(
        "nnc.backends.registry.BackendSpec.load", lambda spec: SimpleNamespace(build=backend)
    )
    return backend


@pytest.fixture
def spec(tmp_path: Path) -> Path:
    path = tmp_path / "soft.nn"
    path.write_text(IRIS.format(epochs=8))
    return path


def test_train_prints_lines_and_writes_the_run(
    fake: FakeBackend, spec: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    assert main(["train", str(spec), "--out", str(run), "--epochs", "3"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("training Soft on numpy -> ")
    assert out.splitlines()[1].startswith("15 parameters; 120 samples")
    assert "epoch 3/3  loss" in out and "best epoch" in out
    assert (run / "weights.safetensors").is_file() and (run / "history.csv").is_file()
    assert len(json.loads((run / "history.json").read_text())) == 3


def test_quiet_prints_nothing(
    fake: FakeBackend, spec: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["train", str(spec), "--out", str(tmp_path / "r"), "--quiet"]) == 0
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


def test_eval_agrees_with_the_training_summary(
    fake: FakeBackend, spec: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    main(["train", str(spec), "--out", str(run), "--quiet"])
    trained = fake.last.get_weights()
    history = json.loads((run / "history.json").read_text())
    assert main(["eval", str(spec), "--weights", str(run), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["data"] == "validation set" and report["samples"] == 30
    # The run folder brings its standardisation statistics: same figures as training.
    assert report["loss"] == pytest.approx(history[-1]["val_loss"], rel=1e-6)
    assert report["accuracy"] == history[-1]["val_accuracy"]
    assert np.array(report["confusion_matrix"]).sum() == 30
    assert np.array_equal(fake.last.get_weights()["dense_1.weight"], trained["dense_1.weight"])
    main(["eval", str(spec), "--weights", str(run), "--data", "all", "--json"])
    assert json.loads(capsys.readouterr().out)["samples"] == 150
    main(["eval", str(spec), "--weights", str(run), "--data", "train"])
    table = capsys.readouterr().out
    assert "Soft on the training set (120 samples)" in table
    assert "confusion matrix on the training set" in table


def test_eval_without_statistics_is_refused(
    fake: FakeBackend, spec: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    main(["train", str(spec), "--out", str(run), "--quiet"])
    alone = tmp_path / "alone.safetensors"
    alone.write_bytes((run / "weights.safetensors").read_bytes())
    assert main(["eval", str(spec), "--weights", str(alone)]) == 1
    assert "standardises its inputs, but no statistics were found" in capsys.readouterr().err


def test_predict_writes_outputs_and_labels(
    fake: FakeBackend, spec: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    main(["train", str(spec), "--out", str(run), "--quiet"])
    samples = tmp_path / "flowers.csv"
    samples.write_text("a,b,c,d\n5.1,3.5,1.4,0.2\n6.7,3.0,5.2,2.3\n5.9,2.8,4.3,1.3\n")
    out_csv, out_npz = tmp_path / "p.csv", tmp_path / "p.npz"
    assert (
        main(
            [
                "predict",
                str(spec),
                "-w",
                str(run),
                "-i",
                str(samples),
                "-o",
                str(out_csv),
                "--labels",
            ]
        )
        == 0
    )
    assert "wrote 3 predictions" in capsys.readouterr().err
    lines = out_csv.read_text().splitlines()
    assert lines[0] == "output_0,output_1,output_2,label"
    # Setosa, virginica, versicolor: the classes iris is known for.
    assert [int(line.split(",")[-1]) for line in lines[1:]] == [0, 2, 1]
    main(
        [
            "predict",
            str(spec),
            "-w",
            str(run / "weights.safetensors"),
            "-i",
            str(samples),
            "-o",
            str(out_npz),
        ]
    )
    with np.load(out_npz, allow_pickle=False) as f:
        assert f["outputs"].shape == (3, 3) and "labels" not in f.files
        first = [float(v) for v in lines[1].split(",")[:3]]
        np.testing.assert_allclose(f["outputs"][0], first, rtol=1e-6)


def test_ctrl_c_checkpoints_and_prints_how_to_resume(
    monkeypatch: pytest.MonkeyPatch, spec: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    backend = FakeBackend(sigint_at_step=13)
    monkeypatch.setattr(
        "nnc.backends.registry.BackendSpec.load", lambda spec: SimpleNamespace(build=backend)
    )
    run = tmp_path / "run"
    assert main(["train", str(spec), "--out", str(run), "--seed", "3", "--quiet"]) == 130
    err = capsys.readouterr().err
    assert "stopping after this batch and writing a checkpoint" in err
    checkpoint = run / "checkpoints" / "epoch-000001-batch-000005.safetensors"
    assert f"interrupted; the state is saved in {checkpoint}" in err
    assert f"resume with: nnc train {spec} --resume {run} --seed 3" in err
    assert not (run / "weights.safetensors").exists()
    backend.sigint_at_step = 0
    assert main(["train", str(spec), "--resume", str(run), "--seed", "3", "--quiet"]) == 0
    assert len(json.loads((run / "history.json").read_text())) == 8


def test_gan_and_device_errors(
    fake: FakeBackend, spec: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    weights = spec.with_suffix(".npz")
    np.savez(weights, unused=np.zeros(1))
    assert main(["eval", "examples/gan.nn", "--weights", str(weights)]) == 1
    assert "recipe 'DigitsGAN' trains a GAN, which has no targets" in capsys.readouterr().err
    assert main(["train", "examples/gan.nn", "--device", "cuda", "--quiet"]) == 1
    assert (
        "the numpy backend runs on the CPU only. Received: --device cuda" in capsys.readouterr().err
    )
    assert main(["train", str(spec), "--device", "cuda", "--quiet"]) == 1
    assert (
        "the numpy backend runs on the CPU only. Received: --device cuda" in capsys.readouterr().err
    )


def test_bad_flags_are_usage_errors(spec: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["train", str(spec), "--epochs", "0"])
    assert exit_.value.code == 2
    assert "expected a number of at least 1. Received: 0" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["train", str(spec), "--seed", "-1"])
    assert "a seed is at least 0. Received: -1" in capsys.readouterr().err
