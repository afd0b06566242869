"""Gaussian visible units (``rbm(hidden, visible = gaussian)``): the sampling and the
log partition function by hand, 10 steps on numpy, torch and tensorflow against the
float64 reference, ``nnc train`` on standardised digits, and the combinations that
are refused with line and column."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import nnc
from nnc.data.builtin import load_builtin
from nnc.data.preparation import split_indices
from nnc.data.standardize import Standardizer
from nnc.errors import RecipeError
from nnc.train.energy import (
    CdSettings,
    Uniforms,
    cd_generator,
    cd_step,
    draw_uniforms,
    free_energy,
    gaussian_log_partition,
    log_likelihood,
)
from tests.energy.test_cd_backends import backend_step

W = {
    "weight": np.array([[0.7, -0.4]]),  # one visible unit, two hidden units
    "visible_bias": np.array([0.3]),
    "hidden_bias": np.array([-0.2, 0.5]),
}


def test_log_z_is_the_integral_over_the_visible_unit() -> None:
    grid = np.linspace(-30.0, 30.0, 600_001)
    density = np.exp(-free_energy(W, grid[:, None], "gaussian"))
    numeric = float(np.log(np.sum(density) * (grid[1] - grid[0])))
    assert abs(gaussian_log_partition(W) - numeric) < 1e-9
    # and p(v) integrates to one: the log-likelihood is a density
    v = np.array([[0.3]])
    expected = -free_energy(W, v, "gaussian")[0] - numeric
    assert abs(log_likelihood(W, v, "gaussian") - expected) < 1e-9


def test_the_chain_adds_the_drawn_normal_to_the_mean() -> None:
    u = draw_uniforms(cd_generator(0), 1, 3, 1, 2, "gaussian")
    assert u.hidden.shape == (1, 3, 2) and u.visible.shape == (1, 3, 1)
    rng = cd_generator(0)
    np.testing.assert_array_equal(u.hidden, rng.random((1, 3, 2)))  # uniforms first,
    np.testing.assert_array_equal(u.visible, rng.standard_normal((1, 3, 1)))  # then normals
    v0 = np.array([[0.5], [-1.0], [2.0]])
    cd = CdSettings(k=1, lr=0.1, momentum=0.0, weight_decay=0.0)
    zero = {p: np.zeros_like(a) for p, a in W.items()}
    _, velocity, vk, error = cd_step(W, zero, v0, u, cd, visible="gaussian")
    p0 = 1 / (1 + np.exp(-(v0 @ W["weight"] + W["hidden_bias"])))
    h0 = (u.hidden[0] < p0).astype(float)
    want_v1 = h0 @ W["weight"].T + W["visible_bias"] + u.visible[0]
    np.testing.assert_allclose(vk, want_v1, rtol=0, atol=1e-15)
    assert error == pytest.approx(np.mean((v0 - (h0 @ W["weight"].T + W["visible_bias"])) ** 2))
    pk = 1 / (1 + np.exp(-(want_v1 @ W["weight"] + W["hidden_bias"])))
    np.testing.assert_allclose(velocity["weight"], 0.1 * (v0.T @ p0 - want_v1.T @ pk) / 3)
    np.testing.assert_allclose(velocity["visible_bias"], 0.1 * (v0 - want_v1).mean(axis=0))


def _ten_steps(step, dtype: type):  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(5)

    def start(a: np.ndarray) -> np.ndarray:  # float32 values on both sides
        return a.astype(np.float32).astype(dtype)

    data = start(rng.normal(0.0, 1.0, (10, 16, 12)))
    w = {
        "weight": start(rng.normal(0.0, 0.3, (12, 6))),
        "visible_bias": start(rng.normal(0.0, 0.3, 12)),
        "hidden_bias": start(rng.normal(0.0, 0.3, 6)),
    }
    velocity = {p: np.zeros_like(a) for p, a in w.items()}
    cd = CdSettings(k=2, lr=0.05, momentum=0.5, weight_decay=0.001)
    uniforms, chains = cd_generator(4), []
    for v0 in data:
        u: Uniforms = draw_uniforms(uniforms, cd.k, len(v0), 12, 6, "gaussian")
        w, velocity, vk, _ = step(w, velocity, v0, u, cd, None, visible="gaussian")
        chains.append(vk)
    return w, velocity, np.stack(chains)


@pytest.mark.parametrize("backend", ["numpy", "torch", "tensorflow"])
def test_ten_gaussian_cd_steps_match_the_float64_reference(backend: str) -> None:
    want_w, want_v, want_chains = _ten_steps(cd_step, np.float64)
    got_w, got_v, got_chains = _ten_steps(backend_step(backend), np.float32)
    assert got_chains.dtype == np.float32
    worst = max(
        float(np.max(np.abs(got[p].astype(np.float64) - want[p])))
        for got, want in ((got_w, want_w), (got_v, want_v))
        for p in want
    )
    chains = float(np.max(np.abs(got_chains - want_chains)))
    print(f"{backend} gaussian: weights/velocities {worst:.2e}, chains {chains:.2e}")
    assert worst < 2e-6 and chains < 2e-6
    assert worst > 0


GAUSSIAN = """
model G {
    input x: [64]
    rbm(8, visible = gaussian)
}

train G {
    data      digits
    optimizer cd(1, lr = 0.01, momentum = 0.5)
    epochs    3
    batch     16
    seed      1
}
"""


def test_nnc_train_fits_standardised_digits_with_gaussian_visible_units() -> None:
    result = nnc.fit(nnc.parse(GAUSSIAN), save=False)
    rows = result.history
    for r in rows:
        print({k: round(v, 4) for k, v in r.items() if k != "time"})
    assert "pseudo_log_likelihood" not in rows[0]  # binary units only
    # measured: log-likelihood -89.01 -> -84.74 nats per digit, recon 0.952 -> 0.763
    assert rows[-1]["log_likelihood"] > rows[0]["log_likelihood"] + 3.0
    assert rows[-1]["recon_error"] < 0.85 * rows[0]["recon_error"]
    # the samples are standardised per pixel: the untrained model's first error is
    # about E[v²] + ‖b + W h‖² ≈ 1 (the always-zero corner pixels count 0)
    x = np.asarray(load_builtin("digits").x, np.float64).reshape(-1, 64)
    live = float(np.mean(x.std(axis=0) > 0))
    assert rows[0]["recon_error"] < live + 0.05


DBN = """
model S {
    input x: [64]
    rbm(16, visible = gaussian)
}

model C {
    input x: [64]
    S
    dense(10)
}

train P {
    model S
    data digits
    optimizer cd
}

train C {
    data digits
    pretrain P
    loss cross_entropy
}
"""


def test_a_network_cannot_pretrain_gaussian_visible_units() -> None:
    with pytest.raises(RecipeError) as info:
        nnc.parse(DBN, "g.nn")
    err = info.value
    assert "whose first rbm has gaussian visible units" in err.message
    assert err.render().startswith("g.nn:21:5: error: "), err.render()


def test_a_stopped_gaussian_pcd_run_resumes_bitwise(tmp_path: Path) -> None:
    source = GAUSSIAN.replace("cd(1, lr = 0.01", "cd(2, lr = 0.01, persistent = true")
    whole = nnc.fit(nnc.parse(source), save=False)
    calls = iter(range(10_000))
    parts = tmp_path / "parts"
    stopped = nnc.fit(nnc.parse(source), out=parts, should_stop=lambda: next(calls) == 90)
    assert stopped.stopped == "interrupted"  # inside epoch 1 (113 batches an epoch)
    resumed = nnc.fit(nnc.parse(source), resume=parts)
    a, b = whole.runtime.get_weights(), resumed.runtime.get_weights()
    for name in a:
        np.testing.assert_array_equal(a[name], b[name])
    assert [r["log_likelihood"] for r in resumed.history] == [
        r["log_likelihood"] for r in whole.history
    ]


def test_the_run_folder_keeps_the_gaussian_standardisation(tmp_path: Path) -> None:
    """The statistics the samples were standardised with are saved, so new raw data can
    be brought to the units the rbm was trained in (a Bernoulli run saves none)."""
    source = GAUSSIAN.replace("epochs    3", "epochs    1").replace(
        "seed      1", "seed      1\n    validation 0.25"
    )
    nnc.fit(nnc.parse(source), out=tmp_path / "g")
    stats = Standardizer.load(tmp_path / "g" / "standardize.npz")
    x = np.asarray(load_builtin("digits").x, np.float64).reshape(-1, 64)
    train, _ = split_indices(len(x), 0.25, 1)
    want_mean = x[train].mean(axis=0)
    want_std = np.where(x[train].std(axis=0) == 0, 1.0, x[train].std(axis=0))
    assert stats.mean.shape == stats.std.shape == (1, 64)
    np.testing.assert_allclose(stats.mean[0], want_mean, rtol=1e-6)
    np.testing.assert_allclose(stats.std[0], want_std, rtol=1e-6)
    assert float(np.max(stats.std)) > 1.0  # pixels in 0..16: real deviations, not ones
    bernoulli = GAUSSIAN.replace(", visible = gaussian", "").replace(
        "data      digits", "data      digits, binarize = true"
    )
    nnc.fit(nnc.parse(bernoulli.replace("epochs    3", "epochs    1")), out=tmp_path / "b")
    assert not (tmp_path / "b" / "standardize.npz").exists()
