"""nnc search: a space run on a real Optuna study (SQLite), its table, best.nn that
retrains to the best trial's figure, resuming, two processes sharing one study,
pruning and failed trials."""

from __future__ import annotations

import csv
import signal
import subprocess
import time
from pathlib import Path

import pytest

from nnc.dsl import load, parse
from nnc.search import SearchOptions, run_search
from nnc.search.study import best_figure
from nnc.train import RunOptions, train
from tests.conftest import nnc_argv, nnc_env, require, run_nnc

SPACE = """\
model Small {
    input x: [64]
    dense(choice(8, 16)) relu   # the width is searched
    dense(10)
}

train Small {
    data       digits, scale = unit
    validation 0.2
    loss       cross_entropy
    optimizer  %s
    epochs     %d
    batch      64
    metrics    accuracy
    seed       1
}
"""


@pytest.fixture(autouse=True)
def _optuna() -> None:
    require("optuna")


def space(
    tmp_path: Path, lr: str = "loguniform(1e-3, 3e-2)", epochs: int = 3, sgd: bool = False
) -> Path:
    path = tmp_path / "small.nn"
    optimizer = f"{'sgd' if sgd else 'adam'}(lr = {lr})"
    path.write_text(SPACE % (optimizer, epochs), encoding="utf-8")
    return path


def test_search_writes_the_table_and_a_best_nn_that_retrains_to_the_best_figure(
    tmp_path: Path,
) -> None:
    out = tmp_path / "s"
    result = run_search(
        space(tmp_path), SearchOptions(trials=4, out=out, seed=0, pruner="none", tensorboard=False)
    )
    assert [r.number for r in result.rows] == [0, 1, 2, 3]
    assert [r.state for r in result.rows] == ["COMPLETE"] * 4
    assert result.objective == "val_loss" and not result.maximize
    assert result.best is not None
    assert result.best.objective == min(r.objective for r in result.rows if r.objective)
    for r in result.rows:
        folder = out / f"trial-{r.number:04d}"
        trial = load(folder / "trial.nn")  # a plain file: no distribution left
        model = trial.models["Small"]
        assert model.nodes[0].units == r.values["dense_1.units"]  # type: ignore[attr-defined]
        with (folder / "history.csv").open() as f:
            rows = list(csv.DictReader(f))
        assert len(rows) == r.epochs == 3
        assert float(min(rows, key=lambda row: float(row["val_loss"]))["val_loss"]) == (
            pytest.approx(r.objective, rel=1e-6)
        )
    with (out / "results.csv").open() as f:
        table = list(csv.reader(f))
    assert table[0][:5] == ["trial", "state", "dense_1.units", "optimizer.lr", "objective"]
    assert len(table) == 5
    assert {"best.nn", "objective.png", "importance.png", "study.db"} <= {
        p.name for p in out.iterdir()
    }
    # best.nn trains, on its own, to exactly the figure of the best trial.
    best = load(out / "best.nn")
    again = train(best, options=RunOptions(backend="numpy", save=False))
    assert best_figure(again.history, "val_loss") == result.best.objective


def test_an_interrupted_search_resumes_without_rerunning_finished_trials(tmp_path: Path) -> None:
    path = space(tmp_path, epochs=1)
    out = tmp_path / "s"
    options = SearchOptions(trials=2, out=out, seed=0, pruner="none", tensorboard=False)
    first = run_search(path, options)
    assert len(first.rows) == 2
    # The same --trials again: the study is complete, nothing is trained.
    again = run_search(path, options)
    assert [(r.number, r.objective) for r in again.rows] == [
        (r.number, r.objective) for r in first.rows
    ]
    assert not (out / "trial-0002").exists()
    more = run_search(path, SearchOptions(trials=3, out=out, pruner="none", tensorboard=False))
    assert [r.number for r in more.rows] == [0, 1, 2]
    assert more.rows[:2] == first.rows


def test_two_processes_share_one_sqlite_study_without_duplicates_or_lost_trials(
    tmp_path: Path,
) -> None:
    path = space(tmp_path, epochs=2)
    out = tmp_path / "s"
    args = ["search", str(path), "--trials", "10", "--out", str(out), "--no-tensorboard", "-q"]
    workers = [
        subprocess.Popen(nnc_argv(*args), env=nnc_env(), stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    for w in workers:
        _, err = w.communicate(timeout=240)
        assert w.returncode == 0, err
    import optuna

    study = optuna.load_study(study_name="small", storage=f"sqlite:///{out / 'study.db'}")
    # Both may ask for the last trial at once: the later one is marked surplus and
    # not trained (and left out of the table).
    every = study.get_trials()
    trials = [t for t in every if not t.user_attrs.get("surplus")]
    assert sorted(t.number for t in trials) == list(range(10))
    assert all(t.state.name in ("COMPLETE", "PRUNED") for t in trials)
    assert all(t.number >= 10 for t in every if t.user_attrs.get("surplus"))
    folders = sorted(p.name for p in out.glob("trial-*"))
    assert folders == [f"trial-{n:04d}" for n in range(10)]
    for folder in out.glob("trial-*"):
        with (folder / "history.csv").open() as f:
            assert len(list(csv.DictReader(f))) == 2
    assert len({t.user_attrs["process"] for t in trials}) == 2  # both processes trained


def test_a_process_killed_mid_trial_loses_only_that_trial_which_is_marked_failed(
    tmp_path: Path,
) -> None:
    path = space(tmp_path, epochs=1)
    out = tmp_path / "s"
    args = ["search", str(path), "--trials", "3", "--out", str(out), "--no-tensorboard", "-q"]
    args += ["--pruner", "none", "--stale-after", "2"]
    first = subprocess.Popen(nnc_argv(*args, "--epochs", "10000"), env=nnc_env())
    history = out / "trial-0000" / "history.csv"
    deadline = time.monotonic() + 120
    while not history.exists() and time.monotonic() < deadline:  # mid-training
        time.sleep(0.1)
    assert history.exists() and first.poll() is None
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=30)
    time.sleep(3)  # past --stale-after: its heartbeat has stopped
    second = run_nnc(*args, timeout=240)
    assert second.returncode == 0, second.stderr
    import optuna

    study = optuna.load_study(study_name="small", storage=f"sqlite:///{out / 'study.db'}")
    states = [(t.number, t.state.name) for t in study.get_trials()]
    assert states == [(0, "FAIL"), (1, "COMPLETE"), (2, "COMPLETE")]
    assert not (
        out / "trial-0000" / "weights.safetensors"
    ).exists()  # the killed run never finished
    with (out / "results.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [r["state"] for r in rows] == ["FAIL", "COMPLETE", "COMPLETE"]
    assert "stopped mid-trial" in rows[0]["message"]


def test_pruning_stops_clearly_bad_trials_after_fewer_epochs(tmp_path: Path) -> None:
    # lr 1e-5 barely moves from the start in 8 epochs; 0.02 converges. The sampler's
    # seed 4 draws 0.02 for trials 0-2 (the pruner's startup) and 1e-5 for 3-5.
    path = space(tmp_path, lr="choice(0.02, 0.00001)", epochs=8)
    options = SearchOptions(
        trials=6, out=tmp_path / "s", seed=4, startup_trials=3, warmup_epochs=2, tensorboard=False
    )
    result = run_search(path, options)
    lrs = [r.values["optimizer.lr"] for r in result.rows]
    assert lrs == [0.02] * 3 + [0.00001] * 3
    assert [(r.state, r.epochs) for r in result.rows] == [("COMPLETE", 8)] * 3 + [("PRUNED", 2)] * 3
    assert all(r.message == "pruned after epoch 2" for r in result.rows[3:])


def test_a_diverging_trial_is_failed_with_its_message_and_the_study_goes_on(
    tmp_path: Path,
) -> None:
    path = space(tmp_path, lr="choice(0.1, 1e30)", epochs=2, sgd=True)  # 1e30 overflows
    result = run_search(
        path, SearchOptions(trials=6, out=tmp_path / "s", seed=0, pruner="none", tensorboard=False)
    )
    failed = [r for r in result.rows if r.state == "FAIL"]
    assert failed and all(r.values["optimizer.lr"] == 1e30 for r in failed)
    # The loss turns NaN, or explodes (finite, past 1e6 times the first step's) first.
    starts = ("the loss became nan at epoch 1", "the loss exploded to ")
    assert all(r.message.startswith(starts) for r in failed), failed
    assert all("at epoch 1, step 2" in r.message for r in failed), failed
    assert len(result.rows) == 6
    assert result.best is not None and result.best.values["optimizer.lr"] == 0.1


def test_nnc_search_prints_the_table_and_the_best_trial(tmp_path: Path) -> None:
    path = space(tmp_path, epochs=1)
    out = tmp_path / "s"
    done = run_nnc("search", str(path), "--trials", "2", "--out", str(out), "--seed", "0")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split() == [
        "trial", "state", "dense_1.units", "optimizer.lr", "objective", "epochs", "seconds",
        "message",
    ]  # fmt: skip
    assert lines[1].split()[:2] == ["0", "COMPLETE"]
    assert "2 trials: 2 complete, 0 pruned, 0 failed" in done.stdout
    assert f"recipe in {out / 'best.nn'}" in done.stdout
    assert parse((out / "best.nn").read_text()).recipes["Small"].epochs == 1
