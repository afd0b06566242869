"""The NumPy backend's GAN runtime, nnc's float64 reference for GAN training: each
step's update is minus the learning rate times the gradient of docs/semantics.md's
loss (checked against finite differences), it moves one model only, and the
generated module stands alone (its noise and its ``fit`` are nnc train's)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import nnc
from nnc.backends import numpy as backend
from nnc.backends.codegen import load_module
from nnc.data.preparation import prepare_gan
from nnc.errors import WeightsError
from nnc.ir.training import Noise
from nnc.ir.weights import init_gan_weights
from nnc.train import RunOptions, train
from nnc.train.gan import draw_noise, noise_generator
from tests.conftest import ROOT

SPEC = """model G {{
    input z: [3]
    dense(4) tanh
    dense(5)
}}

model D {{
    input x: [5]
    dense(4) {hidden}
    dense(1){squash}
}}

train Gan {{
    generator     G
    discriminator D
    data          "unused.csv"
    noise         uniform, 3
    loss          {loss}
    optimizer     sgd(lr = 0.1)
    batch         6
}}
"""
LR = 0.1


def program(loss: str, logits: bool, hidden: str = "tanh") -> nnc.Program:
    squash = "" if logits else " sigmoid"
    return nnc.parse(SPEC.format(loss=loss, squash=squash, hidden=hidden), "gan.nn")


def bce(p: np.ndarray, target: float) -> float:
    """Binary cross-entropy of probabilities, mean over the batch (float64)."""
    return float(-np.mean(target * np.log(p) + (1 - target) * np.log(1 - p)))


def probability(scores: np.ndarray, logits: bool) -> np.ndarray:
    return 1 / (1 + np.exp(-scores)) if logits else scores


def numeric_gradient(loss, weights: dict[str, np.ndarray], role: str) -> dict[str, np.ndarray]:  # type: ignore[no-untyped-def]
    """Central differences of ``loss(weights)`` for every tensor of one role."""
    grads = {}
    for name, value in weights.items():
        if not name.startswith(role):
            continue
        g = np.zeros_like(value)
        for i in np.ndindex(value.shape):
            for sign in (1, -1):
                w = {k: v.copy() for k, v in weights.items()}
                w[name][i] += sign * 1e-6
                g[i] += sign * loss(w) / 2e-6
        grads[name] = g
    return grads


@pytest.mark.parametrize("logits", [True, False], ids=["logits", "probabilities"])
@pytest.mark.parametrize("loss", ["non_saturating", "minimax"])
def test_steps_descend_the_gradient_of_the_documented_losses(loss: str, logits: bool) -> None:
    p = program(loss, logits)
    recipe = p.recipes["Gan"]
    runtime = backend.build_gan(p, dtype="float64")
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (6, 5))
    z_d, z_g = rng.uniform(-1, 1, (6, 3)), rng.uniform(-1, 1, (6, 3))
    start = runtime.get_weights()

    def scores(w: dict[str, np.ndarray], samples: np.ndarray) -> np.ndarray:
        runtime.set_weights(w)
        return probability(runtime.discriminate(samples, training=True), logits)

    def d_loss(w: dict[str, np.ndarray]) -> float:
        runtime.set_weights(w)
        fake = runtime.generate(z_d, training=True)
        return bce(scores(w, x), 1.0) + bce(scores(w, fake), 0.0)

    def g_loss(w: dict[str, np.ndarray]) -> float:
        runtime.set_weights(w)
        p_fake = scores(w, runtime.generate(z_g, training=True))
        return float(np.mean(np.log(1 - p_fake))) if loss == "minimax" else bce(p_fake, 1.0)

    d_grads = numeric_gradient(d_loss, start, "discriminator/")
    runtime.set_weights(start)
    d = runtime.discriminator_step(x, z_d, LR)
    after_d = runtime.get_weights()
    assert d["d_loss"] == pytest.approx(d_loss(start), rel=1e-12)
    assert d["d_real"] == pytest.approx(float(np.mean(scores(start, x))), rel=1e-12)
    for name, value in start.items():
        if name.startswith("generator/"):
            np.testing.assert_array_equal(after_d[name], value)  # G does not move
        else:
            np.testing.assert_allclose((value - after_d[name]) / LR, d_grads[name], atol=1e-7)

    g_grads = numeric_gradient(g_loss, after_d, "generator/")
    runtime.set_weights(after_d)
    g = runtime.generator_step(z_g, LR)
    after_g = runtime.get_weights()
    assert g["g_loss"] == pytest.approx(g_loss(after_d), rel=1e-12)
    assert (g["g_loss"] < 0) == (loss == "minimax")  # mean log(1 - D) is negative
    for name, value in after_d.items():
        if name.startswith("discriminator/"):
            np.testing.assert_array_equal(after_g[name], value)  # D does not move
        else:
            np.testing.assert_allclose((value - after_g[name]) / LR, g_grads[name], atol=1e-7)
    state = runtime.get_optimizer_state()
    assert state["generator/step"] == 1 and state["discriminator/step"] == 1
    assert recipe.from_logits is logits


def test_batchnorm_statistics_move_only_in_their_models_step() -> None:
    p = program("non_saturating", True, hidden="batchnorm tanh")
    runtime = backend.build_gan(p)
    rng = np.random.default_rng(1)
    x, z = rng.uniform(-1, 1, (6, 5)).astype(np.float32), rng.uniform(-1, 1, (6, 3))
    key = "discriminator/batchnorm_1.running_var"
    before = runtime.get_weights()[key]
    runtime.generator_step(z, LR)
    np.testing.assert_array_equal(runtime.get_weights()[key], before)
    runtime.discriminator_step(x, z, LR)
    assert not np.array_equal(runtime.get_weights()[key], before)


def test_weights_carry_their_role() -> None:
    p = program("non_saturating", True)
    recipe = p.recipes["Gan"]
    runtime = backend.build_gan(p)
    assert sorted(runtime.get_weights()) == sorted(init_gan_weights(p, recipe))
    assert "generator/dense_1.weight" in runtime.get_weights()
    with pytest.raises(WeightsError, match=r"tensor 'dense_1.weight' does not belong to a GAN"):
        backend.build_gan(p, weights={"dense_1.weight": np.zeros((4, 3))})
    with pytest.raises(ValueError, match=r"weight 'dense_1\.weight' belongs to neither model"):
        runtime.set_weights({"dense_1.weight": np.zeros((4, 3))})
    weights = init_gan_weights(p, recipe)
    del weights["discriminator/dense_2.bias"]
    with pytest.raises(WeightsError, match=r"\(discriminator D\) is missing tensor"):
        backend.build_gan(p, weights=weights)


def test_the_generated_module_trains_as_nnc_train_does() -> None:
    """Its draw_noise is nnc's, and its fit(x) makes the updates of nnc train."""
    uniform = load_module(backend.emit(program("minimax", False)), "uniform_gan")
    np.testing.assert_array_equal(
        uniform.draw_noise(noise_generator(9), 5),
        draw_noise(noise_generator(9), Noise(dist="uniform", size=3), 5),
    )
    program_ = nnc.load("examples/gan.nn")
    recipe = program_.recipes["DigitsGAN"]
    module = load_module(backend.emit(program_), "gan_module")
    np.testing.assert_array_equal(
        module.draw_noise(noise_generator(9), 5), draw_noise(noise_generator(9), recipe.noise, 5)
    )
    x = prepare_gan(program_, recipe).x
    generator, discriminator, history = module.fit(x, epochs=1, verbose=False)
    result = train(program_, options=RunOptions(epochs=1, save=False))
    models = {"generator": generator, "discriminator": discriminator}
    for name, value in result.runtime.get_weights().items():
        role, _, param = name.partition("/")
        np.testing.assert_array_equal(models[role].weights[param], value, err_msg=name)
    assert history[0]["d_loss"] == pytest.approx(result.history[0]["d_loss"], rel=1e-12)


def test_emitting_a_gan_imports_no_framework() -> None:
    script = (
        "import sys\n"
        "import nnc\n"
        "from nnc.backends import get_backend\n"
        "program = nnc.load('examples/gan.nn')\n"
        "for name in ('numpy', 'torch', 'tensorflow'):\n"
        "    assert 'def fit(' in get_backend(name).emit(program)\n"
        "print(sorted(m for m in ('torch', 'tensorflow', 'onnx') if m in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
