"""The generated Runtime's behaviour: typed errors, pure forward/gradients, dropout,
XLA, the claim that stored layouts are Keras', start-up imports, and the generated
module running on its own."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import nnc
from nnc.backends import tensorflow as backend
from nnc.backends.runtime import Runtime
from nnc.errors import DataError, RecipeError, UnsupportedOpError, WeightsError
from tests.backends.tensorflow.helpers import deviation, without_dropout
from tests.conftest import EXAMPLES, ROOT, require, run_nnc

CNN = EXAMPLES / "digits_cnn.nn"


@pytest.fixture(scope="module")
def cnn(runtimes: Any) -> Any:
    return runtimes("example-digits_cnn-DigitsCNN-dropout", lambda: backend.build(nnc.load(CNN)))


# -- typed errors ---------------------------------------------------------------------


def test_input_of_the_wrong_shape(cnn: Any) -> None:
    with pytest.raises(DataError) as err:
        cnn.forward(np.zeros((4, 64), np.float32))
    assert str(err.value) == (
        "input 'image' must be a batch of shape [N, 1, 8, 8]. Received: shape [4, 64]"
    )
    with pytest.raises(DataError, match=r"DigitsCNN takes 1 input\(s\). Received: 2"):
        cnn.forward(np.zeros((4, 1, 8, 8)), np.zeros((4, 1, 8, 8)))
    with pytest.raises(DataError, match=r"target must be a batch of shape \[N, 10\]"):
        cnn.train_step(np.zeros((4, 1, 8, 8)), np.zeros((4, 3)), 0.1)
    with pytest.raises(DataError, match=r"must hold real numbers\. Received: dtype <U1"):
        cnn.forward(np.full((1, 1, 8, 8), "a"))


def test_weights_that_do_not_fit(cnn: Any) -> None:
    good = cnn.get_weights()
    with pytest.raises(DataError, match=r"missing \['dense_2.bias'\], unknown \['extra'\]"):
        cnn.set_weights({**{k: v for k, v in good.items() if k != "dense_2.bias"}, "extra": 1})
    with pytest.raises(DataError, match=r"weight 'dense_1.weight' must have shape \[64, 128\]"):
        cnn.set_weights({**good, "dense_1.weight": good["dense_1.weight"].T})
    with pytest.raises(DataError, match=r"optimizer state do not fit the model: missing \['step'"):
        cnn.set_optimizer_state({})
    with pytest.raises(WeightsError, match="has shape"):
        backend.build(nnc.load(CNN), weights={**good, "dense_2.bias": np.zeros(3)})
    assert all(np.array_equal(v, good[k]) for k, v in cnn.get_weights().items())


def test_runtimes_implement_the_interface(cnn: Any) -> None:
    assert isinstance(cnn, Runtime) and cnn.backend == "tensorflow"


def test_model_without_recipe_runs_but_does_not_train(tf: Any) -> None:
    program = nnc.parse("model Encoder {\n    input x: [3]\n    dense(2) relu\n}\n")
    rt = backend.build(program)
    assert isinstance(rt, Runtime)
    assert rt.forward(np.ones((2, 3), np.float32)).shape == (2, 2)
    for call in (
        lambda: rt.train_step(np.ones((2, 3)), np.ones((2, 2)), 0.1),
        lambda: rt.loss(np.ones((2, 3)), np.ones((2, 2))),
        lambda: rt.gradients(np.ones((2, 3)), np.ones((2, 2))),
        rt.get_optimizer_state,
    ):
        with pytest.raises(RecipeError, match=r"model Encoder has no train recipe; add `train"):
            call()


def test_ids_outside_the_vocabulary(tf: Any) -> None:
    program = nnc.parse(
        "model T {\n    input ids: int64[4]\n    embedding(5, 2) flatten dense(1)\n}\n"
        'train T {\n    data "x.npz"\n    loss mse\n}\n'
    )
    rt = backend.build(program)
    assert rt.forward(np.array([[0, 1, 4, 2]])).shape == (1, 1)
    with pytest.raises(DataError, match=r"ids in \[0, 5\). Received: ids from 0 to 5"):
        rt.forward(np.array([[0, 1, 5, 2]]))
    with pytest.raises(DataError, match=r"must hold integer ids\. Received: dtype float64"):
        rt.forward(np.zeros((1, 4)))


def test_every_registry_op_lowers() -> None:
    """No op raises UnsupportedOpError: the registry is fully covered (test_ops.py
    checks the numbers)."""
    from nnc.backends.tensorflow.ops import LOWERINGS
    from nnc.ir.ops import OPS

    assert set(OPS) - set(LOWERINGS) == {"call"}  # calls are lowered by the emitter
    assert "is not supported by the tensorflow backend" in str(
        UnsupportedOpError("x", "tensorflow")
    )


# -- modes, buffers, randomness, XLA ----------------------------------------------------


def test_only_train_step_moves_batchnorm_statistics(tf: Any) -> None:
    program = nnc.parse(
        "model T {\n    input x: [2, 3, 3]\n    conv2d(2, 3, padding = same) batchnorm\n}\n"
        'train T {\n    data "x.npz"\n    loss mse\n}\n'
    )
    rt = backend.build(program, seed=1)
    x = np.random.default_rng(0).normal(size=(4, 2, 3, 3)).astype(np.float32)
    y = np.zeros((4, 2, 3, 3), np.float32)
    before = rt.get_weights()
    rt.forward(x, training=True)
    rt.gradients(x, y)
    assert all(np.array_equal(v, before[k]) for k, v in rt.get_weights().items())
    rt.train_step(x, y, 0.0)  # lr 0: only the statistics move
    after = rt.get_weights()
    assert not np.array_equal(after["batchnorm_1.running_mean"], before["batchnorm_1.running_mean"])
    assert np.array_equal(after["batchnorm_1.weight"], before["batchnorm_1.weight"])


def test_batchnorm_statistics_of_a_single_value(tf: Any) -> None:
    """One value per channel: the unbiasing factor n/(n-1) is taken as 1
    (docs/semantics.md), so the running variance stays finite."""
    program = nnc.parse(
        "model T {\n    input x: [3]\n    batchnorm(momentum = 0.5)\n}\n"
        'train T {\n    data "x.npz"\n    loss mse\n}\n'
    )
    rt = backend.build(program)
    rt.train_step(np.array([[1.0, 2.0, 3.0]]), np.zeros((1, 3)), 0.1)
    weights = rt.get_weights()
    assert np.array_equal(weights["batchnorm_1.running_var"], np.full(3, 0.5, np.float32))
    assert np.array_equal(
        weights["batchnorm_1.running_mean"], np.array([0.5, 1.0, 1.5], np.float32)
    )


def test_dropout_is_inverted_and_seeded(tf: Any) -> None:
    program = nnc.parse("model T {\n    input x: [4000]\n    dropout(0.25)\n}\n")
    rt = backend.build(program)
    x = np.ones((1, 4000), np.float32)
    assert np.array_equal(rt.forward(x), x)  # evaluation: the identity
    rt.seed(3)
    y = rt.forward(x, training=True)
    kept = y != 0
    assert set(np.unique(y)) == {0.0, np.float32(1 / 0.75)}
    assert abs(kept.mean() - 0.75) < 0.03  # 4000 draws: 4 standard deviations
    rt.seed(3)
    assert np.array_equal(rt.forward(x, training=True), y)


def test_xla_train_step_is_exact(tf: Any) -> None:
    """jit_compile=True (off by default: slower here) computes the same steps."""
    program = without_dropout(nnc.load(CNN))
    plain = backend.build(program, jit_compile=False)
    xla = backend.build(program, jit_compile=True)
    rng = np.random.default_rng(5)
    for _ in range(3):
        x = rng.uniform(size=(16, 1, 8, 8)).astype(np.float32)
        y = np.eye(10, dtype=np.float32)[rng.integers(0, 10, 16)]
        assert xla.train_step(x, y, 0.01) == pytest.approx(plain.train_step(x, y, 0.01), rel=1e-5)
    for name, value in plain.get_weights().items():
        assert deviation(xla.get_weights()[name], value) < 1e-5, name


def test_stored_layouts_are_keras(tf: Any) -> None:
    """The variables of Dense, Conv, ConvTranspose2d, SimpleRNN, LSTM and GRU, loaded
    into Keras' own layers, give the same outputs: the layouts docs/backends/tensorflow.md
    calls Keras' are Keras'."""
    import keras

    source = backend.emit(
        nnc.parse(
            "model T {\n    input s: [t, 3]\n    input x: [2, 5, 5]\n"
            "    a = s |> rnn(4)\n    b = s |> lstm(4)\n    c = s |> gru(4)\n"
            "    d = x |> conv2d(3, 3, stride = 2) |> conv2d_transpose(2, 3, stride = 2)\n"
            "    output a + b + c, d |> flatten |> dense(2)\n}\n"
        )
    )
    from nnc.backends.codegen import load_module

    module = load_module(source, "keras_layouts")
    rng = np.random.default_rng(0)

    def randomize(layer: Any) -> list[np.ndarray]:
        values = []
        for var in layer.parameters().values():
            value = rng.normal(0, 0.5, size=var.shape).astype(np.float32)
            var.assign(value)
            values.append(value)
        return values

    seq = tf.constant(rng.normal(size=(2, 6, 3)).astype(np.float32))
    for ours, theirs in (
        (module.SimpleRNN(3, 4), keras.layers.SimpleRNN(4)),
        (module.LSTM(3, 4), keras.layers.LSTM(4)),
        (module.GRU(3, 4), keras.layers.GRU(4, reset_after=True)),
    ):
        values = randomize(ours)
        theirs.build(seq.shape)
        if isinstance(theirs, keras.layers.GRU):
            values = [values[0], values[1], np.stack(values[2:])]
        theirs.set_weights(values)
        assert np.abs(ours(seq).numpy() - theirs(seq).numpy()).max() < 1e-5, type(theirs)

    image = tf.constant(rng.normal(size=(2, 5, 5, 2)).astype(np.float32))
    vector = tf.constant(rng.normal(size=(2, 6)).astype(np.float32))
    for ours, theirs, x in (
        (module.Dense(6, 3), keras.layers.Dense(3), vector),
        (module.Conv(2, 3, (3, 3), (2, 2)), keras.layers.Conv2D(3, 3, strides=2), image),
        (
            module.ConvTranspose2d(2, 3, (3, 3), (2, 2)),
            keras.layers.Conv2DTranspose(3, 3, strides=2),
            image,
        ),
    ):
        values = randomize(ours)
        theirs.build(x.shape)
        theirs.set_weights(values)
        assert np.abs(ours(x).numpy() - theirs(x).numpy()).max() < 1e-5, type(theirs)


# Keras 3.15 saves a variable through np.array(variable), which NumPy 2 warns about
# (Keras' Variable.__array__ takes no copy argument): its warning, not nnc's.
@pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword")
def test_saved_keras_model_loads_with_the_same_outputs(tf: Any, tmp_path: Path) -> None:
    """A runtime's model is a Keras model: model.save writes a .keras file that
    keras.models.load_model reads back (the generated module registers its classes),
    and the loaded model gives the same outputs, running batchnorm statistics, a
    frozen bias and the recurrent and attention layers included."""
    import keras

    program = nnc.parse(
        "model Inner {\n    input s: [t, 4]\n"
        "    output s |> lstm(5, return_sequences = true) |> layernorm\n}\n"
        "model T {\n    input x: [2, 6, 6]\n    input s: [t, 4]\n"
        "    a = x |> conv2d(3, 3) |> batchnorm |> relu |> flatten\n"
        "    b = s |> Inner |> attention(1) |> mean(axis = [0])\n"
        "    output concat(a |> dense(2, bias_trainable = false), b |> dense(2))\n}\n"
    )
    runtime = backend.build(program, model="T", seed=1)
    rng = np.random.default_rng(0)
    weights = {k: rng.normal(0, 0.5, size=v.shape) for k, v in runtime.get_weights().items()}
    weights = {k: np.abs(v) if k.endswith("running_var") else v for k, v in weights.items()}
    runtime.set_weights(weights)
    x = rng.normal(size=(3, 2, 6, 6)).astype(np.float32)
    s = rng.normal(size=(3, 5, 4)).astype(np.float32)
    assert isinstance(runtime.model, keras.Model)
    runtime.model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    assert type(loaded) is type(runtime.model)
    assert np.array_equal(loaded(x, s).numpy(), runtime.forward(x, s))
    trainable = {v.path for v in loaded.trainable_weights}
    assert len(trainable) == len(runtime.model.trainable_weights) == 20
    assert not any("dense_1/bias" in p for p in trainable) and len(loaded.weights) == 23


def test_model_attributes_cover_keras() -> None:
    """A layer attribute named after a node never shadows keras.Model's own."""
    import keras

    from nnc.backends.tensorflow.graph import MODULE_ATTRIBUTES

    assert {n for n in dir(keras.Model) if not n.startswith("_")} <= MODULE_ATTRIBUTES


# -- start-up and the standalone module -------------------------------------------------


def test_nothing_imports_tensorflow_without_running_it(tmp_path: Path) -> None:
    code = textwrap.dedent(
        f"""
        import json, sys
        from nnc.cli.main import main
        import nnc
        from nnc.backends import get_backend
        assert main(["check", {str(CNN)!r}]) == 0
        out = {str(tmp_path / "m.py")!r}
        assert main(["compile", {str(CNN)!r}, "--backend", "tensorflow", "-o", out]) == 0
        assert main(["summary", {str(CNN)!r}]) == 0
        get_backend("tensorflow").emit(nnc.load({str(CNN)!r}))
        heavy = ("tensorflow", "keras", "torch", "onnx", "onnxruntime", "jax")
        print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in heavy)))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []
    assert "def make_optimizer(variables):" in (tmp_path / "m.py").read_text()


def test_cli_prints_the_module() -> None:
    done = run_nnc("compile", "examples/xor.nn", "--backend", "tf")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("# Generated by nnc")
    assert "class Xor(keras.Model):" in done.stdout


def test_standalone_module_trains(tmp_path: Path) -> None:
    """The generated file alone, with only tensorflow and numpy (python -I, no nnc on
    the path): fit trains the digits MLP on separable synthetic digits and the epoch
    loss drops at least fivefold in 8 epochs, to a model that classifies 90% of them."""
    require("tensorflow")
    (tmp_path / "digits_mlp.py").write_text(
        backend.emit(nnc.load(EXAMPLES / "digits_mlp.nn"), source="examples/digits_mlp.nn")
    )
    script = textwrap.dedent(
        """
        import importlib.util, json, os, sys
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
        import numpy as np
        spec = importlib.util.spec_from_file_location("digits_mlp", sys.argv[1])
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        rng = np.random.default_rng(0)
        centres = rng.uniform(0, 1, size=(10, 64))
        labels = rng.integers(0, 10, size=512)
        x = (centres[labels] + rng.normal(0, 0.1, size=(512, 64))).astype(np.float32)
        y = np.eye(10, dtype=np.float32)[labels]
        model, history = module.fit(x, y, epochs=8, verbose=False)
        accuracy = float(np.mean(np.argmax(model(x).numpy(), -1) == labels))
        print(json.dumps({
            "history": history,
            "accuracy": accuracy,
            "nnc": any(m == "nnc" or m.startswith("nnc.") for m in sys.modules),
            "torch": "torch" in sys.modules,
        }))
        """
    )
    (tmp_path / "run.py").write_text(script)
    done = subprocess.run(
        [sys.executable, "-I", str(tmp_path / "run.py"), str(tmp_path / "digits_mlp.py")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    history = result["history"]
    assert history[-1] < history[0] / 5, history
    assert result["accuracy"] > 0.9, result
    assert result == {**result, "nnc": False, "torch": False}


def test_awkward_names_and_several_outputs(tf: Any) -> None:
    """Spec names that collide with the generated code's own (tf, self, Dense, Runtime,
    layers, an input named like the train step's arguments) are renamed, and a model
    with several outputs returns a tuple."""
    program = nnc.parse(
        "model Dense {\n    input tape: [3]\n    tf = tape |> dense(4)\n    layers = tf |> tanh\n"
        "    output layers, tf\n}\n"
        "model Runtime {\n    input target: [3]\n    self, lr = Dense(target)\n"
        "    output self + lr\n}\n"
        'train Runtime {\n    data "x.npz"\n    loss mse\n}\n'
    )
    rt = backend.build(program)
    x = np.random.default_rng(0).normal(size=(2, 3)).astype(np.float32)
    w = rt.get_weights()
    assert sorted(w) == ["self.tf.bias", "self.tf.weight"]
    hidden = x @ w["self.tf.weight"].T + w["self.tf.bias"]
    assert deviation(rt.forward(x), np.tanh(hidden) + hidden) < 1e-6
    assert rt.train_step(x, np.zeros((2, 4)), 0.1) > 0
    inner = backend.build(program, "Dense")
    first, second = inner.forward(x)
    assert first.shape == second.shape == (2, 4)
