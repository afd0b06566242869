"""Contrastive divergence (nnc.train.energy): one step worked by hand, the uniforms'
order, and CD-1 learning the binarised digits."""

from __future__ import annotations

import numpy as np
import pytest

from nnc.data.builtin import load_builtin
from nnc.train.energy import CdSettings, Uniforms, cd_generator, cd_step, draw_uniforms, train_rbm


def test_one_cd1_step_worked_by_hand() -> None:
    # W = 0, b = c = 0: every probability is 1/2. U_h = 0 < 1/2 samples h0 = 1;
    # U_v = (0.9, 0.1) against 1/2 samples v1 = (0, 1); p0 = pk = 1/2.
    # g_W = v0ᵀp0 - v1ᵀpk = (0.5, -0.5)ᵀ, g_b = v0 - v1 = (1, -1), g_c = 0;
    # momentum 0, lr 0.1: W = (0.05, -0.05)ᵀ, b = (0.1, -0.1); error mean((v0 - 1/2)²).
    w = {"weight": np.zeros((2, 1)), "visible_bias": np.zeros(2), "hidden_bias": np.zeros(1)}
    velocity = {n: np.zeros_like(a) for n, a in w.items()}
    u = Uniforms(hidden=np.zeros((1, 1, 1)), visible=np.array([[[0.9, 0.1]]]))
    cd = CdSettings(k=1, lr=0.1, momentum=0.0, weight_decay=0.0)
    new, _, vk, error = cd_step(w, velocity, np.array([[1.0, 0.0]]), u, cd)
    np.testing.assert_allclose(new["weight"], [[0.05], [-0.05]])
    np.testing.assert_allclose(new["visible_bias"], [0.1, -0.1])
    np.testing.assert_allclose(new["hidden_bias"], [0.0])
    np.testing.assert_array_equal(vk, [[0.0, 1.0]])
    assert error == 0.25


def test_uniforms_are_drawn_hidden_then_visible_from_the_cd_generator() -> None:
    u = draw_uniforms(cd_generator(3), 2, 4, 5, 6)
    rng = np.random.default_rng([3, 1171689434])  # crc32(b"cd")
    np.testing.assert_array_equal(u.hidden, rng.random((2, 4, 6)))
    np.testing.assert_array_equal(u.visible, rng.random((2, 4, 5)))


def test_cd_needs_a_gibbs_step() -> None:
    with pytest.raises(ValueError, match="k must be at least 1"):
        CdSettings(k=0)


def test_cd1_on_binarised_digits_lowers_the_reconstruction_error() -> None:
    s = load_builtin("digits")
    x = (np.asarray(s.x, dtype=np.float64).reshape(len(s.x), -1) / 16.0 > 0.5).astype(float)
    rng = np.random.default_rng(0)
    w = {
        "weight": rng.normal(0.0, 0.01, (64, 64)),
        "visible_bias": np.zeros(64),
        "hidden_bias": np.zeros(64),
    }
    _, errors = train_rbm(w, x, CdSettings(k=1, lr=0.5, momentum=0.5), epochs=3, batch=32, seed=0)
    # 0.1275, 0.0899, 0.0749 (20 epochs reach 0.0409, 3.1 times below epoch 1)
    assert errors[2] < 0.62 * errors[0]
