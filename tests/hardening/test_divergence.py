"""Numerical trouble during training: a loss that becomes NaN or infinite stops the
run with the epoch, the step and the first value that went non-finite (a parameter,
a layer's output, or the loss itself), with a remedy; no non-finite weights are
ever written, and the last good checkpoint is left as it was."""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import numpy as np
import pytest

import nnc
from nnc.backends import numpy as numpy_backend
from nnc.cli.main import main
from nnc.errors import TrainingError, WeightsError
from nnc.train import RunOptions, loop, train
from nnc.train.checkpoint import read_checkpoint, write_checkpoint
from nnc.train.diagnose import Finding, first_non_finite
from tests.conftest import EXAMPLES, require

BLOW = """
model Blow {{
    input x: [2]
    dense(8) relu
    dense(8) relu
    dense(1)
}}

train Blow {{
    data      "line.csv"
    {validation}
    loss      mse
    optimizer sgd(lr = {lr})
    {schedule}
    epochs    {epochs}
    batch     10
    seed      3
}}
"""


def blow(
    tmp_path: Path, lr: str, epochs: int = 4, validation: str = "", schedule: str = ""
) -> nnc.Program:
    """A 40-sample regression (4 batches an epoch) that diverges for a large lr."""
    rows = "\n".join(f"{i / 10:.1f},{(i * 7) % 5 - 2},{3 * i / 10 + 1:.2f}" for i in range(40))
    (tmp_path / "line.csv").write_text(f"a,b,y\n{rows}\n")
    return nnc.parse(
        BLOW.format(lr=lr, epochs=epochs, validation=validation, schedule=schedule), "blow.nn"
    )


@pytest.fixture
def non_finite_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """The exploding-loss rule off (nnc.train.loop.EXPLOSION): these runs explode
    before they overflow, and the tests here follow them on to the non-finite value
    (test_second_round.py tests the rule itself)."""
    monkeypatch.setattr(loop, "EXPLOSION", math.inf)


def digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


@pytest.mark.parametrize("backend", ["numpy", "torch", "tensorflow"])
@pytest.mark.usefixtures("non_finite_only")
def test_divergence_names_epoch_step_and_first_non_finite_layer(
    backend: str, tmp_path: Path
) -> None:
    """sgd with lr 100: epoch 1 stays finite, then the output of the last dense layer
    overflows float32. Every backend reports the same step and layer (found by
    running the batch through the NumPy backend with the step's starting weights)."""
    if backend != "numpy":
        require(backend)
    run = tmp_path / "run"
    with pytest.raises(TrainingError) as info:
        train(blow(tmp_path, "100"), options=RunOptions(backend=backend, base=tmp_path, out=run))
    good = run / "checkpoints" / "epoch-000001.safetensors"
    assert info.value.message == (
        "the loss became inf at epoch 2, step 5 (batch 1 of 4) with learning rate 100: the "
        "output of layer 'dense_3' (dense) is the first non-finite value (infinite); training "
        f"stopped and the last good checkpoint is {good}"
    )
    assert info.value.hint == "lower the learning rate (try lr = 10) or standardise the inputs"
    assert [p.name for p in (run / "checkpoints").iterdir()] == ["epoch-000001.safetensors"]
    kept = read_checkpoint(good)
    assert kept.state.epoch == 1 and all(np.isfinite(w).all() for w in kept.weights.values())
    assert not (run / "weights.safetensors").exists()
    assert len(json.loads((run / "history.json").read_text())) == 1


@pytest.mark.parametrize("backend", ["numpy", "torch", "tensorflow"])
def test_lr_1e6_overflows_the_loss_itself(backend: str, tmp_path: Path) -> None:
    """With lr 1e6 the second step's outputs are still finite (about 2e21) but their
    squared error is not: the report says so, with the largest value and its layer."""
    if backend != "numpy":
        require(backend)
    with pytest.raises(TrainingError) as info:
        train(blow(tmp_path, "1e6"), options=RunOptions(backend=backend, base=tmp_path, save=False))
    assert info.value.message == (
        "the loss became inf at epoch 1, step 2 (batch 2 of 4) with learning rate 1e+06: every "
        "layer's output is finite (the largest magnitude is 1.98e+21, in 'dense_3'), so the "
        "loss computation itself went non-finite; training stopped and no checkpoint was written"
    )


@pytest.mark.usefixtures("non_finite_only")
def test_the_failing_step_is_replayed_from_the_last_checkpoint(tmp_path: Path) -> None:
    """lr 10 diverges in the last batch of epoch 3: batches 1-3 are replayed from the
    epoch-2 checkpoint to recover the weights that step started from."""
    run = tmp_path / "run"
    with pytest.raises(TrainingError) as info:
        train(blow(tmp_path, "10"), options=RunOptions(base=tmp_path, out=run))
    assert info.value.message.startswith(
        "the loss became inf at epoch 3, step 12 (batch 4 of 4) with learning rate 10: every "
        "layer's output is finite (the largest magnitude is 4.76e+23, in 'dense_2')"
    )
    assert info.value.message.endswith(
        f"checkpoint is {run / 'checkpoints' / 'epoch-000002.safetensors'}"
    )


@pytest.mark.usefixtures("non_finite_only")
def test_the_last_good_checkpoint_is_never_overwritten(tmp_path: Path) -> None:
    """A finished run, resumed with a diverging learning rate (--force: the recipe
    changed), stops without touching any file of the run but its history."""
    run = tmp_path / "run"
    train(blow(tmp_path, "0.01", epochs=2), options=RunOptions(base=tmp_path, out=run))
    before = digests(run / "checkpoints")
    weights = hashlib.sha256((run / "weights.safetensors").read_bytes()).hexdigest()
    with pytest.raises(TrainingError) as info:
        train(
            blow(tmp_path, "1e6", epochs=4),
            options=RunOptions(base=tmp_path, resume=run, force=True),
        )
    # Found by replaying the two batches before the failing one from the resumed state.
    assert info.value.message.startswith(
        "the loss became nan at epoch 3, step 11 (batch 3 of 4) with learning rate 1e+06: the "
        "output of layer 'dense_2' (dense) is the first non-finite value"
    )
    assert info.value.message.endswith(
        f"the last good checkpoint is {run / 'checkpoints' / 'epoch-000002.safetensors'}"
    )
    assert digests(run / "checkpoints") == before
    assert hashlib.sha256((run / "weights.safetensors").read_bytes()).hexdigest() == weights
    # ... and the run still resumes from it with a sane learning rate.
    result = train(blow(tmp_path, "0.01", epochs=3), options=RunOptions(base=tmp_path, resume=run))
    assert result.stopped == "completed" and np.isfinite(result.final["loss"])


def test_checkpoints_refuse_non_finite_weights(tmp_path: Path) -> None:
    run = tmp_path / "run"
    train(blow(tmp_path, "0.01", epochs=1), options=RunOptions(base=tmp_path, out=run))
    path = run / "checkpoints" / "epoch-000001.safetensors"
    before = path.read_bytes()
    checkpoint = read_checkpoint(path)
    checkpoint.weights["dense_2.bias"] = np.full(8, np.nan, np.float32)
    with pytest.raises(WeightsError, match=r"non-finite weights \('dense_2\.bias'\)"):
        write_checkpoint(run / "checkpoints", checkpoint)
    assert path.read_bytes() == before


@pytest.mark.usefixtures("non_finite_only")
def test_non_finite_weights_after_a_finite_loss(tmp_path: Path) -> None:
    """lr 1000: the last step of epoch 1 has a finite loss but its update overflows
    the weights; the checkpoint that would hold them is not written."""
    run = tmp_path / "run"
    with pytest.raises(TrainingError) as info:
        train(blow(tmp_path, "1000"), options=RunOptions(base=tmp_path, out=run))
    assert info.value.message == (
        "weight 'dense_1.weight' became NaN or infinite in the update of epoch 1, step 4; "
        "training stopped and no checkpoint was written"
    )
    assert not (run / "checkpoints").exists() or not list((run / "checkpoints").iterdir())


def test_validation_loss_that_overflows_stops_the_run(tmp_path: Path) -> None:
    (tmp_path / "far.csv").write_text("a,b,y\n1e20,1e20,1\n-1e20,3e20,2\n")
    program = blow(tmp_path, "0.01", validation='validation "far.csv"')
    with pytest.raises(TrainingError) as info:
        train(program, options=RunOptions(base=tmp_path, save=False))
    assert info.value.message == (
        "val_loss became inf after epoch 1 with learning rate 0.01; training stopped and no "
        "checkpoint was written"
    )


@pytest.mark.usefixtures("non_finite_only")
def test_a_schedule_that_overflows_is_refused(tmp_path: Path) -> None:
    program = blow(tmp_path, "1e-300", epochs=3, schedule="schedule exponential(gamma = 1e300)")
    with pytest.raises(TrainingError) as info:
        train(program, options=RunOptions(base=tmp_path, save=False))
    assert info.value.message == (
        "the learning rate of epoch 3 is inf: the exponential schedule overflowed from lr = 1e-300"
    )


def test_nnc_train_reports_divergence_without_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blow(tmp_path, "1e6")
    spec = tmp_path / "blow.nn"
    spec.write_text(BLOW.format(lr="1e6", epochs=4, validation="", schedule=""))
    assert main(["train", str(spec), "--out", str(tmp_path / "run"), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: the loss became inf at epoch 1, step 2 (batch 2 of 4)")
    assert "  hint: lower the learning rate (try lr = 100000)" in err
    assert "Traceback" not in err and "RuntimeWarning" not in err


# -- the locator itself ------------------------------------------------------------------


def test_first_non_finite_parameter_layer_or_loss() -> None:
    """In a model that calls another, a huge weight in the callee is reported by its
    flat (dotted) name; a NaN parameter comes first; finite values point at the loss."""
    program = nnc.load(EXAMPLES / "autoencoder.nn")
    weights = nnc.ir.weights.init_weights(program, "Autoencoder", 0)
    x = np.random.default_rng(0).random((4, 64)).astype(np.float32)
    assert first_non_finite(program, "Autoencoder", weights, [x]).kind == "loss"

    huge = dict(weights)
    huge["encoder_1.dense_2.weight"] = np.full_like(weights["encoder_1.dense_2.weight"], 3e38)
    found = first_non_finite(program, "Autoencoder", huge, [x])
    assert found == Finding("layer", "encoder_1.dense_2", "dense", "infinite")

    broken = dict(huge)
    broken["decoder_1.dense_1.bias"] = np.full_like(weights["decoder_1.dense_1.bias"], np.nan)
    found = first_non_finite(program, "Autoencoder", broken, [x])
    assert str(found) == "parameter 'decoder_1.dense_1.bias' was already non-finite (NaN)"


class Flaky:
    """A NumPy runtime whose every train step from the ``fail_from``-th on returns NaN:
    a backend that is not deterministic, as far as the replay can tell."""

    def __init__(self, runtime: object, fail_from: int):
        self.runtime, self.fail_from, self.calls = runtime, fail_from, 0

    def train_step(self, x: np.ndarray, y: np.ndarray, lr: float) -> float:
        self.calls += 1
        if self.calls >= self.fail_from:
            return float("nan")
        return float(self.runtime.train_step(x, y, lr))  # type: ignore[attr-defined]

    def __getattr__(self, name: str) -> object:
        return getattr(self.runtime, name)


def test_a_replay_that_does_not_reproduce_the_run_says_so(tmp_path: Path) -> None:
    """Without a run folder the anchor is the last epoch boundary; when replaying
    from it fails sooner than the run did, the report says the layer is unknown
    rather than guessing."""

    def build(program, model, weights=None, seed=None, **options):  # type: ignore[no-untyped-def]
        return Flaky(numpy_backend.build(program, model, weights=weights, seed=seed), 6)

    with pytest.raises(TrainingError) as info:
        train(blow(tmp_path, "0.01"), options=RunOptions(base=tmp_path, save=False), build=build)
    assert info.value.message == (
        "the loss became nan at epoch 2, step 6 (batch 2 of 4) with learning rate 0.01: the first "
        "non-finite layer is unknown: replaying the earlier steps diverged sooner (epoch 2, "
        "batch 1); training stopped and no checkpoint was written"
    )
