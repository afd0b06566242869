"""An exported model computes what ``nnc predict`` computes from the same raw samples:
the recipe's ``scale`` and ``upscale`` of a built-in set and the run's input
standardisation are in the graph (issue 17: digits_cnn's exported logits were 16
times ``nnc predict``'s on raw pixels, since ``scale = unit`` was not folded)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import nnc
from nnc.data.builtin import load_builtin
from nnc.ir.training import Dataset
from tests.conftest import EXAMPLES, require, run_nnc

# every example whose recipe preprocesses its inputs (a GAN's discriminator is no
# recipe's model: nnc predict does not run it)
PREPROCESSED = [
    "autoencoder",
    "conv_autoencoder",
    "digits_cnn",
    "digits_mlp",
    "house_prices",
    "lenet5",
    "mlp_4_5_5_3",
    "resnet_block",
]


def raw_samples(example: str, n: int = 16) -> np.ndarray:
    recipe = next(iter(nnc.load(EXAMPLES / f"{example}.nn").recipes.values()))
    assert isinstance(recipe.data, Dataset)
    return load_builtin(recipe.data.name).x[:n].astype(np.float32)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from nnc.train import RunOptions, train

    out = tmp_path_factory.mktemp("runs")
    for example in PREPROCESSED:
        train(
            nnc.load(EXAMPLES / f"{example}.nn"),
            options=RunOptions(epochs=1, batch=256, out=out / example),
        )
    return {example: out / example for example in PREPROCESSED}


@pytest.mark.parametrize("example", PREPROCESSED)
def test_export_and_predict_agree_on_raw_samples(
    example: str, trained: dict[str, Path], tmp_path: Path
) -> None:
    require("onnxruntime")
    from nnc.backends import onnx as backend
    from nnc.backends.onnx.runtime import match_inputs, open_session, run_session
    from nnc.train.inference import load_trained, predict_file

    spec = EXAMPLES / f"{example}.nn"
    program = nnc.load(spec)
    raw = raw_samples(example)
    np.savez(tmp_path / "raw.npz", x=raw)
    recipe = next(iter(program.recipes.values()))
    model = program.models[recipe.model]
    run = load_trained(trained[example], lambda message: None)
    predicted, _ = predict_file(program, model, recipe, run, tmp_path / "raw.npz")

    session = open_session(backend.emit(program, weights=run, preprocess=True))
    feeds = match_inputs(session.get_inputs(), {"x": raw}, "raw.npz")
    exported = run_session(session, feeds)[0]
    scale = max(float(np.abs(predicted).max()), 1e-2)
    assert float(np.abs(exported - predicted).max()) / scale < 1e-5

    if example == "lenet5":  # Resize in opset 11 takes a region of interest
        old = open_session(backend.emit(program, weights=run, preprocess=True, opset=11))
        again = run_session(old, match_inputs(old.get_inputs(), {"x": raw}, "raw.npz"))[0]
        assert float(np.abs(again - predicted).max()) / scale < 1e-5

    bare = open_session(backend.emit(program, weights=run))
    feeds = (
        match_inputs(bare.get_inputs(), {"x": raw}, "raw.npz") if example == "digits_mlp" else {}
    )
    if feeds:  # raw pixels fed to the bare graph: 16 times off, the newcomer's finding
        off = run_session(bare, feeds)[0]
        assert float(np.abs(off - predicted).max()) / scale > 0.5


def test_nnc_run_on_the_export_matches_nnc_predict(
    trained: dict[str, Path], tmp_path: Path
) -> None:
    require("onnxruntime")
    spec = EXAMPLES / "lenet5.nn"  # scale = unit and upscale = 4: raw [1, 8, 8] in, 32x32 inside
    np.savez(tmp_path / "raw.npz", x=raw_samples("lenet5", 8))
    exported = run_nnc(
        "export", str(spec), "-w", str(trained["lenet5"]), "-o", str(tmp_path / "m.onnx")
    )
    assert exported.returncode == 0, exported.stderr
    assert (
        "the graph takes raw samples and applies the run's preprocessing: "
        "digits, scale = unit, upscale = 4" in exported.stderr
    )
    ran = run_nnc(
        "run",
        str(tmp_path / "m.onnx"),
        "--input",
        str(tmp_path / "raw.npz"),
        "-o",
        str(tmp_path / "r.npz"),
    )
    assert ran.returncode == 0, ran.stderr
    predicted = run_nnc(
        "predict",
        str(spec),
        "-w",
        str(trained["lenet5"]),
        "--input",
        str(tmp_path / "raw.npz"),
        "-o",
        str(tmp_path / "p.npz"),
    )
    assert predicted.returncode == 0, predicted.stderr
    a = next(iter(np.load(tmp_path / "r.npz").values()))
    b = np.load(tmp_path / "p.npz")["outputs"]
    assert a.shape == b.shape == (8, 10)
    assert float(np.abs(a - b).max()) / float(np.abs(b).max()) < 1e-5


def test_an_exported_scale_imports_as_input_statistics() -> None:
    require("onnx")
    from nnc.backends import onnx as backend

    program = nnc.load(EXAMPLES / "digits_cnn.nn")  # scale = unit: x / 16
    imported = backend.import_model(backend.emit(program, preprocess=True))
    assert imported.standardize is not None
    mean, std = imported.standardize
    np.testing.assert_array_equal(mean, np.zeros((1, 1, 8, 8), np.float32))
    np.testing.assert_array_equal(std, np.full((1, 1, 8, 8), 16.0, np.float32))
