"""Experiment tracking: TensorBoard event files read back with TensorBoard's own reader
(the data provider its server uses), MLflow runs read back with MLflow's client, the
callback hook, and the core staying free of the trackers."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import nnc
from nnc.ir.weights import read_weights_file
from nnc.train import RunOptions, train
from nnc.train.progress import QuietReporter
from nnc.train.tracking import Callback, Tracking
from tests.conftest import EXAMPLES, ROOT, require

IRIS = """
model Soft {
    input x: [4]
    dense(8) relu
    dense(3)
}

train Soft {
    data        iris
    standardize true
    validation  0.2
    loss        cross_entropy
    optimizer   sgd(lr = 0.1, momentum = 0.9)
    epochs      5
    batch       16
    metrics     accuracy
    seed        3
}
"""


def tensorboard_reader(folder: Path) -> tuple[Any, Any]:
    """TensorBoard's data provider over ``folder`` (what its server reads with)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from tensorboard import context
    from tensorboard.backend.event_processing import data_provider, plugin_event_multiplexer

    multiplexer = plugin_event_multiplexer.EventMultiplexer()
    multiplexer.AddRunsFromDirectory(str(folder))
    multiplexer.Reload()
    return data_provider.MultiplexerDataProvider(multiplexer, str(folder)), context.RequestContext()


def test_tensorboard_scalars_equal_history_and_the_logs_hold_histograms_graph_and_plots(
    tmp_path: Path,
) -> None:
    require("tensorboard")
    run = tmp_path / "run"
    train(
        nnc.parse(IRIS),
        options=RunOptions(out=run),
        reporter=QuietReporter(),
        tracking=Tracking(histogram_every=2),
    )
    provider, ctx = tensorboard_reader(run)
    scalars = provider.read_scalars(ctx, experiment_id="", plugin_name="scalars", downsample=1000)[
        "."
    ]
    with open(run / "history.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 5
    for column in ("loss", "accuracy", "val_loss", "val_accuracy", "lr", "time"):
        logged = scalars[column]
        assert [d.step for d in logged] == [1, 2, 3, 4, 5]
        # the same text history.csv holds (8 significant digits), for every epoch...
        assert [f"{d.value:.8g}" for d in logged] == [r[column] for r in rows]
    # ...and exactly the figures of history.json
    history = json.loads((run / "history.json").read_text())
    assert [d.value for d in scalars["val_loss"]] == [r["val_loss"] for r in history]

    histograms = provider.read_tensors(
        ctx, experiment_id="", plugin_name="histograms", downsample=1000
    )["."]
    assert set(histograms) == {
        f"{kind}/{p}"
        for kind in ("weights", "gradients")
        for p in ("dense_1.weight", "dense_1.bias", "dense_2.weight", "dense_2.bias")
    }
    weight = histograms["weights/dense_1.weight"]
    assert [d.step for d in weight] == [2, 4, 5]  # every 2 epochs, and the last
    buckets = weight[-1].numpy
    assert buckets.shape == (30, 3) and buckets[:, 2].sum() == 8 * 4
    final = read_weights_file(run / "weights.safetensors")["dense_1.weight"]
    assert buckets[0, 0] == pytest.approx(final.min()) and buckets[-1, 1] == pytest.approx(
        final.max()
    )
    assert histograms["gradients/dense_2.bias"][0].numpy[:, 2].sum() == 3

    from tensorboard.backend.event_processing import event_accumulator

    acc = event_accumulator.EventAccumulator(str(run))
    acc.Reload()
    nodes = {n.name: n for n in acc.Graph().node}
    assert list(nodes) == ["x", "dense_1", "relu_1", "dense_2", "output_1"]
    assert list(nodes["relu_1"].input) == ["dense_1"]
    assert nodes["dense_1"].attr["parameters"].s == b"weight [8, 4], bias [8]"
    shape = nodes["dense_1"].attr["_output_shapes"].list.shape[0]
    assert [d.size for d in shape.dim] == [-1, 8]

    images = provider.read_blob_sequences(
        ctx, experiment_id="", plugin_name="images", downsample=10
    )["."]
    assert sorted(images) == ["plots/confusion", "plots/loss"]  # the PNGs of the run folder
    texts = provider.read_tensors(ctx, experiment_id="", plugin_name="text", downsample=10)["."]
    recipe = texts["recipe"][0].numpy.item().decode()
    assert "\n        optimizer   sgd(lr = 0.1, momentum = 0.9, nesterov = false)\n" in recipe


def test_an_autoencoder_logs_its_reconstructions(tmp_path: Path) -> None:
    require("tensorboard")
    run = tmp_path / "run"
    program = nnc.load(EXAMPLES / "autoencoder.nn")
    train(program, options=RunOptions(epochs=2, out=run), reporter=QuietReporter())
    provider, ctx = tensorboard_reader(run)
    images = provider.read_blob_sequences(
        ctx, experiment_id="", plugin_name="images", downsample=10
    )["."]
    assert sorted(images) == ["pictures/reconstructions", "plots/loss"]
    steps = [d.step for d in images["pictures/reconstructions"]]
    assert steps == [1, 2]
    # the graph groups the called models' nodes under the call
    from tensorboard.backend.event_processing import event_accumulator

    acc = event_accumulator.EventAccumulator(str(run))
    acc.Reload()
    names = [n.name for n in acc.Graph().node]
    assert names[:3] == ["pixels", "encoder_1/dense_1", "encoder_1/relu_1"]


def test_a_gan_logs_its_samples_and_both_models(tmp_path: Path) -> None:
    require("tensorboard")
    run = tmp_path / "run"
    train(
        nnc.load(EXAMPLES / "gan.nn"),
        options=RunOptions(epochs=2, out=run),
        reporter=QuietReporter(),
    )
    provider, ctx = tensorboard_reader(run)
    scalars = provider.read_scalars(ctx, experiment_id="", plugin_name="scalars", downsample=10)
    history = json.loads((run / "history.json").read_text())
    assert [d.value for d in scalars["."]["g_loss"]] == [r["g_loss"] for r in history]
    images = provider.read_blob_sequences(
        ctx, experiment_id="", plugin_name="images", downsample=10
    )["."]
    assert [d.step for d in images["pictures/samples"]] == [1, 2]
    histograms = provider.read_tensors(
        ctx, experiment_id="", plugin_name="histograms", downsample=10
    )["."]
    assert all(tag.startswith("weights/") for tag in histograms)  # no gradients for a GAN
    assert {tag.split("/")[1] for tag in histograms} == {"generator", "discriminator"}
    from tensorboard.backend.event_processing import event_accumulator

    acc = event_accumulator.EventAccumulator(str(run))
    acc.Reload()
    scopes = {n.name.split("/")[0] for n in acc.Graph().node}
    assert scopes == {"generator", "discriminator"}


@pytest.fixture(scope="module")
def mlflow_uri(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One MLflow database for this file's runs (creating one takes seconds)."""
    require("mlflow")
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"


# MLflow's SQL store uses a loader option SQLAlchemy 2.1 deprecates (MLflow's to fix).
@pytest.mark.filterwarnings("ignore:The ``noload`` loader strategy is deprecated")
def test_mlflow_gets_the_recipe_as_parameters_figures_per_epoch_and_the_weights(
    tmp_path: Path, mlflow_uri: str
) -> None:
    uri = mlflow_uri
    run = tmp_path / "run"
    result = train(
        nnc.parse(IRIS.replace("epochs      5", "epochs      2")),
        options=RunOptions(out=run),
        reporter=QuietReporter(),
        tracking=Tracking(tensorboard=False, mlflow=True, mlflow_uri=uri),
    )
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("Soft")
    (logged,) = client.search_runs([experiment.experiment_id])
    assert logged.info.run_name == "run" and logged.info.status == "FINISHED"
    params = logged.data.params
    assert params["optimizer"] == "sgd" and params["optimizer.lr"] == "0.1"
    assert params["optimizer.momentum"] == "0.9" and params["batch"] == "16"
    assert params["metrics"] == "accuracy" and params["backend"] == "numpy"
    history = client.get_metric_history(logged.info.run_id, "val_loss")
    assert [(m.step, m.value) for m in history] == [
        (i + 1, row["val_loss"]) for i, row in enumerate(result.history)
    ]
    artifacts = {a.path for a in client.list_artifacts(logged.info.run_id)}
    assert artifacts == {
        "recipe.nn",
        "weights.safetensors",
        "loss.png",
        "confusion.png",
        "confusion.csv",
    }
    local = client.download_artifacts(logged.info.run_id, "weights.safetensors", str(tmp_path))
    assert np.array_equal(
        read_weights_file(local)["dense_1.weight"],
        read_weights_file(run / "weights.safetensors")["dense_1.weight"],
    )


CD_RBM = """
model R {
    input x: [64]
    rbm(8)
}

train R {
    data      digits, binarize = true
    optimizer cd(1, lr = 0.2)
    epochs    3
    batch     64
}
"""


@pytest.mark.filterwarnings("ignore:The ``noload`` loader strategy is deprecated")
def test_mlflow_gets_a_cd_recipe_and_its_figures(tmp_path: Path, mlflow_uri: str) -> None:
    uri = mlflow_uri
    result = nnc.fit(
        nnc.parse(CD_RBM),
        out=tmp_path / "run",
        reporter=QuietReporter(),
        tracking=Tracking(tensorboard=False, mlflow=True, mlflow_uri=uri),
    )
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=uri)
    (logged,) = client.search_runs([client.get_experiment_by_name("R").experiment_id])
    assert logged.info.status == "FINISHED"
    params = logged.data.params
    assert params["optimizer"] == "cd" and params["optimizer.k"] == "1"
    assert params["optimizer.lr"] == "0.2" and params["backend"] == "numpy"
    history = client.get_metric_history(logged.info.run_id, "recon_error")
    assert [(m.step, m.value) for m in history] == [
        (i + 1, row["recon_error"]) for i, row in enumerate(result.history)
    ]
    artifacts = {a.path for a in client.list_artifacts(logged.info.run_id)}
    assert {"recipe.nn", "weights.safetensors"} <= artifacts


class StopAt(Callback):
    def __init__(self, epoch: int):
        self.at = epoch
        self.seen: list[tuple[int, float]] = []
        self.ended: list[object] = []

    def on_epoch_end(self, epoch: int, row: Any, runtime: Any) -> None:
        self.seen.append((epoch, row["val_loss"]))
        self.stop = epoch >= self.at

    def on_train_end(self, result: Any) -> None:
        self.ended.append(result)


def test_a_callback_sees_every_row_and_may_stop_the_run(tmp_path: Path) -> None:
    watcher = StopAt(2)
    result = train(
        nnc.parse(IRIS),
        options=RunOptions(out=tmp_path / "run"),
        reporter=QuietReporter(),
        tracking=Tracking(tensorboard=False, callbacks=(watcher,)),
    )
    assert result.stopped == "interrupted" and len(result.history) == 2
    assert watcher.seen == [(r["epoch"], r["val_loss"]) for r in result.history]
    assert watcher.ended == [result]
    # the stopped run can be resumed: its checkpoint is the second epoch's
    assert result.checkpoint is not None and result.checkpoint.name.endswith("000002.safetensors")


def test_the_core_never_imports_the_trackers_or_the_study_engine() -> None:
    code = (
        "import sys, nnc, nnc.cli.main\n"
        "from nnc.dsl.space import load_space\n"
        "load_space('examples/digits_mlp_search.nn')\n"
        "nnc.cli.main.build_parser()\n"
        "print(sorted(m for m in ('optuna', 'tensorboard', 'mlflow', 'sqlalchemy', 'torch',"
        " 'tensorflow') if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"
