"""``nnc train`` of a contrastive divergence recipe: the driver follows the reference
loop of nnc.train.energy bit for bit, a stopped and resumed run is bitwise the
uninterrupted one, a stack trains greedily, and the likelihoods are the enumerated ones."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest

import nnc
from nnc.data.builtin import load_builtin
from nnc.errors import NncError
from nnc.ir.weights import init_weights, read_weights_file
from nnc.train import RunOptions, train
from nnc.train.checkpoint import list_checkpoints, read_checkpoint
from nnc.train.energy import (
    CdSettings,
    log_likelihood,
    log_partition,
    pseudo_log_likelihood,
    train_rbm,
)
from tests.conftest import require


def spec(hidden: str = "rbm(8)", cd: str = "cd(1, lr = 0.2)", epochs: int = 3) -> str:
    return (
        f"model R {{\n    input x: [64]\n    {hidden}\n}}\n"
        f"train R {{\n    data digits, binarize = true\n    optimizer {cd}\n"
        f"    epochs {epochs}\n    batch 64\n    seed 3\n}}\n"
    )


def binarised_digits() -> np.ndarray:
    s = load_builtin("digits")
    return (np.asarray(s.x).reshape(len(s.x), -1) > 8).astype(np.float32)


def rbm_weights(weights: dict[str, np.ndarray], layer: str = "rbm_1") -> dict[str, np.ndarray]:
    return {p: weights[f"{layer}.{p}"] for p in ("weight", "visible_bias", "hidden_bias")}


@pytest.mark.parametrize("persistent", [False, True])
def test_the_driver_is_the_reference_loop(persistent: bool) -> None:
    cd = f"cd(2, lr = 0.2, persistent = {str(persistent).lower()})"
    program = nnc.parse(spec(cd=cd))
    result = train(program, options=RunOptions(save=False))
    w0 = rbm_weights(init_weights(program, "R", seed=3))
    settings = CdSettings(k=2, lr=0.2, persistent=persistent)
    expected, errors = train_rbm(w0, binarised_digits(), settings, epochs=3, batch=64, seed=3)
    got = rbm_weights(result.runtime.get_weights())
    for name in expected:
        np.testing.assert_array_equal(got[name], expected[name])  # bitwise
    assert [row["recon_error"] for row in result.history] == pytest.approx(errors, abs=1e-7)
    assert "log_likelihood" in result.history[0]  # 8 hidden units: enumerated
    hidden = result.runtime.forward(binarised_digits()[:2])
    assert hidden.shape == (2, 8) and np.all((hidden > 0) & (hidden < 1))


def _figures(run: Path) -> list[tuple[float, float]]:
    rows = json.loads((run / "history.json").read_text())
    return [(r["recon_error"], r["log_likelihood"]) for r in rows]


def test_a_stopped_and_resumed_run_is_bitwise_the_uninterrupted_one(tmp_path: Path) -> None:
    program = nnc.parse(spec(cd="cd(1, lr = 0.2, persistent = true)", epochs=4))
    train(program, options=RunOptions(out=tmp_path / "whole"))
    # stopped inside epoch 2 (after batch 40 of 29 per epoch), then killed after epoch 2
    calls = iter(range(1000))
    stopped = train(
        program, options=RunOptions(out=tmp_path / "parts"), should_stop=lambda: next(calls) == 40
    )
    assert stopped.stopped == "interrupted"
    saved = read_checkpoint(list_checkpoints(tmp_path / "parts" / "checkpoints")[-1])
    assert (saved.state.epoch, saved.state.batch) == (1, 12)
    assert sorted(saved.optimizer) == [
        "rbm_1.chain",
        "rbm_1.hidden_bias.velocity",
        "rbm_1.visible_bias.velocity",
        "rbm_1.weight.velocity",
    ]
    assert saved.optimizer["rbm_1.chain"].shape == (64, 64)
    assert saved.state.noise_state["bit_generator"] == "PCG64"  # the uniforms' generator
    # on to the end of epoch 2
    train(program, options=RunOptions(resume=tmp_path / "parts", epochs=2))
    resumed = train(program, options=RunOptions(resume=tmp_path / "parts"))  # and to epoch 4
    a = read_weights_file(tmp_path / "whole" / "weights.safetensors")
    b = read_weights_file(tmp_path / "parts" / "weights.safetensors")
    for name in a:
        np.testing.assert_array_equal(a[name], b[name])
    assert _figures(tmp_path / "whole") == _figures(tmp_path / "parts")
    assert resumed.history[-1]["epoch"] == 4
    for picture in ("filters.png", "samples.png", "loss.png"):
        assert (tmp_path / "whole" / picture).stat().st_size > 1000


def test_a_stack_pretrains_greedily_layer_by_layer() -> None:
    program = nnc.parse(spec(hidden="rbm(16)\n    rbm(8)", epochs=2))
    initial = init_weights(program, "R", seed=3)
    result = train(program, options=RunOptions(save=False))
    assert [(r["epoch"], r["layer"]) for r in result.history] == [(1, 1), (2, 1), (3, 2), (4, 2)]
    assert "pseudo_log_likelihood" in result.history[0]  # 16 units: pseudo
    assert "log_likelihood" in result.history[2]  # 8 hidden units: enumerated
    got = result.runtime.get_weights()
    expected, _ = train_rbm(
        rbm_weights(initial), binarised_digits(), CdSettings(k=1, lr=0.2), 2, 64, 3
    )
    np.testing.assert_array_equal(got["rbm_1.weight"], expected["weight"])  # unchanged later
    moved = np.abs(got["rbm_2.weight"] - initial["rbm_2.weight"]).max()
    assert moved > 0.01
    assert result.history[3]["recon_error"] < result.history[2]["recon_error"]


@pytest.mark.parametrize("backend", ["torch", "tensorflow"])
def test_the_driver_trains_alike_on_torch_and_tensorflow(backend: str) -> None:
    require(backend)
    program = nnc.parse(spec(cd="cd(2, lr = 0.2)", epochs=1))
    want = train(program, options=RunOptions(save=False))
    got = train(program, options=RunOptions(backend=backend, save=False))
    a, b = want.runtime.get_weights(), got.runtime.get_weights()
    worst = max(float(np.max(np.abs(a[k] - b[k]))) for k in a)
    assert worst < 1e-5, worst  # the same samples all along: float32 rounding only
    assert got.history[0]["recon_error"] == pytest.approx(want.history[0]["recon_error"], 1e-5)


def test_cd_refuses_a_device_its_backend_cannot_use() -> None:
    with pytest.raises(NncError, match="the numpy backend runs on the CPU only"):
        train(nnc.parse(spec()), options=RunOptions(device="cuda", save=False))


def _joint(w: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Every visible state and its unnormalised log-probability, by summing the joint
    exp(v·b + h·c + v W h) over every hidden state."""
    f, h = w["weight"].shape
    vs = np.array(list(itertools.product([0.0, 1.0], repeat=f)))
    hs = np.array(list(itertools.product([0.0, 1.0], repeat=h)))
    energy = (
        (vs @ w["visible_bias"])[:, None]
        + (hs @ w["hidden_bias"])[None, :]
        + vs @ w["weight"] @ hs.T
    )
    return vs, np.log(np.exp(energy).sum(axis=1))


@pytest.mark.parametrize("shape", [(3, 2), (2, 4)])  # enumerating hidden, then visible
def test_the_likelihoods_are_those_of_the_joint_distribution(shape: tuple[int, int]) -> None:
    rng = np.random.default_rng(5)
    w = {
        "weight": rng.normal(0, 1.0, shape),
        "visible_bias": rng.normal(0, 1.0, shape[0]),
        "hidden_bias": rng.normal(0, 1.0, shape[1]),
    }
    vs, log_p = _joint(w)
    log_z = np.log(np.exp(log_p).sum())
    assert abs(log_partition(w) - log_z) < 1e-12
    rows = vs[[0, 3, 3, 1]]
    want = np.mean([log_p[int(np.flatnonzero((vs == r).all(axis=1))[0])] for r in rows]) - log_z
    assert abs(log_likelihood(w, rows) - want) < 1e-12
    # pseudo-likelihood: Σ_i log p(v) / (p(v) + p(v with unit i flipped))
    index = {tuple(v): k for k, v in enumerate(vs)}
    pl = []
    for r in rows:
        total = 0.0
        for i in range(shape[0]):
            flipped = r.copy()
            flipped[i] = 1 - flipped[i]
            a, b = log_p[index[tuple(r)]], log_p[index[tuple(flipped)]]
            total += a - np.logaddexp(a, b)
        pl.append(total)
    assert abs(pseudo_log_likelihood(w, rows) - np.mean(pl)) < 1e-12


DBN = """
model S {
    input x: [64]
    rbm(16)
    rbm(8)
}

model D {
    input x: [64]
    S
    dense(10)
}

train P {
    model S
    data digits, binarize = true
    validation 0.2
    optimizer cd(1, lr = 0.1, persistent = true)
    epochs 2
    batch 64
}

train D {
    data digits, binarize = true
    validation 0.2
    pretrain P
    loss cross_entropy
    optimizer sgd(lr = 0.1, momentum = 0.9)
    epochs 2
    batch 64
}
"""


def test_a_deep_belief_network_resumes_across_its_two_phases(tmp_path: Path) -> None:
    program = nnc.parse(DBN)
    whole = train(program, options=RunOptions(out=tmp_path / "whole"))
    stack = read_weights_file(tmp_path / "whole" / "pretrain" / "weights.safetensors")
    assert sorted(stack) == [f"rbm_{i}.{p}" for i in (1, 2) for p in sorted(RBM)]
    start = init_weights(program, "D", seed=0)
    assert not np.array_equal(start["s_1.rbm_1.weight"], stack["rbm_1.weight"])
    # the pretraining held out the digits the fine-tuning validates on, and measured them
    pre = json.loads((tmp_path / "whole" / "pretrain" / "history.json").read_text())
    assert [r["layer"] for r in pre] == [1, 1, 2, 2] and "val_log_likelihood" in pre[-1]
    calls = iter(range(10_000))
    stopped = train(
        program, options=RunOptions(out=tmp_path / "parts"), should_stop=lambda: next(calls) == 30
    )
    assert stopped.stopped == "interrupted" and stopped.run_dir == tmp_path / "parts"
    assert not (tmp_path / "parts" / "checkpoints").exists()  # stopped in the pretraining
    resumed = train(program, options=RunOptions(resume=tmp_path / "parts"))
    assert resumed.stopped == "completed"
    a = read_weights_file(tmp_path / "whole" / "weights.safetensors")
    b = read_weights_file(tmp_path / "parts" / "weights.safetensors")
    for name in a:
        np.testing.assert_array_equal(a[name], b[name])
    assert whole.history == [
        {**row, "time": whole.history[i]["time"]} for i, row in enumerate(resumed.history)
    ]


RBM = {"weight": 0, "visible_bias": 0, "hidden_bias": 0}


def test_data_parallel_training_refuses_a_recipe_that_pretrains() -> None:
    from nnc.errors import RecipeError
    from nnc.train.run import resolve_run

    program = nnc.parse(DBN, "dbn.nn")
    with pytest.raises(RecipeError) as info:
        resolve_run(program, "D", parallel=True)
    assert "data-parallel training (--nproc) does not run that phase" in info.value.message
    assert info.value.span is not None and info.value.span.line == 26  # pretrain P
