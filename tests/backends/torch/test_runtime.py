"""The generated Runtime: devices, canonical weights, seeding, modes, models
without a recipe, and the module running standalone."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import nnc
from nnc.backends import torch as backend
from nnc.backends.codegen import load_module
from nnc.backends.runtime import Runtime
from nnc.errors import BackendError, WeightsError
from nnc.ir.weights import init_weights
from tests.conftest import ROOT

pytestmark = pytest.mark.usefixtures("needs_torch")


def load(name: str) -> nnc.Program:
    return nnc.load(ROOT / "examples" / f"{name}.nn")


# -- devices --------------------------------------------------------------------------------


def test_cuda_without_cuda_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    # On a machine with a GPU too: the refusal is what is tested.
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(BackendError, match="device 'cuda' was requested but CUDA is not available"):
        backend.build(load("xor"), device="cuda")
    # The adapter itself refuses too, when given a plain generated module.
    from nnc.backends.torch.emit import lower_module
    from nnc.backends.torch.runtime import TorchRuntime

    lowered = lower_module(load("xor"))
    module = load_module(lowered.source, "xor_cuda")
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        TorchRuntime(module, lowered, init_weights(load("xor"), "Xor"), device="cuda")


@pytest.mark.parametrize("device", ["tpu", "gpu0", ""])
def test_unknown_devices_are_refused(device: str) -> None:
    with pytest.raises(BackendError, match=f"Received: device {device!r}|unknown device"):
        backend.build(load("xor"), device=device)


# -- weights -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["resnet_block", "sequence_lstm", "autoencoder"])
def test_canonical_weights_round_trip(name: str) -> None:
    program = load(name)
    model = nnc.backends.codegen.select(program)[0]
    weights = init_weights(program, model, seed=5)
    runtime = backend.build(program, weights=weights)
    assert isinstance(runtime, Runtime)
    got = runtime.get_weights()
    assert sorted(got) == sorted(weights)  # buffers included, no num_batches_tracked
    for key, value in weights.items():
        assert got[key].dtype == np.float32 and np.array_equal(got[key], value), key
    got[next(iter(got))][...] = 99.0  # a copy: the runtime is untouched
    assert not np.array_equal(runtime.get_weights()[next(iter(got))], got[next(iter(got))])


def test_lstm_recurrent_bias_stays_zero_and_frozen() -> None:
    program = load("sequence_lstm")
    runtime = backend.build(program)
    x = np.random.default_rng(0).normal(size=(8, 20, 1)).astype(np.float32)
    y = np.zeros((8, 1), np.float32)
    for _ in range(3):
        runtime.train_step(x, y, 0.01)
    lstm = runtime.model.lstm_1  # type: ignore[attr-defined]
    assert not lstm.bias_hh_l0.requires_grad and not lstm.bias_hh_l0.detach().any()
    assert "lstm_1.bias.m" in runtime.get_optimizer_state()
    assert not any("bias_hh" in k for k in runtime.get_optimizer_state())


def test_weights_that_do_not_fit_are_refused() -> None:
    program = load("xor")
    weights = init_weights(program, "Xor")
    weights["dense_1.weight"] = np.zeros((3, 2), np.float32)
    with pytest.raises(WeightsError, match=r"'dense_1.weight' has shape \[3, 2\]"):
        backend.build(program, weights=weights)
    runtime = backend.build(program)
    with pytest.raises(ValueError, match=r"dense_1.weight has shape \[3, 2\]; expected \[5, 2\]"):
        runtime.set_weights(weights)
    del weights["dense_2.bias"]
    with pytest.raises(KeyError, match=r"missing \['dense_2.bias'\]"):
        runtime.set_weights(weights)


def test_inputs_may_be_read_only_views_of_other_dtypes() -> None:
    runtime = backend.build(load("xor"))
    x = np.broadcast_to(np.array([1.0, 0.0]), (4, 2))  # float64, read-only
    expected = runtime.forward(np.ones((4, 2), np.float32) * [1, 0])
    assert np.array_equal(runtime.forward(x), expected)
    assert runtime.train_step(x, np.zeros((4, 1)), 0.1) > 0


# -- modes and seeds -----------------------------------------------------------------------


def test_dropout_is_inverted_seeded_and_off_in_evaluation() -> None:
    program = nnc.parse("model D {\n input x: [2000]\n dropout(0.25)\n}\n")
    runtime = backend.build(program)
    x = np.ones((2, 2000), np.float32)
    assert np.array_equal(runtime.forward(x), x)
    runtime.seed(11)
    first = runtime.forward(x, training=True)
    runtime.seed(11)
    assert np.array_equal(runtime.forward(x, training=True), first)
    assert set(np.unique(first)) == {0.0, np.float32(1 / 0.75)}
    assert abs(np.mean(first == 0) - 0.25) < 0.03
    runtime.seed(12)
    assert not np.array_equal(runtime.forward(x, training=True), first)


def test_running_statistics_change_only_in_train_step() -> None:
    """nnc's contract: not in gradients, not in a training-mode forward pass."""
    program = load("resnet_block")
    runtime = backend.build(program)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(6, 1, 8, 8)).astype(np.float32)
    y = np.eye(10, dtype=np.float32)[rng.integers(0, 10, 6)]
    before = runtime.get_weights()
    evaluated = runtime.loss(x, y)
    runtime.gradients(x, y)
    runtime.forward(x, training=True)
    for key, value in runtime.get_weights().items():
        assert np.array_equal(value, before[key]), key
    assert runtime.loss(x, y) == evaluated
    frozen = nnc.parse(
        "model B {\n input x: [3]\n batchnorm(trainable = false)\n}\n"
        'train B {\n data "d.csv"\n loss mse\n optimizer sgd\n}\n'
    )
    for model in (runtime, backend.build(frozen)):
        inputs = x if model is runtime else x.reshape(6, -1)[:, :3]
        targets = y if model is runtime else np.zeros((6, 3), np.float32)
        start = model.get_weights()
        model.train_step(inputs, targets, 0.01)
        moved = [k for k, v in model.get_weights().items() if not np.array_equal(v, start[k])]
        assert any(k.endswith("running_mean") for k in moved)
        assert any(k.endswith("running_var") for k in moved)
    assert moved == ["batchnorm_1.running_mean", "batchnorm_1.running_var"]  # frozen scales


# -- models that the runtime cannot train ---------------------------------------------------


def test_model_without_recipe_runs_but_does_not_train() -> None:
    program = nnc.parse("model M {\n input x: [3]\n dense(2) tanh\n}\n")
    runtime = backend.build(program, seed=4)
    x = np.ones((2, 3), np.float32)
    assert runtime.forward(x).shape == (2, 2)
    assert np.array_equal(
        runtime.get_weights()["dense_1.weight"], init_weights(program, "M", 4)["dense_1.weight"]
    )
    with pytest.raises(RuntimeError, match="model M has no train recipe"):
        runtime.train_step(x, np.zeros((2, 2), np.float32), 0.1)
    with pytest.raises(RuntimeError, match="no loss or optimizer"):
        runtime.get_optimizer_state()


def test_gan_models_compile_and_refuse_supervised_training() -> None:
    program = load("gan")
    for name, shape in (("Generator", (3, 16)), ("Discriminator", (3, 64))):
        runtime = backend.build(program, name)
        assert runtime.forward(np.zeros(shape, np.float32)).shape[0] == 3
        with pytest.raises(RuntimeError, match="GAN recipe 'DigitsGAN'"):
            runtime.loss(np.zeros(shape, np.float32), np.zeros((3, 1), np.float32))


def test_a_fully_frozen_model_trains_without_moving() -> None:
    program = nnc.parse(
        "model M {\n input x: [3]\n dense(2, trainable = false)\n}\n"
        'train M {\n data "d.csv"\n loss mse\n optimizer adam\n}\n'
    )
    runtime = backend.build(program)
    x, y = np.ones((4, 3), np.float32), np.zeros((4, 2), np.float32)
    before = runtime.get_weights()
    assert runtime.train_step(x, y, 0.1) == pytest.approx(runtime.loss(x, y))
    assert all(np.array_equal(v, before[k]) for k, v in runtime.get_weights().items())
    assert runtime.gradients(x, y) == {}
    assert {k: int(v) for k, v in runtime.get_optimizer_state().items()} == {"step": 1}


# -- standalone ----------------------------------------------------------------------------

STANDALONE = """
import sys
sys.path.insert(0, {folder!r})
import numpy as np
import digits_mlp

rng = np.random.default_rng(0)
centres = rng.uniform(0, 1, size=(10, 64))
labels = rng.integers(0, 10, 400)
x = (centres[labels] + rng.normal(scale=0.1, size=(400, 64))).astype(np.float32)
y = np.eye(10, dtype=np.float32)[labels]
runtime, history = digits_mlp.fit(x, y, epochs=8, verbose=False)
foreign = sorted(m for m in ("nnc", "tensorflow", "onnx") if m in sys.modules)
print(history[0], history[-1], foreign)
"""


def test_generated_module_trains_standalone(tmp_path: Path) -> None:
    """Copied anywhere and run with ``python -I``, the module needs only torch and
    numpy, and fit() takes the loss on 10 separable clusters down by 10x in 8 epochs."""
    code = backend.emit(load("digits_mlp"), source="examples/digits_mlp.nn")
    (tmp_path / "digits_mlp.py").write_text(code)
    script = tmp_path / "train.py"
    script.write_text(STANDALONE.format(folder=str(tmp_path)))
    python = shutil.which(sys.executable) or sys.executable
    result = subprocess.run(
        [python, "-I", str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    first, last, foreign = result.stdout.split(maxsplit=2)
    assert foreign.strip() == "[]"
    assert float(last) < float(first) / 10, (first, last)
