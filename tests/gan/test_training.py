"""GAN and autoencoder recipes through the training driver: they learn (figures from
the examples), they leave the run folder's pictures, and a GAN run resumes exactly,
from inside an epoch or on another backend."""

from __future__ import annotations

import io
import itertools
import json
from pathlib import Path

import numpy as np
import pytest

import nnc
from nnc.backends import get_backend
from nnc.cli.main import main
from nnc.data import prepare
from nnc.ir.weights import read_weights_file
from nnc.train import RunOptions, train
from nnc.train.gan import sample_noise
from nnc.train.progress import PlainReporter
from tests.conftest import EXAMPLES, require

GAN = nnc.load(EXAMPLES / "gan.nn")


def pngs(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.glob("*.png"))


def test_the_gan_learns_the_digits(tmp_path: Path) -> None:
    """D's mean output on generated samples settles near 1/2 (it never gives up on
    them), and the generated pixels' mean and spread move to the data's."""
    recipe = GAN.recipes["DigitsGAN"]
    untrained = get_backend("numpy").build_gan(GAN).generate(sample_noise(9, recipe.noise))
    out = io.StringIO()
    result = train(
        GAN, options=RunOptions(epochs=8, out=tmp_path / "run"), reporter=PlainReporter(out)
    )
    history, final = result.history, result.final
    # Before training the generator's pixels sit around 0 (tanh of small sums); the
    # digits, scaled to [-1, 1], are mostly background: mean -0.39, deviation 0.75.
    assert final["data_mean"] == pytest.approx(-0.3895, abs=1e-4)
    assert final["data_std"] == pytest.approx(0.7521, abs=1e-4)
    start_mean = abs(float(untrained.mean()) - final["data_mean"])  # 0.38
    start_std = abs(float(untrained.std()) - final["data_std"])  # 0.37
    assert abs(final["fake_mean"] - final["data_mean"]) < min(0.05, start_mean / 4)  # 0.002
    assert abs(final["fake_std"] - final["data_std"]) < 0.6 * start_std  # 0.16
    assert min(row["d_fake"] for row in history) > 0.3  # D never rejects every sample
    assert abs(history[-1]["d_fake"] - 0.5) < 0.1  # 0.47
    assert (
        history[-1]["d_real"] - history[-1]["d_fake"] < history[0]["d_real"] - history[0]["d_fake"]
    )
    # The run folder: history, both curves, one sample grid per epoch, both models.
    run = tmp_path / "run"
    rows = json.loads((run / "history.json").read_text())
    assert list(rows[0]) == [
        "epoch",
        *("d_loss", "d_real", "d_fake", "g_loss", "g_fake", "fake_mean", "fake_std", "time"),
    ]
    assert pngs(run / "samples") == [f"epoch-{e:06d}.png" for e in range(1, 9)]
    assert (run / "loss.png").stat().st_size > 10_000
    weights = read_weights_file(run / "weights.safetensors")
    assert {k.split("/")[0] for k in weights} == {"generator", "discriminator"}
    text = out.getvalue()
    assert text.startswith("training DigitsGAN (Generator against Discriminator) on numpy -> ")
    assert text.splitlines()[1:3] == [
        "9,473 parameters; 1,797 samples",
        "8 epochs of 29 batches (batch 64)",
    ]
    assert "epoch 8/8  d_loss " in text and "  g_fake " in text
    assert "final fake_std" in text and "final data_std" in text


def test_the_autoencoder_reconstructs_held_out_digits(tmp_path: Path) -> None:
    """The dense autoencoder's mean squared error on the 359 held-out digits falls
    more than 5 times (0.186 before training, 0.0225 after 8 epochs)."""
    program = nnc.load(EXAMPLES / "autoencoder.nn")
    data = prepare(program, program.recipes["Autoencoder"])
    assert data.validation is not None and len(data.validation) == 359
    before = get_backend("numpy").build(program).loss(data.validation.x, data.validation.y)
    result = train(program, options=RunOptions(epochs=8, out=tmp_path / "run"))
    after = result.final["val_loss"]
    assert before == pytest.approx(0.186, abs=0.001)
    assert after < before / 5
    assert pngs(tmp_path / "run" / "reconstructions") == [f"epoch-{e:06d}.png" for e in range(1, 9)]


def test_a_gan_run_interrupted_inside_an_epoch_resumes_exactly(tmp_path: Path) -> None:
    whole = train(GAN, options=RunOptions(epochs=2, save=False))
    calls = itertools.count(1)
    first = train(
        GAN,
        options=RunOptions(epochs=2, out=tmp_path / "run"),
        should_stop=lambda: next(calls) == 40,
    )
    assert first.stopped == "interrupted"
    checkpoints = sorted(p.name for p in (tmp_path / "run" / "checkpoints").iterdir())
    assert checkpoints == ["epoch-000001-batch-000011.safetensors", "epoch-000001.safetensors"]
    resumed = train(GAN, options=RunOptions(epochs=2, resume=tmp_path / "run"))
    assert resumed.stopped == "completed"
    for name, value in whole.runtime.get_weights().items():
        np.testing.assert_array_equal(resumed.runtime.get_weights()[name], value, err_msg=name)
    assert resumed.history[-1]["d_loss"] == pytest.approx(whole.history[-1]["d_loss"], rel=1e-9)


def test_a_gan_run_resumes_on_another_backend(tmp_path: Path) -> None:
    require("torch")
    whole = train(GAN, options=RunOptions(epochs=2, batch=600, save=False))  # 3 batches per epoch
    train(GAN, options=RunOptions(epochs=1, batch=600, out=tmp_path / "run"))
    resumed = train(
        GAN, options=RunOptions(epochs=2, batch=600, resume=tmp_path / "run", backend="torch")
    )
    assert resumed.runtime.backend == "torch"
    worst = max(
        float(np.abs(value - resumed.runtime.get_weights()[name]).max())
        for name, value in whole.runtime.get_weights().items()
    )
    assert worst < 1e-6  # float32 arithmetic of two frameworks (measured: 1.5e-8)


def test_nnc_train_runs_a_gan_from_the_command_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    assert main(["train", "examples/gan.nn", "--epochs", "1", "--out", str(run)]) == 0
    out = capsys.readouterr().out
    assert "epoch 1/1  d_loss 1.291  d_real 0.8145  d_fake 0.6466  g_loss 0.4685" in out
    assert (run / "samples" / "epoch-000001.png").is_file()
    assert "DigitsGAN" in (run / "recipe.nn").read_text()
