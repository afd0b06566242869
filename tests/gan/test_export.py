"""A model's weights taken out of a larger run: the generator of a GAN run, the
encoder of an autoencoder run, exported alone to ONNX with their trained weights."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import nnc
from nnc.backends import get_backend
from nnc.cli.main import main
from nnc.errors import WeightsError
from nnc.ir.weights import find_model_weights, init_gan_weights, init_weights, read_weights_file
from nnc.train import RunOptions, train
from tests.conftest import EXAMPLES, require

AUTOENCODER = nnc.load(EXAMPLES / "autoencoder.nn")
GAN = nnc.load(EXAMPLES / "gan.nn")


def test_a_called_model_is_found_under_its_call() -> None:
    weights = init_weights(AUTOENCODER, "Autoencoder", seed=3)
    found = find_model_weights(AUTOENCODER, "Encoder", weights)
    assert (found.prefix, found.root) == ("encoder_1.", "Autoencoder")
    assert sorted(found.weights) == [
        "dense_1.bias",
        "dense_1.weight",
        "dense_2.bias",
        "dense_2.weight",
    ]
    assert found.weights["dense_2.weight"] is weights["encoder_1.dense_2.weight"]
    own = find_model_weights(AUTOENCODER, "Autoencoder", weights)
    assert own.prefix == "" and own.weights == weights


def test_a_gan_model_is_found_under_its_role() -> None:
    weights = init_gan_weights(GAN, GAN.recipes["DigitsGAN"])
    found = find_model_weights(GAN, "Discriminator", weights)
    assert found.prefix == "discriminator/"
    assert found.weights["dense_2.weight"].shape == (1, 64)


def test_ambiguous_or_missing_weights_are_errors() -> None:
    program = nnc.parse(
        "model Half {\n    input x: [4]\n    dense(4)\n}\n\n"
        "model Twice {\n    input x: [4]\n    Half\n    Half\n}\n"
    )
    weights = init_weights(program, "Twice")
    with pytest.raises(WeightsError, match=r"holds the weights of model 'Half' more than once"):
        find_model_weights(program, "Half", weights, "twice.npz")
    unrelated = {"other.weight": np.zeros(3)}
    assert find_model_weights(program, "Half", unrelated).weights == unrelated  # check says why
    own = init_weights(program, "Half")
    extra = {**own, "dense_9.bias": np.zeros(1)}
    assert find_model_weights(program, "Half", extra).weights == extra  # nothing dropped


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One short run of each example (numpy)."""
    root = tmp_path_factory.mktemp("runs")
    train(GAN, options=RunOptions(epochs=1, out=root / "gan"))
    train(AUTOENCODER, options=RunOptions(epochs=1, out=root / "autoencoder"))
    return {"gan": root / "gan", "autoencoder": root / "autoencoder"}


def onnx_outputs(path: Path, x: np.ndarray) -> np.ndarray:
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return np.asarray(session.run(None, {session.get_inputs()[0].name: x})[0])


def test_export_the_generator_of_a_gan_run(runs: dict[str, Path], tmp_path: Path) -> None:
    require("onnxruntime")
    out = tmp_path / "g.onnx"
    args = ["export", "examples/gan.nn", "--model", "Generator", "--weights", str(runs["gan"])]
    assert main([*args, "-o", str(out)]) == 0
    trained = read_weights_file(runs["gan"] / "weights.safetensors")
    gan = get_backend("numpy").build_gan(GAN, weights=trained)
    z = np.random.default_rng(0).standard_normal((5, 16)).astype(np.float32)
    expected = gan.generate(z)
    assert np.abs(onnx_outputs(out, z) - expected).max() < 1e-5
    initial = get_backend("numpy").build_gan(GAN).generate(z)
    assert np.abs(initial - expected).max() > 0.1  # the trained weights, not the initial ones


def test_export_the_encoder_of_an_autoencoder_run(runs: dict[str, Path], tmp_path: Path) -> None:
    require("onnxruntime")
    out = tmp_path / "encoder.onnx"
    args = ["export", "examples/autoencoder.nn", "--model", "Encoder"]
    assert main([*args, "--weights", str(runs["autoencoder"]), "-o", str(out)]) == 0
    trained = read_weights_file(runs["autoencoder"] / "weights.safetensors")
    encoder = {k.removeprefix("encoder_1."): v for k, v in trained.items() if "encoder_1." in k}
    x = np.random.default_rng(1).uniform(0, 1, (5, 64)).astype(np.float32)
    expected = get_backend("numpy").build(AUTOENCODER, "Encoder", weights=encoder).forward(x)
    assert expected.shape == (5, 8)
    assert np.abs(onnx_outputs(out, x) - expected).max() < 1e-5
