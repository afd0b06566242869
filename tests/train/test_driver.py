"""The training loop with a fake runtime: batch order, schedules, early stopping,
history, divergence, and the reporters."""

from __future__ import annotations

import io
import itertools
import json
from pathlib import Path

import numpy as np
import pytest

import nnc
from nnc.errors import BackendError, RecipeError, TrainingError
from nnc.train import epoch_seed
from nnc.train.progress import PlainReporter, QuietReporter, make_reporter
from nnc.train.recipes import select_any_recipe, select_recipe
from nnc.train.run import build_runtime
from nnc.train.tracking.events import tensorboard_available
from tests.train.fakes import FakeBackend

IRIS = """
model Soft {{
    input x: [4]
    dense(3)
}}

train Soft {{
    data        iris
    standardize true
    validation  0.2
    loss        cross_entropy
    optimizer   sgd(lr = 0.1, momentum = 0.9)
    epochs      {epochs}
    batch       16
    metrics     accuracy
    seed        3
}}
"""

LINES = """
model Line {{
    input x: [2]
    dense(1)
}}

train Line {{
    data      "ids.csv"
    {validation}
    loss      mse
    optimizer sgd(lr = 0.01)
    {schedule}
    epochs    {epochs}
    batch     {batch}
    {early}
    seed      5
}}
"""


def iris(epochs: int = 6) -> nnc.Program:
    return nnc.parse(IRIS.format(epochs=epochs))


def lines(tmp_path: Path, *, epochs: int = 3, batch: object = 4, **settings: str) -> nnc.Program:
    """A 10-sample regression whose first feature is the sample's index."""
    rows = "\n".join(f"{i},{i % 3},{0.5 * i}" for i in range(10))
    (tmp_path / "ids.csv").write_text(f"id,other,y\n{rows}\n")
    text = LINES.format(
        epochs=epochs,
        batch=batch,
        validation=settings.get("validation", ""),
        schedule=settings.get("schedule", ""),
        early=settings.get("early", ""),
    )
    return nnc.parse(text)


def fit(program: nnc.Program, tmp_path: Path, **kwargs: object):  # type: ignore[no-untyped-def]
    backend = FakeBackend(**kwargs.pop("fake", {}))  # type: ignore[arg-type]
    kwargs.setdefault("out", tmp_path / "run")
    result = nnc.fit(program, base=tmp_path, build=backend, **kwargs)
    return result, backend


# -- batch order, epochs, schedules -------------------------------------------------------


def test_batches_follow_one_seeded_permutation_per_epoch(tmp_path: Path) -> None:
    result, backend = fit(lines(tmp_path, epochs=3, batch=4), tmp_path)
    runtime = backend.last
    rng = np.random.default_rng(5)
    expected = []
    for _ in range(3):
        order = rng.permutation(10)
        expected += [order[0:4], order[4:8], order[8:10]]  # the last batch is partial
    seen = [batch[:, 0].astype(int) for batch in runtime.batches]
    assert [len(b) for b in seen] == [4, 4, 2] * 3
    assert all(np.array_equal(a, b) for a, b in zip(seen, expected, strict=True))
    assert runtime.seeds == [epoch_seed(5, e) for e in range(3)]
    assert len(result.history) == 3 and result.stopped == "completed"


def test_epoch_loss_is_the_sample_weighted_mean(tmp_path: Path) -> None:
    result, backend = fit(lines(tmp_path, epochs=2, batch=4), tmp_path)
    losses = backend.last.losses
    for epoch in range(2):
        a, b, c = losses[3 * epoch : 3 * epoch + 3]
        assert result.history[epoch]["loss"] == pytest.approx((4 * a + 4 * b + 2 * c) / 10)


@pytest.mark.parametrize(("batch", "sizes"), [("all", [10]), (1, [1] * 10), (3, [3, 3, 3, 1])])
def test_batch_sizes(tmp_path: Path, batch: object, sizes: list[int]) -> None:
    _, backend = fit(lines(tmp_path, epochs=1, batch=batch), tmp_path)
    assert [len(b) for b in backend.last.batches] == sizes


def test_batch_override_from_the_command_line(tmp_path: Path) -> None:
    _, backend = fit(lines(tmp_path, epochs=1, batch=4), tmp_path, batch=6)
    assert [len(b) for b in backend.last.batches] == [6, 4]


@pytest.mark.parametrize(
    ("schedule", "rates"),
    [
        ("schedule step(every = 2, gamma = 0.5)", [0.01, 0.01, 0.005, 0.005, 0.0025]),
        ("schedule exponential(0.9)", [0.01 * 0.9**e for e in range(5)]),
        ("", [0.01] * 5),
    ],
)
def test_schedules_set_each_epochs_rate(tmp_path: Path, schedule: str, rates: list[float]) -> None:
    result, backend = fit(lines(tmp_path, epochs=5, batch=5, schedule=schedule), tmp_path)
    assert backend.last.lrs == pytest.approx([r for r in rates for _ in range(2)])
    assert [row["lr"] for row in result.history] == pytest.approx(rates)


# -- early stopping -----------------------------------------------------------------


def with_validation_file(tmp_path: Path) -> str:
    rows = "\n".join(f"{100 + i},{i % 3},{0.5 * i}" for i in range(4))
    (tmp_path / "val.csv").write_text(f"id,other,y\n{rows}\n")
    return 'validation "val.csv"'


def test_early_stopping_waits_patience_epochs_and_restores_the_best(tmp_path: Path) -> None:
    program = lines(
        tmp_path,
        epochs=20,
        validation=with_validation_file(tmp_path),
        early="early_stopping monitor = val_loss, patience = 3",
    )
    script = (1.0, 0.5, 0.6, 0.55, 0.7, 0.1, 0.1)
    result, _ = fit(program, tmp_path, fake={"script": script})
    assert result.stopped == "stopped early"
    assert [row["val_loss"] for row in result.history] == [1.0, 0.5, 0.6, 0.55, 0.7]
    assert result.best_epoch == 2 and result.best == 0.5 and result.restored_best
    # The restored weights are those after epoch 2 of the same (deterministic) run.
    two, _ = fit(
        lines(tmp_path, epochs=2, validation=with_validation_file(tmp_path)),
        tmp_path,
        out=tmp_path / "two",
    )
    final = result.runtime.get_weights()
    for name, value in two.runtime.get_weights().items():
        assert np.array_equal(final[name], value)


def test_min_delta_counts_only_real_improvements(tmp_path: Path) -> None:
    program = lines(
        tmp_path,
        epochs=20,
        validation=with_validation_file(tmp_path),
        early="early_stopping val_loss, 3, min_delta = 0.1, restore_best = false",
    )
    result, _ = fit(program, tmp_path, fake={"script": (1.0, 0.95, 0.92, 0.9, 0.5)})
    assert len(result.history) == 4 and result.best_epoch == 1 and not result.restored_best


def test_unknown_monitor_lists_what_is_measured() -> None:
    """Found by ``nnc check`` (before any training), at the setting's line."""
    with pytest.raises(RecipeError) as err:
        nnc.parse(
            IRIS.format(epochs=2).replace("seed        3", "seed 3\n    early_stopping val_acc, 2")
        )
    assert err.value.message == (
        "early_stopping monitors 'val_acc', which this recipe does not measure. "
        "Measured: loss, accuracy, val_loss, val_accuracy"
    )
    assert err.value.hint == "did you mean 'val_accuracy'?"


def test_validation_monitor_without_validation(tmp_path: Path) -> None:
    with pytest.raises(RecipeError, match="which needs a validation set"):
        lines(tmp_path, early="early_stopping val_loss, 2")


# -- files --------------------------------------------------------------------------


def test_history_files_and_run_folder(tmp_path: Path) -> None:
    result, _ = fit(iris(4), tmp_path)
    run = tmp_path / "run"
    names = sorted(p.name for p in run.iterdir())
    events = [n for n in names if n.startswith("events.out.tfevents.")]
    assert len(events) == (1 if tensorboard_available() else 0)  # nnc.train.tracking
    assert [n for n in names if n not in events] == [
        "checkpoints",
        "confusion.csv",
        "confusion.png",
        "environment.json",
        "history.csv",
        "history.json",
        "loss.png",
        "recipe.json",
        "recipe.nn",
        "standardize.npz",
        "weights.safetensors",
    ]
    csv_lines = (run / "history.csv").read_text().splitlines()
    assert csv_lines[0] == "epoch,loss,accuracy,val_loss,val_accuracy,lr,time"
    assert len(csv_lines) == 5 and csv_lines[1].startswith("1,")
    assert json.loads((run / "history.json").read_text()) == result.history
    first = csv_lines[1].split(",")
    assert float(first[1]) == pytest.approx(result.history[0]["loss"], rel=1e-7)
    # The resolved recipe parses back to the same recipe.
    again = nnc.load(run / "recipe.nn")
    assert again.recipes["Soft"] == iris(4).recipes["Soft"]
    assert (run / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_final_figures_are_measured_after_training(tmp_path: Path) -> None:
    result, _ = fit(iris(30), tmp_path)
    # Softmax regression separates the standardised iris classes well.
    assert result.final["val_accuracy"] >= 0.9 and result.final["accuracy"] >= 0.9
    assert result.confusion is not None and result.confusion.sum() == 30
    assert np.trace(result.confusion) == round(result.final["val_accuracy"] * 30)


# -- divergence ------------------------------------------------------------------------


def test_nan_loss_stops_with_epoch_step_and_remedy(tmp_path: Path) -> None:
    with pytest.raises(TrainingError) as err:
        fit(iris(5), tmp_path, fake={"nan_at_step": 12}, checkpoint_every=1)
    run = tmp_path / "run"
    good = run / "checkpoints" / "epoch-000001.safetensors"
    assert err.value.message == (
        "the loss became nan at epoch 2, step 12 (batch 4 of 8) with learning rate 0.1: "
        "every layer's output is finite (the largest magnitude is 6.16, in 'dense_1'), so the "
        "loss computation itself went non-finite; training stopped and the last good "
        f"checkpoint is {good}"
    )
    assert err.value.hint == "lower the learning rate (try lr = 0.01) or standardise the inputs"
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["epoch-000001.safetensors"]
    assert not (run / "weights.safetensors").exists()
    assert len(json.loads((run / "history.json").read_text())) == 1


# -- recipes, backends, devices ------------------------------------------------------


def test_gan_recipes_train_but_do_not_evaluate() -> None:
    program = nnc.load("examples/gan.nn")
    assert select_any_recipe(program, None, "gan.nn").name == "DigitsGAN"
    with pytest.raises(RecipeError, match="trains a GAN, which has no targets to evaluate"):
        select_recipe(program, None, "gan.nn")


def test_several_recipes_need_a_name() -> None:
    program = nnc.parse(
        "model M {\n    input x: [2]\n    dense(1)\n}\n"
        "train A {\n    model M\n    data xor\n    loss mse\n}\n"
        "train B {\n    model M\n    data and\n    loss mse\n}\n"
    )
    with pytest.raises(
        RecipeError, match=r"has 2 train recipes \(A, B\); choose one with --recipe"
    ):
        select_recipe(program, None, "m.nn")
    assert select_recipe(program, "B").name == "B"


def test_device_goes_to_torch_only(tmp_path: Path) -> None:
    program = lines(tmp_path, epochs=1)
    weights = nnc.ir.weights.init_weights(program, "Line", 0)
    with pytest.raises(
        BackendError, match=r"the numpy backend runs on the CPU only\. Received: --device cuda"
    ):
        build_runtime(program, "Line", "numpy", weights, 0, "cuda", FakeBackend())
    backend = FakeBackend()
    build_runtime(program, "Line", "torch", weights, 0, "cuda", backend)
    build_runtime(program, "Line", "numpy", weights, 0, "cpu", backend)
    assert backend.options == [{"device": "cuda"}, {}]


# -- reporting -----------------------------------------------------------------------


def test_plain_lines_and_summary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COLUMNS", raising=False)  # a stated width would drop samples/s and ETA
    out = io.StringIO()
    fit(iris(3), tmp_path, reporter=PlainReporter(out))
    text = out.getvalue()
    lines_ = text.splitlines()
    assert lines_[0].startswith("training Soft on numpy -> ")
    assert lines_[1] == "15 parameters; 120 samples, 30 for validation"
    assert lines_[2] == "3 epochs of 8 batches (batch 16); * marks a new best val_loss"
    assert lines_[3].startswith("epoch 1/3  loss ") and "val_accuracy" in lines_[3]
    assert "samples/s" in lines_[3] and "ETA" in lines_[3]
    assert "best epoch" in text and "confusion matrix on the validation set" in text


def test_reporter_choice() -> None:
    assert type(make_reporter(quiet=True)) is QuietReporter
    assert type(make_reporter(out=io.StringIO())) is PlainReporter


def test_long_runs_print_at_most_about_fifty_epoch_lines(tmp_path: Path) -> None:
    out = io.StringIO()
    result, _ = fit(lines(tmp_path, epochs=120, batch="all"), tmp_path, reporter=PlainReporter(out))
    epoch_lines = [ln for ln in out.getvalue().splitlines() if ln.startswith("epoch ")]
    # Every third epoch (ceil(120 / 50)), and the first.
    assert [int(ln.split()[1].split("/")[0]) for ln in epoch_lines] == [1, *range(3, 121, 3)]
    assert epoch_lines[0].startswith("epoch   1/120") and epoch_lines[-1].startswith(
        "epoch 120/120"
    )
    # Long runs write about 20 checkpoints (every 120 // 20 = 6 epochs); the newest 3 stay.
    names = sorted(p.name for p in (tmp_path / "run" / "checkpoints").iterdir())
    assert names == [
        "epoch-000108.safetensors",
        "epoch-000114.safetensors",
        "epoch-000120.safetensors",
    ]
    assert len(result.history) == 120


def test_stop_request_between_epochs(tmp_path: Path) -> None:
    calls = itertools.count()
    # 8 batches per epoch: the 16th call comes after the last batch of epoch 2.
    result, _ = fit(iris(5), tmp_path, should_stop=lambda: next(calls) >= 15)
    assert result.stopped == "interrupted" and len(result.history) == 2
    assert result.checkpoint is not None and result.checkpoint.name == "epoch-000002.safetensors"


def test_without_matplotlib_the_plot_is_skipped_with_a_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("nnc.train.plot.matplotlib_available", lambda: False)
    warnings: list[str] = []
    reporter = QuietReporter()
    reporter.warn = warnings.append  # type: ignore[method-assign]
    fit(iris(2), tmp_path, reporter=reporter)
    assert warnings == [
        "matplotlib is not installed; loss.png was not drawn (pip install 'nnc[plot]')"
    ]
    assert not (tmp_path / "run" / "loss.png").exists()
    assert (tmp_path / "run" / "weights.safetensors").exists()
