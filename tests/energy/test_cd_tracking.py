"""A contrastive divergence run logs as supervised runs do: TensorBoard event files in
its run folder (each history row's figures, weight histograms, the first rbm's
filters, the graph, the recipe and the PNGs), MLflow on request (in
tests/train/test_tracking.py, which shares one MLflow database), callbacks that may
stop it; and data-parallel training (--nproc) refuses it with line and column."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import nnc
from nnc.cli.main import main
from nnc.errors import RecipeError
from nnc.ir.weights import read_weights_file
from nnc.train.progress import QuietReporter
from nnc.train.tracking import Callback, Tracking
from tests.conftest import require
from tests.train.test_tracking import tensorboard_reader

RBM = """
model R {
    input x: [64]
    rbm(8)
}

train R {
    data      digits, binarize = true
    optimizer cd(1, lr = 0.2)
    epochs    3
    batch     64
    seed      3
}
"""


def test_a_cd_run_writes_tensorboard_logs(tmp_path: Path) -> None:
    require("tensorboard")
    require("matplotlib")
    run = tmp_path / "run"
    nnc.fit(nnc.parse(RBM), out=run, reporter=QuietReporter(), tracking=Tracking(histogram_every=2))
    provider, ctx = tensorboard_reader(run)
    scalars = provider.read_scalars(ctx, experiment_id="", plugin_name="scalars", downsample=100)
    history = json.loads((run / "history.json").read_text())
    for figure in ("recon_error", "log_likelihood"):
        logged = scalars["."][figure]
        assert [(d.step, d.value) for d in logged] == [(r["epoch"], r[figure]) for r in history]
    histograms = provider.read_tensors(
        ctx, experiment_id="", plugin_name="histograms", downsample=10
    )["."]
    assert set(histograms) == {
        f"weights/rbm_1.{p}" for p in ("weight", "visible_bias", "hidden_bias")
    }
    weight = histograms["weights/rbm_1.weight"]
    assert [d.step for d in weight] == [2, 3]
    final = read_weights_file(run / "weights.safetensors")["rbm_1.weight"]
    assert weight[-1].numpy[:, 2].sum() == final.size
    assert weight[-1].numpy[0, 0] == pytest.approx(final.min())
    images = provider.read_blob_sequences(
        ctx, experiment_id="", plugin_name="images", downsample=10
    )["."]
    assert sorted(images) == ["pictures/filters", "plots/filters", "plots/loss", "plots/samples"]
    texts = provider.read_tensors(ctx, experiment_id="", plugin_name="text", downsample=10)["."]
    assert "cd(k = 1, lr = 0.2" in texts["recipe"][0].numpy.item().decode()


class StopAfter(Callback):
    def __init__(self, epoch: int):
        self.at = epoch
        self.seen: list[float] = []

    def on_epoch_end(self, epoch: int, row: Any, runtime: Any) -> None:
        self.seen.append(row["recon_error"])
        assert runtime.get_weights()["rbm_1.weight"].shape == (64, 8)
        self.stop = epoch >= self.at


def test_a_callback_may_stop_a_cd_run_and_the_run_resumes(tmp_path: Path) -> None:
    watcher = StopAfter(1)
    stopped = nnc.fit(
        nnc.parse(RBM),
        out=tmp_path / "run",
        reporter=QuietReporter(),
        tracking=Tracking(tensorboard=False, callbacks=(watcher,)),
    )
    assert stopped.stopped == "interrupted" and len(stopped.history) == 1
    assert watcher.seen == [stopped.history[0]["recon_error"]]
    resumed = nnc.fit(nnc.parse(RBM), resume=tmp_path / "run", reporter=QuietReporter())
    whole = nnc.fit(nnc.parse(RBM), save=False)
    assert [r["recon_error"] for r in resumed.history] == [r["recon_error"] for r in whole.history]


def test_data_parallel_training_refuses_a_cd_recipe(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    program = nnc.parse(RBM, "rbm.nn")
    with pytest.raises(RecipeError) as info:
        nnc.fit(program, nproc=2, save=False)
    err = info.value
    assert "trains an RBM by contrastive divergence, in one process; data-parallel" in err.message
    assert err.render().startswith("rbm.nn:7:7: error: "), err.render()
    spec = tmp_path / "rbm.nn"
    spec.write_text(RBM)
    code = main(
        ["train", str(spec), "--backend", "torch", "--nproc", "2", "--out", str(tmp_path / "run")]
    )
    out = capsys.readouterr()
    assert code != 0
    assert f"{spec}:7:7: error: recipe 'R' trains an RBM by contrastive divergence" in out.err
    assert "data-parallel training (--nproc) runs supervised and autoencoder recipes" in out.err
    assert not (tmp_path / "run").exists()
