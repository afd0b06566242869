"""CD steps on numpy, torch and tensorflow (float32) against the float64 NumPy
reference: 10 steps on the same uniforms sample the same chains and end on the same
weights, velocities and reconstruction errors within float32 rounding."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from nnc.train.energy import Arrays, CdSettings, cd_generator, cd_step, draw_uniforms
from tests.conftest import require

TOLERANCE = 2e-6  # max |float32 - float64| over weights and velocities after 10 steps


def backend_step(name: str) -> Callable[..., tuple[Arrays, Arrays, np.ndarray, float]]:
    if name == "numpy":
        return cd_step
    require(name)
    if name == "torch":
        from nnc.backends.torch.energy import cd_step as torch_step

        return torch_step
    from nnc.backends.tensorflow.energy import cd_step as tf_step

    return tf_step


def run(step: Callable[..., tuple[Arrays, Arrays, np.ndarray, float]], dtype: type, pcd: bool):
    rng = np.random.default_rng(11)
    data = (rng.random((10, 16, 12)) < 0.4).astype(dtype)  # 10 batches [16, 12]
    w = {
        "weight": rng.normal(0.0, 0.5, (12, 6)).astype(dtype),
        "visible_bias": rng.normal(0.0, 0.5, 12).astype(dtype),
        "hidden_bias": rng.normal(0.0, 0.5, 6).astype(dtype),
    }
    velocity = {p: np.zeros_like(a) for p, a in w.items()}
    cd = CdSettings(k=2, lr=0.1, momentum=0.5, weight_decay=0.001, persistent=pcd)
    uniforms = cd_generator(4)
    chain = data[0].copy() if pcd else None
    chains, errors = [], []
    for v0 in data:
        u = draw_uniforms(uniforms, cd.k, len(v0), 12, 6)
        w, velocity, vk, error = step(w, velocity, v0, u, cd, chain)
        chain = vk if pcd else None
        chains.append(vk)
        errors.append(error)
    return w, velocity, np.stack(chains), np.array(errors)


@pytest.mark.parametrize("pcd", [False, True], ids=["cd", "pcd"])
@pytest.mark.parametrize("backend", ["numpy", "torch", "tensorflow"])
def test_ten_cd_steps_match_the_float64_reference(backend: str, pcd: bool) -> None:
    want_w, want_v, want_chains, want_errors = run(cd_step, np.float64, pcd)
    got_w, got_v, got_chains, got_errors = run(backend_step(backend), np.float32, pcd)
    np.testing.assert_array_equal(got_chains, want_chains)  # every sample the same
    worst = max(
        float(np.max(np.abs(got[p].astype(np.float64) - want[p])))
        for got, want in ((got_w, want_w), (got_v, want_v))
        for p in want
    )
    print(f"{backend} {'pcd' if pcd else 'cd'}: max deviation {worst:.2e}")
    assert worst < TOLERANCE
    assert float(np.max(np.abs(got_errors - want_errors))) < TOLERANCE
    assert float(np.max(np.abs(got_w["weight"] - want_w["weight"]))) > 0  # float32 is not float64
